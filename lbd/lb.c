/* Service sets, the reconcile and the provider choice (see lb.h). Pure
 * logic: every kernel effect goes through a provider's ops table. */
#include "lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_int.h"
#include "log.h"
#include "util.h"

/* ---- text ---- */

void lb_buf_printf(struct lb_buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		b->s = xrealloc(b->s, b->cap);
	}
}

char *lb_buf_take(struct lb_buf *b)
{
	char *s = b->s ? b->s : xstrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

const char *lb_proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

uint8_t lb_proto_parse(const char *s)
{
	if (strcmp(s, "tcp") == 0 || strcmp(s, "6") == 0)
		return IPPROTO_TCP;
	if (strcmp(s, "udp") == 0 || strcmp(s, "17") == 0)
		return IPPROTO_UDP;
	return 0;
}

/* ---- states ---- */

void lb_state_init(struct lb_state *st)
{
	memset(st, 0, sizeof(*st));
}

static void lb_service_free_arrays(struct lb_service *s)
{
	free(s->backends);
	free(s->ports);
	s->backends = NULL;
	s->ports = NULL;
	s->n_backends = s->n_ports = 0;
}

void lb_state_clear(struct lb_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_svcs; i++)
		lb_service_free_arrays(&st->svcs[i]);
	free(st->svcs);
	lb_state_init(st);
}

bool lb_id_valid(const char *id)
{
	size_t n = strnlen(id, LB_ID_MAX);
	if (n == 0 || n >= LB_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static int lb_cmp_addr(const void *a, const void *b)
{
	uint32_t x = ntohl(((const struct in_addr *)a)->s_addr);
	uint32_t y = ntohl(((const struct in_addr *)b)->s_addr);
	return x < y ? -1 : x > y;
}

static int lb_cmp_port(const void *a, const void *b)
{
	const struct lb_port *x = a, *y = b;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return x->published < y->published ? -1 : x->published > y->published;
}

size_t lb_backends_normalize(struct in_addr *b, size_t n)
{
	if (n < 2)
		return n;
	qsort(b, n, sizeof(*b), lb_cmp_addr);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (b[i].s_addr != b[k - 1].s_addr)
			b[k++] = b[i];
	return k;
}

void lb_ports_sort(struct lb_port *p, size_t n)
{
	if (n > 1)
		qsort(p, n, sizeof(*p), lb_cmp_port);
}

const struct lb_port *lb_service_port(const struct lb_service *svc, uint8_t proto,
				      uint16_t published)
{
	for (size_t i = 0; i < svc->n_ports; i++)
		if (svc->ports[i].proto == proto && svc->ports[i].published == published)
			return &svc->ports[i];
	return NULL;
}

const struct lb_service *lb_state_find(const struct lb_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_svcs; i++)
		if (strcmp(st->svcs[i].id, id) == 0)
			return &st->svcs[i];
	return NULL;
}

static const struct lb_service *lb_find_vip(const struct lb_state *st, struct in_addr vip)
{
	for (size_t i = 0; vip.s_addr && i < st->n_svcs; i++)
		if (st->svcs[i].vip.s_addr == vip.s_addr)
			return &st->svcs[i];
	return NULL;
}

/* The service of st holding (proto, published), or NULL. */
static const struct lb_service *lb_find_port(const struct lb_state *st, uint8_t proto,
					     uint16_t published)
{
	for (size_t i = 0; i < st->n_svcs; i++)
		if (lb_service_port(&st->svcs[i], proto, published))
			return &st->svcs[i];
	return NULL;
}

/* A normalised deep copy of *svc: backends sorted and unique, ports sorted
 * with exact duplicates dropped. -EINVAL when one published port has two
 * targets. */
static int lb_service_copy(const struct lb_service *svc, struct lb_service *out)
{
	*out = *svc;
	out->backends = NULL;
	out->ports = NULL;
	if (svc->n_backends) {
		out->backends = xmalloc(svc->n_backends * sizeof(*out->backends));
		memcpy(out->backends, svc->backends, svc->n_backends * sizeof(*out->backends));
		out->n_backends = lb_backends_normalize(out->backends, svc->n_backends);
	}
	if (svc->n_ports) {
		out->ports = xmalloc(svc->n_ports * sizeof(*out->ports));
		memcpy(out->ports, svc->ports, svc->n_ports * sizeof(*out->ports));
		lb_ports_sort(out->ports, svc->n_ports);
		size_t k = 1;
		for (size_t i = 1; i < svc->n_ports; i++) {
			struct lb_port *p = &out->ports[i], *q = &out->ports[k - 1];
			if (p->proto != q->proto || p->published != q->published)
				out->ports[k++] = *p;
			else if (p->target != q->target) {
				lb_service_free_arrays(out);
				return -EINVAL;
			}
		}
		out->n_ports = k;
	}
	return 0;
}

static void lb_state_push(struct lb_state *st, const struct lb_service *copy)
{
	if (st->n_svcs == st->cap_svcs) {
		st->cap_svcs = st->cap_svcs ? st->cap_svcs * 2 : 8;
		st->svcs = xrealloc(st->svcs, st->cap_svcs * sizeof(*st->svcs));
	}
	st->svcs[st->n_svcs++] = *copy;
}

int lb_state_add(struct lb_state *st, const struct lb_service *svc)
{
	if (!memchr(svc->id, 0, sizeof(svc->id)) || !lb_id_valid(svc->id) ||
	    (svc->vip.s_addr == 0 && svc->n_ports == 0))
		return -EINVAL;
	for (size_t i = 0; i < svc->n_backends; i++)
		if (svc->backends[i].s_addr == 0)
			return -EINVAL;
	for (size_t i = 0; i < svc->n_ports; i++) {
		const struct lb_port *p = &svc->ports[i];
		if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || !p->published || !p->target)
			return -EINVAL;
	}
	struct lb_service copy;
	int r = lb_service_copy(svc, &copy);
	if (r < 0)
		return r;
	bool taken = lb_state_find(st, svc->id) || lb_find_vip(st, svc->vip);
	for (size_t i = 0; !taken && i < copy.n_ports; i++)
		taken = lb_find_port(st, copy.ports[i].proto, copy.ports[i].published);
	if (taken) {
		lb_service_free_arrays(&copy);
		return -EEXIST;
	}
	copy.complete = true;
	lb_state_push(st, &copy);
	return 0;
}

/* Appends a copy of *svc as lb_state_add_actual does, without the
 * uniqueness check (the caller knows). */
static void lb_state_push_actual(struct lb_state *st, const struct lb_service *svc)
{
	struct lb_service copy;
	if (lb_service_copy(svc, &copy) < 0) {
		/* Two targets for one published port: keep them all, and say
		 * the service is broken. */
		copy = *svc;
		copy.backends = svc->n_backends ? xmalloc(svc->n_backends * sizeof(*svc->backends)) : NULL;
		copy.ports = xmalloc(svc->n_ports * sizeof(*svc->ports));
		if (svc->n_backends)
			memcpy(copy.backends, svc->backends, svc->n_backends * sizeof(*svc->backends));
		memcpy(copy.ports, svc->ports, svc->n_ports * sizeof(*svc->ports));
		copy.n_backends = lb_backends_normalize(copy.backends, svc->n_backends);
		lb_ports_sort(copy.ports, svc->n_ports);
		copy.complete = false;
	}
	lb_state_push(st, &copy);
}

int lb_state_add_actual(struct lb_state *st, const struct lb_service *svc)
{
	if (lb_state_find(st, svc->id))
		return -EEXIST;
	lb_state_push_actual(st, svc);
	return 0;
}

bool lb_service_same(const struct lb_service *a, const struct lb_service *b)
{
	if (a->vip.s_addr != b->vip.s_addr || a->n_backends != b->n_backends ||
	    a->n_ports != b->n_ports)
		return false;
	if (a->n_backends && memcmp(a->backends, b->backends, a->n_backends * sizeof(*a->backends)))
		return false;
	for (size_t i = 0; i < a->n_ports; i++) {
		const struct lb_port *p = &a->ports[i], *q = &b->ports[i];
		/* Without backends a target port leads nowhere, and the
		 * kernel objects of such a service need not record it. */
		if (p->proto != q->proto || p->published != q->published ||
		    (a->n_backends && p->target != q->target))
			return false;
	}
	return true;
}

void lb_provider_free(struct lb_provider *p)
{
	if (!p)
		return;
	if (p->ops && p->ops->free)
		p->ops->free(p->ctx);
	free(p);
}

/* ---- reconcile ---- */

/* A desired service's published port, for the port index: sorted and
 * searched with lb_cmp_port, which sees only the first member. */
struct lb_port_ref {
	struct lb_port port;
	const struct lb_service *svc;
};

/* One reconcile run. The lookups by id, VIP and published port go through
 * indexes sorted once per run, so that comparing N services costs
 * O(N log N) rather than O(N^2) (3.5 ms at 1,000 services, 0.35 s at
 * 10,000, on every update). */
struct lb_run {
	struct lb_provider *p;
	const struct lb_state *desired;
	const struct lb_state *actual;
	bool *gone;              /* per actual service: deleted in this run */
	const struct lb_service **des_id, **act_id;   /* sorted by id */
	const struct lb_service **des_vip;            /* with a VIP, sorted by VIP */
	size_t n_des_vip;
	struct lb_port_ref *des_port;                  /* sorted by (proto, published) */
	size_t n_des_port;
	struct lb_stats stats;
	int err;                 /* first error */
};

static int lb_cmp_id_ref(const void *a, const void *b)
{
	return strcmp((*(const struct lb_service *const *)a)->id,
		      (*(const struct lb_service *const *)b)->id);
}

static int lb_cmp_vip_ref(const void *a, const void *b)
{
	return lb_cmp_addr(&(*(const struct lb_service *const *)a)->vip,
			   &(*(const struct lb_service *const *)b)->vip);
}

/* Pointers to st's services sorted by id. */
static const struct lb_service **lb_index_ids(const struct lb_state *st)
{
	const struct lb_service **v = xcalloc(st->n_svcs ? st->n_svcs : 1, sizeof(*v));
	for (size_t i = 0; i < st->n_svcs; i++)
		v[i] = &st->svcs[i];
	qsort(v, st->n_svcs, sizeof(*v), lb_cmp_id_ref);
	return v;
}

static const struct lb_service *lb_index_find(const struct lb_service **v, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(id, v[mid]->id);
		if (c == 0)
			return v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void lb_run_index(struct lb_run *run)
{
	const struct lb_state *d = run->desired;
	size_t nports = 0;
	run->des_id = lb_index_ids(d);
	run->act_id = lb_index_ids(run->actual);
	run->des_vip = xcalloc(d->n_svcs ? d->n_svcs : 1, sizeof(*run->des_vip));
	for (size_t i = 0; i < d->n_svcs; i++) {
		if (d->svcs[i].vip.s_addr)
			run->des_vip[run->n_des_vip++] = &d->svcs[i];
		nports += d->svcs[i].n_ports;
	}
	qsort(run->des_vip, run->n_des_vip, sizeof(*run->des_vip), lb_cmp_vip_ref);
	run->des_port = xcalloc(nports ? nports : 1, sizeof(*run->des_port));
	for (size_t i = 0; i < d->n_svcs; i++)
		for (size_t j = 0; j < d->svcs[i].n_ports; j++)
			run->des_port[run->n_des_port++] = (struct lb_port_ref){
				d->svcs[i].ports[j], &d->svcs[i] };
	qsort(run->des_port, run->n_des_port, sizeof(*run->des_port), lb_cmp_port);
}

static void lb_run_free(struct lb_run *run)
{
	free(run->gone);
	free(run->des_id);
	free(run->act_id);
	free(run->des_vip);
	free(run->des_port);
}

static void lb_count(struct lb_run *run, int r)
{
	if (r == 0) {
		run->stats.applied++;
		return;
	}
	run->stats.failed++;
	if (run->err == 0)
		run->err = r;
}

/* Whether a (actual) holds a VIP or published port that a desired service
 * other than a's own id wants: a must then go before that one is set, or
 * the kernel would refuse the second holder of one key. */
static bool lb_key_wanted_elsewhere(const struct lb_run *run, const struct lb_service *a)
{
	if (a->vip.s_addr) {
		const struct lb_service key = { .vip = a->vip }, *kp = &key;
		const struct lb_service **d = bsearch(&kp, run->des_vip, run->n_des_vip,
						      sizeof(*run->des_vip), lb_cmp_vip_ref);
		if (d && strcmp((*d)->id, a->id) != 0)
			return true;
	}
	for (size_t i = 0; i < a->n_ports; i++) {
		struct lb_port_ref key = { a->ports[i], NULL };
		const struct lb_port_ref *d = bsearch(&key, run->des_port, run->n_des_port,
						      sizeof(*run->des_port), lb_cmp_port);
		if (d && strcmp(d->svc->id, a->id) != 0)
			return true;
	}
	return false;
}

static void lb_remove_stale(struct lb_run *run)
{
	for (size_t i = 0; i < run->actual->n_svcs; i++) {
		const struct lb_service *a = &run->actual->svcs[i];
		if (lb_index_find(run->des_id, run->desired->n_svcs, a->id) &&
		    !lb_key_wanted_elsewhere(run, a))
			continue;
		int r = run->p->ops->svc_del(run->p->ctx, a);
		lb_count(run, r);
		run->gone[i] = r == 0;
	}
}

static void lb_set_changed(struct lb_run *run)
{
	for (size_t i = 0; i < run->desired->n_svcs; i++) {
		const struct lb_service *d = &run->desired->svcs[i];
		const struct lb_service *a = lb_index_find(run->act_id, run->actual->n_svcs, d->id);
		if (a && run->gone[a - run->actual->svcs])
			a = NULL;
		if (a && a->complete && lb_service_same(a, d))
			continue;
		lb_count(run, run->p->ops->svc_set(run->p->ctx, a, d));
	}
}

int lb_apply(struct lb_provider *p, const struct lb_state *actual, const struct lb_state *desired,
	     struct lb_stats *stats)
{
	struct lb_run run = { .p = p, .desired = desired, .actual = actual };
	run.gone = xcalloc(actual->n_svcs ? actual->n_svcs : 1, sizeof(*run.gone));
	lb_run_index(&run);
	/* Deletions first: they free VIPs and ports that the sets may take. */
	lb_remove_stale(&run);
	lb_set_changed(&run);
	lb_run_free(&run);
	if (stats)
		*stats = run.stats;
	return run.err;
}

int lb_reconcile(struct lb_provider *p, const struct lb_state *desired, struct lb_stats *stats)
{
	struct lb_state actual;
	struct lb_stats st = { 0 };

	lb_state_init(&actual);
	int r = p->ops->dump(p->ctx, &actual);
	if (r < 0)
		log_err("lb, dump of actual services via %s failed: %s", p->ops->name, strerror(-r));
	else
		r = lb_apply(p, &actual, desired, &st);
	if (st.applied || st.failed)
		log_info("lb, reconcile via %s: %u applied, %u failed", p->ops->name,
			 st.applied, st.failed);
	lb_state_clear(&actual);
	if (stats)
		*stats = st;
	return r;
}

void lb_state_copy(struct lb_state *dst, const struct lb_state *src)
{
	lb_state_clear(dst);
	/* src is unique by id already: no lookups, O(N) rather than O(N^2). */
	for (size_t i = 0; i < src->n_svcs; i++)
		lb_state_push_actual(dst, &src->svcs[i]);
}

/* ---- provider choice ---- */

int lb_probe_choose(struct lb_provider **cands, size_t n, struct lb_provider **out,
		    char *why, size_t whylen)
{
	struct lb_buf reasons = { 0 };
	int err = -EOPNOTSUPP;
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		struct lb_provider *c = cands[i];
		if (!c)
			continue;
		char reason[256] = "";
		int r = *out ? 0 : c->ops->probe(c->ctx, reason, sizeof(reason));
		if (!*out && r == 0) {
			*out = c;
			continue;
		}
		if (!*out) {
			err = r;
			log_info("lb, data path %s not usable: %s", c->ops->name, reason);
			lb_buf_printf(&reasons, "%s%s: %s", reasons.len ? "; " : "", c->ops->name, reason);
		}
		lb_provider_free(c);
	}
	char *text = lb_buf_take(&reasons);
	if (why && whylen)
		snprintf(why, whylen, "%s", *out ? "" : text);
	free(text);
	if (*out) {
		log_info("lb, data path: %s", (*out)->ops->name);
		return 0;
	}
	return err;
}

int lb_probe(const struct lb_config *cfg, struct lb_provider **out, char *why, size_t whylen)
{
	struct lb_provider *cands[2] = { NULL, NULL };
	int r1 = lb_ipvs_new(cfg, &cands[0]);
	int r2 = lb_nft_new(cfg, &cands[1]);
	if (r1 < 0 && r2 < 0) {
		if (why && whylen)
			snprintf(why, whylen, "cannot open the namespace: %s", strerror(-r2));
		return r2;
	}
	return lb_probe_choose(cands, 2, out, why, whylen);
}
