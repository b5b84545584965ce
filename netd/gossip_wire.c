/* memberlist message codec; contracts in gossip_wire.h. Each struct is
 * described once by a field table (Go name, kind, offset) in the sorted key
 * order go-msgpack writes; the encoder walks the table with libmsgpack-c and
 * the decoder matches keys against it with a bounded msgpack reader. */
#include "gossip_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

/* ---------------------------------------------------------------- buffer */

struct gossip_bytes gossip_str(const char *s)
{
	struct gossip_bytes b = { (const uint8_t *)s, s ? strlen(s) : 0 };
	return b;
}

bool gossip_bytes_eq(struct gossip_bytes b, const char *s)
{
	size_t n = strlen(s);
	return b.len == n && (n == 0 || memcmp(b.p, s, n) == 0);
}

void gossip_buf_init(struct gossip_buf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit ? limit : GOSSIP_BUF_DEFAULT_LIMIT;
}

void gossip_buf_init_fixed(struct gossip_buf *b, uint8_t *mem, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->data = mem;
	b->cap = cap;
	b->limit = cap;
	b->fixed = true;
}

void gossip_buf_free(struct gossip_buf *b)
{
	if (!b)
		return;
	if (!b->fixed) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->len = 0;
}

int gossip_buf_reserve(struct gossip_buf *b, size_t n)
{
	if (n <= b->cap - b->len)
		return 0;
	if (b->fixed || n > b->limit - b->len)
		return -EMSGSIZE;
	size_t want = b->len + n;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < want)
		ncap = ncap > b->limit / 2 ? b->limit : ncap * 2;
	uint8_t *d = realloc(b->data, ncap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = ncap;
	return 0;
}

int gossip_buf_append(struct gossip_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = gossip_buf_reserve(b, n);
	if (rc < 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int gossip_buf_put_u8(struct gossip_buf *b, uint8_t v)
{
	return gossip_buf_append(b, &v, 1);
}

int gossip_buf_put_be16(struct gossip_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	return gossip_buf_append(b, x, sizeof(x));
}

int gossip_buf_put_be32(struct gossip_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	return gossip_buf_append(b, x, sizeof(x));
}

/* ---------------------------------------------------------- field tables */

enum fkind { F_U8, F_U16, F_U32, F_INT, F_BOOL, F_STR, F_BYTES };

struct field {
	const char *name;  /* Go field name = map key */
	uint8_t kind;      /* enum fkind */
	bool omitempty;    /* `codec:",omitempty"`: skipped when zero/empty */
	size_t off;        /* offsetof in the C struct */
};

#define FLD(st, goname, k, om, member) { goname, k, om, offsetof(st, member) }
#define NF(t) (sizeof(t) / sizeof((t)[0]))

/* Every table is in byte order of the Go names, the order go-msgpack
 * writes them in. */
static const struct field ping_fields[] = {
	FLD(struct gossip_ping, "Node", F_STR, false, node),
	FLD(struct gossip_ping, "SeqNo", F_U32, false, seq_no),
	FLD(struct gossip_ping, "SourceAddr", F_BYTES, true, source_addr),
	FLD(struct gossip_ping, "SourceNode", F_STR, true, source_node),
	FLD(struct gossip_ping, "SourcePort", F_U16, true, source_port),
};

static const struct field indirect_fields[] = {
	FLD(struct gossip_indirect_ping, "Nack", F_BOOL, false, nack),
	FLD(struct gossip_indirect_ping, "Node", F_STR, false, node),
	FLD(struct gossip_indirect_ping, "Port", F_U16, false, port),
	FLD(struct gossip_indirect_ping, "SeqNo", F_U32, false, seq_no),
	FLD(struct gossip_indirect_ping, "SourceAddr", F_BYTES, true, source_addr),
	FLD(struct gossip_indirect_ping, "SourceNode", F_STR, true, source_node),
	FLD(struct gossip_indirect_ping, "SourcePort", F_U16, true, source_port),
	FLD(struct gossip_indirect_ping, "Target", F_BYTES, false, target),
};

static const struct field ack_fields[] = {
	FLD(struct gossip_ack, "Payload", F_BYTES, false, payload),
	FLD(struct gossip_ack, "SeqNo", F_U32, false, seq_no),
};

static const struct field nack_fields[] = {
	FLD(struct gossip_nack, "SeqNo", F_U32, false, seq_no),
};

static const struct field err_fields[] = {
	FLD(struct gossip_err, "Error", F_STR, false, error),
};

static const struct field suspect_fields[] = {
	FLD(struct gossip_suspect, "From", F_STR, false, from),
	FLD(struct gossip_suspect, "Incarnation", F_U32, false, incarnation),
	FLD(struct gossip_suspect, "Node", F_STR, false, node),
};

static const struct field dead_fields[] = {
	FLD(struct gossip_dead, "From", F_STR, false, from),
	FLD(struct gossip_dead, "Incarnation", F_U32, false, incarnation),
	FLD(struct gossip_dead, "Node", F_STR, false, node),
};

static const struct field alive_fields[] = {
	FLD(struct gossip_alive, "Addr", F_BYTES, false, addr),
	FLD(struct gossip_alive, "Incarnation", F_U32, false, incarnation),
	FLD(struct gossip_alive, "Meta", F_BYTES, false, meta),
	FLD(struct gossip_alive, "Node", F_STR, false, node),
	FLD(struct gossip_alive, "Port", F_U16, false, port),
	FLD(struct gossip_alive, "Vsn", F_BYTES, false, vsn),
};

static const struct field pph_fields[] = {
	FLD(struct gossip_push_pull_header, "Join", F_BOOL, false, join),
	FLD(struct gossip_push_pull_header, "Nodes", F_INT, false, nodes),
	FLD(struct gossip_push_pull_header, "UserStateLen", F_INT, false, user_state_len),
};

static const struct field pns_fields[] = {
	FLD(struct gossip_push_node_state, "Addr", F_BYTES, false, addr),
	FLD(struct gossip_push_node_state, "Incarnation", F_U32, false, incarnation),
	FLD(struct gossip_push_node_state, "Meta", F_BYTES, false, meta),
	FLD(struct gossip_push_node_state, "Name", F_STR, false, name),
	FLD(struct gossip_push_node_state, "Port", F_U16, false, port),
	FLD(struct gossip_push_node_state, "State", F_INT, false, state),
	FLD(struct gossip_push_node_state, "Vsn", F_BYTES, false, vsn),
};

static const struct field umh_fields[] = {
	FLD(struct gossip_user_msg_header, "UserMsgLen", F_INT, false, user_msg_len),
};

static const struct field compress_fields[] = {
	FLD(struct gossip_compress, "Algo", F_U8, false, algo),
	FLD(struct gossip_compress, "Buf", F_BYTES, false, buf),
};

/* --------------------------------------------------------------- encoder */

struct pk_ctx {
	struct gossip_buf *b;
	int err; /* first append error */
};

static int pk_write(void *data, const char *buf, size_t len)
{
	struct pk_ctx *c = data;
	int rc = gossip_buf_append(c->b, buf, len);
	if (rc < 0) {
		if (!c->err)
			c->err = rc;
		return -1;
	}
	return 0;
}

static bool field_empty(const struct field *f, const void *m)
{
	const char *at = (const char *)m + f->off;
	switch (f->kind) {
	case F_U8: return *(const uint8_t *)at == 0;
	case F_U16: return *(const uint16_t *)at == 0;
	case F_U32: return *(const uint32_t *)at == 0;
	case F_INT: return *(const int64_t *)at == 0;
	case F_BOOL: return !*(const bool *)at;
	default: return ((const struct gossip_bytes *)at)->len == 0;
	}
}

static void pack_raw(msgpack_packer *pk, const struct gossip_bytes *v)
{
	msgpack_pack_v4raw(pk, v->len);
	if (v->len)
		msgpack_pack_v4raw_body(pk, v->p, v->len);
}

/* Appends [type] (when type >= 0) and the struct as a go-msgpack map. */
static int encode_struct(struct gossip_buf *b, int type, const struct field *f,
			 size_t nf, const void *m)
{
	struct pk_ctx c = { b, 0 };
	msgpack_packer pk;
	size_t start = b->len;
	size_t n = 0;

	for (size_t i = 0; i < nf; i++)
		if (!f[i].omitempty || !field_empty(&f[i], m))
			n++;
	if (type >= 0)
		c.err = gossip_buf_put_u8(b, (uint8_t)type);
	msgpack_packer_init(&pk, &c, pk_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < nf && !c.err; i++) {
		const char *at = (const char *)m + f[i].off;
		if (f[i].omitempty && field_empty(&f[i], m))
			continue;
		struct gossip_bytes key = gossip_str(f[i].name);
		pack_raw(&pk, &key);
		switch (f[i].kind) {
		case F_U8: msgpack_pack_uint64(&pk, *(const uint8_t *)at); break;
		case F_U16: msgpack_pack_uint64(&pk, *(const uint16_t *)at); break;
		case F_U32: msgpack_pack_uint64(&pk, *(const uint32_t *)at); break;
		/* go-msgpack 0.5.x writes non-negative ints in unsigned forms;
		 * msgpack-c's int64 packer does the same. */
		case F_INT: msgpack_pack_int64(&pk, *(const int64_t *)at); break;
		case F_BOOL:
			if (*(const bool *)at)
				msgpack_pack_true(&pk);
			else
				msgpack_pack_false(&pk);
			break;
		case F_STR:
			/* A Go string is never nil: NULL encodes as "". */
			pack_raw(&pk, (const struct gossip_bytes *)at);
			break;
		case F_BYTES: {
			const struct gossip_bytes *v = (const struct gossip_bytes *)at;
			if (!v->p)
				msgpack_pack_nil(&pk);
			else
				pack_raw(&pk, v);
			break;
		}
		}
	}
	if (c.err) {
		b->len = start;
		return c.err;
	}
	return 0;
}

int gossip_encode_ping(struct gossip_buf *b, const struct gossip_ping *m)
{
	return encode_struct(b, GOSSIP_PING, ping_fields, NF(ping_fields), m);
}

int gossip_encode_indirect_ping(struct gossip_buf *b, const struct gossip_indirect_ping *m)
{
	return encode_struct(b, GOSSIP_INDIRECT_PING, indirect_fields, NF(indirect_fields), m);
}

int gossip_encode_ack(struct gossip_buf *b, const struct gossip_ack *m)
{
	return encode_struct(b, GOSSIP_ACK, ack_fields, NF(ack_fields), m);
}

int gossip_encode_nack(struct gossip_buf *b, const struct gossip_nack *m)
{
	return encode_struct(b, GOSSIP_NACK, nack_fields, NF(nack_fields), m);
}

int gossip_encode_err(struct gossip_buf *b, const struct gossip_err *m)
{
	return encode_struct(b, GOSSIP_ERR, err_fields, NF(err_fields), m);
}

int gossip_encode_suspect(struct gossip_buf *b, const struct gossip_suspect *m)
{
	return encode_struct(b, GOSSIP_SUSPECT, suspect_fields, NF(suspect_fields), m);
}

int gossip_encode_alive(struct gossip_buf *b, const struct gossip_alive *m)
{
	return encode_struct(b, GOSSIP_ALIVE, alive_fields, NF(alive_fields), m);
}

int gossip_encode_dead(struct gossip_buf *b, const struct gossip_dead *m)
{
	return encode_struct(b, GOSSIP_DEAD, dead_fields, NF(dead_fields), m);
}

int gossip_encode_compress(struct gossip_buf *b, const struct gossip_compress *m)
{
	return encode_struct(b, GOSSIP_COMPRESS, compress_fields, NF(compress_fields), m);
}

int gossip_encode_push_pull_header(struct gossip_buf *b, const struct gossip_push_pull_header *m)
{
	return encode_struct(b, -1, pph_fields, NF(pph_fields), m);
}

int gossip_encode_push_node_state(struct gossip_buf *b, const struct gossip_push_node_state *m)
{
	return encode_struct(b, -1, pns_fields, NF(pns_fields), m);
}

int gossip_encode_user_msg_header(struct gossip_buf *b, const struct gossip_user_msg_header *m)
{
	return encode_struct(b, -1, umh_fields, NF(umh_fields), m);
}

int gossip_encode_user_packet(struct gossip_buf *b, const uint8_t *payload, size_t len)
{
	size_t start = b->len;
	int rc = gossip_buf_put_u8(b, GOSSIP_USER);
	if (rc == 0)
		rc = gossip_buf_append(b, payload, len);
	if (rc < 0)
		b->len = start;
	return rc;
}

int gossip_encode_user_stream(struct gossip_buf *b, const uint8_t *payload, size_t len)
{
	struct gossip_user_msg_header h = { (int64_t)len };
	size_t start = b->len;
	int rc = len > GOSSIP_MAX_USER_MSG ? -E2BIG : gossip_buf_put_u8(b, GOSSIP_USER);
	if (rc == 0)
		rc = gossip_encode_user_msg_header(b, &h);
	if (rc == 0)
		rc = gossip_buf_append(b, payload, len);
	if (rc < 0)
		b->len = start;
	return rc;
}

int gossip_encode_push_pull(struct gossip_buf *b, bool join,
			    const struct gossip_push_node_state *states, size_t n,
			    const uint8_t *user_state, size_t ulen)
{
	struct gossip_push_pull_header h = { (int64_t)n, (int64_t)ulen, join };
	size_t start = b->len;
	int rc = 0;

	if (n > GOSSIP_MAX_PUSH_NODES || ulen > GOSSIP_MAX_USER_STATE)
		return -E2BIG;
	rc = gossip_buf_put_u8(b, GOSSIP_PUSH_PULL);
	if (rc == 0)
		rc = gossip_encode_push_pull_header(b, &h);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = gossip_encode_push_node_state(b, &states[i]);
	if (rc == 0)
		rc = gossip_buf_append(b, user_state, ulen);
	if (rc < 0)
		b->len = start;
	return rc;
}

/* ---------------------------------------------------------------- reader */

enum mp_kind { MP_NIL, MP_BOOL, MP_UINT, MP_NEG, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

struct mp_rd {
	const uint8_t *p; /* input */
	size_t len;       /* input length */
	size_t off;       /* next byte to read */
};

struct mp_val {
	enum mp_kind kind;
	uint64_t u;          /* MP_UINT value, MP_BOOL 0/1 */
	int64_t i;           /* MP_NEG value */
	const uint8_t *data; /* MP_STR/MP_BIN/MP_EXT payload (in the input) */
	uint64_t n;          /* payload length, or element count of array/map */
};

static size_t mp_left(const struct mp_rd *r)
{
	return r->len - r->off;
}

static uint64_t mp_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads n bytes of big-endian length/value after the tag. */
static int mp_take(struct mp_rd *r, size_t n, uint64_t *v)
{
	if (mp_left(r) < n)
		return -ENODATA;
	*v = mp_be(r->p + r->off, n);
	r->off += n;
	return 0;
}

/* Consumes a payload of v->n bytes into v->data. */
static int mp_payload(struct mp_rd *r, struct mp_val *v)
{
	if (v->n > mp_left(r))
		return -ENODATA;
	v->data = r->p + r->off;
	r->off += v->n;
	return 0;
}

/* Reads one value header. Strings, bin and ext are consumed whole; arrays
 * and maps only their header (v->n elements / pairs follow). */
static int mp_next(struct mp_rd *r, struct mp_val *v)
{
	uint64_t x = 0;
	int rc = 0;

	memset(v, 0, sizeof(*v));
	if (mp_left(r) < 1)
		return -ENODATA;
	uint8_t t = r->p[r->off++];

	if (t <= 0x7f) {
		v->kind = MP_UINT;
		v->u = t;
		return 0;
	}
	if (t >= 0xe0) {
		v->kind = MP_NEG;
		v->i = (int8_t)t;
		return 0;
	}
	if ((t & 0xf0) == 0x80 || (t & 0xf0) == 0x90) {
		v->kind = (t & 0xf0) == 0x80 ? MP_MAP : MP_ARRAY;
		v->n = t & 0x0f;
		return 0;
	}
	if ((t & 0xe0) == 0xa0) {
		v->kind = MP_STR;
		v->n = t & 0x1f;
		return mp_payload(r, v);
	}
	switch (t) {
	case 0xc0: v->kind = MP_NIL; return 0;
	case 0xc2: case 0xc3: v->kind = MP_BOOL; v->u = t & 1; return 0;
	case 0xc4: case 0xc5: case 0xc6:
		v->kind = MP_BIN;
		rc = mp_take(r, (size_t)1 << (t - 0xc4), &v->n);
		return rc < 0 ? rc : mp_payload(r, v);
	case 0xc7: case 0xc8: case 0xc9:
		v->kind = MP_EXT;
		rc = mp_take(r, (size_t)1 << (t - 0xc7), &v->n);
		if (rc < 0)
			return rc;
		v->n += 1; /* the ext type byte */
		return mp_payload(r, v);
	case 0xca: case 0xcb:
		v->kind = MP_FLOAT;
		return mp_take(r, t == 0xca ? 4 : 8, &x);
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		v->kind = MP_UINT;
		return mp_take(r, (size_t)1 << (t - 0xcc), &v->u);
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		size_t n = (size_t)1 << (t - 0xd0);
		rc = mp_take(r, n, &x);
		if (rc < 0)
			return rc;
		int64_t s;
		if (n == 8)
			s = (int64_t)x;
		else if (x >> (n * 8 - 1)) /* sign bit set */
			s = (int64_t)(x | ~((UINT64_C(1) << (n * 8)) - 1));
		else
			s = (int64_t)x;
		if (s >= 0) {
			v->kind = MP_UINT;
			v->u = (uint64_t)s;
		} else {
			v->kind = MP_NEG;
			v->i = s;
		}
		return 0;
	}
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		v->kind = MP_EXT;
		v->n = ((uint64_t)1 << (t - 0xd4)) + 1;
		return mp_payload(r, v);
	case 0xd9: case 0xda: case 0xdb:
		v->kind = MP_STR;
		rc = mp_take(r, (size_t)1 << (t - 0xd9), &v->n);
		return rc < 0 ? rc : mp_payload(r, v);
	case 0xdc: case 0xdd:
		v->kind = MP_ARRAY;
		return mp_take(r, t == 0xdc ? 2 : 4, &v->n);
	case 0xde: case 0xdf:
		v->kind = MP_MAP;
		return mp_take(r, t == 0xde ? 2 : 4, &v->n);
	default: /* 0xc1 is never used */
		return -EBADMSG;
	}
}

/* Skips the rest of a value whose header v was just read. Iterative: a
 * count of values still to read, which may never exceed the bytes left
 * (every value takes at least one), so absurd counts fail at once. */
static int mp_skip(struct mp_rd *r, const struct mp_val *v)
{
	uint64_t pending = v->kind == MP_ARRAY ? v->n : v->kind == MP_MAP ? 2 * v->n : 0;
	struct mp_val e;

	while (pending) {
		if (pending > mp_left(r))
			return -ENODATA;
		int rc = mp_next(r, &e);
		if (rc < 0)
			return rc;
		pending--;
		if (e.kind == MP_ARRAY)
			pending += e.n;
		else if (e.kind == MP_MAP)
			pending += 2 * e.n;
	}
	return 0;
}

static int set_uint(const struct mp_val *v, uint64_t max, uint64_t *out)
{
	switch (v->kind) {
	case MP_NIL: *out = 0; return 0;
	case MP_UINT:
		if (v->u > max)
			return -ERANGE;
		*out = v->u;
		return 0;
	case MP_NEG: return -ERANGE;
	default: return -EBADMSG;
	}
}

static int set_field(const struct field *f, const struct mp_val *v, void *m)
{
	char *at = (char *)m + f->off;
	uint64_t u = 0;
	int rc = 0;

	switch (f->kind) {
	case F_U8:
		rc = set_uint(v, UINT8_MAX, &u);
		*(uint8_t *)at = (uint8_t)u;
		return rc;
	case F_U16:
		rc = set_uint(v, UINT16_MAX, &u);
		*(uint16_t *)at = (uint16_t)u;
		return rc;
	case F_U32:
		rc = set_uint(v, UINT32_MAX, &u);
		*(uint32_t *)at = (uint32_t)u;
		return rc;
	case F_INT:
		if (v->kind == MP_NEG) {
			*(int64_t *)at = v->i;
			return 0;
		}
		rc = set_uint(v, INT64_MAX, &u);
		*(int64_t *)at = (int64_t)u;
		return rc;
	case F_BOOL:
		if (v->kind != MP_BOOL && v->kind != MP_NIL)
			return -EBADMSG;
		*(bool *)at = v->u != 0;
		return 0;
	default: { /* F_STR, F_BYTES */
		struct gossip_bytes *b = (struct gossip_bytes *)at;
		if (v->kind == MP_NIL) {
			b->p = NULL;
			b->len = 0;
			return 0;
		}
		if (v->kind != MP_STR && v->kind != MP_BIN)
			return -EBADMSG;
		b->p = v->data;
		b->len = (size_t)v->n;
		return 0;
	}
	}
}

/* Decodes one map into the struct described by f (zeroed first). */
static int decode_struct(const uint8_t *p, size_t len, const struct field *f, size_t nf,
			 void *m, size_t size, size_t *used)
{
	struct mp_rd r = { p, len, 0 };
	struct mp_val v, k;
	int rc;

	memset(m, 0, size);
	rc = mp_next(&r, &v);
	if (rc < 0)
		return rc;
	if (v.kind == MP_MAP) {
		if (v.n > mp_left(&r) / 2)
			return -ENODATA;
		for (uint64_t i = 0; i < v.n; i++) {
			rc = mp_next(&r, &k);
			if (rc < 0)
				return rc;
			if (k.kind != MP_STR && k.kind != MP_BIN)
				return -EBADMSG;
			const struct field *hit = NULL;
			for (size_t j = 0; j < nf && !hit; j++)
				if (strlen(f[j].name) == k.n && memcmp(f[j].name, k.data, k.n) == 0)
					hit = &f[j];
			struct mp_val val;
			rc = mp_next(&r, &val);
			if (rc < 0)
				return rc;
			rc = hit ? set_field(hit, &val, m) : mp_skip(&r, &val);
			if (rc < 0)
				return rc;
		}
	} else if (v.kind != MP_NIL) {
		return -EBADMSG;
	}
	if (used)
		*used = r.off;
	return 0;
}

#define DECODE(fields, m) decode_struct(p, len, fields, NF(fields), m, sizeof(*(m)), used)

int gossip_decode_ping(const uint8_t *p, size_t len, struct gossip_ping *m, size_t *used)
{
	return DECODE(ping_fields, m);
}

int gossip_decode_indirect_ping(const uint8_t *p, size_t len, struct gossip_indirect_ping *m, size_t *used)
{
	return DECODE(indirect_fields, m);
}

int gossip_decode_ack(const uint8_t *p, size_t len, struct gossip_ack *m, size_t *used)
{
	return DECODE(ack_fields, m);
}

int gossip_decode_nack(const uint8_t *p, size_t len, struct gossip_nack *m, size_t *used)
{
	return DECODE(nack_fields, m);
}

int gossip_decode_err(const uint8_t *p, size_t len, struct gossip_err *m, size_t *used)
{
	return DECODE(err_fields, m);
}

int gossip_decode_suspect(const uint8_t *p, size_t len, struct gossip_suspect *m, size_t *used)
{
	return DECODE(suspect_fields, m);
}

int gossip_decode_alive(const uint8_t *p, size_t len, struct gossip_alive *m, size_t *used)
{
	return DECODE(alive_fields, m);
}

int gossip_decode_dead(const uint8_t *p, size_t len, struct gossip_dead *m, size_t *used)
{
	return DECODE(dead_fields, m);
}

int gossip_decode_compress(const uint8_t *p, size_t len, struct gossip_compress *m, size_t *used)
{
	return DECODE(compress_fields, m);
}

int gossip_decode_push_node_state(const uint8_t *p, size_t len, struct gossip_push_node_state *m, size_t *used)
{
	return DECODE(pns_fields, m);
}

int gossip_decode_push_pull_header(const uint8_t *p, size_t len, struct gossip_push_pull_header *m, size_t *used)
{
	int rc = DECODE(pph_fields, m);
	if (rc < 0)
		return rc;
	if (m->nodes < 0 || m->user_state_len < 0)
		return -ERANGE;
	if (m->nodes > GOSSIP_MAX_PUSH_NODES || m->user_state_len > GOSSIP_MAX_USER_STATE)
		return -E2BIG;
	return 0;
}

int gossip_decode_user_msg_header(const uint8_t *p, size_t len, struct gossip_user_msg_header *m, size_t *used)
{
	int rc = DECODE(umh_fields, m);
	if (rc < 0)
		return rc;
	if (m->user_msg_len < 0)
		return -ERANGE;
	if (m->user_msg_len > GOSSIP_MAX_USER_MSG)
		return -E2BIG;
	return 0;
}

int gossip_decode_msg(const uint8_t *p, size_t len, struct gossip_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (len < 1)
		return -ENODATA;
	m->type = p[0];
	p++;
	len--;
	switch (m->type) {
	case GOSSIP_PING: return gossip_decode_ping(p, len, &m->u.ping, NULL);
	case GOSSIP_INDIRECT_PING: return gossip_decode_indirect_ping(p, len, &m->u.indirect_ping, NULL);
	case GOSSIP_ACK: return gossip_decode_ack(p, len, &m->u.ack, NULL);
	case GOSSIP_NACK: return gossip_decode_nack(p, len, &m->u.nack, NULL);
	case GOSSIP_ERR: return gossip_decode_err(p, len, &m->u.err, NULL);
	case GOSSIP_SUSPECT: return gossip_decode_suspect(p, len, &m->u.suspect, NULL);
	case GOSSIP_ALIVE: return gossip_decode_alive(p, len, &m->u.alive, NULL);
	case GOSSIP_DEAD: return gossip_decode_dead(p, len, &m->u.dead, NULL);
	case GOSSIP_COMPRESS: return gossip_decode_compress(p, len, &m->u.compress, NULL);
	case GOSSIP_USER:
		m->u.user.p = p;
		m->u.user.len = len;
		return 0;
	default:
		return -EBADMSG;
	}
}

const char *gossip_type_name(uint8_t type)
{
	static const char *const names[] = {
		"ping", "indirect-ping", "ack", "suspect", "alive", "dead", "push-pull",
		"compound", "user", "compress", "encrypt", "nack", "crc", "err",
	};
	if (type < NF(names))
		return names[type];
	if (type == GOSSIP_HAS_LABEL)
		return "label";
	return "unknown";
}
