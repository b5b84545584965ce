/* DNS message layer of swarm-dnsd (RFC 1035, RFC 6891 EDNS0): a pure
 * query parser, a response writer into a caller buffer, and the small
 * helpers the resolver needs around them (error replies, id rewrite for
 * forwarding, PTR names, TCP framing). No sockets, no malloc: every
 * function works on caller memory and may be fed any bytes (there is a
 * fuzz target, test/fuzz/fuzz_dns.c).
 *
 * Typical use per datagram:
 *
 *	struct dns_query q;
 *	struct dns_resp r;
 *	int rc = dns_parse_query(pkt, n, &q);
 *	if (rc < 0)
 *		return count_drop();                 // no reply at all
 *	if (rc != DNS_RCODE_NOERROR)
 *		len = dns_write_reply(&q, rc, false, out, sizeof(out), dns_udp_limit(&q, DNS_EDNS_UDP_MAX));
 *	else {
 *		dns_resp_begin(&r, &q, out, sizeof(out), dns_udp_limit(&q, DNS_EDNS_UDP_MAX),
 *			       DNS_RCODE_NOERROR, true);
 *		dns_resp_add_a(&r, 600, addr);       // -EMSGSIZE once full: TC is set
 *		len = dns_resp_finish(&r);
 *	}
 */
#ifndef SWARM_DNS_MSG_H
#define SWARM_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_NAME_WIRE_MAX 255     /* RFC 1035 3.1: whole name incl. root byte */
#define DNS_LABEL_MAX 63          /* RFC 1035 3.1 */
/* Text form of a decoded name: at most 253 plain characters, but a label
 * byte that needs escaping takes 4 ("\123"), so 4 * 253 + NUL suffices. */
#define DNS_NAME_TEXT_MAX 1016
#define DNS_MAX_PTR_JUMPS 16      /* compression pointers followed per name */
#define DNS_UDP_PLAIN_MAX 512     /* RFC 1035 4.2.1: UDP without EDNS0 */
#define DNS_EDNS_UDP_MAX 1232     /* what we advertise and cap EDNS0 answers to (DNS flag day 2020) */
#define DNS_TCP_MAX 65535         /* a TCP message length is 16 bits */
#define DNS_OPT_RR_LEN 11         /* our OPT RR: root owner, no options */

/* Header flag bits (second 16-bit word of the header). */
#define DNS_FLAG_QR 0x8000
#define DNS_FLAG_AA 0x0400
#define DNS_FLAG_TC 0x0200
#define DNS_FLAG_RD 0x0100
#define DNS_FLAG_RA 0x0080
#define DNS_FLAG_AD 0x0020
#define DNS_FLAG_CD 0x0010

enum dns_opcode {
	DNS_OPCODE_QUERY = 0,
};

/* RCODEs; values above 15 need EDNS0 (the high 8 bits ride in the OPT). */
enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
	DNS_RCODE_BADVERS = 16,
};

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_SRV = 33,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_AXFR = 252,
	DNS_TYPE_ANY = 255,
};

#define DNS_CLASS_IN 1

/* A parsed query. Filled progressively: after any return >= 0 the header
 * fields are valid; question fields only when has_question; EDNS0 fields
 * only when edns. */
struct dns_query {
	uint16_t id;                  /* echoed in every reply */
	uint16_t flags;               /* raw header flags word */
	uint8_t opcode;               /* 4 bits */
	bool rd;                      /* recursion desired, copied to the reply */
	bool cd;                      /* checking disabled, copied to the reply (RFC 4035 3.2.2) */
	uint16_t qdcount, ancount, nscount, arcount;
	bool has_question;            /* exactly one question decoded: the reply may echo it */
	uint16_t qtype, qclass;
	uint8_t qname_wire[DNS_NAME_WIRE_MAX]; /* question name, uncompressed, case as sent */
	size_t qname_wire_len;        /* bytes of qname_wire incl. the root byte */
	char qname[DNS_NAME_TEXT_MAX]; /* lowercase dotted text, no trailing dot; root is "";
	                                * bytes other than 0x21-0x7e and '.', '\\' within a
	                                * label appear as \DDD, \. and \\ */
	size_t qname_len;             /* strlen(qname) */
	bool edns;                    /* one well-formed OPT RR was present */
	uint16_t edns_udp_size;       /* requestor's payload size, as sent (may be < 512) */
	uint8_t edns_version;         /* EDNS version; only 0 is answered */
	bool edns_do;                 /* DNSSEC OK bit, copied to the reply's OPT (RFC 3225) */
};

/* Parses the query msg[0..len); never reads outside it, allocates nothing,
 * writes only *q. Returns:
 *   -EINVAL             drop silently: shorter than a header, or QR set
 *                       (a response; answering it could start a loop);
 *   DNS_RCODE_NOERROR   a well-formed standard query with one question;
 *   DNS_RCODE_FORMERR   malformed (QDCOUNT != 1, bad or truncated name,
 *                       compression loop, truncated RR, second OPT, OPT
 *                       with a non-root owner or broken options);
 *   DNS_RCODE_NOTIMP    opcode other than QUERY (only a single
 *                       question-shaped first section is decoded, for the
 *                       echo; nothing after it);
 *   DNS_RCODE_BADVERS   EDNS version other than 0 (reply carries an OPT).
 * For every value >= 0, dns_write_reply(q, value, ...) builds the proper
 * error reply (or the caller answers a NOERROR query normally).
 * Compression pointers are followed only strictly backwards: each must
 * point before every byte of the name read so far, so no loop is
 * possible; at most DNS_MAX_PTR_JUMPS are followed per name. RRs in the
 * answer and authority sections are skipped (bounds-checked); bytes after
 * the last counted RR are ignored. */
int dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q);

/* Decodes the possibly compressed name at msg[off] (msg[0..len) is the
 * whole message, pointers are offsets into it) into its uncompressed wire
 * form wire[0..*wire_len), case kept, and sets *next to the offset just
 * past the name where it started. Each pointer must point before every
 * byte read so far for this name (so no loop is possible; a self-pointer
 * or forward pointer is an error), at most DNS_MAX_PTR_JUMPS are
 * followed, the result must fit DNS_NAME_WIRE_MAX bytes; label types 01
 * and 10 (RFC 6891 retired them) are errors. Returns 0 or -EBADMSG. */
int dns_name_decode(const uint8_t *msg, size_t len, size_t off, uint8_t wire[DNS_NAME_WIRE_MAX],
		    size_t *wire_len, size_t *next);

/* Size limit for a UDP reply to q: 512 without EDNS0, else the requestor's
 * size clamped to [512, our_max] (RFC 6891 6.2.5). TCP replies use
 * DNS_TCP_MAX. */
size_t dns_udp_limit(const struct dns_query *q, size_t our_max);

/* Response writer state. Owned by the caller (stack), no cleanup needed. */
#define DNS_COMP_MAX 64               /* remembered name offsets for compression */
struct dns_resp {
	uint8_t *buf;                 /* output, caller-owned */
	size_t limit;                 /* min(cap, size limit): bytes we may use */
	size_t len;                   /* bytes written so far */
	size_t reserve;               /* bytes kept free for the OPT RR */
	uint16_t ancount;             /* answers written */
	bool tc;                      /* an RR did not fit: TC is set, nothing more is added */
	bool question;                /* the question was echoed: answers may point at it */
	bool edns;                    /* append an OPT RR (the query had one) */
	bool edns_do;                 /* DO bit to echo */
	unsigned rcode;               /* full rcode, high bits go to the OPT */
	unsigned ncomp;               /* used entries of comp */
	uint16_t comp[DNS_COMP_MAX];  /* offsets of label sequences in buf, for pointers */
};

/* Starts a reply to q in buf[0..cap), never using more than limit bytes
 * (dns_udp_limit() or DNS_TCP_MAX). Writes the header (id, QR, opcode, RD
 * and CD copied, RA set, AA if aa, rcode) and echoes the question when
 * q->has_question; room for an OPT RR is reserved when q->edns. rcode above
 * 15 needs q->edns (else it is sent as SERVFAIL). Returns 0, or -EMSGSIZE
 * when even that does not fit (r is then unusable). */
int dns_resp_begin(struct dns_resp *r, const struct dns_query *q, uint8_t *buf, size_t cap,
		   size_t limit, unsigned rcode, bool aa);

/* Append one answer RR owned by the question name (a compression pointer to
 * it; requires q->has_question at begin, else -EINVAL), class IN.
 * Returns 0, or -EMSGSIZE when the RR does not fit: the reply then has TC
 * set and every later add fails too, so the answer holds a prefix of the
 * RRs in the order added. -EINVAL for a bad PTR target name. */
int dns_resp_add_a(struct dns_resp *r, uint32_t ttl, const uint8_t addr[4]);
int dns_resp_add_aaaa(struct dns_resp *r, uint32_t ttl, const uint8_t addr[16]);
/* target: dotted text, trailing dot optional, no escapes; compressed
 * against the names already in the message. */
int dns_resp_add_ptr(struct dns_resp *r, uint32_t ttl, const char *target);
/* Any type with opaque RDATA (not compressed, not inspected). */
int dns_resp_add_rr(struct dns_resp *r, uint16_t type, uint32_t ttl, const void *rdata,
		    uint16_t rdlen);

/* Appends the OPT RR if due, fills in the counts and TC. Returns the
 * message length (> 0). */
size_t dns_resp_finish(struct dns_resp *r);

/* A reply with no answers: rcode NOERROR gives NODATA, else NXDOMAIN,
 * SERVFAIL, REFUSED, NOTIMP, FORMERR, BADVERS. Echoes the question when
 * q->has_question, adds an OPT when q->edns. Returns the length, or
 * -EMSGSIZE. */
int dns_write_reply(const struct dns_query *q, unsigned rcode, bool aa, uint8_t *buf, size_t cap,
		    size_t limit);

/* Sets the id of a raw message (forwarding: the upstream reply gets the
 * client's id back). Returns 0, or -EINVAL if len < DNS_HEADER_LEN. */
int dns_set_id(uint8_t *msg, size_t len, uint16_t id);

/* Checks that resp[0..len) is an upstream reply to the query q sent with
 * id sent_id: QR set, same id, one question equal to q's (name compared
 * case-insensitively, type, class). A reply without a question is
 * accepted when its rcode is not NOERROR (FORMERR and friends). Returns
 * the reply's 4-bit rcode (>= 0) or -EBADMSG if it does not match. */
int dns_check_reply(const uint8_t *resp, size_t len, uint16_t sent_id, const struct dns_query *q);

/* Converts dotted text (trailing dot optional, "" or "." is the root, no
 * escapes) to the uncompressed wire form in out[0..cap). Returns its length
 * or -EINVAL (empty label, label > 63, name > 255, or cap too small). */
int dns_name_from_text(const char *text, uint8_t *out, size_t cap);

/* Reverse names, on the lowercased qname of dns_parse_query:
 * "4.3.2.1.in-addr.arpa" gives 1.2.3.4 in out (network order);
 * 32 nibbles ".ip6.arpa" give the IPv6 address. Strict: decimal octets
 * 0-255 without leading zeros; exactly 4 octets / 32 nibbles. Returns 0 or
 * -EINVAL (also for partial names such as "2.1.in-addr.arpa"). */
int dns_ptr_ipv4(const char *qname, uint8_t out[4]);
int dns_ptr_ipv6(const char *qname, uint8_t out[16]);

/* TCP framing (RFC 1035 4.2.2, RFC 7766: several messages per connection).
 * Looks at the stream bytes buf[0..len): if a whole length-prefixed
 * message is there, sets *msg and *msg_len to it and returns the bytes it
 * takes (2 + *msg_len), else returns 0 (read more; a message is at most
 * 65535 bytes so a 65537-byte buffer always suffices). */
size_t dns_tcp_next(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len);
/* Writes the 2-byte length prefix of a len-byte message at p. */
void dns_tcp_put_len(uint8_t *p, size_t len);

#endif
