/* DNS message parser and writer (see dns_msg.h for the contracts). */
#include "dns_msg.h"

#include <errno.h>
#include <string.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

int dns_name_decode(const uint8_t *msg, size_t len, size_t off, uint8_t wire[DNS_NAME_WIRE_MAX],
		    size_t *wire_len, size_t *next)
{
	size_t pos = off, floor = off, out = 0;
	unsigned jumps = 0;
	bool jumped = false;

	/* floor: the lowest offset read so far. A pointer must go below it,
	 * so offsets strictly decrease from jump to jump: no loop. */
	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t c = msg[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -EBADMSG;
			size_t target = ((size_t)(c & 0x3f) << 8) | msg[pos + 1];
			if (target >= floor || ++jumps > DNS_MAX_PTR_JUMPS)
				return -EBADMSG;
			if (!jumped) {
				*next = pos + 2;
				jumped = true;
			}
			pos = floor = target;
			continue;
		}
		if (c & 0xc0)
			return -EBADMSG;
		/* A label of c bytes (c == 0: the root, end of name). */
		if (out + 1 + c > DNS_NAME_WIRE_MAX || pos + 1 + c > len)
			return -EBADMSG;
		memcpy(wire + out, msg + pos, 1 + (size_t)c);
		out += 1 + (size_t)c;
		pos += 1 + (size_t)c;
		if (c == 0)
			break;
	}
	if (!jumped)
		*next = pos;
	*wire_len = out;
	return 0;
}

/* Steps over the name at msg[off] without following pointers (for RRs we
 * do not look into). Returns 0 with *next past it, or -EBADMSG. */
static int name_skip(const uint8_t *msg, size_t len, size_t off, size_t *next)
{
	for (;;) {
		if (off >= len)
			return -EBADMSG;
		uint8_t c = msg[off];
		if ((c & 0xc0) == 0xc0) {
			if (off + 1 >= len)
				return -EBADMSG;
			*next = off + 2;
			return 0;
		}
		if (c & 0xc0)
			return -EBADMSG;
		off += 1 + (size_t)c;
		if (c == 0) {
			*next = off;
			return 0;
		}
	}
}

/* Uncompressed wire name to lowercase dotted text (see struct dns_query).
 * text has DNS_NAME_TEXT_MAX bytes, always enough for a valid wire name.
 * Returns the text length. */
static size_t name_to_text(const uint8_t *wire, char *text)
{
	static const char digits[] = "0123456789";
	size_t t = 0;

	for (size_t i = 0; wire[i] != 0; i += 1 + (size_t)wire[i]) {
		if (i > 0)
			text[t++] = '.';
		for (size_t j = 1; j <= wire[i]; j++) {
			uint8_t b = wire[i + j];
			if (b == '.' || b == '\\') {
				text[t++] = '\\';
				text[t++] = (char)b;
			} else if (b < 0x21 || b > 0x7e) {
				text[t++] = '\\';
				text[t++] = digits[b / 100];
				text[t++] = digits[b / 10 % 10];
				text[t++] = digits[b % 10];
			} else {
				text[t++] = (char)lower(b);
			}
		}
	}
	text[t] = '\0';
	return t;
}

/* Skips one whole RR at *off (name, fixed part, RDATA). On success sets
 * *type, *rclass, *ttl, the RDATA view and advances *off. Reports whether
 * the owner is the root name (a single zero byte). */
static int rr_skip(const uint8_t *msg, size_t len, size_t *off, uint16_t *type, uint16_t *rclass,
		   uint32_t *ttl, size_t *rdata, uint16_t *rdlen, bool *root_owner)
{
	size_t p;
	if (name_skip(msg, len, *off, &p) < 0)
		return -EBADMSG;
	*root_owner = (p == *off + 1);
	if (len - p < 10)
		return -EBADMSG;
	*type = get16(msg + p);
	*rclass = get16(msg + p + 2);
	*ttl = get32(msg + p + 4);
	*rdlen = get16(msg + p + 8);
	p += 10;
	if (len - p < *rdlen)
		return -EBADMSG;
	*rdata = p;
	*off = p + *rdlen;
	return 0;
}

/* EDNS0 options: a sequence of (code, length, data) that must exactly fill
 * the RDATA. We use none of them, but a broken one is a FORMERR. */
static bool opt_options_ok(const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (n < 4)
			return false;
		size_t olen = get16(p + 2);
		if (olen > n - 4)
			return false;
		p += 4 + olen;
		n -= 4 + olen;
	}
	return true;
}

int dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q)
{
	size_t off;

	q->has_question = false;
	q->edns = false;
	q->qname_wire_len = 0;
	q->qname_len = 0;
	q->qname[0] = '\0';
	if (len < DNS_HEADER_LEN)
		return -EINVAL;
	q->id = get16(msg);
	q->flags = get16(msg + 2);
	q->opcode = (q->flags >> 11) & 0xf;
	q->rd = !!(q->flags & DNS_FLAG_RD);
	q->cd = !!(q->flags & DNS_FLAG_CD);
	q->qdcount = get16(msg + 4);
	q->ancount = get16(msg + 6);
	q->nscount = get16(msg + 8);
	q->arcount = get16(msg + 10);
	if (q->flags & DNS_FLAG_QR)
		return -EINVAL;
	if (q->qdcount != 1)
		return q->opcode != DNS_OPCODE_QUERY ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR;

	int bad = q->opcode != DNS_OPCODE_QUERY ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR;
	if (dns_name_decode(msg, len, DNS_HEADER_LEN, q->qname_wire, &q->qname_wire_len, &off) < 0)
		return bad;
	if (len - off < 4)
		return bad;
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	off += 4;
	q->qname_len = name_to_text(q->qname_wire, q->qname);
	q->has_question = true;
	/* Other opcodes give their sections other meanings (UPDATE): the
	 * question-shaped first section is echoed like unbound does, the rest
	 * is not looked at. */
	if (q->opcode != DNS_OPCODE_QUERY)
		return DNS_RCODE_NOTIMP;

	unsigned skip = (unsigned)q->ancount + q->nscount;
	for (unsigned i = 0; i < skip + q->arcount; i++) {
		uint16_t type, rclass, rdlen;
		uint32_t ttl;
		size_t rdata;
		bool root;
		if (rr_skip(msg, len, &off, &type, &rclass, &ttl, &rdata, &rdlen, &root) < 0)
			return DNS_RCODE_FORMERR;
		if (i < skip || type != DNS_TYPE_OPT)
			continue;
		/* RFC 6891 6.1.1: one OPT, owner root, else FORMERR. */
		if (q->edns) {
			q->edns = false;
			return DNS_RCODE_FORMERR;
		}
		if (!root || !opt_options_ok(msg + rdata, rdlen))
			return DNS_RCODE_FORMERR;
		q->edns = true;
		q->edns_udp_size = rclass;
		q->edns_version = (uint8_t)(ttl >> 16);
		q->edns_do = !!(ttl & 0x8000);
	}
	if (q->edns && q->edns_version != 0)
		return DNS_RCODE_BADVERS;
	return DNS_RCODE_NOERROR;
}

size_t dns_udp_limit(const struct dns_query *q, size_t our_max)
{
	if (!q->edns)
		return DNS_UDP_PLAIN_MAX;
	size_t n = q->edns_udp_size;
	if (n > our_max)
		n = our_max;
	return n < DNS_UDP_PLAIN_MAX ? DNS_UDP_PLAIN_MAX : n;
}

/* Remembers a label sequence at buf offset off as a compression target;
 * pointers hold 14 bits, and past DNS_COMP_MAX entries we just compress
 * less. */
static void comp_add(struct dns_resp *r, size_t off)
{
	if (off < 0x4000 && r->ncomp < DNS_COMP_MAX)
		r->comp[r->ncomp++] = (uint16_t)off;
}

/* Records every label start of the literally written labels at
 * buf[off..off+n). */
static void comp_add_labels(struct dns_resp *r, size_t off, const uint8_t *wire, size_t n)
{
	for (size_t i = 0; i < n && wire[i] != 0; i += 1 + (size_t)wire[i])
		comp_add(r, off + i);
}

/* Does the name at buf offset off (our own output, possibly ending in a
 * pointer) equal the uncompressed wire name w, ignoring ASCII case? */
static bool comp_equal(const struct dns_resp *r, size_t off, const uint8_t *w)
{
	unsigned jumps = 0;
	for (;;) {
		uint8_t c = r->buf[off];
		if ((c & 0xc0) == 0xc0) {
			if (++jumps > DNS_MAX_PTR_JUMPS)
				return false;
			off = ((size_t)(c & 0x3f) << 8) | r->buf[off + 1];
			continue;
		}
		if (c != *w)
			return false;
		if (c == 0)
			return true;
		for (size_t j = 1; j <= c; j++)
			if (lower(r->buf[off + j]) != lower(w[j]))
				return false;
		off += 1 + (size_t)c;
		w += 1 + (size_t)c;
	}
}

/* Finds the longest suffix of w already in the message. Returns the
 * number of leading bytes of w to write literally (w's length when
 * nothing matches) and the pointer target in *target. */
static size_t comp_find(const struct dns_resp *r, const uint8_t *w, size_t wlen, size_t *target)
{
	for (size_t pos = 0; w[pos] != 0; pos += 1 + (size_t)w[pos])
		for (unsigned i = 0; i < r->ncomp; i++)
			if (r->buf[r->comp[i]] == w[pos] && comp_equal(r, r->comp[i], w + pos)) {
				*target = r->comp[i];
				return pos;
			}
	return wlen;
}

int dns_resp_begin(struct dns_resp *r, const struct dns_query *q, uint8_t *buf, size_t cap,
		   size_t limit, unsigned rcode, bool aa)
{
	size_t need;
	uint16_t flags;

	if (limit > cap)
		limit = cap;
	if (limit > DNS_TCP_MAX)
		limit = DNS_TCP_MAX;
	if (rcode > 15 && !q->edns)
		rcode = DNS_RCODE_SERVFAIL;
	r->buf = buf;
	r->limit = limit;
	r->reserve = q->edns ? DNS_OPT_RR_LEN : 0;
	r->ancount = 0;
	r->tc = false;
	r->question = q->has_question;
	r->edns = q->edns;
	r->edns_do = q->edns && q->edns_do;
	r->rcode = rcode & 0xfff;
	r->ncomp = 0;
	need = DNS_HEADER_LEN + (q->has_question ? q->qname_wire_len + 4 : 0) + r->reserve;
	if (need > limit)
		return -EMSGSIZE;

	flags = DNS_FLAG_QR | (uint16_t)((q->opcode & 0xf) << 11) | DNS_FLAG_RA | (r->rcode & 0xf);
	if (aa)
		flags |= DNS_FLAG_AA;
	if (q->rd)
		flags |= DNS_FLAG_RD;
	if (q->cd)
		flags |= DNS_FLAG_CD;
	put16(buf, q->id);
	put16(buf + 2, flags);
	put16(buf + 4, q->has_question ? 1 : 0);
	memset(buf + 6, 0, 6);
	r->len = DNS_HEADER_LEN;
	if (q->has_question) {
		memcpy(buf + r->len, q->qname_wire, q->qname_wire_len);
		comp_add_labels(r, r->len, q->qname_wire, q->qname_wire_len);
		r->len += q->qname_wire_len;
		put16(buf + r->len, q->qtype);
		put16(buf + r->len + 2, q->qclass);
		r->len += 4;
	}
	return 0;
}

/* Checks that an answer RR with rdlen bytes of RDATA fits; writes the
 * owner (pointer to the question name) and the fixed part. Returns the
 * RDATA offset, or 0 when it does not fit (TC) or there is no question. */
static size_t rr_start(struct dns_resp *r, uint16_t type, uint32_t ttl, size_t rdlen)
{
	if (r->tc)
		return 0;
	if (!r->question)
		return 0;
	if (r->ancount == UINT16_MAX || r->len + 12 + rdlen + r->reserve > r->limit) {
		r->tc = true;
		return 0;
	}
	uint8_t *p = r->buf + r->len;
	put16(p, 0xc000 | DNS_HEADER_LEN);
	put16(p + 2, type);
	put16(p + 4, DNS_CLASS_IN);
	put32(p + 6, ttl);
	put16(p + 10, (uint16_t)rdlen);
	r->len += 12;
	r->ancount++;
	return r->len;
}

/* Why rr_start said no: -EINVAL without a question, else -EMSGSIZE. */
static int rr_fail(const struct dns_resp *r)
{
	return r->tc ? -EMSGSIZE : -EINVAL;
}

int dns_resp_add_rr(struct dns_resp *r, uint16_t type, uint32_t ttl, const void *rdata,
		    uint16_t rdlen)
{
	size_t at = rr_start(r, type, ttl, rdlen);
	if (at == 0)
		return rr_fail(r);
	memcpy(r->buf + at, rdata, rdlen);
	r->len += rdlen;
	return 0;
}

int dns_resp_add_a(struct dns_resp *r, uint32_t ttl, const uint8_t addr[4])
{
	return dns_resp_add_rr(r, DNS_TYPE_A, ttl, addr, 4);
}

int dns_resp_add_aaaa(struct dns_resp *r, uint32_t ttl, const uint8_t addr[16])
{
	return dns_resp_add_rr(r, DNS_TYPE_AAAA, ttl, addr, 16);
}

int dns_resp_add_ptr(struct dns_resp *r, uint32_t ttl, const char *target)
{
	uint8_t w[DNS_NAME_WIRE_MAX];
	size_t ptr = 0;
	int n = dns_name_from_text(target, w, sizeof(w));
	if (n < 0)
		return -EINVAL;
	size_t lit = comp_find(r, w, (size_t)n, &ptr);
	size_t rdlen = lit == (size_t)n ? lit : lit + 2;
	size_t at = rr_start(r, DNS_TYPE_PTR, ttl, rdlen);
	if (at == 0)
		return rr_fail(r);
	memcpy(r->buf + at, w, lit);
	comp_add_labels(r, at, w, lit);
	if (lit != (size_t)n)
		put16(r->buf + at + lit, (uint16_t)(0xc000 | ptr));
	r->len += rdlen;
	return 0;
}

size_t dns_resp_finish(struct dns_resp *r)
{
	uint8_t *b = r->buf;
	put16(b + 6, r->ancount);
	if (r->tc)
		b[2] |= DNS_FLAG_TC >> 8;
	if (r->edns) {
		uint8_t *p = b + r->len;
		p[0] = 0; /* root owner */
		put16(p + 1, DNS_TYPE_OPT);
		put16(p + 3, DNS_EDNS_UDP_MAX);
		p[5] = (uint8_t)(r->rcode >> 4); /* extended rcode, high 8 bits */
		p[6] = 0;                        /* version */
		put16(p + 7, r->edns_do ? 0x8000 : 0);
		put16(p + 9, 0);                 /* no options */
		r->len += DNS_OPT_RR_LEN;
		put16(b + 10, 1);
	}
	return r->len;
}

int dns_write_reply(const struct dns_query *q, unsigned rcode, bool aa, uint8_t *buf, size_t cap,
		    size_t limit)
{
	struct dns_resp r;
	int rc = dns_resp_begin(&r, q, buf, cap, limit, rcode, aa);
	if (rc < 0)
		return rc;
	return (int)dns_resp_finish(&r);
}

int dns_set_id(uint8_t *msg, size_t len, uint16_t id)
{
	if (len < DNS_HEADER_LEN)
		return -EINVAL;
	put16(msg, id);
	return 0;
}

int dns_check_reply(const uint8_t *resp, size_t len, uint16_t sent_id, const struct dns_query *q)
{
	uint8_t w[DNS_NAME_WIRE_MAX];
	size_t wlen, off;

	if (len < DNS_HEADER_LEN || get16(resp) != sent_id || !(resp[2] & (DNS_FLAG_QR >> 8)))
		return -EBADMSG;
	int rcode = resp[3] & 0xf;
	uint16_t qd = get16(resp + 4);
	if (qd == 0)
		return rcode != DNS_RCODE_NOERROR ? rcode : -EBADMSG;
	if (qd != 1 || !q->has_question)
		return -EBADMSG;
	if (dns_name_decode(resp, len, DNS_HEADER_LEN, w, &wlen, &off) < 0 || len - off < 4)
		return -EBADMSG;
	if (wlen != q->qname_wire_len || get16(resp + off) != q->qtype || get16(resp + off + 2) != q->qclass)
		return -EBADMSG;
	/* Length bytes are <= 63, below 'A', so lowering the whole wire form
	 * compares labels case-insensitively and lengths exactly. */
	for (size_t i = 0; i < wlen; i++)
		if (lower(w[i]) != lower(q->qname_wire[i]))
			return -EBADMSG;
	return rcode;
}

int dns_name_from_text(const char *text, uint8_t *out, size_t cap)
{
	size_t o = 0;
	const char *s = text;

	if (s[0] == '.' && s[1] == '\0')
		s++;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (n == 0 || n > DNS_LABEL_MAX || o + 1 + n + 1 > DNS_NAME_WIRE_MAX || o + 1 + n + 1 > cap)
			return -EINVAL;
		out[o] = (uint8_t)n;
		memcpy(out + o + 1, s, n);
		o += 1 + n;
		s += n;
		if (*s == '.')
			s++;
	}
	if (o + 1 > cap)
		return -EINVAL;
	out[o++] = 0;
	return (int)o;
}

/* Parses a decimal octet label "0".."255" (no leading zeros) ending at '.'. */
static int ptr_octet(const char **sp)
{
	const char *s = *sp;
	unsigned v = 0;
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9' && n < 3)
		v = v * 10 + (unsigned)(s[n++] - '0');
	if (n == 0 || s[n] != '.' || v > 255 || (n > 1 && s[0] == '0'))
		return -1;
	*sp = s + n + 1;
	return (int)v;
}

int dns_ptr_ipv4(const char *qname, uint8_t out[4])
{
	uint8_t a[4];
	const char *s = qname;
	for (int i = 3; i >= 0; i--) {
		int v = ptr_octet(&s);
		if (v < 0)
			return -EINVAL;
		a[i] = (uint8_t)v;
	}
	if (strcmp(s, "in-addr.arpa") != 0)
		return -EINVAL;
	memcpy(out, a, 4);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dns_ptr_ipv6(const char *qname, uint8_t out[16])
{
	uint8_t a[16] = { 0 };
	const char *s = qname;
	for (int i = 31; i >= 0; i--) {
		int v = hexval(s[0]);
		if (v < 0 || s[1] != '.')
			return -EINVAL;
		a[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
		s += 2;
	}
	if (strcmp(s, "ip6.arpa") != 0)
		return -EINVAL;
	memcpy(out, a, 16);
	return 0;
}

size_t dns_tcp_next(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len)
{
	if (len < 2)
		return 0;
	size_t n = get16(buf);
	if (len - 2 < n)
		return 0;
	*msg = buf + 2;
	*msg_len = n;
	return 2 + n;
}

void dns_tcp_put_len(uint8_t *p, size_t len)
{
	put16(p, (uint16_t)len);
}
