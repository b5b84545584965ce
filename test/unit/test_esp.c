/* The kernel ESP provider (netd/esp.c) against a fake ops table: the
 * desired states and policies from a ring and peers, SPIs and keys that
 * both ends derive alike, the order that never lets a marked packet out
 * in cleartext, make-before-break on rotation, peers and VNIs leaving,
 * failures retried, no keys at all. Then the real ops (esp_kernel.c) in
 * a network namespace of the test's own: the policies, the catch-all and
 * the nftables rules land in the kernel and a new provider's flush
 * removes ours; the states need ESP, which this kernel may lack (then
 * that part is skipped with the kernel's reason). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/xfrm/sp.h>

#include "netd/esp.h"
#include "netd/esp_probe.h"

#define A 0xC0000201u   /* 192.0.2.1: this node */
#define B 0xC0000202u
#define C 0xC0000203u

static const struct seal_key k1 = { .id = 1, .key = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, .len = 16 };
static const struct seal_key k2 = { .id = 2, .key = { 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2 }, .len = 16 };
static const struct seal_key k3 = { .id = 3, .key = { 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3 }, .len = 16 };
static const struct seal_key k4 = { .id = 4, .key = { 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4 }, .len = 16 };

/* ---- the fake kernel ---- */

#define MAXOPS 64
struct fake {
	char ops[MAXOPS][48];
	size_t nops;
	struct xm_sa sas[32];        /* what it holds */
	size_t nsas;
	struct xm_sa pols[16];
	size_t npols;
	char fail[16];               /* the next op with this prefix fails */
	int fail_err;
	size_t rules_n;
};

static void note(struct fake *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	assert_true(f->nops < MAXOPS);
	vsnprintf(f->ops[f->nops++], sizeof(f->ops[0]), fmt, ap);
	va_end(ap);
}

static int failing(struct fake *f, const char *op)
{
	if (!f->fail[0] || strncmp(op, f->fail, strlen(f->fail)) != 0)
		return 0;
	f->fail[0] = 0;
	return f->fail_err;
}

static int f_sa(void *ctx, const struct xm_sa *sa, int del)
{
	struct fake *f = ctx;
	char op[48];
	snprintf(op, sizeof(op), "sa%c %x>%x %s %08x", del ? '-' : '+', sa->src & 0xff,
		 sa->dst & 0xff, sa->in ? "in" : "out", sa->spi);
	int r = failing(f, op);
	if (r)
		return r;
	note(f, "%s", op);
	if (!del) {
		f->sas[f->nsas++] = *sa;
		return 0;
	}
	for (size_t i = 0; i < f->nsas; i++)
		if (f->sas[i].src == sa->src && f->sas[i].dst == sa->dst && f->sas[i].spi == sa->spi)
			f->sas[i--] = f->sas[--f->nsas];
	return 0;
}

static int f_policy(void *ctx, const struct xm_sa *sa, int del)
{
	struct fake *f = ctx;
	char op[48];
	snprintf(op, sizeof(op), "pol%c %x>%x", del ? '-' : '+', sa->src & 0xff, sa->dst & 0xff);
	int r = failing(f, op);
	if (r)
		return r;
	note(f, "%s", op);
	if (!del) {
		f->pols[f->npols++] = *sa;
		return 0;
	}
	for (size_t i = 0; i < f->npols; i++)
		if (f->pols[i].src == sa->src && f->pols[i].dst == sa->dst)
			f->pols[i--] = f->pols[--f->npols];
	return 0;
}

static int f_flush(void *ctx)
{
	struct fake *f = ctx;
	note(f, "flush");
	f->nsas = f->npols = 0;
	return 0;
}

/* What the fake kernel holds, keys left out as the real list does. */
static int f_list(void *ctx, struct xm_sa **sas, size_t *nsas, struct xm_sa **pols, size_t *npols)
{
	struct fake *f = ctx;
	note(f, "list");
	*sas = calloc(f->nsas + 1, sizeof(**sas));
	*pols = calloc(f->npols + 1, sizeof(**pols));
	for (size_t i = 0; i < f->nsas; i++) {
		(*sas)[i] = f->sas[i];
		memset((*sas)[i].key, 0, sizeof((*sas)[i].key));
	}
	memcpy(*pols, f->pols, f->npols * sizeof(**pols));
	*nsas = f->nsas;
	*npols = f->npols;
	return 0;
}

static int f_rules(void *ctx, uint16_t dport, const uint32_t *vnis, size_t n)
{
	struct fake *f = ctx;
	assert_int_equal(dport, 4789);
	for (size_t i = 1; i < n; i++)
		assert_true(vnis[i - 1] < vnis[i]);    /* sorted, no duplicates */
	note(f, "rules %zu", n);
	f->rules_n = n;
	return 0;
}

static const struct esp_ops fake_ops = { f_sa, f_policy, f_flush, f_list, f_rules };

static size_t count(const struct fake *f, const char *prefix)
{
	size_t n = 0;
	for (size_t i = 0; i < f->nops; i++)
		n += strncmp(f->ops[i], prefix, strlen(prefix)) == 0;
	return n;
}

/* Index of the first op with prefix; MAXOPS when none. */
static size_t first(const struct fake *f, const char *prefix)
{
	for (size_t i = 0; i < f->nops; i++)
		if (strncmp(f->ops[i], prefix, strlen(prefix)) == 0)
			return i;
	return MAXOPS;
}

static size_t last(const struct fake *f, const char *prefix)
{
	size_t at = MAXOPS;
	for (size_t i = 0; i < f->nops; i++)
		if (strncmp(f->ops[i], prefix, strlen(prefix)) == 0)
			at = i;
	return at;
}

static const struct xm_sa *held(const struct fake *f, uint32_t src, uint32_t dst, bool in)
{
	for (size_t i = 0; i < f->nsas; i++)
		if (f->sas[i].src == src && f->sas[i].dst == dst && f->sas[i].in == in)
			return &f->sas[i];
	return NULL;
}

static int sync3(struct esp *e, uint32_t self, const struct seal_key *ring, size_t nring,
		 const uint32_t *peers, size_t np, const uint32_t *vnis, size_t nv)
{
	struct esp_want w = { self, ring, nring, peers, np, vnis, nv, false };
	return esp_sync(e, &w);
}

static void test_desired(void **unused)
{
	(void)unused;
	struct fake f = { 0 }, g = { 0 };
	struct esp *e, *eb;
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	assert_string_equal(f.ops[0], "list");
	assert_false(esp_in_sync(e));                     /* not before a sync */
	const struct seal_key ring[] = { k1, k2, k3 };
	const uint32_t peers[] = { C, B, B, A, 0 };       /* self, zero, repeats ignored */
	const uint32_t vnis[] = { 4098, 4097, 4098 };
	assert_int_equal(sync3(e, A, ring, 3, peers, 5, vnis, 3), 0);
	/* per peer: one outbound state (primary), one inbound per ring key;
	 * a policy per peer and the catch-all; the rules for 2 VNIs */
	assert_int_equal(count(&f, "sa+"), 2 + 6);
	assert_int_equal(count(&f, "sa+ 1>2 out"), 1);
	assert_int_equal(count(&f, "sa+ 2>1 in"), 3);
	assert_int_equal(count(&f, "pol+"), 3);
	assert_int_equal(count(&f, "pol+ 1>0"), 1);
	assert_int_equal(f.rules_n, 2);
	assert_int_equal(esp_count_sas(e), 8);
	assert_int_equal(esp_count_policies(e), 3);
	assert_true(esp_in_sync(e));
	/* the data path may point vxlan0 at B and C for the encrypted VNIs
	 * only: their packets are marked and held by a policy */
	assert_true(esp_guards(e, 4097, B));
	assert_true(esp_guards(e, 4098, C));
	assert_true(esp_guards(e, 4097, 0xC0000209u));   /* the catch-all blocks */
	assert_false(esp_guards(e, 4099, B));            /* not marked */
	/* states before the policies that use them, the marking rules last */
	assert_true(last(&f, "sa+") < first(&f, "pol+"));
	assert_true(last(&f, "pol+") < first(&f, "rules"));

	/* B, computing alone, seals towards A exactly what A opens with the
	 * primary: same SPI, same key */
	const uint32_t pa[] = { A };
	assert_int_equal(esp_new(&fake_ops, &g, 4789, &eb), 0);
	assert_int_equal(sync3(eb, B, ring, 3, pa, 1, vnis, 1), 0);
	const struct xm_sa *bout = held(&g, B, A, false), *ain = NULL;
	assert_non_null(bout);
	for (size_t i = 0; i < f.nsas; i++)
		if (f.sas[i].src == B && f.sas[i].dst == A && f.sas[i].spi == bout->spi)
			ain = &f.sas[i];
	assert_non_null(ain);
	assert_true(ain->in);
	assert_int_equal(ain->keylen, 20);
	assert_memory_equal(ain->key, bout->key, 20);
	assert_int_equal(bout->spi, seal_spi(k1.key, 16, B, A));

	/* the same again: nothing to do */
	size_t n = f.nops;
	assert_int_equal(sync3(e, A, ring, 3, peers, 5, vnis, 3), 0);
	assert_int_equal(f.nops, n);
	esp_free(e);
	esp_free(eb);
}

static void test_rotation(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const uint32_t peers[] = { B }, vnis[] = { 4097 };
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	const struct seal_key r1[] = { k1, k2, k3 }, r2[] = { k2, k3, k4 };
	assert_int_equal(sync3(e, A, r1, 3, peers, 1, vnis, 1), 0);
	f.nops = 0;
	/* k2 becomes the primary, k4 joins, k1 leaves */
	assert_int_equal(sync3(e, A, r2, 3, peers, 1, vnis, 1), 0);
	char out_new[48], out_old[48], in_new[48], in_old[48];
	snprintf(out_new, sizeof(out_new), "sa+ 1>2 out %08x", seal_spi(k2.key, 16, A, B));
	snprintf(out_old, sizeof(out_old), "sa- 1>2 out %08x", seal_spi(k1.key, 16, A, B));
	snprintf(in_new, sizeof(in_new), "sa+ 2>1 in %08x", seal_spi(k4.key, 16, B, A));
	snprintf(in_old, sizeof(in_old), "sa- 2>1 in %08x", seal_spi(k1.key, 16, B, A));
	assert_int_equal(f.nops, 4);
	assert_int_equal(count(&f, out_new), 1);
	assert_int_equal(count(&f, in_new), 1);
	assert_int_equal(count(&f, out_old), 1);
	assert_int_equal(count(&f, in_old), 1);
	/* make before break: the new outbound state exists before the old
	 * one goes (the kernel takes the newest), k1 is opened until then */
	assert_true(first(&f, out_new) < first(&f, out_old));
	assert_true(first(&f, in_new) < first(&f, in_old));
	assert_int_equal(esp_count_sas(e), 4);
	esp_free(e);
}

static void test_leaving(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const struct seal_key ring[] = { k1, k2 };
	const uint32_t peers[] = { B, C }, vnis[] = { 4097, 4098 };
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	assert_int_equal(sync3(e, A, ring, 2, peers, 2, vnis, 2), 0);
	f.nops = 0;
	/* C leaves: its policy, then its states; the rules stay as they are */
	assert_int_equal(sync3(e, A, ring, 2, peers, 1, vnis, 2), 0);
	assert_int_equal(count(&f, "pol- 1>3"), 1);
	assert_int_equal(count(&f, "sa- 1>3 out"), 1);
	assert_int_equal(count(&f, "sa- 3>1 in"), 2);
	assert_int_equal(count(&f, "rules"), 0);
	assert_true(first(&f, "pol-") < first(&f, "sa-"));
	/* the last encrypted network goes: unmark first, then the policies,
	 * then the states; the catch-all stays while this node has an
	 * address (it blocks only marked packets, and none are marked) */
	f.nops = 0;
	assert_int_equal(sync3(e, A, ring, 2, NULL, 0, NULL, 0), 0);
	assert_string_equal(f.ops[0], "rules 0");
	assert_int_equal(count(&f, "pol- 1>2"), 1);
	assert_int_equal(count(&f, "pol- 1>0"), 0);
	assert_true(last(&f, "pol-") < first(&f, "sa-"));
	assert_int_equal(esp_count_sas(e), 0);
	assert_int_equal(esp_count_policies(e), 1);
	esp_free(e);
}

static void test_failures(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const struct seal_key ring[] = { k1 };
	const uint32_t peers[] = { B, C }, vnis[] = { 4097 };
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	/* the state towards B fails: reported, the rest is applied; the
	 * policy for B still blocks cleartext (no state: nothing leaves) */
	snprintf(f.fail, sizeof(f.fail), "sa+ 1>2");
	f.fail_err = -EPROTONOSUPPORT;
	assert_int_equal(sync3(e, A, ring, 1, peers, 2, vnis, 1), -EPROTONOSUPPORT);
	assert_int_equal(count(&f, "pol+ 1>2"), 1);
	assert_int_equal(esp_count_sas(e), 3);
	/* next time only what is missing */
	f.nops = 0;
	assert_int_equal(sync3(e, A, ring, 1, peers, 2, vnis, 1), 0);
	assert_int_equal(f.nops, 1);
	assert_int_equal(count(&f, "sa+ 1>2 out"), 1);
	/* a failed removal is kept and retried */
	f.nops = 0;
	snprintf(f.fail, sizeof(f.fail), "pol- 1>3");
	f.fail_err = -EBUSY;
	assert_int_equal(sync3(e, A, ring, 1, peers, 1, vnis, 1), -EBUSY);
	assert_int_equal(esp_count_policies(e), 3);
	f.nops = 0;
	assert_int_equal(sync3(e, A, ring, 1, peers, 1, vnis, 1), 0);
	assert_int_equal(count(&f, "pol- 1>3"), 1);
	assert_int_equal(esp_count_policies(e), 2);
	esp_free(e);
}

static void test_no_keys(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const uint32_t peers[] = { B }, vnis[] = { 4097 };
	const struct seal_key bad = { .id = 9, .len = 15 };
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	/* no usable key: no states, but the policies and rules are there, so
	 * the encrypted VNI's packets are dropped rather than sent in clear */
	assert_int_equal(sync3(e, A, &bad, 1, peers, 1, vnis, 1), 0);
	assert_int_equal(count(&f, "sa+"), 0);
	assert_int_equal(count(&f, "pol+"), 2);
	assert_int_equal(f.rules_n, 1);
	esp_free(e);
}

static void test_adopt(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const struct seal_key ring[] = { k1, k2 };
	const uint32_t peers[] = { B }, vnis[] = { 4097 };
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	assert_int_equal(sync3(e, A, ring, 2, peers, 1, vnis, 1), 0);
	esp_free(e);
	/* a restarted netd adopts what is there: the same sync touches no
	 * state or policy (their sequence numbers go on), it only writes the
	 * rules again (it cannot know them), in one nft transaction */
	f.nops = 0;
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	assert_int_equal(esp_count_sas(e), 3);
	assert_int_equal(esp_count_policies(e), 2);
	assert_int_equal(sync3(e, A, ring, 2, peers, 1, vnis, 1), 0);
	assert_int_equal(count(&f, "sa"), 0);
	assert_int_equal(count(&f, "pol"), 0);
	assert_int_equal(count(&f, "rules 1"), 1);
	/* and removes an adopted peer's objects when it is gone */
	assert_int_equal(sync3(e, A, ring, 2, NULL, 0, vnis, 1), 0);
	assert_int_equal(count(&f, "pol- 1>2"), 1);
	assert_int_equal(count(&f, "sa-"), 3);
	esp_free(e);
}

static void test_two_phases(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const struct seal_key ring[] = { k1 };
	const uint32_t both[] = { B, C }, onlyc[] = { C }, v12[] = { 4097, 4098 }, v2[] = { 4098 };
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	assert_int_equal(sync3(e, A, ring, 1, both, 2, v12, 2), 0);
	f.nops = 0;
	/* before the data path changes: additions only; VNI 4097 stays
	 * marked and B's objects stay while vxlan0 may still send there */
	struct esp_want w = { A, ring, 1, onlyc, 1, v2, 1, true };
	assert_int_equal(esp_sync(e, &w), 0);
	assert_int_equal(f.nops, 0);
	assert_true(esp_guards(e, 4097, B));
	/* after it: the full sync unmarks 4097 and removes B's objects */
	assert_int_equal(sync3(e, A, ring, 1, onlyc, 1, v2, 1), 0);
	assert_string_equal(f.ops[0], "rules 1");
	assert_int_equal(count(&f, "pol- 1>2"), 1);
	assert_false(esp_guards(e, 4097, B));
	assert_true(esp_guards(e, 4098, C));
	esp_free(e);
}

static int f_rules_fail(void *ctx, uint16_t dport, const uint32_t *vnis, size_t n)
{
	(void)dport;
	(void)vnis;
	note(ctx, "rules %zu refused", n);
	return -EIO;
}

static void test_guards(void **unused)
{
	(void)unused;
	struct fake f = { 0 };
	struct esp *e;
	const struct seal_key ring[] = { k1 };
	const uint32_t peers[] = { B }, vnis[] = { 4097 };
	/* rules refused: nothing is marked, so no peer is guarded */
	const struct esp_ops no_rules = { f_sa, f_policy, f_flush, f_list, f_rules_fail };
	assert_int_equal(esp_new(&no_rules, &f, 4789, &e), 0);
	assert_int_equal(sync3(e, A, ring, 1, peers, 1, vnis, 1), -EIO);
	assert_false(esp_in_sync(e));
	assert_false(esp_guards(e, 4097, B));
	esp_free(e);
	/* marked, but neither B's policy nor the catch-all went in */
	memset(&f, 0, sizeof(f));
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	snprintf(f.fail, sizeof(f.fail), "pol+ 1>2");
	f.fail_err = -ENOBUFS;
	assert_int_equal(sync3(e, A, ring, 1, peers, 1, vnis, 1), -ENOBUFS);
	assert_true(esp_guards(e, 4097, B));       /* the catch-all holds it */
	esp_free(e);
	memset(&f, 0, sizeof(f));
	assert_int_equal(esp_new(&fake_ops, &f, 4789, &e), 0);
	snprintf(f.fail, sizeof(f.fail), "pol+ 1>0");
	f.fail_err = -ENOBUFS;
	assert_int_equal(sync3(e, A, ring, 1, peers, 1, vnis, 1), -ENOBUFS);
	assert_true(esp_guards(e, 4097, B));       /* B's own policy holds it */
	assert_false(esp_guards(e, 4097, C));      /* C: nothing would */
	esp_free(e);
}

/* ---- the real ops, in a namespace of our own ---- */

static int count_ours(struct nl_sock *sk)
{
	struct nl_cache *c = NULL;
	if (xfrmnl_sp_alloc_cache(sk, &c) < 0)
		return -1;
	int n = 0;
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		unsigned v = 0, m = 0;
		if (xfrmnl_sp_get_mark((struct xfrmnl_sp *)o, &m, &v) == 0 && v == XM_MARK)
			n++;
	}
	nl_cache_free(c);
	return n;
}

/* In the child: 0, or the line that failed; what was skipped on stdout. */
static int kernel_child(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return 1;
	void *ctx = esp_kernel_ctx_new();
	struct nl_sock *sk = nl_socket_alloc();
	if (!ctx || !sk || nl_connect(sk, NETLINK_XFRM) < 0)
		return 2;
	struct esp *e;
	if (esp_new(&esp_kernel_ops, ctx, 4789, &e) < 0)
		return 3;
	const struct seal_key ring[] = { k1, k2 };
	const uint32_t peers[] = { B, C }, vnis[] = { 4097 };
	char why[128] = "";
	int esp = esp_probe(why, sizeof(why));
	int r = sync3(e, A, ring, 2, peers, 2, vnis, 1);
	if (esp > 0 ? r < 0 || esp_count_sas(e) != 6 : r == 0)
		return 4;
	if (esp <= 0)
		printf("states skipped (%s); ", why);
	if (esp_count_policies(e) != 3 || count_ours(sk) != 3) {
		printf("policies: %zu installed, %d in the kernel\n", esp_count_policies(e),
		       count_ours(sk));
		return 5;
	}
	if (system("nft list table ip swarm_esp | grep -q 'ipsec missing drop'") != 0)
		return 6;
	/* a restarted provider adopts ours; a policy that is not ours is left */
	if (system("ip xfrm policy add src 192.0.2.1 dst 192.0.2.9 dir out action block") != 0)
		return 7;
	esp_free(e);
	void *ctx2 = esp_kernel_ctx_new();
	if (!ctx2 || esp_new(&esp_kernel_ops, ctx2, 4789, &e) < 0 || esp_count_policies(e) != 3)
		return 8;
	/* a node that leaves kernel ESP: ours and the table go, nothing else */
	if (esp_kernel_ops.flush(ctx2) < 0 || count_ours(sk) != 0 ||
	    system("ip xfrm policy list | grep -q 192.0.2.9") != 0 ||
	    system("nft list table ip swarm_esp > /dev/null 2>&1") == 0)
		return 9;
	printf("policies, catch-all and rules installed, adopted by a new provider, flushed by mark\n");
	esp_free(e);
	esp_kernel_ctx_free(ctx);
	esp_kernel_ctx_free(ctx2);
	nl_socket_free(sk);
	return 0;
}

static void test_kernel(void **unused)
{
	(void)unused;
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int r = kernel_child();
		fflush(stdout);
		_exit(r);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desired),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_leaving),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_no_keys),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_two_phases),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
