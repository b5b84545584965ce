/* swarm-manager: the cluster's state, allocator, orchestrator, scheduler,
 * dispatcher and CA. */
#include "ca.h"
#include "conn.h"
#include "daemon.h"
#include "dispatcher.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "pb.h"
#include "tls.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADMIN_MAX_FRAME (16u << 20)

static struct {
	struct mgr *m;
	struct store *store;
	struct listener *admin;
	SSL_CTX *ctx;
	ev_timer renew;
	ev_timer keys;                 /* network key rotation check */
	struct metric *m_admin, *m_admin_err, *m_tasks, *m_nodes, *m_version;
	ev_timer stats;
} g;

/* The manager's own TLS identity, issued by the cluster CA and kept in the
 * state directory; reissued when missing, foreign, or past 80% of its life. */
static int ensure_identity(struct mgr *m, char **cert, char **key)
{
	const Swarm__Cluster *cl = store_cluster(m->store);
	char cpath[PATH_MAX], kpath[PATH_MAX];
	snprintf(cpath, sizeof(cpath), "%s/manager-cert.pem", m->state_dir);
	snprintf(kpath, sizeof(kpath), "%s/manager-key.pem", m->state_dir);
	int64_t now = now_wall_ns(), nb, na;
	if (file_read_all(cpath, 1 << 20, cert, NULL) == 0 &&
	    file_read_all(kpath, 1 << 20, key, NULL) == 0 &&
	    ca_verify((const char *)cl->ca_cert.data, *cert, now) == 0 &&
	    ca_cert_validity(*cert, &nb, &na) == 0 && now < nb + (na - nb) * 8 / 10)
		return 0;
	free(*cert);
	free(*key);
	*cert = *key = NULL;
	char *csr = NULL;
	int r = ca_make_key_csr(key, &csr);
	if (r == 0)
		r = ca_issue((const char *)cl->ca_cert.data, (const char *)cl->ca_key.data, csr,
			     "swarm-manager", "swarm-manager", cl->id, now,
			     cl->cert_lifetime_ns ? cl->cert_lifetime_ns : CA_NODE_LIFETIME_NS, cert);
	free(csr);
	if (r == 0)
		r = file_write_atomic(kpath, *key, strlen(*key), 0600);
	if (r == 0)
		r = file_write_atomic(cpath, *cert, strlen(*cert), 0644);
	return r;
}

static int start_network(struct mgr *m)
{
	char *cert = NULL, *key = NULL;
	int r = ensure_identity(m, &cert, &key);
	if (r < 0) {
		log_err("manager, cannot make the manager certificate: %s", strerror(-r));
		return r;
	}
	const Swarm__Cluster *cl = store_cluster(m->store);
	SSL_CTX *ctx = tls_server_ctx(cert, strlen(cert), key, strlen(key),
				      (const char *)cl->ca_cert.data, strlen((const char *)cl->ca_cert.data));
	free(cert);
	free(key);
	if (!ctx)
		return -EINVAL;
	if (!m->disp)
		dispatcher_new(m);
	if (!g.ctx) {
		r = dispatcher_listen(m->disp, cl->listen_addr, ctx);
	} else {
		dispatcher_set_ctx(m->disp, ctx);
		SSL_CTX_free(g.ctx);
	}
	g.ctx = ctx;
	if (r == 0)
		ev_timer_again(m->loop, &g.renew);
	return r;
}

static void renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (g.m && store_cluster(g.m->store))
		start_network(g.m);
}

/* ---- the admin socket ---- */

static int admin_frame(struct conn *c, const uint8_t *buf, size_t len)
{
	Swarm__AdminRequest *req = swarm__admin_request__unpack(NULL, len, buf);
	if (!req) {
		metric_inc(g.m_admin_err);
		log_warn("admin, undecodable request from %s; closing", conn_peer_name(c));
		return -EPROTO;
	}
	metric_inc(g.m_admin);
	Swarm__AdminResponse *resp = xmalloc(sizeof(*resp));
	swarm__admin_response__init(resp);
	admin_handle(g.m, req, resp);
	if (resp->error[0]) {
		metric_inc(g.m_admin_err);
		log_info("admin, request refused: %s", resp->error);
	}
	conn_send_msg(c, &resp->base);
	pb_free(resp);
	swarm__admin_request__free_unpacked(req, NULL);
	/* Writes may have changed assignments. */
	if (g.m->disp)
		dispatcher_push(g.m->disp);
	return 0;
}

static const struct conn_ops admin_ops = { .on_frame = admin_frame };

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	const Swarm__Task *const *t;
	const Swarm__Node *const *n;
	metric_set(g.m_tasks, (double)store_tasks(g.store, &t));
	metric_set(g.m_nodes, (double)store_nodes(g.store, &n));
	metric_set(g.m_version, (double)store_version(g.store));
}

/* Key rotation is checked every minute (due after the interval since the
 * newest key; see keymgr.h). */
static void keys_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (store_cluster(g.store))
		mgr_keys_update(g.m, now_wall_ns(), false, 0);
}

static int mgr_start(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/store.db", o->state_dir);
	int r = store_open(path, &g.store);
	if (r < 0)
		return r;
	g.m = mgr_new(loop, g.store, o->state_dir, o->run_dir);
	if (!g.m)
		return -EINVAL;
	long v;
	if (config_get_int(cfg, "heartbeat_period_ms", 5000, &v) == 0 && v >= 100)
		g.m->heartbeat_period_ns = v * 1000000LL;
	if (config_get_int(cfg, "down_grace_ms", 3000, &v) == 0 && v >= 0)
		g.m->down_grace_ns = v * 1000000LL;
	if (config_get_int(cfg, "task_history_limit", 5, &v) == 0 && v >= 0)
		g.m->history_limit = (uint32_t)v;
	g.m->on_cluster_ready = start_network;
	g.m_admin = metric_counter("swarm_manager_admin_requests_total", "Admin requests handled", NULL);
	g.m_admin_err = metric_counter("swarm_manager_admin_errors_total", "Admin requests refused", NULL);
	g.m_tasks = metric_gauge("swarm_manager_tasks", "Tasks in the store", NULL);
	g.m_nodes = metric_gauge("swarm_manager_nodes", "Nodes in the store", NULL);
	g.m_version = metric_gauge("swarm_manager_store_version", "Store version", NULL);
	ev_timer_init(&g.stats, stats_cb, 0, 5.0);
	ev_timer_start(loop, &g.stats);
	/* Check the certificate daily; it is reissued past 80% of its life. */
	ev_init(&g.renew, renew_cb);
	g.renew.repeat = 86400.0;
	ev_timer_init(&g.keys, keys_cb, 60.0, 60.0);
	ev_timer_start(loop, &g.keys);

	snprintf(path, sizeof(path), "%s/manager.sock", o->run_dir);
	g.admin = listener_unix(loop, path, ADMIN_MAX_FRAME, &admin_ops, NULL, NULL);
	if (!g.admin)
		return -EADDRINUSE;
	if (store_cluster(g.store)) {
		r = start_network(g.m);
		if (r < 0)
			return r;
		/* Resume: agents reconnect; a first pass reconciles at once.
		 * A cluster from before the key rings gets them now. */
		mgr_keys_update(g.m, now_wall_ns(), false, 0);
		mgr_schedule_tick(g.m);
	}
	return 0;
}

static void mgr_stop(void)
{
	if (g.m && g.m->loop)
		ev_timer_stop(g.m->loop, &g.keys);
	listener_free(g.admin);
	g.admin = NULL;
	if (g.m) {
		dispatcher_free(g.m->disp);
		mgr_free(g.m);
		g.m = NULL;
	}
	SSL_CTX_free(g.ctx);
	g.ctx = NULL;
	store_close(g.store);
	g.store = NULL;
}

static int mgr_check_config(const struct config *cfg)
{
	long v;
	if (config_get_int(cfg, "heartbeat_period_ms", 5000, &v) < 0 || v < 100) {
		log_err("config, heartbeat_period_ms must be a number >= 100");
		return -EINVAL;
	}
	if (config_get_int(cfg, "down_grace_ms", 3000, &v) < 0 || v < 0) {
		log_err("config, down_grace_ms must be a number >= 0");
		return -EINVAL;
	}
	return 0;
}

static void mgr_reload(const struct config *cfg)
{
	long v;
	if (config_get_int(cfg, "heartbeat_period_ms", 5000, &v) == 0)
		g.m->heartbeat_period_ns = v * 1000000LL;
	if (config_get_int(cfg, "down_grace_ms", 3000, &v) == 0)
		g.m->down_grace_ns = v * 1000000LL;
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
		.name = "swarm-manager",
		.short_name = "manager",
		.check_config = mgr_check_config,
		.start = mgr_start,
		.reload = mgr_reload,
		.stop = mgr_stop,
	};
	return daemon_main(&def, argc, argv);
}
