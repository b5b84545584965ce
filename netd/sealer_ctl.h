/* netd's side of swarm-sealer (sealer.h): it starts the process when an
 * encrypted network first needs it, adopts one already running (so that
 * restarting netd never stops encrypted traffic: the sealer goes on with
 * its last config meanwhile), pushes the whole desired config whenever it
 * changes or the sealer holds another generation, and starts a new process
 * when the old one dies.
 *
 * Liveness is the control connection: a sealer is alive while its socket
 * accepts us; EOF means it died (or was replaced), and the next tick
 * reconnects or respawns (backoff 1 s doubling to 30 s while spawns fail
 * to answer). The process runs in its own session (setsid), so neither a
 * signal to netd's process group nor netd's exit reaches it; netd reaps it
 * while it is netd's child. Its stderr is netd's. */
#ifndef SWARM_SEALER_CTL_H
#define SWARM_SEALER_CTL_H

#include <ev.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "sealer.pb-c.h"

struct sealer_ctl;

struct sealer_ctl_config {
	const char *exe;        /* swarm-sealer binary */
	const char *socket;     /* its control socket (--socket) */
	const char *log_level;  /* passed on as --log-level; NULL = its default */
	const char *floor_file; /* passed on as --floor-file; NULL = none */
};

/* 0 or -errno. Nothing runs until sealer_ctl_set asks for a network;
 * a sealer already listening on the socket is adopted at once. */
int sealer_ctl_new(struct ev_loop *loop, const struct sealer_ctl_config *cfg,
		   struct sealer_ctl **out);
/* Stops supervising; the sealer keeps running. NULL: no-op. */
void sealer_ctl_free(struct sealer_ctl *c);

/* The desired config; cfg is taken (freed with protobuf_c_message_free_unpacked
 * semantics via pb_free). Its generation is assigned here. A config with
 * networks starts a sealer if none answers; one without networks is only
 * pushed to a sealer that is already running (its TAPs are deleted). */
void sealer_ctl_set(struct sealer_ctl *c, Swarm__SealerConfig *cfg);

/* Whether the sealer answers and holds the desired generation. */
bool sealer_ctl_in_sync(const struct sealer_ctl *c);

/* {"Running", "Pid", "Generation", "InSync", "Spawns", "Status": {...}}:
 * the last status the sealer answered (new reference). */
struct json_object *sealer_ctl_json(const struct sealer_ctl *c);

/* Counters of the last status, for metrics; NULL before the first. */
const Swarm__SealerStatus *sealer_ctl_status(const struct sealer_ctl *c);
unsigned sealer_ctl_spawns(const struct sealer_ctl *c);

#endif
