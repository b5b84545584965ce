/* lb_update: rule-update latency of lbd's nftables provider on a real
 * kernel (test/bench/lb_update.sh runs it in a scratch namespace).
 *
 * Usage: lb_update [NETNS_FILE]   (root; without NETNS_FILE it unshares a
 *        network namespace of its own, which goes away with it)
 * Env: LB_SIZES ("10 100 1000": numbers of services), LB_REPS (50),
 *      LB_BACKENDS (10), LB_RESYNCS (5), LB_PREFIX ("lbb-": nftables table
 *      "<prefix>swarm_lb", deleted before and after every size).
 *
 * For each size N: N services s0000.. with VIP 198.19.x.y (i + 1), LB_BACKENDS
 * backends each (198.18.x.y, i * 16 + j + 1) and one published TCP port
 * (10000 + i -> 80), the way lbd's node namespace holds them.
 *   cold     lb_reconcile of the N services from an empty table (one
 *            svc_set batch per service, the skeleton in the first);
 *   resync   lb_reconcile of the same, unchanged state: dump + compare,
 *            0 ops (LB_RESYNCS runs; the median, and the dump alone);
 *   (a) set  one more backend for one service through the provider's
 *            svc_set (old -> new), LB_REPS runs over services spread over
 *            the N; each is undone (untimed) before the next;
 *   (b) apply the same through lb_apply of the whole desired state that
 *            differs by that one backend, the previous state as actual:
 *            what lbd does on every change; undone likewise.
 * Also printed: the dump and the compare of a resync apart, lb_state_copy
 * of the N services and the making of the state with lb_state_add (what
 * lbd adds around lb_apply on every change).
 * Prints one line per size and per phase (p50/p90/max in ms), a table, and
 * a line of ratios; `key value` lines go to $SWARM_BENCH_RESULTS when set. */
#include "lbd/lb.h"
#include "lbd/lb_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "log.h"
#include "util.h"

#define SIZES_MAX 8
#define PORT_BASE 10000
#define EXTRA_J 15      /* backend index of the added backend (i * 16 + 15 + 1) */

/* What was measured for one size, ms. */
struct result {
	size_t n;
	double set_p50, set_p90, set_max;
	double apply_p50, apply_p90, apply_max;
	double resync_p50, dump_p50, compare_p50, copy_p50;
	double cold_total, cold_per_svc;
	double build_ms;            /* making the desired state with lb_state_add */
};

static const char *g_netns;     /* NULL: our own namespace */
static const char *g_prefix = "lbb-";
static size_t g_reps = 50, g_backends = 10, g_resyncs = 5;
static FILE *g_results;

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "lb_update: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(1);
}

static double ms_since(int64_t t0)
{
	return (double)(now_mono_ns() - t0) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of v[0..n), sorted in place. */
static double quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_double);
	size_t k = (size_t)(q * (double)n + 0.999999);
	k = k ? k - 1 : 0;
	return v[k < n ? k : n - 1];
}

static struct in_addr addr(uint8_t a, uint8_t b, uint32_t n)
{
	struct in_addr x = { htonl((uint32_t)a << 24 | (uint32_t)b << 16 | (n & 0xffff)) };
	return x;
}

/* Backend j of service i: 198.18.0.0 + i * 16 + j + 1 (j < 16). */
static struct in_addr backend(size_t i, size_t j)
{
	return addr(198, 18, (uint32_t)(i * 16 + j + 1));
}

/* The desired state of n services. */
static void make_state(struct lb_state *st, size_t n)
{
	struct in_addr b[16];
	lb_state_init(st);
	for (size_t i = 0; i < n; i++) {
		struct lb_port port = { IPPROTO_TCP, (uint16_t)(PORT_BASE + i), 80 };
		struct lb_service s = { .vip = addr(198, 19, (uint32_t)(i + 1)), .backends = b,
					.n_backends = g_backends, .ports = &port, .n_ports = 1 };
		snprintf(s.id, sizeof(s.id), "s%04zu", i);
		for (size_t j = 0; j < g_backends; j++)
			b[j] = backend(i, j);
		if (lb_state_add(st, &s) < 0)
			die("cannot make service %s", s.id);
	}
}

/* Gives service i of st one more backend (the last one in sorted order). */
static void extra_backend(struct lb_state *st, size_t i)
{
	struct lb_service *s = &st->svcs[i];
	s->backends = xrealloc(s->backends, (s->n_backends + 1) * sizeof(*s->backends));
	s->backends[s->n_backends++] = backend(i, EXTRA_J);
}

/* Runs one nft command in the namespace through ctx (errors ignored). */
static void nft_quiet(struct nft_ctx *ctx, const char *cmd)
{
	lb_nft_run(ctx, cmd, false, true, NULL);
}

static struct lb_provider *provider(void)
{
	struct lb_config cfg = { .netns = g_netns, .prefix = g_prefix };
	struct lb_provider *p = NULL;
	int r = lb_nft_new(&cfg, &p);
	if (r < 0)
		die("cannot make the nftables provider: %s", strerror(-r));
	return p;
}

static void check(int r, const struct lb_stats *st, unsigned applied, const char *what)
{
	if (r < 0 || st->failed || st->applied != applied) {
		fprintf(stderr, "lb_update: %s: r=%d applied=%u failed=%u (expected %u applied)\n",
			what, r, st->applied, st->failed, applied);
		exit(1);
	}
}

/* Service picked for run k of reps over n services: spread evenly. */
static size_t pick(size_t k, size_t n)
{
	return n >= g_reps ? k * n / g_reps : k % n;
}

static void run_size(struct nft_ctx *ctx, const char *table, size_t n, struct result *res)
{
	char del[96];
	snprintf(del, sizeof(del), "delete table ip %s", table);
	nft_quiet(ctx, del);

	struct lb_state cur, des, dumped;
	struct lb_stats st;
	memset(res, 0, sizeof(*res));
	res->n = n;
	int64_t tb = now_mono_ns();
	make_state(&cur, n);
	res->build_ms = ms_since(tb);
	lb_state_init(&des);
	lb_state_init(&dumped);
	struct lb_provider *p = provider();

	/* cold */
	int64_t t0 = now_mono_ns();
	int r = lb_reconcile(p, &cur, &st);
	res->cold_total = ms_since(t0);
	res->cold_per_svc = res->cold_total / (double)n;
	check(r, &st, (unsigned)n, "cold programming");

	/* resync: reconcile, and its parts */
	size_t nr = g_resyncs;
	double *v = xcalloc(nr > g_reps ? nr : g_reps, sizeof(double));
	double *w = xcalloc(nr > g_reps ? nr : g_reps, sizeof(double));
	double *x = xcalloc(nr > g_reps ? nr : g_reps, sizeof(double));
	double *y = xcalloc(nr > g_reps ? nr : g_reps, sizeof(double));
	for (size_t k = 0; k < nr; k++) {
		t0 = now_mono_ns();
		r = lb_reconcile(p, &cur, &st);
		v[k] = ms_since(t0);
		check(r, &st, 0, "resync");
		lb_state_clear(&dumped);
		t0 = now_mono_ns();
		r = p->ops->dump(p->ctx, &dumped);
		w[k] = ms_since(t0);
		if (r < 0 || dumped.n_svcs != n)
			die("dump: %s", r < 0 ? strerror(-r) : "wrong number of services");
		t0 = now_mono_ns();
		r = lb_apply(p, &dumped, &cur, &st);
		x[k] = ms_since(t0);
		check(r, &st, 0, "compare");
		t0 = now_mono_ns();
		lb_state_copy(&des, &cur);
		y[k] = ms_since(t0);
	}
	res->resync_p50 = quantile(v, nr, 0.5);
	res->dump_p50 = quantile(w, nr, 0.5);
	res->compare_p50 = quantile(x, nr, 0.5);
	res->copy_p50 = quantile(y, nr, 0.5);

	/* (a) svc_set of one service, old -> old + 1 backend */
	for (size_t k = 0; k < g_reps; k++) {
		size_t i = pick(k, n);
		lb_state_copy(&des, &cur);
		extra_backend(&des, i);
		t0 = now_mono_ns();
		r = p->ops->svc_set(p->ctx, &cur.svcs[i], &des.svcs[i]);
		v[k] = ms_since(t0);
		if (r < 0)
			die("svc_set: %s", strerror(-r));
		if (p->ops->svc_set(p->ctx, &des.svcs[i], &cur.svcs[i]) < 0)
			die("svc_set (undo) failed%s", "");
	}
	res->set_p50 = quantile(v, g_reps, 0.5);
	res->set_p90 = quantile(v, g_reps, 0.9);
	res->set_max = v[g_reps - 1];

	/* (b) lb_apply of the whole state, differing by one backend */
	for (size_t k = 0; k < g_reps; k++) {
		size_t i = pick(k, n);
		lb_state_copy(&des, &cur);
		extra_backend(&des, i);
		t0 = now_mono_ns();
		r = lb_apply(p, &cur, &des, &st);
		v[k] = ms_since(t0);
		check(r, &st, 1, "apply");
		r = lb_apply(p, &des, &cur, &st);
		check(r, &st, 1, "apply (undo)");
	}
	res->apply_p50 = quantile(v, g_reps, 0.5);
	res->apply_p90 = quantile(v, g_reps, 0.9);
	res->apply_max = v[g_reps - 1];

	/* The kernel still holds exactly cur. */
	r = lb_reconcile(p, &cur, &st);
	check(r, &st, 0, "final resync");

	free(v);
	free(w);
	free(x);
	free(y);
	lb_state_clear(&cur);
	lb_state_clear(&des);
	lb_state_clear(&dumped);
	lb_provider_free(p);
	nft_quiet(ctx, del);

	printf("N=%zu: (a) svc_set p50 %.3f p90 %.3f max %.3f ms; (b) lb_apply p50 %.3f p90 %.3f max %.3f ms\n",
	       n, res->set_p50, res->set_p90, res->set_max, res->apply_p50, res->apply_p90,
	       res->apply_max);
	printf("N=%zu: (c) resync p50 %.3f ms (dump %.3f, compare %.3f); cold %.1f ms (%.3f ms/service)\n",
	       n, res->resync_p50, res->dump_p50, res->compare_p50, res->cold_total, res->cold_per_svc);
	printf("N=%zu: state handling: lb_state_copy %.3f ms, building the state with lb_state_add %.3f ms\n",
	       n, res->copy_p50, res->build_ms);
	fflush(stdout);
	if (g_results)
		fprintf(g_results,
			"lb_update.n%zu.set_p50_ms %.3f\nlb_update.n%zu.set_p90_ms %.3f\n"
			"lb_update.n%zu.apply_p50_ms %.3f\nlb_update.n%zu.apply_p90_ms %.3f\n"
			"lb_update.n%zu.resync_ms %.3f\nlb_update.n%zu.dump_ms %.3f\n"
			"lb_update.n%zu.cold_ms %.1f\n",
			n, res->set_p50, n, res->set_p90, n, res->apply_p50, n, res->apply_p90, n,
			res->resync_p50, n, res->dump_p50, n, res->cold_total);
}

static size_t env_num(const char *name, size_t def, size_t lo, size_t hi)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v < lo || v > hi)
		die("bad %s", name);
	return v;
}

int main(int argc, char **argv)
{
	log_set_level(LOG_LVL_WARN);
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: lb_update [NETNS_FILE]\n");
		return 2;
	}
	if (geteuid() != 0)
		die("needs root%s", "");
	g_reps = env_num("LB_REPS", 50, 1, 1000);
	g_backends = env_num("LB_BACKENDS", 10, 1, 15);
	g_resyncs = env_num("LB_RESYNCS", 5, 1, 100);
	if (getenv("LB_PREFIX"))
		g_prefix = getenv("LB_PREFIX");
	size_t sizes[SIZES_MAX], nsizes = 0;
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", getenv("LB_SIZES") ? getenv("LB_SIZES") : "10 100 1000");
	for (char *save, *t = strtok_r(buf, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
		char *end;
		unsigned long v = strtoul(t, &end, 10);
		if (*end || v < 1 || v > 4000 || nsizes == SIZES_MAX)
			die("bad LB_SIZES (1-4000, at most 8 of them): %s", t);
		sizes[nsizes++] = v;
	}
	if (!nsizes)
		die("LB_SIZES is empty%s", "");
	if (argc == 2) {
		g_netns = argv[1];
	} else if (unshare(CLONE_NEWNET) < 0) {
		die("cannot unshare a network namespace: %s", strerror(errno));
	}
	if (getenv("SWARM_BENCH_RESULTS") && *getenv("SWARM_BENCH_RESULTS"))
		g_results = fopen(getenv("SWARM_BENCH_RESULTS"), "a");

	char table[64];
	if (lb_nft_table_name(g_prefix, table, sizeof(table)) < 0)
		die("bad LB_PREFIX %s", g_prefix);
	int nsfd = lb_ns_open(g_netns);
	struct nft_ctx *ctx = NULL;
	if (nsfd < 0 || lb_nft_ctx_new(nsfd, &ctx) < 0)
		die("cannot open an nftables context in %s", g_netns ? g_netns : "(own namespace)");
	close(nsfd);

	printf("lb_update: nftables provider, table %s, %zu backends and 1 published port per "
	       "service, %zu runs per update figure\n", table, g_backends, g_reps);
	struct result res[SIZES_MAX];
	for (size_t k = 0; k < nsizes; k++)
		run_size(ctx, table, sizes[k], &res[k]);
	nft_ctx_free(ctx);

	printf("\n%8s | %-24s | %-24s | %-10s %-9s | %-10s %-8s\n", "", "(a) svc_set +1 backend",
	       "(b) lb_apply +1 backend", "(c) resync", "of which", "cold", "");
	printf("%7s | %11s %12s | %11s %12s | %10s %9s | %10s %8s\n", "services", "p50 ms", "p90 ms",
	       "p50 ms", "p90 ms", "p50 ms", "dump ms", "total ms", "ms/svc");
	for (size_t k = 0; k < nsizes; k++)
		printf("%8zu | %11.3f %12.3f | %11.3f %12.3f | %10.3f %9.3f | %10.1f %8.3f\n",
		       res[k].n, res[k].set_p50, res[k].set_p90, res[k].apply_p50, res[k].apply_p90,
		       res[k].resync_p50, res[k].dump_p50, res[k].cold_total, res[k].cold_per_svc);
	if (nsizes >= 2) {
		const struct result *lo = &res[0], *hi = &res[nsizes - 1];
		printf("ratios: svc_set %zu/%zu services %.2fx; lb_apply %zu/%zu %.2fx; "
		       "lb_apply/svc_set at %zu %.2fx; resync/svc_set at %zu %.1fx; "
		       "cold per service/svc_set at %zu %.2fx\n",
		       hi->n, lo->n, hi->set_p50 / lo->set_p50, hi->n, lo->n,
		       hi->apply_p50 / lo->apply_p50, hi->n, hi->apply_p50 / hi->set_p50, hi->n,
		       hi->resync_p50 / hi->set_p50, hi->n, hi->cold_per_svc / hi->set_p50);
	}
	if (g_results)
		fclose(g_results);
	return 0;
}
