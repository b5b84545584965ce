/* swarm-agent's shared state: node identity, the manager session and the
 * local socket. */
#ifndef SWARM_AGENT_H
#define SWARM_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <ev.h>
#include <openssl/ssl.h>

#include "images.h"
#include "taskmgr.h"
#include "strmap.h"

struct conn;

/* What the node keeps across restarts (state_dir/node/identity.json plus
 * cert.pem, key.pem, ca.pem). */
struct identity {
	char *node_id;
	char *role;
	char *cluster_id;
	char *cert, *key, *ca;       /* PEM */
	char **managers;             /* "IP:PORT" */
	size_t n_managers;
	char *advertise_addr;
	char *data_path_addr;
};

struct agent {
	struct ev_loop *loop;
	char *state_dir, *run_dir, *node_dir;
	char *hostname;
	char *runc_root, *runc_path, *cgroup_parent, *shim_path;
	struct images *images;
	struct taskmgr *tm;
	struct identity id;          /* node_id NULL: not joined */
	SSL_CTX *ctx;                /* session context (our cert, cluster CA) */
	struct conn *session;        /* NULL when not connected */
	bool session_open;           /* SessionInfo received */
	size_t mgr_index;            /* manager tried next */
	double backoff;
	ev_timer reconnect, heartbeat, renew, flush;
	uint32_t hb_period_ms;
	uint64_t images_gen, images_sent_gen;
	struct strmap *pending;      /* task id -> Swarm__TaskStatusUpdate* not yet sent */
	int64_t last_assign_version;
};

/* session.c */
/* Sets up the timers; before anything can report a status. */
void session_init(struct agent *a);
void session_start(struct agent *a);
void session_stop(struct agent *a);
void session_report(struct agent *a, const char *task_id, const Swarm__TaskStatus *st);
void session_images_changed(struct agent *a);
/* Joins with a token: result(err, json or error text, arg) when done. */
typedef void (*join_done_fn)(int err, const char *msg, void *arg);
int session_join(struct agent *a, const char *token, const char *manager,
		 const char *advertise, const char *data_path, join_done_fn done, void *arg);

/* identity.c */
int identity_load(struct agent *a);
int identity_save(struct agent *a);
void identity_clear(struct agent *a);

/* netd_client.c: netd's local socket (membership config, sandboxes) */
void netdc_init(struct agent *a, const char *socket_path);
void netdc_stop(void);
/* From the session: node identity + the assignments' peers and keys. */
void netdc_configure(struct agent *a, const Swarm__Assignments *as);
/* taskmgr's sandbox hook (arg: the agent). */
void netdc_sandbox(const Swarm__Task *t, const char *netns_path, int up, void *arg);
/* Task state changes: the endpoints' serving flag follows. */
void netdc_task_state(const char *task_id, const Swarm__TaskStatus *st);

/* dnsd_client.c: dnsd's local socket (sandboxes to serve at 127.0.0.11) */
void dnsdc_init(struct agent *a, const char *socket_path);
void dnsdc_stop(void);
void dnsdc_sandbox(const Swarm__Task *t, const char *netns_path, int up);

/* local.c */
int local_listen(struct agent *a);
void local_stop(struct agent *a);

#endif
