/* Join tokens: SWMTKN-1-<digest>-<secret>, where digest is the SHA-256 of the
 * root CA certificate (DER) in base 36 zero-padded to 50 characters, and
 * secret 16 random bytes in base 36 padded to 25. Pure functions. */
#ifndef SWARM_TOKEN_H
#define SWARM_TOKEN_H

#include <stddef.h>
#include <stdbool.h>

#define TOKEN_DIGEST_LEN 50
#define TOKEN_SECRET_LEN 25
#define TOKEN_MAX 96

/* A new random secret (25 base-36 characters) into out[26]. */
int token_new_secret(char out[TOKEN_SECRET_LEN + 1]);

/* Builds the token for a CA certificate and a secret into out[TOKEN_MAX]. */
int token_make(const char *ca_cert_pem, size_t ca_len, const char *secret,
	       char out[TOKEN_MAX]);

/* Splits a token into its digest and secret. -EINVAL on anything that is not
 * exactly SWMTKN-1-<50 base36>-<25 base36>. */
int token_parse(const char *tok, char digest[TOKEN_DIGEST_LEN + 1],
		char secret[TOKEN_SECRET_LEN + 1]);

/* True when the certificate's digest is the one the token names (CA
 * pinning by a joining node). */
bool token_ca_matches(const char *digest, const char *ca_cert_pem, size_t ca_len);

#endif
