/* swarm-netd's core: the node's network state (its config from the agent,
 * the sandboxes attached here), the replicated tables (ndb.h) over gossip
 * (gossip.h), and the data path (datapath.h) reconciled from both.
 *
 * Flow: the agent's configure/attach/detach (local.c) change the local
 * state, which is saved to <state>/netd.state and published as our own
 * endpoint entries; remote entries arrive through gossip; either kind of
 * change schedules one reconcile of the kernel shortly after (coalesced)
 * and one event per visible endpoint change to stream subscribers. */
#ifndef SWARM_NETD_H
#define SWARM_NETD_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"
#include "gossip.h"
#include "ndb.h"
#include "netd.pb-c.h"
#include "sealer_ctl.h"

struct strmap;
struct conn;

/* Settings from netd.conf (the agent's config overrides membership). */
struct netd_settings {
	const char *bind_addr;        /* gossip bind, "0.0.0.0" */
	uint16_t bind_port;           /* 7946 */
	const char *node_name;        /* static node name (no agent), or NULL */
	const char *advertise_addr;   /* static advertise address, or NULL */
	const char *join;             /* static seeds "IP[:PORT],..." or NULL */
	const char *keyring_file;     /* static keyring (base64 lines), or NULL */
	const char *role;             /* serf tag "role" */
	const char *dp_prefix;        /* prefix of overlay ns files and links */
	const char *gw_subnet;        /* gateway bridge subnet, NULL/"" = none */
	const char *gw_bridge;        /* gateway bridge name */
	bool datapath;                /* false: gossip and tables only */
	const char *sealer_exe;       /* swarm-sealer, for encrypted networks */
	uint16_t sealer_port;         /* its UDP port (4793) */
	bool sealer_trains;           /* TCP super-frames as trains (off: lossy underlays) */
	const char *encryption;       /* "auto" (kernel ESP where the kernel has it,
	                               * else the sealer), "userspace" or "kernel" */
};

struct netd_sub;  /* a stream subscriber */

struct netd {
	struct ev_loop *loop;
	char *state_dir, *run_dir;
	struct netd_settings set;
	Swarm__NetdConfig *conf;      /* current membership config (owned) */
	struct strmap *atts;          /* task id -> Swarm__NetdAttach* (owned) */
	struct strmap *gw_ips;        /* task id -> char* gateway-leg address */
	struct gossip *g;
	struct ndb *db;
	struct dp_provider *dp;
	struct sealer_ctl *sealer;    /* encrypted networks' data path (sealer_ctl.h) */
	struct esp *esp;              /* or kernel ESP for them (esp.h) */
	void *esp_ctx;                /* its kernel ops' context */
	char dp_provider[256];        /* encrypted networks' provider, as probed and logged */
	ev_timer reconcile_t;         /* coalesced reconcile */
	ev_timer heal_t;              /* periodic reconcile, gc, save */
	ev_timer save_t;              /* coalesced save of netd.state */
	uint64_t epoch, version;      /* stream */
	uint64_t saved_nclk, saved_tclk; /* ndb clocks from netd.state */
	struct netd_sub *subs;
	uint64_t reconciles, dp_failed;
	int64_t last_reconcile_ns;    /* duration of the last one */
};

int netd_init(struct netd *n, struct ev_loop *loop, const char *state_dir,
	      const char *run_dir, const struct netd_settings *set);
void netd_fini(struct netd *n);

/* Local API operations. Each returns 0 or -errno with *err set to a
 * static or malloc'd (when *err_owned) human message; nothing changes on
 * error. */
int netd_configure(struct netd *n, const Swarm__NetdConfig *c, const char **err);
int netd_attach(struct netd *n, const Swarm__NetdAttach *a, const char **err);
int netd_detach(struct netd *n, const char *task_id);

/* JSON documents (malloc'd). */
char *netd_members_json(struct netd *n);
/* This node's view of a network (id or name); NULL if unknown here. */
char *netd_network_json(struct netd *n, const char *name);
char *netd_status_json(struct netd *n);

/* Stream: adds c as a subscriber (snapshot sent now); removed by
 * netd_unsubscribe (the conn's on_close). */
void netd_subscribe(struct netd *n, struct conn *c);
void netd_unsubscribe(struct netd *n, struct conn *c);

/* A static keyring file: base64 keys one per line, the first is the
 * primary (main.c). 0 or -errno, logged. */
int netd_keyring_load(const char *path, struct gossip_keyring *kr);

/* The local socket (local.c). */
int netd_local_listen(struct netd *n, const char *path);
void netd_local_stop(void);

#endif
