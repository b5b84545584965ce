/* Namespaces for kernel tests: a bind-mounted nsfs file per namespace, so
 * a test names them by path and removes them by path, also on failure. */
#ifndef SWARM_TEST_NETNS_UTIL_H
#define SWARM_TEST_NETNS_UTIL_H

/* Makes a new network namespace pinned at path (created, must not exist);
 * the calling thread stays in its own. 0 or -errno (nothing left). */
int make_netns(const char *path);
/* Unmounts and removes path; "" is a no-op. */
void drop_netns(const char *path);

#endif
