/* In-memory load-balancing provider for unit tests (see lb.h). Its
 * "kernel" is an lb_state; every successful mutating operation is
 * recorded as one text line. It behaves like a kernel where tests depend
 * on it: a VIP or published port held by another service refuses the set
 * (-EBUSY, as nftables does for a map key with another verdict). */
#include "lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_int.h"
#include "util.h"

/* The fake's state. */
struct lb_fake {
	char name[32];            /* ops name shown in logs */
	struct lb_ops ops;        /* a copy carrying that name */
	int probe_err;            /* what probe returns */
	struct lb_state kernel;   /* what "exists" */
	char **ops_log;           /* recorded lines, malloc'd */
	size_t n_ops, cap_ops;
	char fail_prefix[32];     /* next op starting with this fails */
	int fail_err;             /* with this error (0 = none armed) */
};

static unsigned lb_fake_nfrees;

static struct lb_fake *fake_of(struct lb_provider *p)
{
	return p->ctx;
}

static int fake_should_fail(struct lb_fake *f, const char *line)
{
	if (!f->fail_err || strncmp(line, f->fail_prefix, strlen(f->fail_prefix)) != 0)
		return 0;
	int err = f->fail_err;
	f->fail_err = 0;
	return err;
}

static void fake_record(struct lb_fake *f, const char *line)
{
	if (f->n_ops == f->cap_ops) {
		f->cap_ops = f->cap_ops ? f->cap_ops * 2 : 16;
		f->ops_log = xrealloc(f->ops_log, f->cap_ops * sizeof(*f->ops_log));
	}
	f->ops_log[f->n_ops++] = xstrdup(line);
}

/* "web 198.18.0.100 198.51.100.11,198.51.100.12 tcp:8080:80". */
static char *fake_line(const char *op, const struct lb_service *s)
{
	struct lb_buf b = { 0 };
	char ip[INET_ADDRSTRLEN];
	lb_buf_printf(&b, "%s %s", op, s->id);
	if (strcmp(op, "svc_del") == 0)
		return lb_buf_take(&b);
	lb_buf_printf(&b, " %s ", inet_ntop(AF_INET, &s->vip, ip, sizeof(ip)));
	for (size_t i = 0; i < s->n_backends; i++)
		lb_buf_printf(&b, "%s%s", i ? "," : "", inet_ntop(AF_INET, &s->backends[i], ip, sizeof(ip)));
	if (!s->n_backends)
		lb_buf_printf(&b, "-");
	for (size_t i = 0; i < s->n_ports; i++)
		lb_buf_printf(&b, " %s:%u:%u", lb_proto_name(s->ports[i].proto), s->ports[i].published,
			      s->ports[i].target);
	return lb_buf_take(&b);
}

static int fake_probe(void *ctx, char *why, size_t whylen)
{
	struct lb_fake *f = ctx;
	if (f->probe_err)
		snprintf(why, whylen, "fake %s unusable", f->name);
	else if (whylen)
		why[0] = '\0';
	return f->probe_err;
}

static int fake_dump(void *ctx, struct lb_state *out)
{
	struct lb_fake *f = ctx;
	int err = fake_should_fail(f, "dump");
	if (err)
		return err;
	for (size_t i = 0; i < f->kernel.n_svcs; i++)
		lb_state_add_actual(out, &f->kernel.svcs[i]);
	return 0;
}

static void fake_remove(struct lb_state *k, const char *id)
{
	for (size_t i = 0; i < k->n_svcs; i++) {
		if (strcmp(k->svcs[i].id, id) != 0)
			continue;
		free(k->svcs[i].backends);
		free(k->svcs[i].ports);
		memmove(&k->svcs[i], &k->svcs[i + 1], (k->n_svcs - i - 1) * sizeof(k->svcs[i]));
		k->n_svcs--;
		return;
	}
}

/* Whether another service than id holds svc's VIP or a published port. */
static bool fake_key_taken(const struct lb_state *k, const struct lb_service *svc)
{
	for (size_t i = 0; i < k->n_svcs; i++) {
		const struct lb_service *o = &k->svcs[i];
		if (strcmp(o->id, svc->id) == 0)
			continue;
		if (svc->vip.s_addr && o->vip.s_addr == svc->vip.s_addr)
			return true;   /* 0.0.0.0: no VIP, nothing held */
		for (size_t j = 0; j < svc->n_ports; j++)
			if (lb_service_port(o, svc->ports[j].proto, svc->ports[j].published))
				return true;
	}
	return false;
}

static int fake_svc_set(void *ctx, const struct lb_service *old, const struct lb_service *svc)
{
	struct lb_fake *f = ctx;
	char *line = fake_line(old ? "replace" : "svc_set", svc);
	int err = fake_should_fail(f, line);
	if (!err && !old && lb_state_find(&f->kernel, svc->id))
		err = -EEXIST; /* a reconcile that lost track of what exists */
	if (!err && fake_key_taken(&f->kernel, svc))
		err = -EBUSY;
	if (!err) {
		fake_remove(&f->kernel, svc->id);
		struct lb_service s = *svc;
		s.complete = true;
		err = lb_state_add_actual(&f->kernel, &s);
	}
	if (!err)
		fake_record(f, line);
	free(line);
	return err;
}

static int fake_svc_del(void *ctx, const struct lb_service *svc)
{
	struct lb_fake *f = ctx;
	char *line = fake_line("svc_del", svc);
	int err = fake_should_fail(f, line);
	if (!err) {
		fake_remove(&f->kernel, svc->id);
		fake_record(f, line);
	}
	free(line);
	return err;
}

static void fake_free(void *ctx)
{
	struct lb_fake *f = ctx;
	if (!f)
		return;
	lb_fake_nfrees++;
	lb_state_clear(&f->kernel);
	for (size_t i = 0; i < f->n_ops; i++)
		free(f->ops_log[i]);
	free(f->ops_log);
	free(f);
}

int lb_fake_new(const char *name, int probe_err, struct lb_provider **out)
{
	struct lb_fake *f = xcalloc(1, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name ? name : "fake");
	f->probe_err = probe_err;
	f->ops = (struct lb_ops){
		.name = f->name,
		.probe = fake_probe,
		.dump = fake_dump,
		.svc_set = fake_svc_set,
		.svc_del = fake_svc_del,
		.free = fake_free,
	};
	lb_state_init(&f->kernel);
	struct lb_provider *p = xcalloc(1, sizeof(*p));
	p->ops = &f->ops;
	p->ctx = f;
	*out = p;
	return 0;
}

struct lb_state *lb_fake_state(struct lb_provider *p)
{
	return &fake_of(p)->kernel;
}

size_t lb_fake_nops(struct lb_provider *p)
{
	return fake_of(p)->n_ops;
}

const char *lb_fake_op(struct lb_provider *p, size_t i)
{
	struct lb_fake *f = fake_of(p);
	return i < f->n_ops ? f->ops_log[i] : NULL;
}

size_t lb_fake_count(struct lb_provider *p, const char *prefix)
{
	struct lb_fake *f = fake_of(p);
	size_t n = 0;
	for (size_t i = 0; i < f->n_ops; i++)
		n += strncmp(f->ops_log[i], prefix, strlen(prefix)) == 0;
	return n;
}

void lb_fake_clear_ops(struct lb_provider *p)
{
	struct lb_fake *f = fake_of(p);
	for (size_t i = 0; i < f->n_ops; i++)
		free(f->ops_log[i]);
	f->n_ops = 0;
}

void lb_fake_fail(struct lb_provider *p, const char *prefix, int err)
{
	struct lb_fake *f = fake_of(p);
	snprintf(f->fail_prefix, sizeof(f->fail_prefix), "%s", prefix);
	f->fail_err = err;
}

unsigned lb_fake_frees(void)
{
	return lb_fake_nfrees;
}
