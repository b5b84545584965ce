/* netd gossip (gossip.c) end to end on loopback: instances in one process
 * and one libev loop, talking memberlist over real UDP/TCP sockets on
 * 127.0.0.1 with kernel-chosen ports. Join by push/pull, plaintext and
 * encrypted; a wrong key never joins; a freed instance is detected dead
 * (fast probe timings); garbage datagrams are counted and survived. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "gossip.h"
#include "log.h"
#include "swim.h"

#define MS 1000000LL

struct loop_ctx {
	struct ev_loop *loop;
	bool (*pred)(void *arg);
	void *arg;
	bool met;
};

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct loop_ctx *c = w->data;
	(void)revents;
	if (c->pred && c->pred(c->arg)) {
		c->met = true;
		ev_break(loop, EVBREAK_ONE);
	}
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until pred(arg) holds or secs pass; returns pred's state.
 * pred NULL: just run for secs. */
static bool run_until(struct ev_loop *loop, bool (*pred)(void *), void *arg, double secs)
{
	struct loop_ctx c = { loop, pred, arg, false };
	ev_timer chk, dl;
	ev_timer_init(&chk, check_cb, 0.02, 0.02);
	chk.data = &c;
	ev_timer_init(&dl, deadline_cb, secs, 0);
	ev_timer_start(loop, &chk);
	ev_timer_start(loop, &dl);
	ev_run(loop, 0);
	ev_timer_stop(loop, &chk);
	ev_timer_stop(loop, &dl);
	return c.met || (pred && pred(arg));
}

static struct gossip *mk(struct ev_loop *loop, const char *name, const struct gossip_keyring *kr,
			 bool fast)
{
	struct swim_config sc;
	swim_config_lan(&sc);
	if (fast) {
		sc.probe_interval = 100 * MS;
		sc.probe_timeout = 50 * MS;
		sc.gossip_interval = 50 * MS;
	}
	struct gossip_cfg gc = {
		.node_name = name,
		.bind_addr = "127.0.0.1",
		.bind_port = 0,
		.kr = kr,
		.swim = &sc,
		.tcp_timeout = 1000 * MS,
	};
	int err = 0;
	struct gossip *g = gossip_new(loop, &gc, &err);
	assert_non_null(g);
	return g;
}

static void join(struct gossip *g, const struct gossip *seed)
{
	char s[32];
	snprintf(s, sizeof(s), "127.0.0.1:%u", gossip_port(seed));
	assert_int_equal(gossip_join(g, s), 0);
}

struct pair {
	struct gossip *a, *b;
};

static bool both_two(void *arg)
{
	struct pair *p = arg;
	return swim_num_alive(gossip_swim(p->a)) == 2 && swim_num_alive(gossip_swim(p->b)) == 2;
}

static bool both_three(void *arg)
{
	struct pair *p = arg;
	return swim_num_alive(gossip_swim(p->a)) == 3 && swim_num_alive(gossip_swim(p->b)) == 3;
}

static void key_ring(struct gossip_keyring *kr, uint8_t fill)
{
	uint8_t k[16];
	memset(kr, 0, sizeof(*kr));
	memset(k, fill, sizeof(k));
	assert_int_equal(gossip_keyring_add(kr, k, sizeof(k)), 0);
}

static void test_converge_plain(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct pair p = { mk(loop, "a", NULL, false), mk(loop, "b", NULL, false) };
	join(p.b, p.a);
	assert_true(run_until(loop, both_two, &p, 3.0));
	char *js = gossip_members_json(p.a);
	assert_non_null(strstr(js, "\"Name\":\"b\",\"Addr\":\"127.0.0.1\""));
	assert_non_null(strstr(js, "\"Status\":\"alive\""));
	free(js);
	/* a few probe rounds: acks flow, nobody gets suspected */
	run_until(loop, NULL, NULL, 1.2);
	struct swim_node_view v;
	assert_int_equal(swim_node_get(gossip_swim(p.a), "b", &v), 0);
	assert_int_equal(v.state, SWIM_ALIVE);
	assert_int_equal(swim_node_get(gossip_swim(p.b), "a", &v), 0);
	assert_int_equal(v.state, SWIM_ALIVE);
	assert_true(gossip_stats(p.a)->udp_in > 0);
	assert_int_equal(gossip_stats(p.a)->udp_bad, 0);
	gossip_free(p.a);
	gossip_free(p.b);
	ev_loop_destroy(loop);
}

static void test_converge_encrypted_three(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct gossip_keyring kr;
	key_ring(&kr, 0x42);
	struct pair p = { mk(loop, "a", &kr, false), mk(loop, "b", &kr, false) };
	struct gossip *c = mk(loop, "c", &kr, false);
	join(p.b, p.a);
	assert_true(run_until(loop, both_two, &p, 3.0));
	/* c joins b and learns a from b's push/pull; a hears of c by gossip */
	join(c, p.b);
	struct pair q = { p.a, c };
	assert_true(run_until(loop, both_three, &q, 3.0));
	assert_int_equal(gossip_stats(p.a)->udp_bad, 0);
	gossip_free(c);
	gossip_free(p.a);
	gossip_free(p.b);
	ev_loop_destroy(loop);
}

static void test_wrong_key(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct gossip_keyring k1, k2;
	key_ring(&k1, 0x01);
	key_ring(&k2, 0x02);
	struct pair p = { mk(loop, "a", &k1, false), mk(loop, "b", &k2, false) };
	struct gossip *c = mk(loop, "c", NULL, false); /* plaintext */
	join(p.b, p.a);
	join(c, p.a);
	assert_false(run_until(loop, both_two, &p, 0.6));
	assert_int_equal(swim_num_alive(gossip_swim(p.a)), 1);
	assert_int_equal(swim_num_alive(gossip_swim(c)), 1);
	assert_true(gossip_stats(p.a)->tcp_bad >= 2);
	gossip_free(c);
	gossip_free(p.a);
	gossip_free(p.b);
	ev_loop_destroy(loop);
}

static bool b_dead(void *arg)
{
	struct gossip *a = arg;
	struct swim_node_view v;
	return swim_node_get(gossip_swim(a), "b", &v) == 0 && v.state == SWIM_DEAD;
}

static void test_failure_detected(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	struct pair p = { mk(loop, "a", NULL, true), mk(loop, "b", NULL, true) };
	join(p.b, p.a);
	assert_true(run_until(loop, both_two, &p, 3.0));
	run_until(loop, NULL, NULL, 0.5);
	assert_false(b_dead(p.a));
	gossip_free(p.b);
	assert_true(run_until(loop, b_dead, p.a, 3.0));
	gossip_free(p.a);
	ev_loop_destroy(loop);
}

static void test_garbage_udp(void **state)
{
	static const uint8_t junk[][8] = {
		{ 0x07, 0xff, 0x00 },             /* compound claiming 255 parts */
		{ 0x0c, 1, 2, 3, 4, 0x00 },       /* bad CRC */
		{ 0x04, 0x93, 0xff },             /* alive, not a map */
		{ 0x09, 0x81, 0xa4, 'A', 'l' },   /* cut compress */
		{ 0xf4, 0x00 },                   /* zero-length label */
		{ 0x63 },                         /* unknown type */
	};
	struct ev_loop *loop = ev_loop_new(0);
	struct gossip *a = mk(loop, "a", NULL, false);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(gossip_port(a)) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		sendto(fd, junk[i], sizeof(junk[i]), 0, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	run_until(loop, NULL, NULL, 0.3);
	assert_int_equal(gossip_stats(a)->udp_in, sizeof(junk) / sizeof(junk[0]));
	assert_true(gossip_stats(a)->udp_bad >= 5);
	/* still serving */
	struct gossip *b = mk(loop, "b", NULL, false);
	struct pair p = { a, b };
	join(b, a);
	assert_true(run_until(loop, both_two, &p, 3.0));
	gossip_free(b);
	gossip_free(a);
	ev_loop_destroy(loop);
}

int main(void)
{
	log_init("test_gossip_loop", LOG_LVL_ERR, 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converge_plain),
		cmocka_unit_test(test_converge_encrypted_three),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_failure_detected),
		cmocka_unit_test(test_garbage_udp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
