/* swarm-lbd's core (see lbd.h): records from netd's stream, the plan, and
 * its application to each namespace's kernel. */
#include "lbd.h"

#include "epstream.h"
#include "lb_int.h"
#include "log.h"
#include "netd.pb-c.h"
#include "pb.h"
#include "plan.h"
#include "strmap.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* After a change, wait this long for more before applying: a task's
 * records on several networks, or a burst of scaling, become one run. */
#define LBD_APPLY_DELAY 0.005
/* A run that could not program everything is retried by itself, first
 * after LBD_RETRY_MIN, doubling up to LBD_RETRY_MAX: a namespace being
 * set up, or a batch that met someone else's change, must not wait for
 * the next endpoint change or the periodic resync. */
#define LBD_RETRY_MIN 0.1
#define LBD_RETRY_MAX 5.0

/* One namespace lbd programs. */
struct lbd_space {
	char *netns;                /* NULL: the node's */
	bool keep_source, ingress;
	struct lb_provider *p;
	struct lb_state applied;    /* what the kernel holds, when known */
	bool known;                 /* applied is the truth (else read back first) */
	bool used;                  /* in the current plan */
};

static void records_free(struct strmap *m)
{
	size_t pos = 0;
	const char *k;
	void *v;
	while (m && strmap_next(m, &pos, &k, &v))
		pb_free(v);
	strmap_free(m);
}

static void space_free(struct lbd_space *s)
{
	if (!s)
		return;
	lb_provider_free(s->p);
	lb_state_clear(&s->applied);
	free(s->netns);
	free(s);
}

/* ---- the stream ---- */

static void lbd_schedule(struct lbd *d)
{
	if (!d->synced || ev_is_active(&d->apply_t))
		return;
	ev_timer_set(&d->apply_t, LBD_APPLY_DELAY, 0);
	ev_timer_start(d->loop, &d->apply_t);
}

static void st_begin(void *arg, uint64_t epoch)
{
	struct lbd *d = arg;
	(void)epoch;
	records_free(d->staging);
	d->staging = strmap_new();
}

static void st_record(void *arg, const Swarm__EndpointRecord *rec, bool deleted)
{
	struct lbd *d = arg;
	struct strmap *into = d->staging ? d->staging : d->recs;
	Swarm__EndpointRecord *old = strmap_del(into, rec->endpoint_id);
	if (deleted) {
		/* The task has exited (netd withdraws an endpoint on detach,
		 * or when its node is dead): connections still tracked to it
		 * go, so that they are reset instead of hanging. */
		if (!d->staging && old && !old->lb_endpoint && old->ipv4[0])
			strmap_put(d->flush, old->ipv4, d->flush);
		pb_free(old);
	} else {
		pb_free(old);
		strmap_put(into, rec->endpoint_id, pb_dup(rec));
	}
	if (!d->staging)
		lbd_schedule(d);
}

static void st_end(void *arg)
{
	struct lbd *d = arg;
	if (!d->staging)
		return;
	/* Endpoints that did not come back in the new snapshot are gone. */
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->recs, &pos, &k, &v)) {
		const Swarm__EndpointRecord *r = v;
		if (!strmap_get(d->staging, k) && !r->lb_endpoint && r->ipv4[0])
			strmap_put(d->flush, r->ipv4, d->flush);
	}
	records_free(d->recs);
	d->recs = d->staging;
	d->staging = NULL;
	if (!d->synced)
		log_info("lbd, %zu endpoint(s) from netd: programming", strmap_count(d->recs));
	d->synced = true;
	lbd_schedule(d);
}

static void st_lost(void *arg)
{
	struct lbd *d = arg;
	records_free(d->staging);
	d->staging = NULL;
}

static const struct epstream_ops st_ops = {
	.begin = st_begin, .record = st_record, .end = st_end, .lost = st_lost,
};

/* ---- applying ---- */

static int space_provider(struct lbd *d, struct lbd_space *s)
{
	struct lb_config cfg = { .netns = s->netns, .prefix = d->prefix,
				 .keep_source = s->keep_source };
	return strcmp(d->kind, "ipvs") == 0 ? lb_ipvs_new(&cfg, &s->p) : lb_nft_new(&cfg, &s->p);
}

/* Writes "1" to a sysctl inside netns (the ingress sandbox forwards). */
static void ns_sysctl(const char *netns, const char *path)
{
	int nsfd = lb_ns_open(netns), orig;
	if (nsfd < 0 || lb_ns_enter(nsfd, &orig) < 0) {
		if (nsfd >= 0)
			close(nsfd);
		return;
	}
	/* /proc/sys/net follows the thread's network namespace */
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1\n", 2) != 2)
		log_warn("lbd, %s in %s: %s", path, netns, strerror(errno));
	if (fd >= 0)
		close(fd);
	lb_ns_leave(orig);
	close(nsfd);
}

static struct lbd_space *space_get(struct lbd *d, const struct lbd_plan_ns *pn)
{
	const char *key = pn->netns ? pn->netns : "";
	struct lbd_space *s = strmap_get(d->spaces, key);
	if (s)
		return s;
	s = xcalloc(1, sizeof(*s));
	s->netns = pn->netns ? xstrdup(pn->netns) : NULL;
	s->keep_source = pn->keep_source;
	s->ingress = pn->ingress;
	lb_state_init(&s->applied);
	int r = space_provider(d, s);
	if (r < 0) {
		/* the sandbox may be going away; the next change retries */
		log_warn("lbd, no %s data path in %s: %s", d->kind, key[0] ? key : "the node",
			 strerror(-r));
		space_free(s);
		return NULL;
	}
	if (s->ingress)
		ns_sysctl(s->netns, "/proc/sys/net/ipv4/ip_forward");
	strmap_put(d->spaces, key, s);
	return s;
}

/* false when anything failed (the namespace is then read back next run). */
static bool space_apply(struct lbd *d, struct lbd_space *s, const struct lb_state *want)
{
	struct lb_stats st = { 0 };
	int r;
	if (s->known) {
		r = lb_apply(s->p, &s->applied, want, &st);
	} else {
		r = lb_reconcile(s->p, want, &st);
		d->st.resyncs++;
	}
	d->st.ops += st.applied;
	d->st.op_failures += st.failed;
	/* Anything failed: read the kernel back next time. */
	s->known = r == 0 && st.failed == 0;
	if (s->known)
		lb_state_copy(&s->applied, want);
	return s->known;
}

/* Deletes, in every namespace, the tracked connections to backends that
 * are gone. */
static void flush_gone(struct lbd *d)
{
	if (strmap_count(d->flush) == 0)
		return;
	size_t pos = 0, sp;
	const char *ip, *k;
	void *v, *sv;
	while (strmap_next(d->flush, &pos, &ip, &v)) {
		struct in_addr b, any = { 0 };
		if (inet_pton(AF_INET, ip, &b) != 1)
			continue;
		/* an address handed to a new task already is not gone */
		bool reused = false;
		size_t rp = 0;
		while (!reused && strmap_next(d->recs, &rp, &k, &v))
			reused = strcmp(((Swarm__EndpointRecord *)v)->ipv4, ip) == 0;
		for (sp = 0; !reused && strmap_next(d->spaces, &sp, &k, &sv);) {
			struct lbd_space *s = sv;
			unsigned n = 0;
			if (lb_conntrack_flush(s->netns, any, b, &n) == 0)
				d->st.flushed += n;
			if (n)
				log_info("lbd, %u connection(s) to %s cleared in %s", n, ip,
					 s->netns ? s->netns : "the node");
		}
	}
	strmap_free(d->flush);
	d->flush = strmap_new();
}

/* After a run: a failed one is retried with backoff, a clean one resets
 * the backoff. */
static void lbd_retry(struct lbd *d, bool ok)
{
	ev_timer_stop(d->loop, &d->retry_t);
	if (ok) {
		d->retry_s = 0;
		return;
	}
	d->retry_s = d->retry_s <= 0 ? LBD_RETRY_MIN : d->retry_s * 2;
	if (d->retry_s > LBD_RETRY_MAX)
		d->retry_s = LBD_RETRY_MAX;
	d->st.retries++;
	ev_timer_set(&d->retry_t, d->retry_s, 0);
	ev_timer_start(d->loop, &d->retry_t);
}

static void lbd_apply(struct lbd *d)
{
	int64_t t0 = now_mono_ns();
	bool ok = true;
	struct lbd_plan plan;
	lbd_plan_build(d->recs, &plan);
	d->st.conflicts = plan.conflicts;
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->spaces, &pos, &k, &v))
		((struct lbd_space *)v)->used = false;
	for (size_t i = 0; i < plan.n; i++) {
		struct lbd_space *s = space_get(d, &plan.ns[i]);
		if (!s) {
			ok = false;
			continue;
		}
		s->used = true;
		if (!space_apply(d, s, &plan.ns[i].want))
			ok = false;
	}
	/* Sandboxes that are gone: their tables went with their namespace. */
	pos = 0;
	while (strmap_next(d->spaces, &pos, &k, &v)) {
		struct lbd_space *s = v;
		if (s->used)
			continue;
		strmap_del(d->spaces, k);
		space_free(s);
		pos = 0;
	}
	lbd_plan_free(&plan);
	flush_gone(d);
	lbd_retry(d, ok);
	d->st.applies++;
	d->st.last_apply_s = (double)(now_mono_ns() - t0) / 1e9;
}

static void apply_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lbd *d = w->data;
	(void)loop;
	(void)revents;
	lbd_apply(d);
}

/* Every resync period, each namespace is read back and corrected: a rule
 * someone deleted by hand comes back. */
static void resync_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lbd *d = w->data;
	(void)loop;
	(void)revents;
	if (!d->synced)
		return;
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->spaces, &pos, &k, &v))
		((struct lbd_space *)v)->known = false;
	lbd_apply(d);
}

/* ---- life ---- */

int lbd_init(struct lbd *d, struct ev_loop *loop, const char *run_dir, const char *prefix,
	     double resync_s)
{
	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->run_dir = xstrdup(run_dir);
	d->prefix = xstrdup(prefix ? prefix : "");
	d->resync_s = resync_s;
	struct lb_config cfg = { .prefix = d->prefix, .keep_source = true };
	struct lb_provider *probe = NULL;
	char why[512] = "";
	int r = lb_probe(&cfg, &probe, why, sizeof(why));
	if (r < 0) {
		log_err("lbd, no load-balancing data path in this kernel: %s", why);
		free(d->run_dir);
		free(d->prefix);
		return r;
	}
	d->kind = strcmp(probe->ops->name, "ipvs") == 0 ? "ipvs" : "nftables";
	lb_provider_free(probe);
	log_info("lbd, data path: %s", d->kind);
	d->recs = strmap_new();
	d->spaces = strmap_new();
	d->flush = strmap_new();
	ev_timer_init(&d->apply_t, apply_cb, LBD_APPLY_DELAY, 0);
	d->apply_t.data = d;
	ev_timer_init(&d->retry_t, apply_cb, 0, 0);
	d->retry_t.data = d;
	ev_timer_init(&d->resync_t, resync_cb, resync_s, resync_s);
	d->resync_t.data = d;
	ev_timer_start(loop, &d->resync_t);
	d->stream = epstream_start(loop, run_dir, "lbd", &st_ops, d);
	return 0;
}

void lbd_fini(struct lbd *d)
{
	if (!d->loop)
		return;
	/* The rules stay: the kernel balances on while lbd is away. */
	epstream_stop(d->stream);
	ev_timer_stop(d->loop, &d->apply_t);
	ev_timer_stop(d->loop, &d->retry_t);
	ev_timer_stop(d->loop, &d->resync_t);
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->spaces, &pos, &k, &v))
		space_free(v);
	strmap_free(d->spaces);
	strmap_free(d->flush);
	records_free(d->recs);
	records_free(d->staging);
	free(d->run_dir);
	free(d->prefix);
	memset(d, 0, sizeof(*d));
}

/* ---- status ---- */

size_t lbd_space_count(const struct lbd *d)
{
	return d->spaces ? strmap_count(d->spaces) : 0;
}

void lbd_totals(const struct lbd *d, size_t *services, size_t *backends)
{
	size_t pos = 0;
	const char *k;
	void *v;
	*services = *backends = 0;
	while (d->spaces && strmap_next(d->spaces, &pos, &k, &v)) {
		const struct lbd_space *s = v;
		*services += s->applied.n_svcs;
		for (size_t i = 0; i < s->applied.n_svcs; i++)
			*backends += s->applied.svcs[i].n_backends;
	}
}

static json_object *svc_json(const struct lb_service *s)
{
	char ip[INET_ADDRSTRLEN];
	json_object *o = json_object_new_object(), *b = json_object_new_array(),
		    *p = json_object_new_array();
	json_object_object_add(o, "ID", json_object_new_string(s->id));
	if (s->vip.s_addr)
		json_object_object_add(o, "VIP", json_object_new_string(
			inet_ntop(AF_INET, &s->vip, ip, sizeof(ip))));
	for (size_t i = 0; i < s->n_backends; i++)
		json_object_array_add(b, json_object_new_string(
			inet_ntop(AF_INET, &s->backends[i], ip, sizeof(ip))));
	json_object_object_add(o, "Backends", b);
	for (size_t i = 0; i < s->n_ports; i++) {
		char buf[40];
		snprintf(buf, sizeof(buf), "%u:%u/%s", s->ports[i].published, s->ports[i].target,
			 lb_proto_name(s->ports[i].proto));
		json_object_array_add(p, json_object_new_string(buf));
	}
	json_object_object_add(o, "Ports", p);
	return o;
}

char *lbd_status_json(struct lbd *d)
{
	json_object *o = json_object_new_object(), *sp = json_object_new_array();
	json_object_object_add(o, "DataPath", json_object_new_string(d->kind));
	json_object_object_add(o, "Synced", json_object_new_boolean(d->synced));
	json_object_object_add(o, "Endpoints", json_object_new_int((int)strmap_count(d->recs)));
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->spaces, &pos, &k, &v)) {
		const struct lbd_space *s = v;
		json_object *n = json_object_new_object(), *a = json_object_new_array();
		json_object_object_add(n, "Namespace", json_object_new_string(s->netns ? s->netns : ""));
		json_object_object_add(n, "Kind", json_object_new_string(
			!s->netns ? "node" : s->ingress ? "ingress" : "sandbox"));
		for (size_t i = 0; i < s->applied.n_svcs; i++)
			json_object_array_add(a, svc_json(&s->applied.svcs[i]));
		json_object_object_add(n, "Services", a);
		json_object_array_add(sp, n);
	}
	json_object_object_add(o, "Namespaces", sp);
	json_object_object_add(o, "Applies", json_object_new_int64((int64_t)d->st.applies));
	json_object_object_add(o, "Resyncs", json_object_new_int64((int64_t)d->st.resyncs));
	json_object_object_add(o, "Retries", json_object_new_int64((int64_t)d->st.retries));
	json_object_object_add(o, "Operations", json_object_new_int64((int64_t)d->st.ops));
	json_object_object_add(o, "Failures", json_object_new_int64((int64_t)d->st.op_failures));
	json_object_object_add(o, "ConntrackCleared", json_object_new_int64((int64_t)d->st.flushed));
	json_object_object_add(o, "Conflicts", json_object_new_int64((int64_t)d->st.conflicts));
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}
