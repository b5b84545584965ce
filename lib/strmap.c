#include "strmap.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char *key;     /* NULL: empty; TOMB: deleted */
	void *value;
};

static char tomb_marker;
#define TOMB (&tomb_marker)

struct strmap {
	struct slot *s;
	size_t cap;    /* power of two */
	size_t count;  /* live keys */
	size_t used;   /* live + tombstones */
};

static uint64_t hash_str(const char *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *k; k++) {
		h ^= (unsigned char)*k;
		h *= 1099511628211ULL;
	}
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = xcalloc(1, sizeof(*m));
	m->cap = 16;
	m->s = xcalloc(m->cap, sizeof(*m->s));
	return m;
}

void strmap_free(struct strmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->s[i].key && m->s[i].key != TOMB)
			free(m->s[i].key);
	free(m->s);
	free(m);
}

static struct slot *find(const struct strmap *m, const char *key)
{
	size_t mask = m->cap - 1;
	for (size_t i = hash_str(key) & mask;; i = (i + 1) & mask) {
		struct slot *sl = &m->s[i];
		if (!sl->key)
			return NULL;
		if (sl->key != TOMB && strcmp(sl->key, key) == 0)
			return sl;
	}
}

static void grow(struct strmap *m)
{
	struct slot *old = m->s;
	size_t oldcap = m->cap;
	if (m->count * 2 >= m->cap)
		m->cap *= 2;
	m->s = xcalloc(m->cap, sizeof(*m->s));
	m->used = m->count;
	size_t mask = m->cap - 1;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].key || old[i].key == TOMB)
			continue;
		size_t j = hash_str(old[i].key) & mask;
		while (m->s[j].key)
			j = (j + 1) & mask;
		m->s[j] = old[i];
	}
	free(old);
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
	struct slot *sl = find(m, key);
	if (sl) {
		void *prev = sl->value;
		sl->value = value;
		return prev;
	}
	if ((m->used + 1) * 4 >= m->cap * 3)
		grow(m);
	size_t mask = m->cap - 1;
	size_t i = hash_str(key) & mask;
	while (m->s[i].key && m->s[i].key != TOMB)
		i = (i + 1) & mask;
	if (!m->s[i].key)
		m->used++;
	m->s[i].key = xstrdup(key);
	m->s[i].value = value;
	m->count++;
	return NULL;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct slot *sl = find(m, key);
	return sl ? sl->value : NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct slot *sl = find(m, key);
	if (!sl)
		return NULL;
	void *v = sl->value;
	free(sl->key);
	sl->key = TOMB;
	sl->value = NULL;
	m->count--;
	return v;
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

int strmap_next(const struct strmap *m, size_t *pos, const char **key, void **value)
{
	while (*pos < m->cap) {
		struct slot *sl = &m->s[(*pos)++];
		if (sl->key && sl->key != TOMB) {
			*key = sl->key;
			if (value)
				*value = sl->value;
			return 1;
		}
	}
	return 0;
}
