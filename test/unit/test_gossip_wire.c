/* Unit tests for the memberlist codec: msgpack encodings byte for byte
 * (two captured from serf, the rest written from the go-msgpack dialect
 * rules of memberlist.md §1.3), compound/CRC/LZW/encryption layering, and
 * rejection of truncated, forged, wrong-key and absurd input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gossip_crypto.h"
#include "gossip_pack.h"
#include "gossip_wire.h"
#include "lzw.h"

/* Byte string literal and its length (without the trailing NUL). */
#define LIT(s) (const uint8_t *)(s), (sizeof(s) - 1)

static void dump(const char *what, const uint8_t *p, size_t n)
{
	fprintf(stderr, "%s (%zu):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n");
}

static void expect_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	if (got_len != want_len || memcmp(got, want, want_len) != 0) {
		dump("got ", got, got_len);
		dump("want", want, want_len);
		fail_msg("byte strings differ");
	}
}

#define EXPECT_BUF(b, s) expect_bytes((b)->data, (b)->len, LIT(s))

static const uint8_t vsn_serf[6] = { 1, 5, 2, 2, 5, 4 };
static const uint8_t ip_lo3[4] = { 127, 0, 0, 3 };
static const uint8_t ip_lo1[4] = { 127, 0, 0, 1 };

static struct gossip_bytes view(const void *p, size_t n)
{
	struct gossip_bytes b = { p, n };
	return b;
}

/* ---- captured from serf 0.9.4 (memberlist.md §1.3) ---- */

#define CAPTURED_ALIVE \
	"\x0c\x8a\x55\x19\x32" "\x04\x86" \
	"\xa4" "Addr" "\xa4\x7f\x00\x00\x03" \
	"\xab" "Incarnation" "\x01" \
	"\xa4" "Meta" "\xc0" \
	"\xa4" "Node" "\xa5" "cnode" \
	"\xa4" "Port" "\xcd\x46\x1a" \
	"\xa3" "Vsn" "\xa6\x01\x05\x02\x02\x05\x04"

#define CAPTURED_PING \
	"\x00\x85" \
	"\xa4" "Node" "\xa5" "cnode" \
	"\xa5" "SeqNo" "\x1b" \
	"\xaa" "SourceAddr" "\xa4\x7f\x00\x00\x01" \
	"\xaa" "SourceNode" "\xa1" "a" \
	"\xaa" "SourcePort" "\xcd\x46\x1a"

static void test_captured_alive(void **state)
{
	(void)state;
	struct gossip_alive a = {
		.incarnation = 1, .node = gossip_str("cnode"), .addr = view(ip_lo3, 4),
		.port = 17946, .meta = { NULL, 0 }, .vsn = view(vsn_serf, 6),
	};
	struct gossip_buf m, b;
	gossip_buf_init(&m, 0);
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_encode_alive(&m, &a), 0);
	assert_int_equal(gossip_pack_crc_add(&b, m.data, m.len), 0);
	assert_int_equal(b.len, 66);
	EXPECT_BUF(&b, CAPTURED_ALIVE);

	/* And back. */
	const uint8_t *msg;
	size_t mlen;
	struct gossip_msg d;
	assert_int_equal(gossip_pack_crc_check(LIT(CAPTURED_ALIVE), &msg, &mlen), 1);
	assert_int_equal(gossip_decode_msg(msg, mlen, &d), 0);
	assert_int_equal(d.type, GOSSIP_ALIVE);
	assert_int_equal(d.u.alive.incarnation, 1);
	assert_true(gossip_bytes_eq(d.u.alive.node, "cnode"));
	assert_int_equal(d.u.alive.addr.len, 4);
	assert_memory_equal(d.u.alive.addr.p, ip_lo3, 4);
	assert_int_equal(d.u.alive.port, 17946);
	assert_null(d.u.alive.meta.p);
	assert_int_equal(d.u.alive.vsn.len, 6);
	assert_memory_equal(d.u.alive.vsn.p, vsn_serf, 6);
	gossip_buf_free(&m);
	gossip_buf_free(&b);
}

static void test_captured_ping(void **state)
{
	(void)state;
	struct gossip_ping p = {
		.seq_no = 27, .node = gossip_str("cnode"), .source_addr = view(ip_lo1, 4),
		.source_port = 17946, .source_node = gossip_str("a"),
	};
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_encode_ping(&b, &p), 0);
	assert_int_equal(b.len, 63);
	EXPECT_BUF(&b, CAPTURED_PING);

	struct gossip_msg d;
	assert_int_equal(gossip_decode_msg(LIT(CAPTURED_PING), &d), 0);
	assert_int_equal(d.type, GOSSIP_PING);
	assert_int_equal(d.u.ping.seq_no, 27);
	assert_true(gossip_bytes_eq(d.u.ping.node, "cnode"));
	assert_true(gossip_bytes_eq(d.u.ping.source_node, "a"));
	assert_int_equal(d.u.ping.source_port, 17946);
	assert_memory_equal(d.u.ping.source_addr.p, ip_lo1, 4);
	gossip_buf_free(&b);
}

/* ---- the other messages, expected bytes written from §1.3 ---- */

static void test_encode_ping_minimal(void **state)
{
	(void)state;
	struct gossip_ping p = { .seq_no = 300, .node = gossip_str("n1") };
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_encode_ping(&b, &p), 0);
	/* omitempty Source* fields vanish; 300 is cd 01 2c. */
	EXPECT_BUF(&b, "\x00\x82" "\xa4" "Node" "\xa2" "n1" "\xa5" "SeqNo" "\xcd\x01\x2c");
	gossip_buf_free(&b);
}

static void test_encode_indirect_ping(void **state)
{
	(void)state;
	static const uint8_t tgt[4] = { 192, 0, 2, 7 }, src[4] = { 198, 51, 100, 1 };
	struct gossip_indirect_ping m = {
		.seq_no = 70000, .target = view(tgt, 4), .port = 7946, .node = gossip_str("n2"),
		.nack = true, .source_addr = view(src, 4), .source_port = 7946,
		.source_node = gossip_str("me"),
	};
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_encode_indirect_ping(&b, &m), 0);
	EXPECT_BUF(&b, "\x01\x88"
		   "\xa4" "Nack" "\xc3"
		   "\xa4" "Node" "\xa2" "n2"
		   "\xa4" "Port" "\xcd\x1f\x0a"
		   "\xa5" "SeqNo" "\xce\x00\x01\x11\x70"
		   "\xaa" "SourceAddr" "\xa4\xc6\x33\x64\x01"
		   "\xaa" "SourceNode" "\xa2" "me"
		   "\xaa" "SourcePort" "\xcd\x1f\x0a"
		   "\xa6" "Target" "\xa4\xc0\x00\x02\x07");
	struct gossip_indirect_ping d;
	size_t used;
	assert_int_equal(gossip_decode_indirect_ping(b.data + 1, b.len - 1, &d, &used), 0);
	assert_int_equal(used, b.len - 1);
	assert_int_equal(d.seq_no, 70000);
	assert_true(d.nack);
	assert_int_equal(d.port, 7946);
	assert_true(gossip_bytes_eq(d.source_node, "me"));
	gossip_buf_free(&b);
}

static void test_encode_ack_nack_err(void **state)
{
	(void)state;
	struct gossip_buf b;
	gossip_buf_init(&b, 0);

	struct gossip_ack a = { .seq_no = 5 };
	assert_int_equal(gossip_encode_ack(&b, &a), 0);
	EXPECT_BUF(&b, "\x02\x82" "\xa7" "Payload" "\xc0" "\xa5" "SeqNo" "\x05");

	/* 40 bytes: da 00 28, never d9 (str8). */
	uint8_t pl[130];
	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)i;
	b.len = 0;
	a.payload = view(pl, 40);
	assert_int_equal(gossip_encode_ack(&b, &a), 0);
	assert_int_equal(b.len, 2 + 8 + 3 + 40 + 6 + 1);
	expect_bytes(b.data, 13, LIT("\x02\x82" "\xa7" "Payload" "\xda\x00\x28"));
	/* 130 bytes as captured: da 00 82. */
	b.len = 0;
	a.payload = view(pl, 130);
	assert_int_equal(gossip_encode_ack(&b, &a), 0);
	expect_bytes(b.data, 13, LIT("\x02\x82" "\xa7" "Payload" "\xda\x00\x82"));
	assert_memory_equal(b.data + 13, pl, 130);
	expect_bytes(b.data + 143, b.len - 143, LIT("\xa5" "SeqNo" "\x05"));
	/* 31 bytes: fixstr bf. Empty non-nil: a0. */
	b.len = 0;
	a.payload = view(pl, 31);
	assert_int_equal(gossip_encode_ack(&b, &a), 0);
	assert_int_equal(b.data[10], 0xbf);
	b.len = 0;
	a.payload = view(pl, 0);
	assert_int_equal(gossip_encode_ack(&b, &a), 0);
	EXPECT_BUF(&b, "\x02\x82" "\xa7" "Payload" "\xa0" "\xa5" "SeqNo" "\x05");

	b.len = 0;
	struct gossip_nack n = { .seq_no = 128 };
	assert_int_equal(gossip_encode_nack(&b, &n), 0);
	EXPECT_BUF(&b, "\x0b\x81" "\xa5" "SeqNo" "\xcc\x80");

	b.len = 0;
	struct gossip_err e = { gossip_str("Encryption is configured but remote state is not encrypted") };
	assert_int_equal(e.error.len, 58);
	assert_int_equal(gossip_encode_err(&b, &e), 0);
	EXPECT_BUF(&b, "\x0d\x81" "\xa5" "Error" "\xda\x00\x3a"
		   "Encryption is configured but remote state is not encrypted");
	gossip_buf_free(&b);
}

static void test_encode_suspect_dead(void **state)
{
	(void)state;
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	struct gossip_suspect s = { 3, gossip_str("n3"), gossip_str("n1") };
	assert_int_equal(gossip_encode_suspect(&b, &s), 0);
	EXPECT_BUF(&b, "\x03\x83" "\xa4" "From" "\xa2" "n1" "\xab" "Incarnation" "\x03"
		   "\xa4" "Node" "\xa2" "n3");
	b.len = 0;
	struct gossip_dead d = { 65536, gossip_str("n3"), gossip_str("n3") };
	assert_int_equal(gossip_encode_dead(&b, &d), 0);
	EXPECT_BUF(&b, "\x05\x83" "\xa4" "From" "\xa2" "n3" "\xab" "Incarnation"
		   "\xce\x00\x01\x00\x00" "\xa4" "Node" "\xa2" "n3");
	struct gossip_msg m;
	assert_int_equal(gossip_decode_msg(b.data, b.len, &m), 0);
	assert_int_equal(m.type, GOSSIP_DEAD);
	assert_int_equal(m.u.dead.incarnation, 65536);
	gossip_buf_free(&b);
}

static void test_encode_push_pull(void **state)
{
	(void)state;
	static const uint8_t ip[4] = { 192, 0, 2, 1 }, meta[2] = { 0xff, 0x80 };
	struct gossip_buf b;
	gossip_buf_init(&b, 0);

	struct gossip_push_pull_header h = { .nodes = 2, .user_state_len = 585, .join = true };
	assert_int_equal(gossip_encode_push_pull_header(&b, &h), 0);
	/* 585 as go-msgpack 0.5.x writes a Go int: cd 02 49 (captured). */
	EXPECT_BUF(&b, "\x83" "\xa4" "Join" "\xc3" "\xa5" "Nodes" "\x02"
		   "\xac" "UserStateLen" "\xcd\x02\x49");

	b.len = 0;
	struct gossip_push_node_state st = {
		.name = gossip_str("n1"), .addr = view(ip, 4), .port = 7946, .meta = view(meta, 2),
		.incarnation = 1, .state = GOSSIP_STATE_LEFT, .vsn = view(vsn_serf, 6),
	};
	assert_int_equal(gossip_encode_push_node_state(&b, &st), 0);
	EXPECT_BUF(&b, "\x87" "\xa4" "Addr" "\xa4\xc0\x00\x02\x01"
		   "\xab" "Incarnation" "\x01"
		   "\xa4" "Meta" "\xa2\xff\x80"
		   "\xa4" "Name" "\xa2" "n1"
		   "\xa4" "Port" "\xcd\x1f\x0a"
		   "\xa5" "State" "\x03"
		   "\xa3" "Vsn" "\xa6\x01\x05\x02\x02\x05\x04");

	b.len = 0;
	struct gossip_user_msg_header u = { 200 };
	assert_int_equal(gossip_encode_user_msg_header(&b, &u), 0);
	EXPECT_BUF(&b, "\x81" "\xaa" "UserMsgLen" "\xcc\xc8");
	b.len = 0;
	assert_int_equal(gossip_encode_user_stream(&b, LIT("hi")), 0);
	EXPECT_BUF(&b, "\x08\x81" "\xaa" "UserMsgLen" "\x02" "hi");
	b.len = 0;
	assert_int_equal(gossip_encode_user_packet(&b, LIT("hi")), 0);
	EXPECT_BUF(&b, "\x08" "hi");

	/* A whole push/pull, read back as a stream reader would. */
	struct gossip_push_node_state two[2] = { st, st };
	two[1].name = gossip_str("n2");
	two[1].state = GOSSIP_STATE_ALIVE;
	b.len = 0;
	assert_int_equal(gossip_encode_push_pull(&b, false, two, 2, LIT("xyz")), 0);
	assert_int_equal(b.data[0], GOSSIP_PUSH_PULL);
	size_t off = 1, used;
	struct gossip_push_pull_header rh;
	assert_int_equal(gossip_decode_push_pull_header(b.data + off, b.len - off, &rh, &used), 0);
	assert_int_equal(rh.nodes, 2);
	assert_int_equal(rh.user_state_len, 3);
	assert_false(rh.join);
	off += used;
	for (int i = 0; i < 2; i++) {
		struct gossip_push_node_state rs;
		assert_int_equal(gossip_decode_push_node_state(b.data + off, b.len - off, &rs, &used), 0);
		assert_true(gossip_bytes_eq(rs.name, i ? "n2" : "n1"));
		assert_int_equal(rs.state, i ? GOSSIP_STATE_ALIVE : GOSSIP_STATE_LEFT);
		off += used;
	}
	expect_bytes(b.data + off, b.len - off, LIT("xyz"));
	gossip_buf_free(&b);
}

static void test_encode_compress(void **state)
{
	(void)state;
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_pack_compress(&b, LIT("aaa")), 0);
	EXPECT_BUF(&b, "\x09\x82" "\xa4" "Algo" "\x00" "\xa3" "Buf" "\xa5\x00\xc3\x08\x0c\x08");
	struct gossip_buf out;
	gossip_buf_init(&out, 0);
	assert_int_equal(gossip_pack_decompress(b.data + 1, b.len - 1, 100, &out), 0);
	EXPECT_BUF(&out, "aaa");
	/* Algo 1 does not exist. */
	assert_int_equal(gossip_pack_decompress(LIT("\x82" "\xa4" "Algo" "\x01" "\xa3" "Buf" "\xa0"), 100, &out),
			 -EPROTONOSUPPORT);
	gossip_buf_free(&b);
	gossip_buf_free(&out);
}

static void test_fixed_buffer(void **state)
{
	(void)state;
	uint8_t mem[20];
	struct gossip_buf b;
	gossip_buf_init_fixed(&b, mem, sizeof(mem));
	struct gossip_ping p = { .seq_no = 1, .node = gossip_str("a-long-node-name") };
	assert_int_equal(gossip_encode_ping(&b, &p), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	struct gossip_nack n = { 1 };
	assert_int_equal(gossip_encode_nack(&b, &n), 0);
	assert_int_equal(b.len, 9);
	gossip_buf_free(&b); /* no-op on fixed memory */
	gossip_buf_free(NULL);
}

/* ---- decoding: lenient where Go is, strict about bounds ---- */

static void test_decode_lenient(void **state)
{
	(void)state;
	struct gossip_alive a;
	size_t used;
	/* Keys out of order, str8 key, bin Addr, signed-int Port (go-msgpack
	 * v2 form), an unknown key with a nested value, trailing bytes. */
	static const char in[] =
		"\x87"
		"\xa3" "Vsn" "\xc4\x06\x01\x05\x02\x02\x05\x04"
		"\xd9\x04" "Node" "\xa2" "n9"
		"\xa5" "Extra" "\x82\xa1" "x" "\x93\x01\xd0\xff\x80" "\xa1" "y" "\xcb\x00\x00\x00\x00\x00\x00\x00\x00"
		"\xa4" "Addr" "\xc4\x04\xc0\x00\x02\x09"
		"\xa4" "Port" "\xd1\x1f\x0a"
		"\xab" "Incarnation" "\xd2\x00\x00\x00\x07"
		"\xa4" "Meta" "\xa0"
		"\xff\xff";
	assert_int_equal(gossip_decode_alive(LIT(in), &a, &used), 0);
	assert_int_equal(used, sizeof(in) - 1 - 2);
	assert_true(gossip_bytes_eq(a.node, "n9"));
	assert_int_equal(a.port, 7946);
	assert_int_equal(a.incarnation, 7);
	assert_int_equal(a.addr.len, 4);
	assert_non_null(a.meta.p);
	assert_int_equal(a.meta.len, 0);
	assert_int_equal(a.vsn.len, 6);

	/* nil body: all zero. Missing keys: zero. */
	assert_int_equal(gossip_decode_alive(LIT("\xc0"), &a, NULL), 0);
	assert_int_equal(a.incarnation, 0);
	assert_int_equal(gossip_decode_alive(LIT("\x80"), &a, NULL), 0);
	struct gossip_push_pull_header h;
	assert_int_equal(gossip_decode_push_pull_header(LIT("\x81\xa5" "Nodes" "\xd1\x01\x00"), &h, NULL), 0);
	assert_int_equal(h.nodes, 256);
}

static void test_decode_truncated(void **state)
{
	(void)state;
	static const uint8_t ping[] = CAPTURED_PING;
	static const uint8_t alive[] = CAPTURED_ALIVE;
	struct gossip_msg m;
	/* Every strict prefix of the body fails. */
	for (size_t n = 0; n < sizeof(ping) - 1; n++)
		assert_true(gossip_decode_msg(ping, n, &m) < 0);
	for (size_t n = 5; n < sizeof(alive) - 1; n++)
		assert_true(gossip_decode_msg(alive + 5, n - 5, &m) < 0);
	struct gossip_push_pull_header h;
	assert_int_equal(gossip_decode_push_pull_header(LIT("\x83\xa4" "Join" "\xc3"), &h, NULL), -ENODATA);
}

static void test_decode_rejects(void **state)
{
	(void)state;
	struct gossip_ping p;
	struct gossip_alive a;
	struct gossip_msg m;
	struct gossip_push_pull_header h;
	struct gossip_user_msg_header u;

	/* Wrong types. */
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa5" "SeqNo" "\xa1" "x"), &p, NULL), -EBADMSG);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa4" "Node" "\x05"), &p, NULL), -EBADMSG);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa4" "Node" "\x90"), &p, NULL), -EBADMSG);
	assert_int_equal(gossip_decode_ping(LIT("\x92\x01\x02"), &p, NULL), -EBADMSG);
	assert_int_equal(gossip_decode_ping(LIT("\x81\x01\x02"), &p, NULL), -EBADMSG);
	assert_int_equal(gossip_decode_ping(LIT("\xc1"), &p, NULL), -EBADMSG);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa5" "SeqNo" "\xca\x00\x00\x00\x00"), &p, NULL), -EBADMSG);
	/* Out of range. */
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa5" "SeqNo" "\xff"), &p, NULL), -ERANGE);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa5" "SeqNo" "\xcf\x00\x00\x00\x01\x00\x00\x00\x00"), &p, NULL), -ERANGE);
	assert_int_equal(gossip_decode_alive(LIT("\x81\xa4" "Port" "\xce\x00\x01\x11\x70"), &a, NULL), -ERANGE);
	/* Absurd lengths claimed by a few bytes. */
	assert_int_equal(gossip_decode_ping(LIT("\xdf\xff\xff\xff\xff"), &p, NULL), -ENODATA);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa4" "Node" "\xdb\xff\xff\xff\xff"), &p, NULL), -ENODATA);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa1" "x" "\xdd\xff\xff\xff\xff\x00"), &p, NULL), -ENODATA);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa1" "x" "\x91\x91\x91\xdf\xff\xff\xff\xff"), &p, NULL), -ENODATA);
	assert_int_equal(gossip_decode_ping(LIT("\x81\xa1" "x" "\xc6\xff\xff\xff\xff"), &p, NULL), -ENODATA);
	assert_int_equal(gossip_decode_push_pull_header(LIT("\x81\xa5" "Nodes" "\xce\x00\x20\x00\x01"), &h, NULL), -E2BIG);
	assert_int_equal(gossip_decode_push_pull_header(LIT("\x81\xac" "UserStateLen" "\xce\x7f\x00\x00\x00"), &h, NULL), -E2BIG);
	assert_int_equal(gossip_decode_push_pull_header(LIT("\x81\xa5" "Nodes" "\xff"), &h, NULL), -ERANGE);
	assert_int_equal(gossip_decode_user_msg_header(LIT("\x81\xaa" "UserMsgLen" "\xce\x01\x50\x00\x00"), &u, NULL), -E2BIG);
	assert_int_equal(gossip_decode_user_msg_header(LIT("\x81\xaa" "UserMsgLen" "\xd0\x80"), &u, NULL), -ERANGE);
	/* Unknown or not-a-UDP-message types. */
	assert_int_equal(gossip_decode_msg(LIT("\x63\x80"), &m), -EBADMSG);
	assert_int_equal(gossip_decode_msg(LIT("\x06\x80"), &m), -EBADMSG);
	assert_int_equal(gossip_decode_msg(LIT("\xf4\x01" "a"), &m), -EBADMSG);
	assert_int_equal(gossip_decode_msg(NULL, 0, &m), -ENODATA);
	assert_string_equal(gossip_type_name(99), "unknown");
	assert_string_equal(gossip_type_name(GOSSIP_NACK), "nack");
}

/* ---- compound, CRC, label ---- */

struct seen {
	int n;          /* leaves seen */
	uint8_t types[16];
};

static int collect(void *arg, const uint8_t *p, size_t len)
{
	struct seen *s = arg;
	struct gossip_msg m;
	if (gossip_decode_msg(p, len, &m) < 0)
		return -EBADMSG;
	if (s->n < 16)
		s->types[s->n] = m.type;
	s->n++;
	return 0;
}

static void test_compound(void **state)
{
	(void)state;
	struct gossip_buf m1, m2, c, z, outer;
	gossip_buf_init(&m1, 0);
	gossip_buf_init(&m2, 0);
	gossip_buf_init(&c, 0);
	gossip_buf_init(&z, 0);
	gossip_buf_init(&outer, 0);
	struct gossip_ping p = { .seq_no = 9, .node = gossip_str("x") };
	struct gossip_suspect s = { 2, gossip_str("x"), gossip_str("me") };
	assert_int_equal(gossip_encode_ping(&m1, &p), 0);
	assert_int_equal(gossip_encode_suspect(&m2, &s), 0);
	struct gossip_bytes parts[3] = { { m1.data, m1.len }, { m2.data, m2.len }, { (const uint8_t *)"\x08u", 2 } };
	assert_int_equal(gossip_pack_compound(&c, parts, 3), 0);
	assert_int_equal(c.data[0], GOSSIP_COMPOUND);
	assert_int_equal(c.data[1], 3);
	assert_int_equal(c.data[2] << 8 | c.data[3], m1.len);
	assert_int_equal(c.len, 2 + 6 + m1.len + m2.len + 2);

	struct gossip_bytes got[4];
	size_t n, trunc;
	assert_int_equal(gossip_pack_compound_split(c.data + 1, c.len - 1, got, 4, &n, &trunc), 0);
	assert_int_equal(n, 3);
	assert_int_equal(trunc, 0);
	assert_memory_equal(got[1].p, m2.data, m2.len);
	/* Cut into the last part: it is dropped, like Go. */
	assert_int_equal(gossip_pack_compound_split(c.data + 1, c.len - 2, got, 4, &n, &trunc), 0);
	assert_int_equal(n, 2);
	assert_int_equal(trunc, 1);
	/* Cut into the length table. */
	assert_int_equal(gossip_pack_compound_split(c.data + 1, 4, got, 4, &n, &trunc), -ENODATA);
	assert_int_equal(gossip_pack_compound_split(c.data + 1, 0, got, 4, &n, &trunc), -ENODATA);
	assert_int_equal(gossip_pack_compound_split(c.data + 1, c.len - 1, got, 2, &n, &trunc), -ENOSPC);
	assert_int_equal(gossip_pack_compound(&outer, parts, 0), -EINVAL);

	/* compound[ compress(compound[ping, suspect, user]), ping ] */
	assert_int_equal(gossip_pack_compress(&z, c.data, c.len), 0);
	struct gossip_bytes op[2] = { { z.data, z.len }, { m1.data, m1.len } };
	assert_int_equal(gossip_pack_compound(&outer, op, 2), 0);
	struct seen seen = { 0 };
	assert_int_equal(gossip_pack_walk(outer.data, outer.len, GOSSIP_UDP_MAX_DECOMPRESS, collect, &seen), 0);
	assert_int_equal(seen.n, 4);
	assert_int_equal(seen.types[0], GOSSIP_PING);
	assert_int_equal(seen.types[1], GOSSIP_SUSPECT);
	assert_int_equal(seen.types[2], GOSSIP_USER);
	assert_int_equal(seen.types[3], GOSSIP_PING);
	/* A decompression limit below the inner size stops the walk. */
	seen.n = 0;
	assert_int_equal(gossip_pack_walk(outer.data, outer.len, 10, collect, &seen), -E2BIG);

	gossip_buf_free(&m1);
	gossip_buf_free(&m2);
	gossip_buf_free(&c);
	gossip_buf_free(&z);
	gossip_buf_free(&outer);
}

static void test_walk_depth(void **state)
{
	(void)state;
	/* 20 nested single-part compounds around a nack. */
	uint8_t buf[256];
	size_t len = 0;
	static const uint8_t nack[] = "\x0b\x81\xa5" "SeqNo" "\x01";
	memcpy(buf + 200, nack, sizeof(nack) - 1);
	size_t start = 200, n = sizeof(nack) - 1;
	for (int i = 0; i < 20; i++) {
		start -= 4;
		buf[start] = GOSSIP_COMPOUND;
		buf[start + 1] = 1;
		buf[start + 2] = (uint8_t)(n >> 8);
		buf[start + 3] = (uint8_t)n;
		n += 4;
	}
	len = n;
	struct seen seen = { 0 };
	assert_int_equal(gossip_pack_walk(buf + start, len, 1000, collect, &seen), -ELOOP);
	assert_int_equal(seen.n, 0);
	assert_int_equal(gossip_pack_walk(buf + 200 - 16, sizeof(nack) - 1 + 16, 1000, collect, &seen), 0);
	assert_int_equal(seen.n, 1);
}

static void test_crc(void **state)
{
	(void)state;
	assert_int_equal(gossip_pack_crc32(LIT("123456789")), 0xcbf43926u);
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_pack_crc_add(&b, LIT("\x0b\x81\xa5" "SeqNo" "\x01")), 0);
	const uint8_t *msg;
	size_t mlen;
	assert_int_equal(gossip_pack_crc_check(b.data, b.len, &msg, &mlen), 1);
	assert_int_equal(mlen, b.len - 5);
	/* Forged CRC, flipped payload bit. */
	b.data[2] ^= 1;
	assert_int_equal(gossip_pack_crc_check(b.data, b.len, &msg, &mlen), -EBADMSG);
	b.data[2] ^= 1;
	b.data[b.len - 1] ^= 0x80;
	assert_int_equal(gossip_pack_crc_check(b.data, b.len, &msg, &mlen), -EBADMSG);
	/* No CRC header: passed through. Four bytes: too short to be one. */
	assert_int_equal(gossip_pack_crc_check(LIT("\x0b\x80"), &msg, &mlen), 0);
	assert_int_equal(gossip_pack_crc_check(LIT("\x0c\x00\x00\x00"), &msg, &mlen), 0);
	gossip_buf_free(&b);
}

static void test_label(void **state)
{
	(void)state;
	struct gossip_buf b;
	struct gossip_bytes l;
	const uint8_t *rest;
	size_t rlen;
	gossip_buf_init(&b, 0);
	assert_int_equal(gossip_pack_label_add(&b, "lab", LIT("\x0b\x80")), 0);
	EXPECT_BUF(&b, "\xf4\x03" "lab" "\x0b\x80");
	assert_int_equal(gossip_pack_label_strip(b.data, b.len, &l, &rest, &rlen), 0);
	assert_true(gossip_bytes_eq(l, "lab"));
	expect_bytes(rest, rlen, LIT("\x0b\x80"));
	b.len = 0;
	assert_int_equal(gossip_pack_label_add(&b, "", LIT("\x0b\x80")), 0);
	EXPECT_BUF(&b, "\x0b\x80");
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(gossip_pack_label_add(&b, big, LIT("x")), -EINVAL);
	assert_int_equal(gossip_pack_label_strip(LIT("\xf4"), &l, &rest, &rlen), -ENODATA);
	assert_int_equal(gossip_pack_label_strip(LIT("\xf4\x00" "x"), &l, &rest, &rlen), -EBADMSG);
	assert_int_equal(gossip_pack_label_strip(LIT("\xf4\x05" "abc"), &l, &rest, &rlen), -ENODATA);
	gossip_buf_free(&b);
}

/* ---- LZW ---- */

static void lzw_roundtrip(const uint8_t *in, size_t n)
{
	size_t cap = lzw_encode_bound(n);
	uint8_t *z = malloc(cap);
	assert_non_null(z);
	long zl = lzw_encode(in, n, z, cap);
	assert_true(zl > 0);
	assert_true((size_t)zl <= cap);
	uint8_t *out;
	size_t olen;
	assert_int_equal(lzw_decode(z, (size_t)zl, n + 1, &out, &olen), 0);
	assert_int_equal(olen, n);
	assert_memory_equal(out, in, n);
	free(out);
	/* The output cap is enforced. */
	if (n > 1)
		assert_int_equal(lzw_decode(z, (size_t)zl, n - 1, &out, &olen), -E2BIG);
	free(z);
}

static void test_lzw_vectors(void **state)
{
	(void)state;
	uint8_t z[64];
	/* Worked by hand from Go's writer (clear first, 9-bit codes, LSB):
	 * "aaa"      -> codes 256 97 258 257
	 * ""         -> codes 256 257
	 * "abababab" -> codes 256 97 98 258 260 98 257 */
	long n = lzw_encode(LIT("aaa"), z, sizeof(z));
	expect_bytes(z, (size_t)n, LIT("\x00\xc3\x08\x0c\x08"));
	n = lzw_encode(NULL, 0, z, sizeof(z));
	expect_bytes(z, (size_t)n, LIT("\x00\x03\x02"));
	n = lzw_encode(LIT("abababab"), z, sizeof(z));
	expect_bytes(z, (size_t)n, LIT("\x00\xc3\x88\x11\x48\x50\x4c\x40"));
	assert_int_equal(lzw_encode(LIT("abababab"), z, 4), -ENOSPC);

	uint8_t *out;
	size_t olen;
	assert_int_equal(lzw_decode(LIT("\x00\xc3\x88\x11\x48\x50\x4c\x40"), 100, &out, &olen), 0);
	expect_bytes(out, olen, LIT("abababab"));
	free(out);
	/* Older Go writers: no leading clear (codes 97 258 257). */
	assert_int_equal(lzw_decode(LIT("\x61\x04\x06\x04"), 100, &out, &olen), 0);
	expect_bytes(out, olen, LIT("aaa"));
	free(out);
	assert_int_equal(lzw_decode(LIT("\x00\x03\x02"), 100, &out, &olen), 0);
	assert_int_equal(olen, 0);
	free(out);
	/* Garbage: no eof, invalid code (300 right after a clear), empty. */
	assert_int_equal(lzw_decode(LIT("\x00\xc3\x08\x0c"), 100, &out, &olen), -ENODATA);
	assert_int_equal(lzw_decode(LIT("\x00\x59\x02"), 100, &out, &olen), -EBADMSG);
	assert_int_equal(lzw_decode(NULL, 0, 100, &out, &olen), -ENODATA);
}

static void test_lzw_roundtrip(void **state)
{
	(void)state;
	size_t n = 200000;
	uint8_t *buf = malloc(n);
	assert_non_null(buf);
	/* Pseudo-random bytes: many 12-bit codes and table resets. */
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	lzw_roundtrip(buf, n);
	/* Text-like: long matches. */
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)"the quick brown fox jumps over the lazy dog "[i % 44];
	lzw_roundtrip(buf, n);
	/* Runs of one byte (the KwKwK case all the way to 12 bits). */
	memset(buf, 'z', n);
	lzw_roundtrip(buf, n);
	lzw_roundtrip(buf, 1);
	/* Random garbage never crashes the decoder. */
	for (int t = 0; t < 2000; t++) {
		size_t len = 1 + (size_t)(t % 97);
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (uint8_t)(x >> 16);
		}
		uint8_t *out;
		size_t olen;
		if (lzw_decode(buf, len, 1 << 16, &out, &olen) == 0)
			free(out);
	}
	free(buf);
}

/* ---- encryption ---- */

static const uint8_t key32[32] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
static const uint8_t nonce[12] = { 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111 };
#define NACK7 "\x00\x81\xa5" "SeqNo" "\x07"

static void test_crypto_known(void **state)
{
	(void)state;
	/* Expected blobs from Python's cryptography AESGCM with the same key,
	 * nonce and AAD, laid out as [vsn][nonce][ct||tag]. */
	struct gossip_key k;
	struct gossip_buf b;
	gossip_buf_init(&b, 0);

	memcpy(k.key, key32, 32);
	k.len = 32;
	assert_int_equal(gossip_crypto_seal(&b, 1, &k, nonce, LIT(NACK7), NULL, 0), 0);
	EXPECT_BUF(&b, "\x01" "\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"
		   "\x48\x9a\x7b\x35\x1c\x98\x18\xf1\x39\x52\xa5\xd2\x72\x6a\x97\x34"
		   "\x25\x73\xab\x6c\xd6\x77\x11\x9a\xe5");
	assert_int_equal(b.len, gossip_crypto_sealed_len(1, 9));

	b.len = 0;
	k.len = 16;
	assert_int_equal(gossip_crypto_seal(&b, 1, &k, nonce, LIT(NACK7), LIT("lab")), 0);
	EXPECT_BUF(&b, "\x01" "\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"
		   "\x1a\xe3\xeb\xf6\xbe\x73\xf6\x95\x9c\x5f\xfc\xba\x3a\xcd\xba\x64"
		   "\xd1\x2e\x04\xc7\x66\xfc\x30\x89\x8f");

	b.len = 0;
	k.len = 24;
	assert_int_equal(gossip_crypto_seal(&b, 0, &k, nonce, LIT(NACK7), NULL, 0), 0);
	EXPECT_BUF(&b, "\x00" "\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"
		   "\xe9\xe9\x1e\x2f\x37\xde\x40\x57\xd4\xd6\xe5\x06\xfd\xf5\x9c\xb9"
		   "\x51\xe0\xcb\xe3\x05\xf7\x7b\x9e\xf2\x64\x62\xa1\x79\x98\x97\xd2");
	assert_int_equal(b.len, gossip_crypto_sealed_len(0, 9));

	/* vsn 0 opens and loses its padding. */
	struct gossip_keyring kr = { 0 };
	assert_int_equal(gossip_keyring_add(&kr, key32, 24), 0);
	struct gossip_buf pl;
	gossip_buf_init(&pl, 0);
	assert_int_equal(gossip_crypto_open(&kr, b.data, b.len, NULL, 0, &pl), 0);
	EXPECT_BUF(&pl, NACK7);
	gossip_buf_free(&pl);
	gossip_buf_free(&b);
}

static void test_crypto_ring(void **state)
{
	(void)state;
	uint8_t k1[16], k2[32], k3[24];
	memset(k1, 0x11, sizeof(k1));
	memset(k2, 0x22, sizeof(k2));
	memset(k3, 0x33, sizeof(k3));
	struct gossip_keyring sender = { 0 }, recv = { 0 }, other = { 0 };
	assert_int_equal(gossip_keyring_add(&sender, k2, 32), 0);
	assert_int_equal(gossip_keyring_add(&recv, k1, 16), 0);
	assert_int_equal(gossip_keyring_add(&recv, k3, 24), 0);
	assert_int_equal(gossip_keyring_add(&recv, k2, 32), 0);
	assert_int_equal(gossip_keyring_add(&other, k1, 16), 0);
	assert_int_equal(gossip_keyring_add(&other, k1, 15), -EINVAL);

	struct gossip_buf b, pl;
	gossip_buf_init(&b, 0);
	gossip_buf_init(&pl, 0);
	assert_int_equal(gossip_crypto_udp_seal(&b, &sender, 1, LIT(NACK7), NULL), 0);
	assert_int_equal(b.len, 1 + 12 + 9 + 16);
	/* The third key of the ring opens it. */
	assert_int_equal(gossip_crypto_udp_open(&recv, b.data, b.len, NULL, &pl), 0);
	EXPECT_BUF(&pl, NACK7);
	/* Wrong key, wrong label (AAD), tampering, short, bad version. */
	pl.len = 0;
	assert_int_equal(gossip_crypto_udp_open(&other, b.data, b.len, NULL, &pl), -EACCES);
	assert_int_equal(gossip_crypto_udp_open(&recv, b.data, b.len, "lab", &pl), -EACCES);
	b.data[20] ^= 4;
	assert_int_equal(gossip_crypto_udp_open(&recv, b.data, b.len, NULL, &pl), -EACCES);
	b.data[20] ^= 4;
	assert_int_equal(gossip_crypto_udp_open(&recv, b.data, 28, NULL, &pl), -EBADMSG);
	b.data[0] = 2;
	assert_int_equal(gossip_crypto_udp_open(&recv, b.data, b.len, NULL, &pl), -EBADMSG);
	assert_int_equal(pl.len, 0);

	/* Ring management. */
	assert_int_equal(gossip_keyring_use(&recv, k2, 32), 0);
	assert_int_equal(recv.keys[0].len, 32);
	assert_int_equal(recv.n, 3);
	assert_int_equal(gossip_keyring_remove(&recv, k2, 32), -EBUSY);
	assert_int_equal(gossip_keyring_remove(&recv, k1, 16), 0);
	assert_int_equal(recv.n, 2);
	assert_int_equal(gossip_keyring_remove(&recv, k1, 16), -ENOENT);
	gossip_keyring_clear(&recv);
	assert_int_equal(recv.n, 0);
	gossip_buf_free(&b);
	gossip_buf_free(&pl);
}

static void test_crypto_tcp(void **state)
{
	(void)state;
	struct gossip_keyring kr = { 0 };
	assert_int_equal(gossip_keyring_add(&kr, key32, 32), 0);
	struct gossip_buf b, pl;
	gossip_buf_init(&b, 0);
	gossip_buf_init(&pl, 0);
	assert_int_equal(gossip_crypto_tcp_seal(&b, &kr, 1, LIT(NACK7), NULL), 0);
	assert_int_equal(b.len, 5 + 38);
	expect_bytes(b.data, 6, LIT("\x0a\x00\x00\x00\x26\x01"));
	size_t used = 0;
	assert_int_equal(gossip_crypto_tcp_open(&kr, b.data, 3, NULL, &pl, &used), -ENODATA);
	assert_int_equal(gossip_crypto_tcp_open(&kr, b.data, 20, NULL, &pl, &used), -ENODATA);
	assert_int_equal(used, 43);
	assert_int_equal(gossip_crypto_tcp_open(&kr, b.data, b.len, NULL, &pl, &used), 0);
	EXPECT_BUF(&pl, NACK7);
	/* The header is authenticated: same blob, different AAD label. */
	pl.len = 0;
	assert_int_equal(gossip_crypto_tcp_open(&kr, b.data, b.len, "lab", &pl, &used), -EACCES);
	/* Absurd frame length. */
	assert_int_equal(gossip_crypto_tcp_open(&kr, LIT("\x0a\x7f\xff\xff\xff"), NULL, &pl, &used), -E2BIG);
	gossip_buf_free(&b);
	gossip_buf_free(&pl);
}

/* ---- whole UDP and TCP paths ---- */

static void test_udp_path(void **state)
{
	(void)state;
	struct gossip_keyring kr = { 0 }, bad = { 0 };
	uint8_t k2[16];
	memset(k2, 7, sizeof(k2));
	assert_int_equal(gossip_keyring_add(&kr, key32, 32), 0);
	assert_int_equal(gossip_keyring_add(&bad, k2, 16), 0);

	/* A compound of 20 alives compresses well. */
	struct gossip_buf parts[20], c, pkt, scratch;
	struct gossip_bytes pv[20];
	for (int i = 0; i < 20; i++) {
		gossip_buf_init(&parts[i], 0);
		struct gossip_alive a = {
			.incarnation = 1, .node = gossip_str("node-with-a-name"), .addr = view(ip_lo3, 4),
			.port = 7946, .meta = view("\xff\x80", 2), .vsn = view(vsn_serf, 6),
		};
		assert_int_equal(gossip_encode_alive(&parts[i], &a), 0);
		pv[i] = view(parts[i].data, parts[i].len);
	}
	gossip_buf_init(&c, 0);
	gossip_buf_init(&pkt, 0);
	gossip_buf_init(&scratch, 0);
	assert_int_equal(gossip_pack_compound(&c, pv, 20), 0);

	struct gossip_udp_opts o = { .crc = true, .compress = true, .label = "lab", .kr = &kr, .enc_vsn = 1 };
	assert_int_equal(gossip_pack_udp_seal(&pkt, c.data, c.len, &o), 0);
	assert_true(pkt.len < c.len);
	expect_bytes(pkt.data, 6, LIT("\xf4\x03" "lab" "\x01"));

	const uint8_t *msg;
	size_t mlen;
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, "lab", &kr, true, &scratch, &msg, &mlen), 0);
	assert_int_equal(msg[0], GOSSIP_COMPRESS);
	struct seen seen = { 0 };
	assert_int_equal(gossip_pack_walk(msg, mlen, GOSSIP_UDP_MAX_DECOMPRESS, collect, &seen), 0);
	assert_int_equal(seen.n, 20);
	assert_int_equal(seen.types[15], GOSSIP_ALIVE);

	/* Wrong label, no label, wrong key, truncated. */
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, "other", &kr, true, &scratch, &msg, &mlen), -EPERM);
	assert_int_equal(gossip_pack_udp_open(pkt.data + 5, pkt.len - 5, "lab", &kr, true, &scratch, &msg, &mlen), -EPERM);
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, "lab", &bad, true, &scratch, &msg, &mlen), -EACCES);
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len - 1, "lab", &kr, true, &scratch, &msg, &mlen), -EACCES);

	/* Plaintext with a CRC, no label; accepted with keys only when
	 * verify_incoming is off; a forged CRC is dropped. */
	pkt.len = 0;
	struct gossip_udp_opts plain = { .crc = true };
	assert_int_equal(gossip_pack_udp_seal(&pkt, parts[0].data, parts[0].len, &plain), 0);
	assert_int_equal(pkt.data[0], GOSSIP_HAS_CRC);
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, NULL, &kr, true, &scratch, &msg, &mlen), -EBADMSG);
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, NULL, &kr, false, &scratch, &msg, &mlen), 0);
	expect_bytes(msg, mlen, parts[0].data, parts[0].len);
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, "", NULL, true, &scratch, &msg, &mlen), 0);
	pkt.data[1] ^= 0xff;
	assert_int_equal(gossip_pack_udp_open(pkt.data, pkt.len, NULL, NULL, true, &scratch, &msg, &mlen), -EBADMSG);

	/* Compression that does not help is skipped on UDP. */
	pkt.len = 0;
	struct gossip_udp_opts z = { .compress = true };
	assert_int_equal(gossip_pack_udp_seal(&pkt, LIT(NACK7), &z), 0);
	EXPECT_BUF(&pkt, NACK7);

	for (int i = 0; i < 20; i++)
		gossip_buf_free(&parts[i]);
	gossip_buf_free(&c);
	gossip_buf_free(&pkt);
	gossip_buf_free(&scratch);
}

static void test_tcp_path(void **state)
{
	(void)state;
	struct gossip_keyring kr = { 0 }, none = { 0 };
	assert_int_equal(gossip_keyring_add(&kr, key32, 16), 0);
	struct gossip_buf msg, out, scratch;
	gossip_buf_init(&msg, 0);
	gossip_buf_init(&out, 0);
	gossip_buf_init(&scratch, 0);
	struct gossip_err e = { gossip_str("Encryption is configured but remote state is not encrypted") };
	assert_int_equal(gossip_encode_err(&msg, &e), 0);

	const uint8_t *m;
	size_t ml, used;
	/* label + [10] ⊃ [9] ⊃ errResp */
	assert_int_equal(gossip_pack_tcp_seal(&out, msg.data, msg.len, "lab", true, &kr, 1), 0);
	expect_bytes(out.data, 6, LIT("\xf4\x03" "lab" "\x0a"));
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len, "lab", &kr, true, &scratch, &m, &ml, &used), 0);
	assert_int_equal(used, out.len);
	expect_bytes(m, ml, msg.data, msg.len);
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len - 1, "lab", &kr, true, &scratch, &m, &ml, &used), -ENODATA);
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len, "lab", &none, true, &scratch, &m, &ml, &used), -EACCES);
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len, "", &kr, true, &scratch, &m, &ml, &used), -EPERM);

	/* Plaintext compressed (always compressed on TCP, even if larger). */
	out.len = 0;
	assert_int_equal(gossip_pack_tcp_seal(&out, msg.data, msg.len, NULL, true, NULL, 1), 0);
	assert_int_equal(out.data[0], GOSSIP_COMPRESS);
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len, NULL, NULL, true, &scratch, &m, &ml, &used), 0);
	expect_bytes(m, ml, msg.data, msg.len);
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len, NULL, &kr, true, &scratch, &m, &ml, &used), -EACCES);
	assert_int_equal(gossip_pack_tcp_open(out.data, out.len, NULL, &kr, false, &scratch, &m, &ml, &used), 0);
	/* Plaintext, uncompressed: passed through. */
	assert_int_equal(gossip_pack_tcp_open(msg.data, msg.len, NULL, NULL, true, &scratch, &m, &ml, &used), 0);
	assert_ptr_equal(m, msg.data);

	gossip_buf_free(&msg);
	gossip_buf_free(&out);
	gossip_buf_free(&scratch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captured_alive),
		cmocka_unit_test(test_captured_ping),
		cmocka_unit_test(test_encode_ping_minimal),
		cmocka_unit_test(test_encode_indirect_ping),
		cmocka_unit_test(test_encode_ack_nack_err),
		cmocka_unit_test(test_encode_suspect_dead),
		cmocka_unit_test(test_encode_push_pull),
		cmocka_unit_test(test_encode_compress),
		cmocka_unit_test(test_fixed_buffer),
		cmocka_unit_test(test_decode_lenient),
		cmocka_unit_test(test_decode_truncated),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_compound),
		cmocka_unit_test(test_walk_depth),
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_label),
		cmocka_unit_test(test_lzw_vectors),
		cmocka_unit_test(test_lzw_roundtrip),
		cmocka_unit_test(test_crypto_known),
		cmocka_unit_test(test_crypto_ring),
		cmocka_unit_test(test_crypto_tcp),
		cmocka_unit_test(test_udp_path),
		cmocka_unit_test(test_tcp_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
