/* A task's sandbox network namespace as a bind-mounted nsfs file, so that it
 * outlives the processes in it and can be named in the OCI spec, entered by
 * netd, dnsd and lbd, and found again after an agent restart. */
#ifndef SWARM_NETNS_H
#define SWARM_NETNS_H

/* Creates a new network namespace with lo up and bind-mounts it onto path
 * (the file is created; its directory must exist). Runs a short child that
 * does unshare + ioctl + mount and waits for it: syscalls only, no exec, so
 * the wait is bounded. Idempotent: a path that already holds a namespace is
 * left as it is. 0 or -errno. */
int netns_create(const char *path);

/* Unmounts (lazily) and unlinks path. A path that does not exist is fine.
 * 0 or -errno. */
int netns_remove(const char *path);

/* 1 when path is a mounted network namespace file, 0 when not. */
int netns_is_mounted(const char *path);

#endif
