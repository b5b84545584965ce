/* memberlist keyring encryption with OpenSSL EVP AES-GCM; contracts in
 * gossip_crypto.h. */
#include "gossip_crypto.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define VSN_SIZE 1
#define BLOCK 16
#define LABEL_MAX 255

bool gossip_crypto_key_len_ok(size_t len)
{
	return len == 16 || len == 24 || len == 32;
}

const EVP_CIPHER *gossip_crypto_gcm(size_t len)
{
	return len == 16 ? EVP_aes_128_gcm() : len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

void gossip_keyring_clear(struct gossip_keyring *kr)
{
	OPENSSL_cleanse(kr, sizeof(*kr));
}

static int ring_find(const struct gossip_keyring *kr, const uint8_t *key, size_t len)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->keys[i].len == len && CRYPTO_memcmp(kr->keys[i].key, key, len) == 0)
			return (int)i;
	return -1;
}

int gossip_keyring_add(struct gossip_keyring *kr, const uint8_t *key, size_t len)
{
	if (!gossip_crypto_key_len_ok(len))
		return -EINVAL;
	if (ring_find(kr, key, len) >= 0)
		return 0;
	if (kr->n >= GOSSIP_KEYRING_MAX)
		return -ENOSPC;
	memcpy(kr->keys[kr->n].key, key, len);
	kr->keys[kr->n].len = len;
	kr->n++;
	return 0;
}

int gossip_keyring_use(struct gossip_keyring *kr, const uint8_t *key, size_t len)
{
	int rc = gossip_keyring_add(kr, key, len);
	if (rc < 0)
		return rc;
	int i = ring_find(kr, key, len);
	struct gossip_key k = kr->keys[i];
	memmove(&kr->keys[1], &kr->keys[0], (size_t)i * sizeof(kr->keys[0]));
	kr->keys[0] = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

int gossip_keyring_remove(struct gossip_keyring *kr, const uint8_t *key, size_t len)
{
	int i = ring_find(kr, key, len);
	if (i < 0)
		return -ENOENT;
	if (i == 0)
		return -EBUSY;
	memmove(&kr->keys[i], &kr->keys[i + 1], (kr->n - (size_t)i - 1) * sizeof(kr->keys[0]));
	kr->n--;
	OPENSSL_cleanse(&kr->keys[kr->n], sizeof(kr->keys[0]));
	return 0;
}

size_t gossip_crypto_sealed_len(int vsn, size_t len)
{
	if (vsn >= 1)
		return VSN_SIZE + GOSSIP_NONCE_SIZE + len + GOSSIP_TAG_SIZE;
	return VSN_SIZE + GOSSIP_NONCE_SIZE + len + (BLOCK - len % BLOCK) + GOSSIP_TAG_SIZE;
}

/* One GCM operation: enc 1 seals in[n] into out[n] and writes tag, enc 0
 * opens it and checks tag. Returns 0, -EACCES (tag mismatch), -EIO. */
static int gcm(int enc, const struct gossip_key *key, const uint8_t *nonce,
	       const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t n,
	       uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int rc = -EIO, l = 0;

	if (!ctx)
		return -ENOMEM;
	if (n > INT32_MAX || aad_len > INT32_MAX)
		goto out;
	if (EVP_CipherInit_ex(ctx, gossip_crypto_gcm(key->len), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GOSSIP_NONCE_SIZE, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key->key, nonce, enc) != 1)
		goto out;
	if (aad_len && EVP_CipherUpdate(ctx, NULL, &l, aad, (int)aad_len) != 1)
		goto out;
	if (n && EVP_CipherUpdate(ctx, out, &l, in, (int)n) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GOSSIP_TAG_SIZE, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + n, &l) != 1) {
		rc = enc ? -EIO : -EACCES;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GOSSIP_TAG_SIZE, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int gossip_crypto_seal(struct gossip_buf *out, int vsn, const struct gossip_key *key,
		       const uint8_t nonce[GOSSIP_NONCE_SIZE], const uint8_t *msg, size_t len,
		       const uint8_t *aad, size_t aad_len)
{
	size_t start = out->len;
	size_t total = gossip_crypto_sealed_len(vsn, len);
	size_t body = total - VSN_SIZE - GOSSIP_NONCE_SIZE - GOSSIP_TAG_SIZE;
	int rc;

	if ((vsn != 0 && vsn != 1) || !key || !gossip_crypto_key_len_ok(key->len))
		return -EINVAL;
	if (total < len)
		return -EMSGSIZE;
	rc = gossip_buf_reserve(out, total);
	if (rc < 0)
		return rc;
	uint8_t *p = out->data + start;
	p[0] = (uint8_t)vsn;
	if (nonce)
		memcpy(p + VSN_SIZE, nonce, GOSSIP_NONCE_SIZE);
	else if (RAND_bytes(p + VSN_SIZE, GOSSIP_NONCE_SIZE) != 1)
		return -EIO;
	uint8_t *ct = p + VSN_SIZE + GOSSIP_NONCE_SIZE;
	/* Seal in place: copy (and for vsn 0 pad) the plaintext where the
	 * ciphertext goes; GCM is a stream mode, so in == out is fine. */
	if (len)
		memcpy(ct, msg, len);
	if (body > len)
		memset(ct + len, (int)(body - len), body - len);
	rc = gcm(1, key, p + VSN_SIZE, aad, aad_len, ct, body, ct, ct + body);
	if (rc < 0) {
		OPENSSL_cleanse(ct, body);
		return rc;
	}
	out->len = start + total;
	return 0;
}

int gossip_crypto_open(const struct gossip_keyring *kr, const uint8_t *blob, size_t len,
		       const uint8_t *aad, size_t aad_len, struct gossip_buf *plain)
{
	size_t start = plain->len;
	int rc;

	if (len < 1)
		return -EBADMSG;
	int vsn = blob[0];
	if (vsn > 1)
		return -EBADMSG;
	if (len < gossip_crypto_sealed_len(vsn, 0))
		return -EBADMSG;
	size_t n = len - VSN_SIZE - GOSSIP_NONCE_SIZE - GOSSIP_TAG_SIZE;
	const uint8_t *nonce = blob + VSN_SIZE;
	const uint8_t *ct = nonce + GOSSIP_NONCE_SIZE;
	uint8_t tag[GOSSIP_TAG_SIZE];
	memcpy(tag, ct + n, sizeof(tag));

	rc = gossip_buf_reserve(plain, n + 1);
	if (rc < 0)
		return rc;
	rc = -EACCES;
	for (size_t i = 0; i < kr->n && rc == -EACCES; i++)
		rc = gcm(0, &kr->keys[i], nonce, aad, aad_len, ct, n, plain->data + start, tag);
	if (rc < 0) {
		OPENSSL_cleanse(plain->data + start, n);
		return rc;
	}
	if (vsn == 0) {
		/* PKCS#7: Go trusts the last byte; we check it is 1..16 and
		 * fits, since a key holder could still send garbage. */
		uint8_t pad = n ? plain->data[start + n - 1] : 0;
		if (pad < 1 || pad > BLOCK || pad > n)
			return -EBADMSG;
		n -= pad;
	}
	plain->len = start + n;
	return 0;
}

static size_t label_len(const char *label)
{
	return label ? strlen(label) : 0;
}

int gossip_crypto_udp_seal(struct gossip_buf *out, const struct gossip_keyring *kr, int vsn,
			   const uint8_t *msg, size_t len, const char *label)
{
	if (kr->n == 0)
		return -EINVAL;
	return gossip_crypto_seal(out, vsn, &kr->keys[0], NULL, msg, len,
				  (const uint8_t *)label, label_len(label));
}

int gossip_crypto_udp_open(const struct gossip_keyring *kr, const uint8_t *blob, size_t len,
			   const char *label, struct gossip_buf *plain)
{
	return gossip_crypto_open(kr, blob, len, (const uint8_t *)label, label_len(label), plain);
}

/* AAD of a TCP frame: the 5 header bytes, then the label. */
static int tcp_aad(uint8_t aad[GOSSIP_TCP_ENC_HDR + LABEL_MAX], const uint8_t *hdr,
		   const char *label, size_t *aad_len)
{
	size_t ll = label_len(label);
	if (ll > LABEL_MAX)
		return -EINVAL;
	memcpy(aad, hdr, GOSSIP_TCP_ENC_HDR);
	if (ll)
		memcpy(aad + GOSSIP_TCP_ENC_HDR, label, ll);
	*aad_len = GOSSIP_TCP_ENC_HDR + ll;
	return 0;
}

int gossip_crypto_tcp_seal(struct gossip_buf *out, const struct gossip_keyring *kr, int vsn,
			   const uint8_t *msg, size_t len, const char *label)
{
	uint8_t aad[GOSSIP_TCP_ENC_HDR + LABEL_MAX];
	size_t aad_len, start = out->len;
	size_t blob = gossip_crypto_sealed_len(vsn, len);
	int rc;

	if (kr->n == 0)
		return -EINVAL;
	if (blob > GOSSIP_CRYPTO_MAX_FRAME || blob < len)
		return -E2BIG;
	uint8_t hdr[GOSSIP_TCP_ENC_HDR] = {
		GOSSIP_ENCRYPT, (uint8_t)(blob >> 24), (uint8_t)(blob >> 16),
		(uint8_t)(blob >> 8), (uint8_t)blob,
	};
	rc = tcp_aad(aad, hdr, label, &aad_len);
	if (rc == 0)
		rc = gossip_buf_append(out, hdr, sizeof(hdr));
	if (rc == 0)
		rc = gossip_crypto_seal(out, vsn, &kr->keys[0], NULL, msg, len, aad, aad_len);
	if (rc < 0)
		out->len = start;
	return rc;
}

int gossip_crypto_tcp_open(const struct gossip_keyring *kr, const uint8_t *frame, size_t len,
			   const char *label, struct gossip_buf *plain, size_t *used)
{
	uint8_t aad[GOSSIP_TCP_ENC_HDR + LABEL_MAX];
	size_t aad_len;
	int rc;

	if (len >= 1 && frame[0] != GOSSIP_ENCRYPT)
		return -EBADMSG;
	if (len < GOSSIP_TCP_ENC_HDR)
		return -ENODATA;
	uint32_t blob = (uint32_t)frame[1] << 24 | (uint32_t)frame[2] << 16 |
			(uint32_t)frame[3] << 8 | frame[4];
	if (blob > GOSSIP_CRYPTO_MAX_FRAME)
		return -E2BIG;
	if (used)
		*used = GOSSIP_TCP_ENC_HDR + (size_t)blob;
	if (len - GOSSIP_TCP_ENC_HDR < blob)
		return -ENODATA;
	rc = tcp_aad(aad, frame, label, &aad_len);
	if (rc < 0)
		return rc;
	return gossip_crypto_open(kr, frame + GOSSIP_TCP_ENC_HDR, blob, aad, aad_len, plain);
}
