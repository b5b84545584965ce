/* memberlist message codec: the structs memberlist sends on 7946 and their
 * msgpack encodings, byte for byte as go-msgpack writes them
 * (see /work/shared/reference/memberlist.md §1).
 *
 * Encoding rules (go-msgpack MsgpackHandle defaults, serf 0.9.4 dialect):
 * structs are maps whose keys are the Go field names in byte order; strings
 * and []byte both go out as legacy raw (a0|n, da, db; never d9 or c4-c6);
 * a nil []byte is c0; unsigned and non-negative Go int fields use the
 * smallest unsigned form (fixint, cc, cd, ce, cf).
 *
 * Decoding accepts any key order, ignores unknown keys, treats missing keys
 * and nil values as zero, accepts str8/bin for strings and bytes and any
 * integer width that fits the field. Decoders are pure and allocate
 * nothing: every string or bytes field of a decoded struct is a view into
 * the input buffer, which the caller must keep alive while using it.
 *
 * Errors are 0 or negative errno:
 *   -ENODATA  input ends early (a stream reader may wait for more bytes)
 *   -EBADMSG  malformed msgpack, wrong type for a field, unknown message
 *   -ERANGE   integer does not fit the field (or negative for a length)
 *   -E2BIG    a length field above the limits below
 *   -ENOMEM / -EMSGSIZE  output buffer could not grow / fixed buffer full
 *
 * The msgpack writer is libmsgpack-c (msgpack_pack_v4raw for raw strings).
 * The reader is our own bounded cursor: msgpack-c's unpacker allocates
 * n * 24 bytes up front for a map header claiming n entries, so five bytes
 * of input could ask for 96 GiB. */
#ifndef SWARM_GOSSIP_WIRE_H
#define SWARM_GOSSIP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message type bytes (memberlist net.go, "ONLY APPEND"). */
enum gossip_type {
	GOSSIP_PING = 0,
	GOSSIP_INDIRECT_PING = 1,
	GOSSIP_ACK = 2,
	GOSSIP_SUSPECT = 3,
	GOSSIP_ALIVE = 4,
	GOSSIP_DEAD = 5,
	GOSSIP_PUSH_PULL = 6,
	GOSSIP_COMPOUND = 7,
	GOSSIP_USER = 8,
	GOSSIP_COMPRESS = 9,
	GOSSIP_ENCRYPT = 10,
	GOSSIP_NACK = 11,
	GOSSIP_HAS_CRC = 12,
	GOSSIP_ERR = 13,
	GOSSIP_HAS_LABEL = 244,
};

/* Limits applied by the decoders (memberlist v0.6.0+ values). */
#define GOSSIP_MAX_PUSH_NODES (1u << 20)        /* pushPullHeader.Nodes */
#define GOSSIP_MAX_USER_STATE (20u << 20)       /* pushPullHeader.UserStateLen */
#define GOSSIP_MAX_USER_MSG (20u << 20)         /* userMsgHeader.UserMsgLen */
#define GOSSIP_BUF_DEFAULT_LIMIT (64u << 20)    /* growable buffer cap */

/* Node states in pushNodeState.State. */
enum gossip_node_state {
	GOSSIP_STATE_ALIVE = 0,
	GOSSIP_STATE_SUSPECT = 1,
	GOSSIP_STATE_DEAD = 2,
	GOSSIP_STATE_LEFT = 3,
};

/* A byte string that is not owned: for encoding it points at the caller's
 * data, for decoding into the input. p == NULL means Go nil (encoded c0 for
 * []byte fields, a0 for string fields); p != NULL with len 0 is an empty
 * non-nil slice (a0). Strings are not NUL-terminated. */
struct gossip_bytes {
	const uint8_t *p;
	size_t len;
};

/* View of a C string (NULL gives a nil view). */
struct gossip_bytes gossip_str(const char *s);

/* True when the view holds exactly the C string s. */
bool gossip_bytes_eq(struct gossip_bytes b, const char *s);

/* Output buffer: growable (malloc, capped at limit) or fixed (caller's
 * memory, never grows). On failure len is left unchanged by the failing
 * append. */
struct gossip_buf {
	uint8_t *data;  /* bytes written so far */
	size_t len;     /* bytes used */
	size_t cap;     /* bytes allocated or supplied */
	size_t limit;   /* growable: never grow past this many bytes */
	bool fixed;     /* data belongs to the caller and cannot grow */
};

/* Empty growable buffer; limit 0 means GOSSIP_BUF_DEFAULT_LIMIT. */
void gossip_buf_init(struct gossip_buf *b, size_t limit);
/* Fixed buffer over the caller's mem[cap]. */
void gossip_buf_init_fixed(struct gossip_buf *b, uint8_t *mem, size_t cap);
/* Frees a growable buffer's memory (not a fixed one's); NULL is a no-op.
 * The buffer is left empty and reusable. */
void gossip_buf_free(struct gossip_buf *b);
/* Makes room for n more bytes: 0, -ENOMEM, or -EMSGSIZE (limit/fixed). */
int gossip_buf_reserve(struct gossip_buf *b, size_t n);
/* Appends n bytes (p may be NULL when n is 0). */
int gossip_buf_append(struct gossip_buf *b, const void *p, size_t n);
int gossip_buf_put_u8(struct gossip_buf *b, uint8_t v);
int gossip_buf_put_be16(struct gossip_buf *b, uint16_t v);
int gossip_buf_put_be32(struct gossip_buf *b, uint32_t v);

/* ---- the structs; fields named after the Go fields (in comments) ---- */

struct gossip_ping {
	uint32_t seq_no;                 /* SeqNo */
	struct gossip_bytes node;        /* Node: the intended target's name */
	struct gossip_bytes source_addr; /* SourceAddr, omitempty */
	uint16_t source_port;            /* SourcePort, omitempty */
	struct gossip_bytes source_node; /* SourceNode, omitempty */
};

struct gossip_indirect_ping {
	uint32_t seq_no;                 /* SeqNo */
	struct gossip_bytes target;      /* Target: 4- or 16-byte IP */
	uint16_t port;                   /* Port */
	struct gossip_bytes node;        /* Node */
	bool nack;                       /* Nack: requester wants a nack */
	struct gossip_bytes source_addr; /* SourceAddr, omitempty */
	uint16_t source_port;            /* SourcePort, omitempty */
	struct gossip_bytes source_node; /* SourceNode, omitempty */
};

struct gossip_ack {
	uint32_t seq_no;             /* SeqNo */
	struct gossip_bytes payload; /* Payload (nil -> c0) */
};

struct gossip_nack {
	uint32_t seq_no; /* SeqNo */
};

struct gossip_err {
	struct gossip_bytes error; /* Error */
};

/* suspect and dead have the same fields. */
struct gossip_suspect {
	uint32_t incarnation;     /* Incarnation */
	struct gossip_bytes node; /* Node */
	struct gossip_bytes from; /* From */
};

struct gossip_dead {
	uint32_t incarnation;     /* Incarnation */
	struct gossip_bytes node; /* Node */
	struct gossip_bytes from; /* From: == Node means a graceful leave */
};

struct gossip_alive {
	uint32_t incarnation;     /* Incarnation */
	struct gossip_bytes node; /* Node */
	struct gossip_bytes addr; /* Addr: 4- or 16-byte IP */
	uint16_t port;            /* Port */
	struct gossip_bytes meta; /* Meta (memberlist allows 512 bytes) */
	struct gossip_bytes vsn;  /* Vsn: 6 bytes PMin PMax PCur DMin DMax DCur */
};

struct gossip_push_pull_header {
	int64_t nodes;          /* Nodes: count of pushNodeState that follow */
	int64_t user_state_len; /* UserStateLen: raw bytes after the states */
	bool join;              /* Join */
};

struct gossip_push_node_state {
	struct gossip_bytes name; /* Name */
	struct gossip_bytes addr; /* Addr */
	uint16_t port;            /* Port */
	struct gossip_bytes meta; /* Meta */
	uint32_t incarnation;     /* Incarnation */
	int64_t state;            /* State: enum gossip_node_state */
	struct gossip_bytes vsn;  /* Vsn */
};

struct gossip_user_msg_header {
	int64_t user_msg_len; /* UserMsgLen: raw bytes that follow */
};

struct gossip_compress {
	uint8_t algo;            /* Algo: 0 = LZW, the only one */
	struct gossip_bytes buf; /* Buf: the LZW stream */
};

/* ---- encoders: append [type byte] + msgpack map to b ---- */

int gossip_encode_ping(struct gossip_buf *b, const struct gossip_ping *m);
int gossip_encode_indirect_ping(struct gossip_buf *b, const struct gossip_indirect_ping *m);
int gossip_encode_ack(struct gossip_buf *b, const struct gossip_ack *m);
int gossip_encode_nack(struct gossip_buf *b, const struct gossip_nack *m);
int gossip_encode_err(struct gossip_buf *b, const struct gossip_err *m);
int gossip_encode_suspect(struct gossip_buf *b, const struct gossip_suspect *m);
int gossip_encode_alive(struct gossip_buf *b, const struct gossip_alive *m);
int gossip_encode_dead(struct gossip_buf *b, const struct gossip_dead *m);
int gossip_encode_compress(struct gossip_buf *b, const struct gossip_compress *m);
/* UDP user message: [8] + payload as is. */
int gossip_encode_user_packet(struct gossip_buf *b, const uint8_t *payload, size_t len);
/* TCP user message: [8] + {UserMsgLen} + payload. */
int gossip_encode_user_stream(struct gossip_buf *b, const uint8_t *payload, size_t len);
/* Whole push/pull message: [6] + header{Join, Nodes=n, UserStateLen=ulen}
 * + n node states + user state bytes. */
int gossip_encode_push_pull(struct gossip_buf *b, bool join,
			    const struct gossip_push_node_state *states, size_t n,
			    const uint8_t *user_state, size_t ulen);

/* Bodies without a type byte (parts of the push/pull and user streams). */
int gossip_encode_push_pull_header(struct gossip_buf *b, const struct gossip_push_pull_header *m);
int gossip_encode_push_node_state(struct gossip_buf *b, const struct gossip_push_node_state *m);
int gossip_encode_user_msg_header(struct gossip_buf *b, const struct gossip_user_msg_header *m);

/* ---- decoders: p/len is the msgpack body (after the type byte). On
 * success *used (if not NULL) is the number of bytes of the one msgpack
 * object consumed; bytes after it are left alone, as Go does. ---- */

int gossip_decode_ping(const uint8_t *p, size_t len, struct gossip_ping *m, size_t *used);
int gossip_decode_indirect_ping(const uint8_t *p, size_t len, struct gossip_indirect_ping *m, size_t *used);
int gossip_decode_ack(const uint8_t *p, size_t len, struct gossip_ack *m, size_t *used);
int gossip_decode_nack(const uint8_t *p, size_t len, struct gossip_nack *m, size_t *used);
int gossip_decode_err(const uint8_t *p, size_t len, struct gossip_err *m, size_t *used);
int gossip_decode_suspect(const uint8_t *p, size_t len, struct gossip_suspect *m, size_t *used);
int gossip_decode_alive(const uint8_t *p, size_t len, struct gossip_alive *m, size_t *used);
int gossip_decode_dead(const uint8_t *p, size_t len, struct gossip_dead *m, size_t *used);
int gossip_decode_compress(const uint8_t *p, size_t len, struct gossip_compress *m, size_t *used);
/* Rejects Nodes > GOSSIP_MAX_PUSH_NODES or UserStateLen > GOSSIP_MAX_USER_STATE
 * with -E2BIG, negative ones with -ERANGE. */
int gossip_decode_push_pull_header(const uint8_t *p, size_t len, struct gossip_push_pull_header *m, size_t *used);
int gossip_decode_push_node_state(const uint8_t *p, size_t len, struct gossip_push_node_state *m, size_t *used);
/* Rejects UserMsgLen > GOSSIP_MAX_USER_MSG (-E2BIG) or negative (-ERANGE). */
int gossip_decode_user_msg_header(const uint8_t *p, size_t len, struct gossip_user_msg_header *m, size_t *used);

/* One UDP message, decoded by its type byte. */
struct gossip_msg {
	uint8_t type; /* enum gossip_type */
	union {
		struct gossip_ping ping;
		struct gossip_indirect_ping indirect_ping;
		struct gossip_ack ack;
		struct gossip_nack nack;
		struct gossip_err err;
		struct gossip_suspect suspect;
		struct gossip_alive alive;
		struct gossip_dead dead;
		struct gossip_compress compress;
		struct gossip_bytes user; /* GOSSIP_USER: the raw payload */
	} u;
};

/* Decodes a whole message [type][body]: ping, indirect ping, ack, nack,
 * err, suspect, alive, dead, compress and (UDP form) user. Other types
 * (compound, push/pull, crc, encrypt, label, unknown) give -EBADMSG; the
 * layering in gossip_pack.h handles compound, crc and compress. */
int gossip_decode_msg(const uint8_t *p, size_t len, struct gossip_msg *m);

/* Name of a type byte for logs ("ping", "alive", ..., "unknown"). */
const char *gossip_type_name(uint8_t type);

#endif
