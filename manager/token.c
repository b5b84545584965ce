/* Join tokens (see token.h): SWMTKN-1-<digest>-<secret>, both parts in
 * lower-case base 36, fixed width. The digest pins the root CA (SHA-256 of
 * its DER form); the secret is what the manager checks. */
#include "token.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#define TOKEN_PREFIX "SWMTKN-1-"
#define SECRET_BYTES 16

static const char b36_digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static bool is_b36(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
}

/* Writes the big-endian number in[0..n) in base 36, zero-padded to width
 * digits, into out[width + 1]: schoolbook division by 36, one digit per
 * pass. -ERANGE when it does not fit (never for our sizes: 36^50 > 2^256,
 * 36^25 > 2^128). */
static int base36(const uint8_t *in, size_t n, size_t width, char *out)
{
	uint8_t num[64];
	if (n > sizeof(num))
		return -ERANGE;
	memcpy(num, in, n);
	for (size_t d = width; d-- > 0;) {
		unsigned rem = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned cur = rem * 256 + num[i];
			num[i] = (uint8_t)(cur / 36);
			rem = cur % 36;
		}
		out[d] = b36_digits[rem];
	}
	out[width] = '\0';
	for (size_t i = 0; i < n; i++)
		if (num[i])
			return -ERANGE;
	return 0;
}

/* True when s is exactly len base-36 characters followed by end. */
static bool b36_run(const char *s, size_t len, char end)
{
	for (size_t i = 0; i < len; i++)
		if (!is_b36(s[i]))
			return false; /* also stops at a NUL: never reads past it */
	return s[len] == end;
}

/* The token digest of the first certificate in a PEM buffer (len bytes, no
 * NUL needed) into out[51]. 0 or -EINVAL. */
static int ca_digest(const char *pem, size_t len, char out[TOKEN_DIGEST_LEN + 1])
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int r = -EINVAL;

	if (!pem || len == 0 || len > INT32_MAX)
		return -EINVAL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int derlen = x ? i2d_X509(x, &der) : -1;
	if (derlen > 0 && EVP_Digest(der, (size_t)derlen, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == sizeof(md))
		r = base36(md, sizeof(md), TOKEN_DIGEST_LEN, out);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int token_new_secret(char out[TOKEN_SECRET_LEN + 1])
{
	uint8_t raw[SECRET_BYTES];
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	int r = base36(raw, sizeof(raw), TOKEN_SECRET_LEN, out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return r;
}

int token_make(const char *ca_cert_pem, size_t ca_len, const char *secret,
	       char out[TOKEN_MAX])
{
	char digest[TOKEN_DIGEST_LEN + 1];
	if (!secret || !b36_run(secret, TOKEN_SECRET_LEN, '\0'))
		return -EINVAL;
	int r = ca_digest(ca_cert_pem, ca_len, digest);
	if (r)
		return r;
	snprintf(out, TOKEN_MAX, TOKEN_PREFIX "%s-%s", digest, secret);
	return 0;
}

int token_parse(const char *tok, char digest[TOKEN_DIGEST_LEN + 1],
		char secret[TOKEN_SECRET_LEN + 1])
{
	const size_t plen = sizeof(TOKEN_PREFIX) - 1;
	/* Checked left to right, each step only after the previous one held,
	 * so a short or NUL-truncated string is never read past its end. */
	if (!tok || strncmp(tok, TOKEN_PREFIX, plen) != 0)
		return -EINVAL;
	const char *d = tok + plen;
	if (!b36_run(d, TOKEN_DIGEST_LEN, '-'))
		return -EINVAL;
	const char *s = d + TOKEN_DIGEST_LEN + 1;
	if (!b36_run(s, TOKEN_SECRET_LEN, '\0'))
		return -EINVAL;
	if (digest) {
		memcpy(digest, d, TOKEN_DIGEST_LEN);
		digest[TOKEN_DIGEST_LEN] = '\0';
	}
	if (secret) {
		memcpy(secret, s, TOKEN_SECRET_LEN);
		secret[TOKEN_SECRET_LEN] = '\0';
	}
	return 0;
}

bool token_ca_matches(const char *digest, const char *ca_cert_pem, size_t ca_len)
{
	char want[TOKEN_DIGEST_LEN + 1];
	if (!digest || !b36_run(digest, TOKEN_DIGEST_LEN, '\0'))
		return false;
	if (ca_digest(ca_cert_pem, ca_len, want))
		return false;
	return CRYPTO_memcmp(want, digest, TOKEN_DIGEST_LEN) == 0;
}
