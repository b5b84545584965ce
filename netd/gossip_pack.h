/* memberlist packet layering around the messages of gossip_wire.h
 * (reference §1.4, §1.5):
 *   compound  [7][n u8][n x u16 BE length][part]...   (n <= 255)
 *   compress  [9] + msgpack {Algo: 0, Buf: <Go LZW stream>}
 *   crc       [12][u32 BE crc32-IEEE(rest)][rest]      (UDP only)
 *   encrypt   see gossip_crypto.h                      (UDP blob / TCP [10])
 *   label     [244][len u8 1..255][label]              (outermost)
 * UDP send order, inside out: compound, compress (if smaller), crc,
 * encrypt, label. Receive runs it backwards; compound and compress nest.
 * The CRC is zlib's crc32 (link -lz), which is CRC-32/IEEE like Go's
 * crc32.ChecksumIEEE.
 *
 * All builders append to a struct gossip_buf and leave it unchanged on
 * error. Errors are 0 or negative errno as in gossip_wire.h. */
#ifndef SWARM_GOSSIP_PACK_H
#define SWARM_GOSSIP_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip_crypto.h"
#include "gossip_wire.h"

#define GOSSIP_COMPOUND_MAX 255           /* parts per compound message */
#define GOSSIP_LABEL_MAX 255              /* label bytes */
#define GOSSIP_UDP_BUDGET 1400            /* memberlist UDPBufferSize */
#define GOSSIP_UDP_MAX_DECOMPRESS (1u << 20)  /* walk limit per compress */
#define GOSSIP_TCP_MAX_DECOMPRESS (40u << 20) /* current memberlist's cap */
#define GOSSIP_WALK_MAX_DEPTH 8           /* compound/compress nesting */

/* Appends [7][n][lengths][parts]. -EINVAL if n is 0 or above 255,
 * -EMSGSIZE if a part is longer than 65535. */
int gossip_pack_compound(struct gossip_buf *out, const struct gossip_bytes *parts, size_t n);

/* Splits a compound body p[len] (after the [7] byte) into views. Like Go,
 * parts that do not fit in the buffer are dropped and counted in
 * *truncated (may be NULL); the others are returned. -ENODATA if the count
 * byte or length table is cut, -ENOSPC if more than max_parts. */
int gossip_pack_compound_split(const uint8_t *p, size_t len, struct gossip_bytes *parts,
			       size_t max_parts, size_t *n, size_t *truncated);

/* crc32-IEEE of p[len]. */
uint32_t gossip_pack_crc32(const uint8_t *p, size_t len);

/* Appends [12][crc32(msg) BE][msg]. */
int gossip_pack_crc_add(struct gossip_buf *out, const uint8_t *msg, size_t len);

/* If p starts with [12] and has at least 5 bytes, checks the CRC and sets
 * *msg, *mlen to the rest: returns 1, or -EBADMSG on mismatch. Otherwise
 * passes p through and returns 0. */
int gossip_pack_crc_check(const uint8_t *p, size_t len, const uint8_t **msg, size_t *mlen);

/* Appends [244][len][label] and msg; an empty or NULL label adds nothing.
 * -EINVAL for a label over 255 bytes. */
int gossip_pack_label_add(struct gossip_buf *out, const char *label, const uint8_t *msg, size_t len);

/* Strips a label header: *label, *label_len (label may be empty: {NULL,0})
 * and *rest, *rest_len. -ENODATA if cut short, -EBADMSG for a zero length. */
int gossip_pack_label_strip(const uint8_t *p, size_t len, struct gossip_bytes *label,
			    const uint8_t **rest, size_t *rest_len);

/* Appends [9]{Algo:0, Buf:lzw(msg)}. */
int gossip_pack_compress(struct gossip_buf *out, const uint8_t *msg, size_t len);

/* Decompresses a compress body p[len] (after the [9] byte) and appends the
 * inner message to out. -EPROTONOSUPPORT for an Algo other than 0, -E2BIG
 * above max_out, plus the decoder and lzw errors. */
int gossip_pack_decompress(const uint8_t *p, size_t len, size_t max_out, struct gossip_buf *out);

/* Options for one UDP packet. */
struct gossip_udp_opts {
	bool crc;                        /* add the CRC header (peer PMax >= 5) */
	bool compress;                   /* compress if it makes msg smaller */
	const char *label;               /* NULL or "" for none */
	const struct gossip_keyring *kr; /* NULL or empty: no encryption */
	int enc_vsn;                     /* encryption version, normally 1 */
};

/* Appends the packet for msg (a message or compound) to out, layered
 * compress, crc, encrypt, label. */
int gossip_pack_udp_seal(struct gossip_buf *out, const uint8_t *msg, size_t len,
			 const struct gossip_udp_opts *o);

/* Inbound UDP up to the type dispatch: strips the label and drops the
 * packet (-EPERM) if it differs from label (NULL = ""); decrypts with kr
 * when it has keys (if verify_incoming is false a packet that does not
 * decrypt is taken as plaintext, as memberlist does); checks the CRC. The
 * message is *msg, *mlen, pointing into pkt or into scratch (caller's,
 * growable, freed by the caller). */
int gossip_pack_udp_open(const uint8_t *pkt, size_t len, const char *label,
			 const struct gossip_keyring *kr, bool verify_incoming,
			 struct gossip_buf *scratch, const uint8_t **msg, size_t *mlen);

/* Called once per leaf message by gossip_pack_walk; type is p[0], the body
 * is p+1. The bytes are valid only during the call. A negative return
 * stops the walk and is returned by it. */
typedef int (*gossip_walk_fn)(void *arg, const uint8_t *p, size_t len);

/* Walks a message (after gossip_pack_udp_open): compound parts and
 * compressed messages are opened recursively (depth at most
 * GOSSIP_WALK_MAX_DEPTH, each decompression at most max_decompress bytes);
 * every other message, known or not, is passed to fn. Truncated compound
 * parts are dropped as in Go. Returns 0, fn's error, or the first layering
 * error (earlier leaves have already been delivered). */
int gossip_pack_walk(const uint8_t *p, size_t len, size_t max_decompress, gossip_walk_fn fn, void *arg);

/* TCP stream message: label header (the dialing side only: label may be
 * NULL), then [9]-compressed when compress is set, then [10]-encrypted
 * when kr has keys. */
int gossip_pack_tcp_seal(struct gossip_buf *out, const uint8_t *msg, size_t len,
			 const char *label, bool compress, const struct gossip_keyring *kr,
			 int enc_vsn);

/* Inbound TCP message held whole in buf[len] (from the connection's first
 * byte): strips and checks the label (-EPERM on mismatch), decrypts a
 * [10] frame (-ENODATA while incomplete; -EACCES for a plaintext message
 * when kr has keys and verify_incoming is set, for an encrypted one when
 * kr has none), then opens a [9] wrapper. *msg, *mlen is the message with
 * its type byte, in buf or in scratch; *used is how much of buf the
 * encrypted frame took (0 for plaintext: a plaintext push/pull has no
 * length, its decoders tell where it ends). */
int gossip_pack_tcp_open(const uint8_t *buf, size_t len, const char *label,
			 const struct gossip_keyring *kr, bool verify_incoming,
			 struct gossip_buf *scratch, const uint8_t **msg, size_t *mlen,
			 size_t *used);

#endif
