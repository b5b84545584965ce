/* swarm-dnsd's name index (names.h). */
#include "names.h"

#include "pb.h"
#include "strmap.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum role { R_SERVICE, R_TASKS, R_CONTAINER };

struct rec {
	Swarm__EndpointRecord *r;
	struct in_addr ip, vip;
	bool has_ip, has_vip, dnsrr;
	char **keys;          /* index keys this record is under */
	size_t n_keys;
	char *ptr_key;
};

struct ref {
	struct rec *rec;
	enum role role;
};

struct bucket {
	struct ref *v;
	size_t n, cap;
};

struct names {
	struct strmap *recs;   /* endpoint id -> struct rec */
	struct strmap *idx;    /* "<net id>\x1f<name>" -> struct bucket */
	struct strmap *ptrs;   /* "<net id>\x1f<ip>" -> struct rec */
};

#define SEP "\x1f"

struct names *names_new(void)
{
	struct names *nm = xcalloc(1, sizeof(*nm));
	nm->recs = strmap_new();
	nm->idx = strmap_new();
	nm->ptrs = strmap_new();
	return nm;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void index_add(struct names *nm, struct rec *rc, enum role role, const char *fmt,
		      const char *a, const char *b)
{
	char name[NAMES_NAME_MAX + 1];
	if (!a[0] || (b && !b[0]))
		return;
	if (snprintf(name, sizeof(name), fmt, a, b) >= (int)sizeof(name))
		return; /* longer than a DNS name can be: nobody can ask */
	lower(name);
	char *key = xasprintf("%s" SEP "%s", rc->r->network_id, name);
	struct bucket *bk = strmap_get(nm->idx, key);
	if (!bk) {
		bk = xcalloc(1, sizeof(*bk));
		strmap_put(nm->idx, key, bk);
	}
	for (size_t i = 0; i < bk->n; i++)
		if (bk->v[i].rec == rc && bk->v[i].role == role) {
			free(key);
			return;
		}
	if (bk->n == bk->cap) {
		bk->cap = bk->cap ? bk->cap * 2 : 4;
		bk->v = xrealloc(bk->v, bk->cap * sizeof(*bk->v));
	}
	bk->v[bk->n++] = (struct ref){ rc, role };
	rc->keys = xrealloc(rc->keys, (rc->n_keys + 1) * sizeof(*rc->keys));
	rc->keys[rc->n_keys++] = key;
}

static void rec_unindex(struct names *nm, struct rec *rc)
{
	for (size_t i = 0; i < rc->n_keys; i++) {
		struct bucket *bk = strmap_get(nm->idx, rc->keys[i]);
		for (size_t j = 0; bk && j < bk->n;) {
			if (bk->v[j].rec == rc)
				bk->v[j] = bk->v[--bk->n];
			else
				j++;
		}
		if (bk && !bk->n) {
			strmap_del(nm->idx, rc->keys[i]);
			free(bk->v);
			free(bk);
		}
		free(rc->keys[i]);
	}
	free(rc->keys);
	rc->keys = NULL;
	rc->n_keys = 0;
	if (rc->ptr_key) {
		if (strmap_get(nm->ptrs, rc->ptr_key) == rc)
			strmap_del(nm->ptrs, rc->ptr_key);
		free(rc->ptr_key);
		rc->ptr_key = NULL;
	}
}

static void rec_free(struct rec *rc)
{
	pb_free(rc->r);
	free(rc);
}

int names_put(struct names *nm, const Swarm__EndpointRecord *in)
{
	if (!in->endpoint_id[0] || !in->network_id[0])
		return -EINVAL;
	if (in->lb_endpoint) {
		/* a node's ingress sandbox: no names, nothing to answer */
		names_del(nm, in->endpoint_id);
		return 0;
	}
	struct rec *rc = xcalloc(1, sizeof(*rc));
	rc->r = pb_dup(in);
	rc->has_ip = inet_pton(AF_INET, in->ipv4, &rc->ip) == 1;
	rc->has_vip = inet_pton(AF_INET, in->vip, &rc->vip) == 1;
	rc->dnsrr = !strcmp(in->endpoint_mode, "dnsrr");
	names_del(nm, in->endpoint_id);
	strmap_put(nm->recs, in->endpoint_id, rc);

	const Swarm__EndpointRecord *r = rc->r;
	const char *netname = r->network_name;
	/* each name plain and as <name>.<network> */
	for (int dotted = 0; dotted < 2; dotted++) {
		const char *suffix = dotted ? netname : NULL;
		const char *f1 = dotted ? "%s.%s" : "%s";
		const char *f2 = dotted ? "tasks.%s.%s" : "tasks.%s";
		if (dotted && !netname[0])
			break;
		index_add(nm, rc, R_SERVICE, f1, r->service_name, suffix);
		index_add(nm, rc, R_TASKS, f2, r->service_name, suffix);
		for (size_t i = 0; i < r->n_service_aliases; i++) {
			index_add(nm, rc, R_SERVICE, f1, r->service_aliases[i], suffix);
			index_add(nm, rc, R_TASKS, f2, r->service_aliases[i], suffix);
		}
		index_add(nm, rc, R_CONTAINER, f1, r->container_name, suffix);
		if (r->slot && r->service_name[0]) {
			char shortname[NAMES_NAME_MAX + 1];
			snprintf(shortname, sizeof(shortname), "%s.%llu", r->service_name,
				 (unsigned long long)r->slot);
			index_add(nm, rc, R_CONTAINER, f1, shortname, suffix);
		}
		for (size_t i = 0; i < r->n_task_aliases; i++)
			index_add(nm, rc, R_CONTAINER, f1, r->task_aliases[i], suffix);
	}
	if (rc->has_ip) {
		rc->ptr_key = xasprintf("%s" SEP "%s", r->network_id, r->ipv4);
		strmap_put(nm->ptrs, rc->ptr_key, rc);
	}
	return 0;
}

void names_del(struct names *nm, const char *endpoint_id)
{
	struct rec *rc = strmap_del(nm->recs, endpoint_id);
	if (!rc)
		return;
	rec_unindex(nm, rc);
	rec_free(rc);
}

void names_clear(struct names *nm)
{
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(nm->recs, &pos, &k, &v)) {
		rec_unindex(nm, v);
		rec_free(v);
	}
	strmap_free(nm->recs);
	nm->recs = strmap_new();
}

size_t names_count(const struct names *nm)
{
	return strmap_count(nm->recs);
}

void names_free(struct names *nm)
{
	if (!nm)
		return;
	names_clear(nm);
	strmap_free(nm->recs);
	strmap_free(nm->idx);
	strmap_free(nm->ptrs);
	free(nm);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void add_addr(struct names_answer *out, struct in_addr a)
{
	for (size_t i = 0; i < out->n; i++)
		if (out->addrs[i].s_addr == a.s_addr)
			return;
	if (out->n < NAMES_MAX_ADDRS)
		out->addrs[out->n++] = a;
}

/* Answers from one bucket. */
static void from_bucket(const struct bucket *bk, struct names_answer *out)
{
	out->kind = NAMES_TASKS;
	for (size_t i = 0; i < bk->n; i++) {
		const struct rec *rc = bk->v[i].rec;
		if (bk->v[i].role == R_SERVICE && !rc->dnsrr) {
			if (rc->has_vip) {
				out->kind = NAMES_VIP;
				add_addr(out, rc->vip);
			}
			continue;
		}
		if (rc->r->serving && rc->has_ip && out->kind != NAMES_VIP)
			add_addr(out, rc->ip);
	}
}

void names_lookup(const struct names *nm, const struct names_scope *scope,
		  const char *qname, uint64_t seed, struct names_answer *out)
{
	char key[2 * NAMES_NAME_MAX + 8];
	out->kind = NAMES_UNKNOWN;
	out->n = 0;
	/* networks in the sandbox's order: the first that knows the name answers */
	for (size_t i = 0; i < scope->n; i++) {
		snprintf(key, sizeof(key), "%s" SEP "%s", scope->net_ids[i], qname);
		const struct bucket *bk = strmap_get(nm->idx, key);
		if (!bk || !bk->n)
			continue;
		from_bucket(bk, out);
		break;
	}
	for (size_t i = out->n; i > 1; i--) {
		size_t j = (size_t)(xorshift(&seed) % i);
		struct in_addr t = out->addrs[i - 1];
		out->addrs[i - 1] = out->addrs[j];
		out->addrs[j] = t;
	}
}

bool names_ptr(const struct names *nm, const struct names_scope *scope,
	       struct in_addr ip, char *buf, size_t len)
{
	char key[NAMES_NAME_MAX + 64], a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ip, a, sizeof(a));
	for (size_t i = 0; i < scope->n; i++) {
		snprintf(key, sizeof(key), "%s" SEP "%s", scope->net_ids[i], a);
		const struct rec *rc = strmap_get(nm->ptrs, key);
		if (!rc || !rc->r->container_name[0])
			continue;
		snprintf(buf, len, "%s.%s", rc->r->container_name, rc->r->network_name);
		lower(buf);
		return true;
	}
	return false;
}
