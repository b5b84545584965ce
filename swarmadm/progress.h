/* Convergence of a service, as `docker service create/update` shows it
 * while it waits: "overall progress: 3 out of 5 tasks", one line per slot
 * ("1/5: running   [=====...>]", or per node in global mode), then the
 * verdict. Pure: computed from the manager's JSON for the service (as
 * render_service prints it) and for its tasks (render_task array); the
 * polling loop lives in cmd_service.c.
 *
 * A task counts as running when it runs the current spec (its SpecVersion
 * is the service's Version, or its Spec equals Spec.TaskTemplate: a change
 * of replicas alone restarts nothing), its desired state is running, its
 * state is running, and its health, when it has one, is "healthy". */
#ifndef SWARMADM_PROGRESS_H
#define SWARMADM_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

enum progress_kind { PROGRESS_CREATE, PROGRESS_UPDATE, PROGRESS_ROLLBACK };
enum progress_verdict { PROGRESS_WAIT, PROGRESS_CONVERGED, PROGRESS_FAILED };

/* Docker's progress steps: new 1 .. running 9 (bar full at 9). */
#define PROGRESS_STEPS 9

struct progress_line {
	char id[48];          /* "1/5", or a 12-char node id in global mode */
	char action[160];     /* "running", "preparing", or a task's error */
	int step;             /* 1..PROGRESS_STEPS; 0 = an error line, no bar */
};

struct progress {
	uint64_t want;        /* replicas, or nodes that should run a task (global) */
	uint64_t running;     /* how many of them run the current spec */
	size_t n_lines;
	struct progress_line *lines; /* malloc'd */
	enum progress_verdict verdict;
	char message[256];    /* PROGRESS_FAILED: why */
};

/* Fills out from the service object and the array of its tasks. since_ns
 * (unix ns, 0 = any): an update state ("paused", "rollback_completed")
 * whose UpdateStatus.StartedAt is older than this (less a second) is left
 * from an earlier update and is not this wait's verdict. */
void progress_compute(struct json_object *service, struct json_object *tasks,
		      enum progress_kind kind, int64_t since_ns, struct progress *out);
void progress_clear(struct progress *p);

/* The lines to show (first the "overall progress" one), malloc'd vector of
 * malloc'd strings without newlines; bars: draw Docker's 50-column bar
 * (terminals only). Returns the count. */
size_t progress_lines(const struct progress *p, bool bars, char ***lines);

#endif
