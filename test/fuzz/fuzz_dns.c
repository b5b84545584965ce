/* Fuzz target for the DNS message layer of swarm-dnsd: the input is one
 * UDP datagram (query parser, then the replies we would write to it at the
 * 512-byte, EDNS0 and TCP limits), the same bytes as a TCP stream of
 * length-prefixed queries, as an upstream reply checked against the
 * parsed query, and as names (wire at the first offsets, text). Whatever
 * the bytes, it must return cleanly, never read outside the input, and
 * keep the invariants checked below (abort() otherwise): the parsed name
 * is lowercase and of the stated length, a reply never exceeds its limit
 * and is recognised by dns_check_reply as the reply to its query. Built
 * for libFuzzer with -fsanitize=fuzzer, or linked with replay.c to replay
 * corpus/dns in `make check`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_qname(const struct dns_query *q)
{
	check(strlen(q->qname) == q->qname_len);
	for (size_t i = 0; i < q->qname_len; i++)
		check(!(q->qname[i] >= 'A' && q->qname[i] <= 'Z'));
	check(q->qname_wire_len >= 1 && q->qname_wire_len <= DNS_NAME_WIRE_MAX);
}

/* Writes the answer we could give to q at this size limit and checks it. */
static void answer(const struct dns_query *q, int rc, size_t limit)
{
	static uint8_t out[DNS_TCP_MAX];
	static const uint8_t v4[4] = { 192, 0, 2, 1 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct dns_resp r;
	int n;

	if (rc != DNS_RCODE_NOERROR) {
		n = dns_write_reply(q, (unsigned)rc, false, out, sizeof(out), limit);
		check(n > 0 && (size_t)n <= limit);
		int want = q->has_question || (rc & 0xf) != 0 ? (rc & 0xf) : -1;
		if (rc == DNS_RCODE_BADVERS && !q->edns)
			want = DNS_RCODE_SERVFAIL;
		if (want >= 0)
			check(dns_check_reply(out, (size_t)n, q->id, q) == want);
		return;
	}
	if (dns_resp_begin(&r, q, out, sizeof(out), limit, DNS_RCODE_NOERROR, true) < 0)
		return;
	/* Enough RRs to overflow 512 bytes, with PTR targets that compress
	 * against the question and against each other. */
	for (int i = 0; i < 40; i++) {
		switch (i % 5) {
		case 0: dns_resp_add_a(&r, 600, v4); break;
		case 1: dns_resp_add_aaaa(&r, 600, v6); break;
		case 2: dns_resp_add_ptr(&r, 600, q->qname); break;
		case 3: dns_resp_add_ptr(&r, 600, i % 2 ? "web.1.abc.mynet" : "web.2.def.mynet."); break;
		default: dns_resp_add_rr(&r, DNS_TYPE_TXT, 600, "\x03txt", 4); break;
		}
	}
	size_t len = dns_resp_finish(&r);
	check(len <= limit && len >= DNS_HEADER_LEN);
	check(dns_check_reply(out, len, q->id, q) == DNS_RCODE_NOERROR);
	/* TC exactly when something was refused. */
	check(!!(out[2] & (DNS_FLAG_TC >> 8)) == r.tc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	uint8_t addr[16];
	int rc = dns_parse_query(data, size, &q);

	if (rc >= 0) {
		if (q.has_question) {
			check_qname(&q);
			dns_ptr_ipv4(q.qname, addr);
			dns_ptr_ipv6(q.qname, addr);
		}
		answer(&q, rc, DNS_UDP_PLAIN_MAX);
		answer(&q, rc, dns_udp_limit(&q, DNS_EDNS_UDP_MAX));
		answer(&q, rc, DNS_TCP_MAX);
	}

	/* The same bytes as an upstream reply to that query (or to a fixed
	 * one when the input was not a usable query). */
	if (rc < 0 || !q.has_question) {
		static const uint8_t fixed[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
					       "\x03web\x04test\x00\x00\x01\x00\x01";
		dns_parse_query(fixed, sizeof(fixed) - 1, &q);
	}
	if (size >= 2)
		dns_check_reply(data, size, (uint16_t)((data[0] << 8) | data[1]), &q);

	/* A TCP stream of queries. */
	const uint8_t *p = data, *msg;
	size_t left = size, mlen, used;
	while ((used = dns_tcp_next(p, left, &msg, &mlen)) > 0) {
		check(used == mlen + 2 && used <= left);
		struct dns_query tq;
		if (dns_parse_query(msg, mlen, &tq) >= 0 && tq.has_question)
			check_qname(&tq);
		p += used;
		left -= used;
	}

	/* Names at the first offsets. */
	for (size_t off = 0; off < size && off < 64; off++) {
		uint8_t wire[DNS_NAME_WIRE_MAX];
		size_t wlen, next;
		if (dns_name_decode(data, size, off, wire, &wlen, &next) == 0)
			check(wlen >= 1 && wlen <= DNS_NAME_WIRE_MAX && next > off && next <= size);
	}

	/* The bytes as a text name. */
	char text[300];
	size_t tl = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, tl);
	text[tl] = '\0';
	uint8_t wire[DNS_NAME_WIRE_MAX];
	int wl = dns_name_from_text(text, wire, sizeof(wire));
	check(wl < 0 || (wl >= 1 && wl <= DNS_NAME_WIRE_MAX));
	dns_ptr_ipv4(text, addr);
	dns_ptr_ipv6(text, addr);
	return 0;
}
