/* The agent's task manager: runs the tasks the manager assigns as real runc
 * containers, one OCI bundle per task, through a small shim process per
 * container (agent/shim.c) that waits for it and records its exit status, so
 * containers outlive an agent restart. Reports every task state change.
 *
 * Per task: the sandbox netns as a bind-mounted file <run>/netns/<task-id>
 * with lo up, an overlayfs rootfs over the image, /etc/resolv.conf naming
 * 127.0.0.11, /etc/hosts, /etc/hostname, env, args, bind/tmpfs mounts,
 * CPU/memory limits as cgroup limits under the configured parent, stdout and
 * stderr to <state>/tasks/<id>/log, health checks with `runc exec`, stop with
 * SIGTERM then SIGKILL after the grace period. */
#ifndef SWARM_TASKMGR_H
#define SWARM_TASKMGR_H

#include <stddef.h>
#include <ev.h>
#include "objects.pb-c.h"
#include "dispatcher.pb-c.h"  /* Swarm__TaskStatusUpdate */
#include "images.h"

struct taskmgr;

/* Optional sandbox hook (the agent tells netd, dnsd and lbd). up = 1: the
 * task's netns exists at netns_path and its container is about to start;
 * the callee sets the sandbox up and then calls taskmgr_sandbox_ready
 * (possibly from inside this call); the container starts only then. up = 0:
 * the container has ended or the task is being removed; no answer. */
typedef void (*taskmgr_sandbox_fn)(const Swarm__Task *t, const char *netns_path,
				   int up, void *arg);

struct taskmgr_cfg {
	struct ev_loop *loop;     /* must be libev's default loop (ev_child) */
	const char *state_dir;    /* tasks under <state_dir>/tasks/<id> */
	const char *run_dir;      /* netns files under <run_dir>/netns */
	const char *runc_root;    /* runc --root */
	const char *cgroup_parent;/* e.g. "swarm-lab1-node1" */
	const char *runc_path;    /* "runc" */
	const char *shim_path;    /* swarm-shim */
	struct images *images;
	taskmgr_sandbox_fn sandbox_fn; /* NULL: containers start without it */
	void *sandbox_arg;
};

/* Called for every observed state change of a task (and health change). */
typedef void (*taskmgr_status_fn)(const char *task_id, const Swarm__TaskStatus *st, void *arg);

struct taskmgr *taskmgr_new(const struct taskmgr_cfg *cfg, taskmgr_status_fn fn, void *arg);
void taskmgr_free(struct taskmgr *tm);  /* leaves containers running */

/* Re-discovers containers from the state dir and runc after an agent
 * restart: running ones are adopted (not restarted), exited ones reported
 * with their exit status. 0 or -errno. */
int taskmgr_recover(struct taskmgr *tm);

/* Applies the manager's whole assignment set. Tasks with desired state
 * RUNNING are started if not yet started; a task whose image is missing is
 * reported REJECTED ("No such image: X"); tasks whose desired state is past
 * RUNNING are stopped; tasks not in the set are stopped and removed (bundle,
 * netns, log kept no longer). Does not block. */
void taskmgr_assign(struct taskmgr *tm, Swarm__Task *const *tasks, size_t n);

/* Answer to the sandbox hook's up call: 0 starts the container, -errno
 * rejects the task ("cannot set up the sandbox: ..."). Unknown ids and
 * tasks no longer waiting are ignored. */
void taskmgr_sandbox_ready(struct taskmgr *tm, const char *task_id, int err);

/* Current status of every known task, for SessionOpen and resync.
 * Malloc'd array of malloc'd updates (pb_free each, then free the array). */
size_t taskmgr_statuses(struct taskmgr *tm, Swarm__TaskStatusUpdate ***out);

/* Local API. JSON documents, malloc'd. */
char *taskmgr_container_ls_json(struct taskmgr *tm);
/* name: full container name, task id, or a unique prefix of either.
 * -ENOENT / -EEXIST (ambiguous) with no output. */
int taskmgr_container_inspect_json(struct taskmgr *tm, const char *name, char **json);
/* For `container exec`: the runc container id (and root) swarmadm runs
 * `runc exec` with. */
int taskmgr_container_lookup(struct taskmgr *tm, const char *name, char **container_id);
/* Path of the container's log file. */
int taskmgr_container_log_path(struct taskmgr *tm, const char *name, char **path);

#endif
