/* swarm-dnsd: the resolver at 127.0.0.11 in every task sandbox (dnsd.h).
 * Also a small client: `swarm-dnsd status [--run-dir DIR]`. */
#include "client.h"
#include "conn.h"
#include "daemon.h"
#include "dnsd.h"
#include "log.h"
#include "metrics.h"
#include "strmap.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNSD_LOCAL_MAX_FRAME (1u << 20)

static struct {
	struct dnsd d;
	struct listener *local;
	ev_timer stats;
	struct metric *m_q, *m_local, *m_nodata, *m_fwd, *m_fwd_failed, *m_refused, *m_formerr,
		*m_dropped, *m_inflight, *m_sandboxes, *m_names;
} D;

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	struct dnsd_stats *s = &D.d.st;
	metric_set(D.m_q, (double)s->queries);
	metric_set(D.m_local, (double)s->answered_local);
	metric_set(D.m_nodata, (double)s->nodata);
	metric_set(D.m_fwd, (double)s->forwarded);
	metric_set(D.m_fwd_failed, (double)s->fwd_failed);
	metric_set(D.m_refused, (double)s->refused);
	metric_set(D.m_formerr, (double)s->formerr);
	metric_set(D.m_dropped, (double)s->dropped);
	metric_set(D.m_inflight, fwd_inflight(D.d.fwd));
	metric_set(D.m_sandboxes, (double)strmap_count(D.d.sandboxes));
	metric_set(D.m_names, (double)names_count(D.d.names));
}

static void stats_init(struct ev_loop *loop)
{
	D.m_q = metric_counter("swarm_dnsd_queries_total", "Queries received", NULL);
	D.m_local = metric_counter("swarm_dnsd_answered_total", "Queries answered from the cluster's names", NULL);
	D.m_nodata = metric_counter("swarm_dnsd_nodata_total", "Known names answered with no records of the type asked", NULL);
	D.m_fwd = metric_counter("swarm_dnsd_forwarded_total", "Queries forwarded upstream", NULL);
	D.m_fwd_failed = metric_counter("swarm_dnsd_forward_failures_total", "Forwarded queries no upstream answered (SERVFAIL)", NULL);
	D.m_refused = metric_counter("swarm_dnsd_refused_total", "Queries refused: too many in flight upstream", NULL);
	D.m_formerr = metric_counter("swarm_dnsd_formerr_total", "Malformed queries answered FORMERR", NULL);
	D.m_dropped = metric_counter("swarm_dnsd_dropped_total", "Packets dropped unanswered (no header, or responses)", NULL);
	D.m_inflight = metric_gauge("swarm_dnsd_forward_inflight", "Queries in flight upstream", NULL);
	D.m_sandboxes = metric_gauge("swarm_dnsd_sandboxes", "Sandboxes served", NULL);
	D.m_names = metric_gauge("swarm_dnsd_endpoints", "Endpoint records known", NULL);
	ev_timer_init(&D.stats, stats_cb, 0, 2.0);
	ev_timer_start(loop, &D.stats);
}

static char *status_json(struct dnsd *d)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Sandboxes", json_object_new_int((int)strmap_count(d->sandboxes)));
	json_object_object_add(o, "Endpoints", json_object_new_int((int)names_count(d->names)));
	json_object_object_add(o, "Synced", json_object_new_boolean(d->synced));
	json_object_object_add(o, "Queries", json_object_new_int64((int64_t)d->st.queries));
	json_object_object_add(o, "Forwarded", json_object_new_int64((int64_t)d->st.forwarded));
	json_object_object_add(o, "Formerr", json_object_new_int64((int64_t)d->st.formerr));
	json_object_object_add(o, "Dropped", json_object_new_int64((int64_t)d->st.dropped));
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static int local_frame(struct conn *c, const uint8_t *p, size_t len)
{
	Swarm__DnsdRequest *q = swarm__dnsd_request__unpack(NULL, len, p);
	Swarm__DnsdResponse r = SWARM__DNSD_RESPONSE__INIT;
	if (!q) {
		r.error = "malformed request";
		conn_send_msg(c, &r.base);
		return -EBADMSG;
	}
	const char *err = NULL;
	char *js = NULL;
	r.id = q->id;
	switch (q->body_case) {
	case SWARM__DNSD_REQUEST__BODY_ADD:
		dnsd_sandbox_add(&D.d, q->add, &err);
		break;
	case SWARM__DNSD_REQUEST__BODY_REMOVE:
		dnsd_sandbox_remove(&D.d, q->remove);
		break;
	case SWARM__DNSD_REQUEST__BODY_STATUS:
		js = status_json(&D.d);
		break;
	default:
		err = "unknown request";
	}
	r.error = (char *)(err ? err : "");
	r.json = js ? js : "";
	conn_send_msg(c, &r.base);
	free(js);
	swarm__dnsd_request__free_unpacked(q, NULL);
	return 0;
}

static const struct conn_ops local_ops = { .on_frame = local_frame };

static int dnsd_check(const struct config *cfg)
{
	long v;
	if (config_get_int(cfg, "vip_ttl", 600, &v) < 0 || v < 0 || v > 86400 ||
	    config_get_int(cfg, "task_ttl", 5, &v) < 0 || v < 0 || v > 86400) {
		log_err("dnsd, vip_ttl and task_ttl are seconds, 0-86400");
		return -EINVAL;
	}
	if (config_get_int(cfg, "forward_timeout_ms", 2000, &v) < 0 || v < 100 || v > 30000) {
		log_err("dnsd, forward_timeout_ms is 100-30000");
		return -EINVAL;
	}
	if (config_get_int(cfg, "max_inflight", 1024, &v) < 0 || v < 1 || v > 65536) {
		log_err("dnsd, max_inflight is 1-65536");
		return -EINVAL;
	}
	return 0;
}

static int dnsd_start(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg)
{
	struct dnsd *d = &D.d;
	long vip_ttl = 600, task_ttl = 5, tmo = 2000, maxq = 1024;
	config_get_int(cfg, "vip_ttl", 600, &vip_ttl);
	config_get_int(cfg, "task_ttl", 5, &task_ttl);
	config_get_int(cfg, "forward_timeout_ms", 2000, &tmo);
	config_get_int(cfg, "max_inflight", 1024, &maxq);
	d->loop = loop;
	d->state_dir = xstrdup(o->state_dir);
	d->run_dir = xstrdup(o->run_dir);
	d->vip_ttl = (uint32_t)vip_ttl;
	d->task_ttl = (uint32_t)task_ttl;
	d->names = names_new();
	d->sandboxes = strmap_new();
	random_bytes(&d->seed, sizeof(d->seed));
	int r = mkdir_p(o->state_dir, 0700);
	if (r < 0)
		return r;
	/* upstream unset: c-ares reads the node's /etc/resolv.conf */
	d->fwd = fwd_new(loop, config_get_or(cfg, "upstream", NULL), (int)tmo, (unsigned)maxq, &r);
	if (!d->fwd)
		return r;
	stats_init(loop);
	dnsd_load(d);
	dnsd_stream_start(d);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/dnsd.sock", o->run_dir);
	D.local = listener_unix(loop, path, DNSD_LOCAL_MAX_FRAME, &local_ops, NULL, NULL);
	if (!D.local) {
		log_err("dnsd, cannot listen on %s", path);
		return -EADDRINUSE;
	}
	return 0;
}

static void dnsd_stop(void)
{
	struct dnsd *d = &D.d;
	if (d->loop)
		ev_timer_stop(d->loop, &D.stats);
	listener_free(D.local);
	D.local = NULL;
	if (ev_is_active(&d->save_t)) {
		ev_timer_stop(d->loop, &d->save_t);
		dnsd_save(d);
	}
	dnsd_stream_stop(d);
	fwd_free(d->fwd);   /* answers in flight are dropped (SERVFAIL unsent) */
	d->fwd = NULL;
	if (d->sandboxes)
		dnsd_sandboxes_free(d);
	names_free(d->names);
	d->names = NULL;
	free(d->state_dir);
	free(d->run_dir);
}

/* `swarm-dnsd status [--run-dir DIR]` */
static int client_main(int argc, char **argv)
{
	if (strcmp(argv[1], "status")) {
		fprintf(stderr, "usage: swarm-dnsd status [--run-dir DIR]\n");
		return 2;
	}
	char *path = xasprintf("%s/dnsd.sock", client_run_dir(argc, argv));
	Swarm__DnsdRequest q = SWARM__DNSD_REQUEST__INIT;
	q.id = 1;
	q.body_case = SWARM__DNSD_REQUEST__BODY_STATUS;
	q.status = "";
	int rc = client_json("swarm-dnsd", path, &q.base, &swarm__dnsd_response__descriptor, 5000);
	free(path);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
		.name = "swarm-dnsd",
		.short_name = "dnsd",
		.check_config = dnsd_check,
		.start = dnsd_start,
		.stop = dnsd_stop,
	};
	if (argc > 1 && argv[1][0] != '-')
		return client_main(argc, argv);
	return daemon_main(&def, argc, argv);
}
