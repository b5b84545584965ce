/* A string-keyed hash map (open addressing, linear probing). Keys are
 * copied; values are borrowed pointers the caller owns. */
#ifndef SWARM_STRMAP_H
#define SWARM_STRMAP_H

#include <stddef.h>

struct strmap;

struct strmap *strmap_new(void);
void strmap_free(struct strmap *m);
/* Inserts or replaces; returns the previous value or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *value);
void *strmap_get(const struct strmap *m, const char *key);
/* Removes; returns the value or NULL. */
void *strmap_del(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);
/* Iteration: *pos starts at 0; returns 0 at the end. */
int strmap_next(const struct strmap *m, size_t *pos, const char **key, void **value);

#endif
