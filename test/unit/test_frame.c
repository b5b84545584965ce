/* Framing: the pure parser, and conn's handling of short reads, oversize
 * frames and garbage over a real socket pair on libev. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "conn.h"
#include "frame.h"
#include "util.h"

static void test_parse_short(void **state)
{
	uint8_t buf[8] = { 0, 0, 0, 4, 'a', 'b', 'c', 'd' };
	size_t n = 0;
	for (size_t len = 0; len < 8; len++)
		assert_int_equal(frame_parse(buf, len, 100, &n), 0);
	assert_int_equal(frame_parse(buf, 8, 100, &n), 1);
	assert_int_equal(n, 4);
}

static void test_parse_oversize(void **state)
{
	uint8_t buf[4] = { 0xff, 0xff, 0xff, 0xff };
	size_t n;
	assert_int_equal(frame_parse(buf, 4, FRAME_MAX_DEFAULT, &n), -EMSGSIZE);
	uint8_t b2[4] = { 0, 0, 0, 101 };
	assert_int_equal(frame_parse(b2, 4, 100, &n), -EMSGSIZE);
	uint8_t b3[4] = { 0, 0, 0, 100 };
	assert_int_equal(frame_parse(b3, 4, 100, &n), 0);
}

static void test_header_roundtrip(void **state)
{
	uint8_t h[4];
	size_t n;
	frame_put_header(h, 0x01020304);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[3], 4);
	uint8_t z[4];
	frame_put_header(z, 0);
	assert_int_equal(frame_parse(z, 4, 10, &n), 1);
	assert_int_equal(n, 0);
}

/* ---- conn over a socket pair ---- */

struct rx {
	int frames;
	size_t last_len;
	char last[64];
	int closed;
	int close_err;
	int reject;          /* on_frame returns -EPROTO */
};

static int rx_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct rx *rx = conn_data(c);
	rx->frames++;
	rx->last_len = len;
	memcpy(rx->last, p, len < sizeof(rx->last) ? len : sizeof(rx->last) - 1);
	rx->last[len < sizeof(rx->last) ? len : sizeof(rx->last) - 1] = '\0';
	return rx->reject ? -EPROTO : 0;
}

static void rx_close(struct conn *c, int err)
{
	struct rx *rx = conn_data(c);
	rx->closed = 1;
	rx->close_err = err;
}

static const struct conn_ops rx_ops = { .on_frame = rx_frame, .on_close = rx_close };

static void run_loop(struct ev_loop *loop, double secs)
{
	int64_t end = now_mono_ns() + (int64_t)(secs * 1e9);
	while (now_mono_ns() < end)
		ev_run(loop, EVRUN_NOWAIT);
}

static void test_conn_short_reads(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct rx rx = { 0 };
	struct conn *c = conn_new(loop, sv[0], NULL, true, 1024, &rx_ops, &rx);
	conn_send(c, "x", 0); /* no-op frame to start I/O watchers */
	/* Dribble one frame a byte at a time, then two frames in one write. */
	const uint8_t f[] = { 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o' };
	for (size_t i = 0; i < sizeof(f); i++) {
		assert_int_equal(write(sv[1], &f[i], 1), 1);
		run_loop(loop, 0.005);
	}
	assert_int_equal(rx.frames, 1);
	assert_string_equal(rx.last, "hello");
	const uint8_t two[] = { 0, 0, 0, 1, 'a', 0, 0, 0, 2, 'b', 'c' };
	assert_int_equal(write(sv[1], two, sizeof(two)), (ssize_t)sizeof(two));
	run_loop(loop, 0.02);
	assert_int_equal(rx.frames, 3);
	assert_string_equal(rx.last, "bc");
	assert_int_equal(rx.closed, 0);
	/* The peer gets the empty frame we queued. */
	uint8_t back[4];
	assert_int_equal(read(sv[1], back, 4), 4);
	conn_close(c, 0);
	run_loop(loop, 0.01);
	assert_int_equal(rx.closed, 1);
	close(sv[1]);
	ev_loop_destroy(loop);
}

static void test_conn_oversize_and_garbage(void **state)
{
	struct ev_loop *loop = ev_loop_new(0);
	int a[2], b[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	struct rx ra = { 0 }, rb = { .reject = 1 };
	conn_new(loop, a[0], NULL, true, 1024, &rx_ops, &ra);
	struct conn *cb = conn_new(loop, b[0], NULL, true, 1024, &rx_ops, &rb);
	(void)cb;
	/* conn_new does not start reading until an event or a send: poke it. */
	const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 1, 2, 3 };
	assert_int_equal(write(a[1], huge, sizeof(huge)), (ssize_t)sizeof(huge));
	const uint8_t bad[] = { 0, 0, 0, 3, 0xde, 0xad, 0xbe };
	assert_int_equal(write(b[1], bad, sizeof(bad)), (ssize_t)sizeof(bad));
	run_loop(loop, 0.05);
	/* Oversize: closed without a frame delivered. Garbage rejected by the
	 * handler: closed after it. */
	assert_int_equal(ra.frames, 0);
	assert_int_equal(ra.closed, 1);
	assert_int_equal(ra.close_err, -EMSGSIZE);
	assert_int_equal(rb.frames, 1);
	assert_int_equal(rb.closed, 1);
	/* Both peers see EOF. */
	uint8_t x;
	assert_int_equal(read(a[1], &x, 1), 0);
	assert_int_equal(read(b[1], &x, 1), 0);
	close(a[1]);
	close(b[1]);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_short),
		cmocka_unit_test(test_parse_oversize),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_conn_short_reads),
		cmocka_unit_test(test_conn_oversize_and_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
