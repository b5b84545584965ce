/* swarm-lbd: service VIPs and the routing mesh (lbd.h). Also a small
 * client: `swarm-lbd status [--run-dir DIR]`. */
#include "client.h"
#include "conn.h"
#include "daemon.h"
#include "lbd.h"
#include "lbd.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LBD_LOCAL_MAX_FRAME (1u << 16)

static struct {
	struct lbd d;
	struct listener *local;
	ev_timer stats;
	struct metric *m_spaces, *m_svcs, *m_backends, *m_applies, *m_ops, *m_fail, *m_resync,
		*m_retries, *m_flushed, *m_conflicts, *m_apply_s;
} L;

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	size_t svcs, backends;
	lbd_totals(&L.d, &svcs, &backends);
	metric_set(L.m_spaces, (double)lbd_space_count(&L.d));
	metric_set(L.m_svcs, (double)svcs);
	metric_set(L.m_backends, (double)backends);
	metric_set(L.m_applies, (double)L.d.st.applies);
	metric_set(L.m_ops, (double)L.d.st.ops);
	metric_set(L.m_fail, (double)L.d.st.op_failures);
	metric_set(L.m_resync, (double)L.d.st.resyncs);
	metric_set(L.m_retries, (double)L.d.st.retries);
	metric_set(L.m_flushed, (double)L.d.st.flushed);
	metric_set(L.m_conflicts, (double)L.d.st.conflicts);
	metric_set(L.m_apply_s, L.d.st.last_apply_s);
}

static void stats_init(struct ev_loop *loop)
{
	L.m_spaces = metric_gauge("swarm_lbd_namespaces", "Namespaces balanced (node, ingress sandbox, task sandboxes)", NULL);
	L.m_svcs = metric_gauge("swarm_lbd_services", "Services programmed, summed over namespaces", NULL);
	L.m_backends = metric_gauge("swarm_lbd_backends", "Backends programmed, summed over namespaces", NULL);
	L.m_applies = metric_counter("swarm_lbd_applies_total", "Apply runs after endpoint changes", NULL);
	L.m_ops = metric_counter("swarm_lbd_kernel_operations_total", "Service rule batches applied", NULL);
	L.m_fail = metric_counter("swarm_lbd_kernel_failures_total", "Service rule batches that failed", NULL);
	L.m_resync = metric_counter("swarm_lbd_resyncs_total", "Namespaces read back from the kernel and corrected", NULL);
	L.m_retries = metric_counter("swarm_lbd_retries_total", "Apply runs scheduled again after a failure", NULL);
	L.m_flushed = metric_counter("swarm_lbd_conntrack_cleared_total", "Tracked connections to removed backends deleted", NULL);
	L.m_conflicts = metric_gauge("swarm_lbd_conflicts", "Services left out: a VIP or published port held twice", NULL);
	L.m_apply_s = metric_gauge("swarm_lbd_last_apply_seconds", "Duration of the last apply run", NULL);
	ev_timer_init(&L.stats, stats_cb, 0, 2.0);
	ev_timer_start(loop, &L.stats);
}

static int local_frame(struct conn *c, const uint8_t *p, size_t len)
{
	Swarm__LbdRequest *q = swarm__lbd_request__unpack(NULL, len, p);
	Swarm__LbdResponse r = SWARM__LBD_RESPONSE__INIT;
	if (!q) {
		r.error = "malformed request";
		conn_send_msg(c, &r.base);
		return -EBADMSG;
	}
	char *js = NULL;
	r.id = q->id;
	if (q->body_case == SWARM__LBD_REQUEST__BODY_STATUS)
		js = lbd_status_json(&L.d);
	else
		r.error = "unknown request";
	r.json = js ? js : "";
	conn_send_msg(c, &r.base);
	free(js);
	swarm__lbd_request__free_unpacked(q, NULL);
	return 0;
}

static const struct conn_ops local_ops = { .on_frame = local_frame };

static int lbd_check(const struct config *cfg)
{
	long v;
	const char *prefix = config_get_or(cfg, "prefix", "");
	if (strlen(prefix) > LB_PREFIX_MAX || (prefix[0] && !lb_id_valid(prefix))) {
		log_err("lbd, prefix is at most %d characters of [A-Za-z0-9_.-]", LB_PREFIX_MAX);
		return -EINVAL;
	}
	if (config_get_int(cfg, "resync_interval", 60, &v) < 0 || v < 1 || v > 86400) {
		log_err("lbd, resync_interval is seconds, 1-86400");
		return -EINVAL;
	}
	return 0;
}

static int lbd_start(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg)
{
	long resync = 60;
	config_get_int(cfg, "resync_interval", 60, &resync);
	int r = lbd_init(&L.d, loop, o->run_dir, config_get_or(cfg, "prefix", ""), (double)resync);
	if (r < 0)
		return r;
	stats_init(loop);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/lbd.sock", o->run_dir);
	L.local = listener_unix(loop, path, LBD_LOCAL_MAX_FRAME, &local_ops, NULL, NULL);
	if (!L.local) {
		log_err("lbd, cannot listen on %s", path);
		return -EADDRINUSE;
	}
	return 0;
}

static void lbd_stop(void)
{
	if (L.d.loop)
		ev_timer_stop(L.d.loop, &L.stats);
	listener_free(L.local);
	L.local = NULL;
	lbd_fini(&L.d);
}

/* `swarm-lbd status [--run-dir DIR]` */
static int client_main(int argc, char **argv)
{
	if (strcmp(argv[1], "status")) {
		fprintf(stderr, "usage: swarm-lbd status [--run-dir DIR]\n");
		return 2;
	}
	char *path = xasprintf("%s/lbd.sock", client_run_dir(argc, argv));
	Swarm__LbdRequest q = SWARM__LBD_REQUEST__INIT;
	q.id = 1;
	q.body_case = SWARM__LBD_REQUEST__BODY_STATUS;
	q.status = "";
	int rc = client_json("swarm-lbd", path, &q.base, &swarm__lbd_response__descriptor, 5000);
	free(path);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
		.name = "swarm-lbd",
		.short_name = "lbd",
		.check_config = lbd_check,
		.start = lbd_start,
		.stop = lbd_stop,
	};
	if (argc > 1 && argv[1][0] != '-')
		return client_main(argc, argv);
	return daemon_main(&def, argc, argv);
}
