/* Namespaces for kernel tests: a bind-mounted nsfs file per namespace, so
 * a test names them by path and removes them by path, also on failure. */
#ifndef SWARM_TEST_NETNS_UTIL_H
#define SWARM_TEST_NETNS_UTIL_H

/* Makes a new network namespace pinned at path (created, must not exist);
 * the calling thread stays in its own. 0 or -errno (nothing left). */
int make_netns(const char *path);
/* Unmounts and removes path; "" is a no-op. */
void drop_netns(const char *path);

#include <stdint.h>
#include <sys/types.h>

/* Sets the u32 link attribute attr (IFLA_*, also those iproute2 does not
 * know) of ifname in path's namespace. 0 or -errno. */
int netns_link_set_u32(const char *path, const char *ifname, unsigned short attr, uint32_t v);
/* The kernel's RTM_NEWLINK reply for ifname in path's namespace into
 * reply[cap]: its length or -errno. */
ssize_t netns_link_get(const char *path, const char *ifname, void *reply, size_t cap);

#endif
