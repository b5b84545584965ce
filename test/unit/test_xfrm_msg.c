/* The kernel ESP path's messages (netd/xfrm_msg.c) and keys (seal.c
 * seal_esp_key): every field of the SA and policy messages decoded back;
 * the nftables rules; and, in a network namespace of its own, the kernel
 * takes the policy (and the SA where it has ESP; skipped with the
 * kernel's reason where it has not) and deletes them again by our mark. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netd/seal.h"
#include "netd/xfrm_msg.h"

static const uint8_t ring_key[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
#define A 0xC0000201u   /* 192.0.2.1 */
#define B 0xC0000202u   /* 192.0.2.2 */

static void make_sa(struct xm_sa *sa, uint32_t src, uint32_t dst)
{
	memset(sa, 0, sizeof(*sa));
	sa->src = src;
	sa->dst = dst;
	sa->spi = seal_spi(ring_key, sizeof(ring_key), src, dst);
	sa->keylen = sizeof(ring_key) + 4;
	assert_int_equal(seal_esp_key(ring_key, sizeof(ring_key), src, dst, sa->key), 0);
	sa->dport = 4789;
}

/* The attribute type of msg[len] (after the fixed part of fixed bytes). */
static const struct nlattr *find_attr(const uint8_t *msg, size_t len, size_t fixed, uint16_t type)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(fixed);
	while (off + NLA_HDRLEN <= len) {
		const struct nlattr *a = (const void *)(msg + off);
		if (a->nla_len < NLA_HDRLEN)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)   /* libnl flags nests */
			return a;
		off += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

static void check_mark(const uint8_t *m, size_t n, size_t fixed)
{
	const struct nlattr *a = find_attr(m, n, fixed, XFRMA_MARK);
	assert_non_null(a);
	const struct xfrm_mark *mk = (const void *)((const uint8_t *)a + NLA_HDRLEN);
	assert_int_equal(mk->v, XM_MARK);
	assert_int_equal(mk->m, XM_MARK_MASK);
}

static void test_keys(void **unused)
{
	(void)unused;
	uint8_t ab[20], ba[20], ab2[20];
	assert_int_equal(seal_esp_key(ring_key, 16, A, B, ab), 0);
	assert_int_equal(seal_esp_key(ring_key, 16, B, A, ba), 0);
	assert_int_equal(seal_esp_key(ring_key, 16, A, B, ab2), 0);
	assert_memory_equal(ab, ab2, 20);          /* both ends derive the same */
	assert_memory_not_equal(ab, ba, 20);       /* each direction its own */
	assert_int_equal(seal_esp_key(ring_key, 15, A, B, ab), -EINVAL);
	assert_int_equal(seal_esp_key(ring_key, 16, A, A, ab), -EINVAL);
}

static void test_sa_msg(void **unused)
{
	(void)unused;
	struct xm_sa sa;
	uint8_t m[1024];
	make_sa(&sa, A, B);
	int n = xm_sa_msg(m, sizeof(m), &sa, 0, 7);
	assert_true(n > 0);
	const struct nlmsghdr *h = (const void *)m;
	assert_int_equal(h->nlmsg_len, n);
	assert_int_equal(h->nlmsg_type, XFRM_MSG_NEWSA);
	assert_int_equal(h->nlmsg_seq, 7);
	assert_true(h->nlmsg_flags & NLM_F_EXCL);
	const struct xfrm_usersa_info *u = NLMSG_DATA(h);
	assert_int_equal(ntohl(u->id.spi), sa.spi);
	assert_int_equal(u->id.proto, IPPROTO_ESP);
	assert_int_equal(ntohl(u->id.daddr.a4), B);
	assert_int_equal(ntohl(u->saddr.a4), A);
	assert_int_equal(u->mode, XFRM_MODE_TRANSPORT);
	assert_int_equal(u->reqid, XM_REQID);
	assert_int_equal(u->sel.proto, IPPROTO_UDP);
	assert_int_equal(ntohs(u->sel.dport), 4789);
	assert_int_equal(u->sel.prefixlen_d, 32);
	const struct nlattr *a = find_attr(m, (size_t)n, sizeof(*u), XFRMA_ALG_AEAD);
	assert_non_null(a);
	const struct xfrm_algo_aead *al = (const void *)((const uint8_t *)a + NLA_HDRLEN);
	assert_string_equal(al->alg_name, "rfc4106(gcm(aes))");
	assert_int_equal(al->alg_key_len, 160);
	assert_int_equal(al->alg_icv_len, 128);
	assert_memory_equal(al->alg_key, sa.key, 20);
	check_mark(m, (size_t)n, sizeof(*u));
	/* 64-bit sequence numbers, the window in the ESN attribute */
	assert_true(u->flags & XFRM_STATE_ESN);
	assert_int_equal(u->replay_window, 0);
	a = find_attr(m, (size_t)n, sizeof(*u), XFRMA_REPLAY_ESN_VAL);
	assert_non_null(a);
	const struct xfrm_replay_state_esn *esn = (const void *)((const uint8_t *)a + NLA_HDRLEN);
	assert_int_equal(esn->replay_window, XM_REPLAY_WINDOW);
	assert_int_equal(esn->bmp_len, XM_REPLAY_WINDOW / 32);
	assert_int_equal(esn->oseq, 0);

	n = xm_sa_msg(m, sizeof(m), &sa, 1, 8);
	assert_true(n > 0);
	assert_int_equal(h->nlmsg_type, XFRM_MSG_DELSA);
	const struct xfrm_usersa_id *id = NLMSG_DATA(h);
	assert_int_equal(ntohl(id->spi), sa.spi);
	assert_int_equal(id->proto, IPPROTO_ESP);
	check_mark(m, (size_t)n, sizeof(*id));

	/* an inbound state has no mark: arriving packets carry none */
	sa.in = true;
	n = xm_sa_msg(m, sizeof(m), &sa, 0, 9);
	assert_true(n > 0);
	assert_null(find_attr(m, (size_t)n, sizeof(*u), XFRMA_MARK));
	n = xm_sa_msg(m, sizeof(m), &sa, 1, 10);
	assert_null(find_attr(m, (size_t)n, sizeof(*id), XFRMA_MARK));
	sa.in = false;

	assert_int_equal(xm_sa_msg(m, 40, &sa, 0, 1), -ENOSPC);
	sa.keylen = 16;
	assert_int_equal(xm_sa_msg(m, sizeof(m), &sa, 0, 1), -EINVAL);
}

static void test_policy_msg(void **unused)
{
	(void)unused;
	struct xm_sa sa;
	uint8_t m[1024];
	make_sa(&sa, A, B);
	int n = xm_policy_msg(m, sizeof(m), &sa, 0, 3);
	assert_true(n > 0);
	const struct nlmsghdr *h = (const void *)m;
	assert_int_equal(h->nlmsg_type, XFRM_MSG_NEWPOLICY);
	const struct xfrm_userpolicy_info *p = NLMSG_DATA(h);
	assert_int_equal(p->dir, XFRM_POLICY_OUT);
	assert_int_equal(p->action, XFRM_POLICY_ALLOW);
	assert_int_equal(ntohl(p->sel.saddr.a4), A);
	assert_int_equal(ntohs(p->sel.dport), 4789);
	const struct nlattr *a = find_attr(m, (size_t)n, sizeof(*p), XFRMA_TMPL);
	assert_non_null(a);
	const struct xfrm_user_tmpl *t = (const void *)((const uint8_t *)a + NLA_HDRLEN);
	assert_int_equal(t->id.proto, IPPROTO_ESP);
	assert_int_equal(t->reqid, XM_REQID);
	assert_int_equal(t->mode, XFRM_MODE_TRANSPORT);
	check_mark(m, (size_t)n, sizeof(*p));
	n = xm_policy_msg(m, sizeof(m), &sa, 1, 4);
	assert_int_equal(h->nlmsg_type, XFRM_MSG_DELPOLICY);
	check_mark(m, (size_t)n, sizeof(struct xfrm_userpolicy_id));
}

static void test_nft_rules(void **unused)
{
	(void)unused;
	uint32_t v[] = { 4097, 4098 };
	char *s = xm_nft_rules("swarm_esp", 4789, v, 2);
	assert_non_null(s);
	assert_non_null(strstr(s, "add rule ip swarm_esp out udp dport 4789 @th,96,24 { 4097, 4098 } "
				  "meta mark set mark or 0x53570000\n"));
	assert_non_null(strstr(s, "add rule ip swarm_esp in udp dport 4789 @th,96,24 { 4097, 4098 } "
				  "meta ipsec missing drop\n"));
	free(s);
	s = xm_nft_rules("swarm_esp", 4789, NULL, 0);
	assert_null(strstr(s, "add rule"));
	free(s);
	assert_null(xm_nft_rules("bad name", 4789, v, 2));
	/* many 8-digit VNIs: both rules whole (the set is written twice) */
	static uint32_t many[500];
	for (size_t i = 0; i < 500; i++)
		many[i] = 16000000 + (uint32_t)i;
	s = xm_nft_rules("swarm_esp", 4789, many, 500);
	assert_non_null(s);
	assert_non_null(strstr(s, "16000499 } meta mark set"));
	assert_non_null(strstr(s, "16000499 } meta ipsec missing drop\n"));
	free(s);
}

/* Sends msg[n] on a NETLINK_XFRM socket; the kernel's answer (0 or
 * -errno). */
static int xfrm_send(const uint8_t *msg, int n)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int r = -EPROTO;
	if (sendto(fd, msg, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)) == n) {
		uint8_t buf[1024];
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		const struct nlmsghdr *h = (const void *)buf;
		if (got >= (ssize_t)(NLMSG_HDRLEN + sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR)
			r = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	close(fd);
	return r;
}

/* In a child in its own network namespace (nothing of the host's is
 * touched): the policy in and out; the SA where the kernel has ESP.
 * Exit 0 = all done, 77 = the SA refused (ESP missing), else failure. */
static int kernel_child(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return 2;
	struct xm_sa sa;
	uint8_t m[1024];
	make_sa(&sa, A, B);
	if (xfrm_send(m, xm_policy_msg(m, sizeof(m), &sa, 0, 1)) != 0)
		return 3;
	if (xfrm_send(m, xm_policy_msg(m, sizeof(m), &sa, 0, 2)) != -EEXIST)
		return 4;
	if (xfrm_send(m, xm_policy_msg(m, sizeof(m), &sa, 1, 3)) != 0)
		return 5;
	if (xfrm_send(m, xm_policy_msg(m, sizeof(m), &sa, 1, 4)) != -ENOENT)
		return 6;
	int r = xfrm_send(m, xm_sa_msg(m, sizeof(m), &sa, 0, 5));
	if (r != 0) {
		fprintf(stderr, "SA refused by this kernel: %s\n", strerror(-r));
		return 77;
	}
	return xfrm_send(m, xm_sa_msg(m, sizeof(m), &sa, 1, 6)) == 0 ? 0 : 7;
}

static void test_kernel(void **unused)
{
	(void)unused;
	if (geteuid() != 0)
		skip();
	pid_t pid = fork();
	if (pid == 0)
		_exit(kernel_child());
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		fprintf(stderr, "policy added and deleted by mark; SA part skipped: no ESP in this kernel\n");
		return;
	}
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_sa_msg),
		cmocka_unit_test(test_policy_msg),
		cmocka_unit_test(test_nft_rules),
		cmocka_unit_test(test_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
