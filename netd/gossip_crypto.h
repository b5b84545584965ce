/* memberlist keyring encryption (security.go, keyring.go): AES-GCM with
 * 16-, 24- or 32-byte keys. A sealed blob is
 *   [vsn u8][nonce 12][ciphertext || tag 16]
 * vsn 1 seals the message as is (overhead 29); vsn 0 (ProtocolVersion 1
 * senders) PKCS#7-pads it to 16 bytes first. Decryption tries every key
 * of the ring, primary first, and accepts vsn 0 and 1.
 *
 * UDP: the whole datagram after the label header is one blob, AAD = the
 * label bytes (none when the label is empty).
 * TCP: [10][u32 BE blob length][blob], AAD = those 5 bytes || label.
 *
 * Errors: -EINVAL (bad key length or vsn for sealing), -EBADMSG (unknown
 * version, too short, bad padding), -EACCES (no key of the ring opens it:
 * wrong key, forged or corrupted), -ENODATA (TCP frame incomplete),
 * -E2BIG (TCP frame above GOSSIP_CRYPTO_MAX_FRAME), -ENOMEM / -EMSGSIZE
 * (output buffer), -EIO (OpenSSL failure). */
#ifndef SWARM_GOSSIP_CRYPTO_H
#define SWARM_GOSSIP_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "gossip_wire.h"

#define GOSSIP_KEYRING_MAX 8            /* keys kept in one ring */
#define GOSSIP_KEY_MAX 32               /* longest key (AES-256) */
#define GOSSIP_NONCE_SIZE 12
#define GOSSIP_TAG_SIZE 16
#define GOSSIP_CRYPTO_MAX_FRAME (20u << 20) /* memberlist maxPushStateBytes */
#define GOSSIP_TCP_ENC_HDR 5            /* [10][u32 BE length] */

struct gossip_key {
	uint8_t key[GOSSIP_KEY_MAX]; /* key bytes */
	size_t len;                  /* 16, 24 or 32 */
};

/* keys[0] is the primary (used to seal). */
struct gossip_keyring {
	struct gossip_key keys[GOSSIP_KEYRING_MAX]; /* ring, primary first */
	size_t n;                                   /* keys in use */
};

/* Whether len is an AES key length (16, 24 or 32 bytes), and the GCM
 * cipher of that key length (also used by the data-path sealer). */
bool gossip_crypto_key_len_ok(size_t len);
const EVP_CIPHER *gossip_crypto_gcm(size_t len);

/* Empties the ring (and wipes the key bytes). */
void gossip_keyring_clear(struct gossip_keyring *kr);
/* Adds a key at the end of the ring; a key already present is left in
 * place. -EINVAL for a bad length, -ENOSPC when the ring is full. */
int gossip_keyring_add(struct gossip_keyring *kr, const uint8_t *key, size_t len);
/* Makes key the primary, adding it if needed. */
int gossip_keyring_use(struct gossip_keyring *kr, const uint8_t *key, size_t len);
/* Removes a key that is not the primary: -ENOENT, or -EBUSY for the primary. */
int gossip_keyring_remove(struct gossip_keyring *kr, const uint8_t *key, size_t len);

/* Size of a blob sealing len bytes with version vsn (memberlist
 * encryptedLength). */
size_t gossip_crypto_sealed_len(int vsn, size_t len);

/* Appends the blob sealing msg[len] with key, version vsn (0 or 1), AAD
 * aad[aad_len] to out. nonce NULL draws a random nonce (the normal case);
 * tests pass a fixed one. */
int gossip_crypto_seal(struct gossip_buf *out, int vsn, const struct gossip_key *key,
		       const uint8_t nonce[GOSSIP_NONCE_SIZE], const uint8_t *msg, size_t len,
		       const uint8_t *aad, size_t aad_len);

/* Appends the plaintext of blob[len] to plain, trying every key of kr. */
int gossip_crypto_open(const struct gossip_keyring *kr, const uint8_t *blob, size_t len,
		       const uint8_t *aad, size_t aad_len, struct gossip_buf *plain);

/* UDP: seal with the primary key, label (may be NULL or "") as AAD. */
int gossip_crypto_udp_seal(struct gossip_buf *out, const struct gossip_keyring *kr, int vsn,
			   const uint8_t *msg, size_t len, const char *label);
int gossip_crypto_udp_open(const struct gossip_keyring *kr, const uint8_t *blob, size_t len,
			   const char *label, struct gossip_buf *plain);

/* TCP: append [10][u32 BE len][blob] sealed with the primary key. */
int gossip_crypto_tcp_seal(struct gossip_buf *out, const struct gossip_keyring *kr, int vsn,
			   const uint8_t *msg, size_t len, const char *label);
/* TCP: frame[len] starts with the [10] byte. If the frame is complete,
 * appends its plaintext to plain and sets *used to the frame's size.
 * -ENODATA while incomplete (then *used, if at least 5 bytes were given,
 * is the full frame size the caller must read). */
int gossip_crypto_tcp_open(const struct gossip_keyring *kr, const uint8_t *frame, size_t len,
			   const char *label, struct gossip_buf *plain, size_t *used);

#endif
