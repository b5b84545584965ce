/* swarm-dnsd's names: the endpoint records of netd's stream indexed by the
 * names Docker's embedded DNS answers, scoped per network.
 *
 * Per network, for every endpoint record:
 *   <service>, each service alias        -> the VIP (vip mode) or the IPs of
 *                                           the serving tasks (dnsrr)
 *   tasks.<service>, tasks.<alias>       -> the IPs of the serving tasks
 *   <container name>, <service>.<slot>,
 *   each task alias                      -> that task's IP while it serves
 *   PTR of the task's IP                 -> <container name>.<network name>
 * and every name also as <name>.<network name>, which looks in that network
 * only. Names are compared lowercased without the trailing dot.
 *
 * A name is "known" on a network while some record there carries it, even
 * when no task serves (it then has no addresses): known names are never
 * forwarded upstream (Docker's #35118 lesson).
 *
 * Pure: no I/O, no clock; randomness comes in as a seed. Not thread-safe. */
#ifndef SWARM_NAMES_H
#define SWARM_NAMES_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netd.pb-c.h"

#define NAMES_MAX_ADDRS 512   /* addresses returned by one lookup */
#define NAMES_NAME_MAX 255

struct names;

struct names *names_new(void);
void names_free(struct names *nm);   /* NULL: no-op */

/* A record from the stream (copied); replaces one with the same
 * endpoint_id. -EINVAL when it lacks endpoint_id or network_id. */
int names_put(struct names *nm, const Swarm__EndpointRecord *rec);
/* Removes the record endpoint_id (absent: no-op). */
void names_del(struct names *nm, const char *endpoint_id);
/* Drops everything (a new stream epoch). */
void names_clear(struct names *nm);
size_t names_count(const struct names *nm);

/* Which networks a query may see: ids, and their names for the
 * <name>.<network> form. */
struct names_scope {
	const char *const *net_ids;
	const char *const *net_names;
	size_t n;
};

enum names_kind {
	NAMES_UNKNOWN,   /* not ours: forward upstream */
	NAMES_VIP,       /* a VIP (long TTL) */
	NAMES_TASKS,     /* task addresses (short TTL), maybe none serving */
};

struct names_answer {
	enum names_kind kind;
	size_t n;                                 /* addresses in addrs */
	struct in_addr addrs[NAMES_MAX_ADDRS];    /* shuffled */
};

/* A/AAAA-style lookup of qname (lowercase, no trailing dot) for scope.
 * Fills out; out->kind NAMES_UNKNOWN when no network in scope knows it. */
void names_lookup(const struct names *nm, const struct names_scope *scope,
		  const char *qname, uint64_t seed, struct names_answer *out);

/* PTR: the name of the task holding ip on a network in scope,
 * "<container>.<network>", into buf. true if found. */
bool names_ptr(const struct names *nm, const struct names_scope *scope,
	       struct in_addr ip, char *buf, size_t len);

#endif
