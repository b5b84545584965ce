/* Pure translation of a task (its ContainerSpec and limits) plus its image's
 * config into what runc needs: the OCI runtime config.json text, and the
 * small files bind-mounted at /etc/resolv.conf, /etc/hosts, /etc/hostname.
 * No file or kernel access here, so it is tested by parsing the output. */
#ifndef SWARM_BUNDLE_H
#define SWARM_BUNDLE_H

#include <stddef.h>
#include <stdint.h>
#include "objects.pb-c.h"
#include "images.h"

/* Host paths the spec names. All required. */
struct bundle_paths {
	const char *rootfs;       /* the task's (overlay) rootfs, absolute */
	const char *netns;        /* bind-mounted netns file for the network ns */
	const char *cgroups_path; /* "/<cgroup_parent>/<task-id>" */
	const char *resolv_conf;  /* host file mounted at /etc/resolv.conf */
	const char *hosts;        /* ... at /etc/hosts */
	const char *hostname;     /* ... at /etc/hostname */
};

/* The container's hostname: spec hostname, else the task's container name,
 * else its id; cut to 64 bytes (the kernel's limit). malloc'd. */
char *bundle_hostname(const Swarm__Task *t);

/* Process argv by Docker's rules: spec command replaces the image
 * entrypoint (and then the image cmd is not used), spec args replace the
 * image cmd. Malloc'd NULL-terminated vector of *n strings; -EINVAL when
 * nothing is left to run. */
int bundle_process_args(const Swarm__ContainerSpec *c, const struct image_config *img,
			char ***argv, size_t *n);

/* Environment: the image's, then the spec's (same key: the spec wins, in
 * the image's position), plus PATH when missing and HOSTNAME. Malloc'd
 * NULL-terminated vector of *n strings. */
void bundle_process_env(const Swarm__ContainerSpec *c, const struct image_config *img,
			const char *hostname, char ***env, size_t *n);

/* Frees a vector from the functions above; NULL is a no-op. */
void bundle_strv_free(char **v, size_t n);

/* The health check that applies: the spec's test (or the image's when the
 * spec has none), each duration/count from the spec when set, else the
 * image's, else Docker's defaults (30 s, 30 s, 0, 3). argc 0: no check
 * (none configured, or ["NONE"]). */
struct bundle_health {
	char **argv; size_t argc;  /* run with `runc exec`; NULL-terminated */
	int64_t interval_ns;
	int64_t timeout_ns;
	int64_t start_period_ns;
	int retries;
};
void bundle_health(const Swarm__ContainerSpec *c, const struct image_config *img,
		   struct bundle_health *out);
void bundle_health_free(struct bundle_health *h);

/* resolv.conf naming the embedded resolver. malloc'd. */
char *bundle_resolv_conf(void);
/* /etc/hosts: localhost lines, then "<addr> <hostname>" for each of the
 * task's network addresses. malloc'd. */
char *bundle_hosts(const Swarm__Task *t, const char *hostname);

/* The OCI runtime config for the task: process (args, env, cwd, caps),
 * hostname, mounts (defaults, /etc files, the spec's bind/tmpfs), namespaces
 * (network = paths->netns), cgroupsPath, memory and CPU limits, masked and
 * read-only paths. *out is malloc'd JSON text. -EINVAL when the task has no
 * container spec or nothing to run. */
int bundle_config_json(const Swarm__Task *t, const struct image_config *img,
		       const struct bundle_paths *paths, char **out);

#endif
