/* Sealing of encrypted overlay frames for the userspace data path, and the
 * negotiation-free SPIs of the kernel ESP path. A pure library: no sockets,
 * no event loop; wall-clock time is passed in.
 *
 * Wire format: one sealed frame is the payload of one UDP datagram on the
 * userspace data-path port (or, for a train, below, of several), shaped
 * like VXLAN (a fixed header, then the frame):
 *
 *   off len
 *    0   1  SEAL_MAGIC (0xE1: format version 1). Its 0x08 bit, VXLAN's
 *           "I" flag, is clear, so a sealed packet sent to a kernel VXLAN
 *           port by mistake is dropped there, never decapsulated.
 *    1   1  id of the ring key the frame is sealed with (struct seal_key)
 *    2   1  train index (0 but in a train, see below)
 *    3   1  train count (0: a frame alone; 2..SEAL_TRAIN_MAX: a train;
 *           a receiver drops 1)
 *    4   4  sender's epoch, big endian (random, chosen per sealer start
 *           and re-key)
 *    8   8  counter, big endian (per direction and epoch, strictly rising)
 *   16   n  AES-GCM ciphertext of the frame (the caller's plaintext, in
 *           practice the VXLAN header and inner Ethernet frame; not parsed)
 *   16+n 16 GCM tag
 *
 * The 16 header bytes are the AAD; header bytes 4..15 (epoch || counter)
 * are the 96-bit nonce. Overhead: SEAL_OVERHEAD (32) bytes.
 *
 * Trains. A frame too big for one datagram that fits the underlay (a TCP
 * super-frame) is sealed once, with one counter and one tag, as a frame
 * of cnt = byte 3 is; the stream "ciphertext || tag" is then cut into
 * cnt slices of unit bytes (the last: the rest, at least one byte), and
 * slice k travels in a datagram of its own: the header with byte 2 = k,
 * then the slice. The AAD is the header with byte 2 = 0, the "canonical"
 * header, which is also datagram 0's. Every datagram but the last is
 * unit + SEAL_HDR_LEN bytes, so a sender can hand them to the kernel as
 * one UDP_SEGMENT send. A receiver gathers a train's slices
 * (seal_train_add: its datagrams agree on every header byte but the
 * index) behind the canonical header and opens the whole with
 * seal_rx_open, so a train costs one AES-GCM pass and one replay-window
 * slot, and a lost datagram loses its train only (never IP fragments).
 * The slices are not authenticated one by one: a forged or damaged one
 * makes its whole train fail to open, as a lost one would, and a datagram
 * that claims another train abandons the one being gathered. So whoever
 * can send datagrams with a peer's source address can make that peer's
 * trains (TCP super-frames) fail, though never pass a forged byte: a
 * denial of service the underlay must prevent (as it must any flood).
 *
 * Keys. The ring keys come from the managers (networking:ipsec, 16 bytes
 * today); 24- and 32-byte keys select AES-192/256. A frame is never sealed
 * with a ring key directly but with a per-direction key
 *   HKDF-SHA256(IKM = ring key, salt = "swarm-dp",
 *               info = "swarm-dp1" || sender addr || receiver addr || epoch)
 * (addresses as 16-byte IPv4-mapped IPv6, epoch big endian), as long as
 * the ring key. So a (key, nonce) pair never repeats: each direction has
 * its own key, each sealer start or re-key draws a new epoch and so a new
 * key, and under one key the counter only rises. Should a sealer draw
 * an epoch again (32 random bits: p ~ k^2 / 2^33 over k epochs of one
 * ring key and direction), the counters still differ as long as the wall
 * clock did not go back (see below), so the nonces do too.
 *
 * Counters and roll-back. The counter of a new epoch starts at
 * max(wall-clock ns, previous counter + 1), not at 0, so counters rise
 * across epochs and sealer restarts as well as within an epoch. A receiver
 * accepts a frame of an epoch it does not know only if it authenticates
 * AND its counter is above every counter it has accepted from that peer;
 * the previous epoch stays known (with its replay window) for the frames
 * still in flight. So recorded frames of an old epoch can never be played
 * again as a "new" epoch: their counters are below the high-water mark.
 * A sender whose wall clock goes back across a restart would then have
 * its frames dropped (as replays) until the clock caught up; so the
 * sender keeps a counter floor on disk (the "floor file"): a reservation
 * above every counter it may use, written before any counter reaches it
 * (seal_floor_due), read at start, and its clock for counters is
 * max(wall clock, floor). Without the file (or if it is lost) the old
 * price stands: drops until the clock catches up, or until the receiver
 * forgets the peer (seal_rx_reset, which swarm-sealer does when it
 * restarts).
 *
 * Replay: a 1024-bit sliding window per epoch (RFC 6479); counters more
 * than SEAL_WINDOW - 64 below the highest accepted one are too old.
 *
 * Errors: -EINVAL (bad key length or arguments), -EMSGSIZE (output buffer
 * too small or frame too big for a UDP datagram), -EKEYEXPIRED (sealer
 * must re-key first), -EBADMSG (truncated, wrong magic, an index, a
 * count of 1), -EKEYREJECTED (no ring key with that id, or the tag does not
 * verify: wrong key, forged, corrupted, truncated past the header),
 * -EALREADY (replayed, too old, or an old epoch), -ENOMEM, -EIO (OpenSSL
 * failure). */
#ifndef SWARM_SEAL_H
#define SWARM_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEAL_MAGIC 0xE1
#define SEAL_HDR_LEN 16
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (SEAL_HDR_LEN + SEAL_TAG_LEN)
#define SEAL_MAX_PACKET 65507u          /* largest UDP payload over IPv4 */
#define SEAL_MAX_FRAME (SEAL_MAX_PACKET - SEAL_OVERHEAD)
#define SEAL_KEY_MAX 32
#define SEAL_TRAIN_MAX 255              /* datagrams of one train */
#define SEAL_WINDOW 1024                /* replay window, bits */
#define SEAL_CACHE 4                    /* derived keys kept per epoch */

/* Frames one sealer may seal under one epoch. GCM's own limits are far
 * away (2^32 invocations for random nonces; our nonces are counters, so
 * the bound is the volume: 2^31 frames of at most 2^16 bytes are 2^43
 * blocks, a distinguishing advantage below 2^-40). Re-keying is free (no
 * handshake: a new epoch and one HKDF on each side), so we re-key early:
 * seal_tx_should_rekey turns true at SEAL_REKEY_SOFT, and sealing is
 * refused at SEAL_REKEY_AFTER. At 1 Mpps that is a re-key every ~18 min. */
#define SEAL_REKEY_SOFT (UINT64_C(1) << 30)
#define SEAL_REKEY_AFTER (UINT64_C(1) << 31)

/* The floor file reserves this far (ns of clock, or counters) above the
 * clock; a new reservation is written when less than half of it is left.
 * Epochs use at most SEAL_REKEY_AFTER counters, far less than half. */
#define SEAL_FLOOR_RESERVE (UINT64_C(1) << 42)   /* ~73 minutes */

/* One key of the ring. */
struct seal_key {
	uint8_t id;                 /* carried in the header (e.g. low byte of the Lamport tag) */
	uint8_t key[SEAL_KEY_MAX];  /* key bytes */
	size_t len;                 /* 16, 24 or 32 */
};

/* Sealer of one direction (this node -> one peer). Fields are read-only
 * for callers (tests may poke them). */
struct seal_tx {
	uint32_t src, dst;          /* data-path addresses, host byte order */
	uint32_t epoch;             /* current epoch */
	uint64_t counter;           /* next counter to use */
	uint64_t sent;              /* frames sealed in this epoch */
	struct seal_key key;        /* ring key in use (the primary) */
	void *ctx;                  /* EVP_CIPHER_CTX keyed with the derived key */
};

/* A derived receive key, cached per (epoch, ring key). */
struct seal_rx_key {
	struct seal_key ring;       /* ring key it was derived from */
	void *ctx;                  /* EVP_CIPHER_CTX keyed for decryption; NULL = unused */
};

/* Receive state of one sender epoch. */
struct seal_rx_epoch {
	bool used;                  /* slot holds an epoch */
	uint32_t epoch;             /* the sender's epoch */
	uint64_t top;               /* highest counter accepted */
	uint64_t bitmap[SEAL_WINDOW / 64];  /* RFC 6479 window, indexed by counter bits */
	struct seal_rx_key keys[SEAL_CACHE]; /* derived keys, round robin */
	unsigned next;              /* next cache slot to replace */
};

/* Opener of one direction (one peer -> this node). */
struct seal_rx {
	uint32_t src, dst;          /* peer's and our data-path address, host byte order */
	bool seen;                  /* high is valid */
	uint64_t high;              /* highest counter accepted from this peer, any epoch */
	struct seal_rx_epoch cur;   /* the sender's current epoch */
	struct seal_rx_epoch prev;  /* the one before, for frames still in flight */
	uint64_t opened;            /* stats: frames opened */
	uint64_t bad;               /* stats: -EBADMSG */
	uint64_t rejected;          /* stats: -EKEYREJECTED */
	uint64_t replayed;          /* stats: -EALREADY */
	uint64_t epochs;            /* stats: new epochs accepted */
};

/* Same id, length and bytes (compared in constant time). */
bool seal_key_equal(const struct seal_key *a, const struct seal_key *b);

/* Sets up tx for src -> dst sealing with ring key key (the ring's
 * primary), a random epoch and counter start max(now, 0); now is the wall
 * clock in ns (now_wall_ns). seal_tx_clear must follow, even on error. */
int seal_tx_init(struct seal_tx *tx, const struct seal_key *key, uint32_t src, uint32_t dst,
		 int64_t now);
/* Frees and wipes tx; a zeroed tx is fine. */
void seal_tx_clear(struct seal_tx *tx);
/* Switches to another primary ring key (a no-op if it is the same). The
 * epoch and counter go on: the derived key changes with the ring key, and
 * the counter never repeats within the epoch. */
int seal_tx_set_key(struct seal_tx *tx, const struct seal_key *key);
/* New random epoch (never the current one), counter start max(now,
 * counter), sent count 0. */
int seal_tx_rekey(struct seal_tx *tx, int64_t now);
/* True once the caller should re-key (SEAL_REKEY_SOFT). */
bool seal_tx_should_rekey(const struct seal_tx *tx);
/* Seals frame[len] into out[outcap]; returns the packet length (len +
 * SEAL_OVERHEAD) or -errno. frame may sit at out + SEAL_HDR_LEN (sealing
 * in place); no other overlap. -EKEYEXPIRED once SEAL_REKEY_AFTER frames
 * were sealed in this epoch: seal_tx_rekey, then seal again. */
ssize_t seal_tx_seal(struct seal_tx *tx, const uint8_t *frame, size_t len, uint8_t *out,
		     size_t outcap);
/* Datagrams of the train that carries a len-byte frame in datagrams of at
 * most seg bytes (header included): 2..SEAL_TRAIN_MAX, or 0 when a train
 * cannot (one datagram would do, seg leaves no room for a slice, or more
 * than SEAL_TRAIN_MAX would be needed). */
size_t seal_train_count(size_t len, size_t seg);
/* Seals frame[len] as the train of cnt = seal_train_count(len, seg)
 * datagrams: datagram k is written to out[k], seg bytes but the last,
 * whose length is returned, or -errno as seal_tx_seal (-EINVAL when cnt
 * is not that count). No out[k] may overlap frame or another. */
ssize_t seal_tx_train(struct seal_tx *tx, const uint8_t *frame, size_t len, size_t seg,
		      uint8_t *const *out, size_t cnt);

/* The floor file's text ("<decimal counter>\n") in s[len] (not
 * NUL-terminated) into *out: 0, or -EINVAL for anything else. */
int seal_floor_parse(const char *s, size_t len, uint64_t *out);
/* True when the reservation must be moved up before counters reach high
 * (the highest counter in use or the clock, whichever is higher):
 * *next is then the new reservation to write, high + SEAL_FLOOR_RESERVE. */
bool seal_floor_due(uint64_t high, uint64_t reserved, uint64_t *next);

/* Sets up rx for frames from src (the peer) to dst (us). */
void seal_rx_init(struct seal_rx *rx, uint32_t src, uint32_t dst);
/* Frees and wipes rx; a zeroed rx is fine. */
void seal_rx_clear(struct seal_rx *rx);
/* Forgets the peer's epochs and high-water mark (stats are kept): for a
 * peer known to have restarted, whose clock may have gone back. */
void seal_rx_reset(struct seal_rx *rx);
/* Opens pkt[len] with the ring key of ring[nring] whose id is in the
 * header (every key with that id is tried), writing the frame to
 * out[outcap]; returns its length or -errno. Epochs, windows and the
 * high-water mark change only when the frame authenticates (a failed one
 * may still leave a derived key in the current epoch's cache, and counts
 * in the stats); out holds nothing useful on error. */
ssize_t seal_rx_open(struct seal_rx *rx, const struct seal_key *ring, size_t nring,
		     const uint8_t *pkt, size_t len, uint8_t *out, size_t outcap);

/* Reassembly of one sender's trains (zeroed to start). */
struct seal_train {
	bool active;
	uint8_t hdr[SEAL_HDR_LEN];  /* the train's canonical header */
	unsigned cnt, ngot;
	size_t unit;                /* slice bytes; 0 while unknown */
	size_t last_len;            /* the last slice's bytes; 0 while missing */
	uint8_t got[SEAL_TRAIN_MAX / 8 + 1];  /* bitmap of indexes */
};

/* Adds the train datagram pkt[len] (byte 3 >= 2) to t, gathering into
 * buf[cap] the packet seal_rx_open takes: the canonical header, then the
 * slices in order. Returns 1 with *total (its length, at most cap) once
 * the train is whole, 0 while datagrams are missing (or pkt repeats one),
 * -EBADMSG for a datagram that is malformed (wrong magic, count below 2,
 * index past it, empty), contradicts its train (a slice of another size)
 * or whose train cannot fit cap; it is dropped and t is left as it was.
 * A valid datagram of another train abandons an unfinished one, counted
 * in *lost. Pure:
 * no crypto, no allocation; a slice learns its place from any full one,
 * so datagrams may come in any order. */
int seal_train_add(struct seal_train *t, uint8_t *buf, size_t cap, const uint8_t *pkt,
		   size_t len, size_t *total, uint64_t *lost);

/* SPI of the kernel ESP SA src -> dst under key[keylen] (16, 24 or 32
 * bytes): both ends compute the same value without negotiation. Its top
 * bit is set iff src > dst, so the two directions always differ; the
 * rest is HKDF-SHA256(key, salt "swarm-spi", src || dst). Never below 256
 * (0-255 are reserved). 0 means invalid input (src == dst, bad key) or
 * an OpenSSL failure. Beware: SPIs are 32 bits with no negotiation, so
 * two peers' SPIs towards one node may still collide (birthday bound);
 * the kernel reports that as EEXIST when adding the SA. */
uint32_t seal_spi(const uint8_t *key, size_t keylen, uint32_t src_addr, uint32_t dst_addr);

/* The kernel ESP path's key for the src -> dst direction under ring key
 * key: HKDF-SHA256(IKM = key, salt = "swarm-esp", info = "swarm-esp1" ||
 * src || dst (IPv4-mapped, as for seal_spi)), keylen + 4 bytes (the AES
 * key and rfc4106's 4-byte salt) into out[keylen + 4]. 0, or -EINVAL
 * (bad key length, src == dst), -EIO. Both ends derive it alone. */
int seal_esp_key(const uint8_t *key, size_t keylen, uint32_t src_addr, uint32_t dst_addr,
		 uint8_t *out);

#endif
