/* Unit tests for manager/token.c: make/parse round trip, the digest checked
 * against an independent OpenSSL BIGNUM computation, CA pinning, malformed
 * tokens, secret rotation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "manager/ca.h"
#include "manager/token.h"

#define NOW (1700000000LL * 1000000000LL)

struct fixture {
	char *ca_cert, *ca_key;     /* our root */
	char *other_cert, *other_key; /* another root */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (ca_create_root(NOW, &f->ca_cert, &f->ca_key) ||
	    ca_create_root(NOW, &f->other_cert, &f->other_key))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->ca_cert);
	free(f->ca_key);
	free(f->other_cert);
	free(f->other_key);
	free(f);
	return 0;
}

/* The expected digest, computed another way: SHA-256 of the DER, then
 * OpenSSL's BIGNUM divided by 36 repeatedly. */
static void ref_digest(const char *pem, char out[TOKEN_DIGEST_LEN + 1])
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	unsigned char *der = NULL, md[32];
	int len = i2d_X509(x, &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL), 1);
	BIGNUM *bn = BN_bin2bn(md, sizeof(md), NULL);
	for (int i = TOKEN_DIGEST_LEN - 1; i >= 0; i--)
		out[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[BN_div_word(bn, 36)];
	out[TOKEN_DIGEST_LEN] = '\0';
	assert_true(BN_is_zero(bn));
	BN_free(bn);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
}

static bool all_b36(const char *s)
{
	return strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz") == strlen(s);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	char secret[TOKEN_SECRET_LEN + 1], tok[TOKEN_MAX];
	char digest[TOKEN_DIGEST_LEN + 1], secret2[TOKEN_SECRET_LEN + 1], ref[TOKEN_DIGEST_LEN + 1];

	assert_int_equal(token_new_secret(secret), 0);
	assert_int_equal(strlen(secret), TOKEN_SECRET_LEN);
	assert_true(all_b36(secret));
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), secret, tok), 0);
	assert_int_equal(strlen(tok), 9 + TOKEN_DIGEST_LEN + 1 + TOKEN_SECRET_LEN);
	assert_memory_equal(tok, "SWMTKN-1-", 9);

	assert_int_equal(token_parse(tok, digest, secret2), 0);
	assert_string_equal(secret2, secret);
	assert_int_equal(strlen(digest), TOKEN_DIGEST_LEN);
	ref_digest(f->ca_cert, ref);
	assert_string_equal(digest, ref);
	/* The outputs are optional. */
	assert_int_equal(token_parse(tok, NULL, NULL), 0);

	/* The PEM buffer need not be NUL-terminated (a protobuf bytes field). */
	size_t len = strlen(f->ca_cert);
	char *copy = malloc(len);
	memcpy(copy, f->ca_cert, len);
	char tok2[TOKEN_MAX];
	assert_int_equal(token_make(copy, len, secret, tok2), 0);
	assert_string_equal(tok2, tok);
	assert_true(token_ca_matches(digest, copy, len));
	free(copy);

	/* Bad inputs to make. */
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), "short", tok2), -EINVAL);
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), "ABCDEFGHIJKLMNOPQRSTUVWXY", tok2), -EINVAL);
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), NULL, tok2), -EINVAL);
	assert_int_equal(token_make("garbage", 7, secret, tok2), -EINVAL);
	assert_int_equal(token_make(f->ca_cert, 0, secret, tok2), -EINVAL);
	assert_int_equal(token_make(f->ca_cert, 40, secret, tok2), -EINVAL);
}

static void test_ca_pinning(void **state)
{
	struct fixture *f = *state;
	char secret[TOKEN_SECRET_LEN + 1], tok[TOKEN_MAX], digest[TOKEN_DIGEST_LEN + 1];

	assert_int_equal(token_new_secret(secret), 0);
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), secret, tok), 0);
	assert_int_equal(token_parse(tok, digest, NULL), 0);
	assert_true(token_ca_matches(digest, f->ca_cert, strlen(f->ca_cert)));
	assert_false(token_ca_matches(digest, f->other_cert, strlen(f->other_cert)));
	assert_false(token_ca_matches(digest, "garbage", 7));
	assert_false(token_ca_matches(digest, NULL, 0));
	assert_false(token_ca_matches(NULL, f->ca_cert, strlen(f->ca_cert)));
	/* A digest of the wrong length never matches, even as a prefix. */
	char shorter[TOKEN_DIGEST_LEN];
	memcpy(shorter, digest, TOKEN_DIGEST_LEN - 1);
	shorter[TOKEN_DIGEST_LEN - 1] = '\0';
	assert_false(token_ca_matches(shorter, f->ca_cert, strlen(f->ca_cert)));
	/* One digit off. */
	digest[10] = digest[10] == '0' ? '1' : '0';
	assert_false(token_ca_matches(digest, f->ca_cert, strlen(f->ca_cert)));
}

static void test_rotation(void **state)
{
	struct fixture *f = *state;
	char s1[TOKEN_SECRET_LEN + 1], s2[TOKEN_SECRET_LEN + 1];
	char t1[TOKEN_MAX], t2[TOKEN_MAX], d1[TOKEN_DIGEST_LEN + 1], d2[TOKEN_DIGEST_LEN + 1];

	assert_int_equal(token_new_secret(s1), 0);
	assert_int_equal(token_new_secret(s2), 0);
	assert_string_not_equal(s1, s2);
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), s1, t1), 0);
	assert_int_equal(token_make(f->ca_cert, strlen(f->ca_cert), s2, t2), 0);
	assert_string_not_equal(t1, t2);
	assert_int_equal(token_parse(t1, d1, NULL), 0);
	assert_int_equal(token_parse(t2, d2, NULL), 0);
	assert_string_equal(d1, d2); /* same CA */
	/* Another CA, same secret: another digest. */
	assert_int_equal(token_make(f->other_cert, strlen(f->other_cert), s1, t2), 0);
	assert_int_equal(token_parse(t2, d2, NULL), 0);
	assert_string_not_equal(d1, d2);
}

static void test_malformed(void **state)
{
	char d[TOKEN_DIGEST_LEN + 1], s[TOKEN_SECRET_LEN + 1];
	char good[TOKEN_MAX], bad[TOKEN_MAX * 2];
	char digest[TOKEN_DIGEST_LEN + 1], secret[TOKEN_SECRET_LEN + 1];

	memset(digest, 'a', TOKEN_DIGEST_LEN);
	digest[TOKEN_DIGEST_LEN] = '\0';
	memset(secret, '7', TOKEN_SECRET_LEN);
	secret[TOKEN_SECRET_LEN] = '\0';
	snprintf(good, sizeof(good), "SWMTKN-1-%s-%s", digest, secret);
	assert_int_equal(token_parse(good, d, s), 0);
	assert_string_equal(d, digest);
	assert_string_equal(s, secret);

	static const char *const fixed[] = {
		"", "SWMTKN", "SWMTKN-1-", "SWMTKN-1--", "SWMTKN-1",
		"SWMKEY-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"swmtkn-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN-2-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		/* lengths */
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-77777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-",
		/* characters */
		"SWMTKN-1-Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-777777777777777777777777_",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-777777777777\xc3\xa9" "7777777777",
		/* dashes and separators */
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa--7777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777-",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_7777777777777777777777777",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777-x",
		"SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777\n",
		" SWMTKN-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
		"SWMTKN--1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7777777777777777777777777",
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		memset(d, 'X', sizeof(d));
		if (token_parse(fixed[i], d, s) != -EINVAL)
			fail_msg("accepted: \"%s\"", fixed[i]);
	}
	assert_int_equal(token_parse(NULL, d, s), -EINVAL);

	/* NUL tricks: a valid token cut short by a NUL, and a NUL where the
	 * separator goes, followed by what would have been valid. */
	memcpy(bad, good, sizeof(good));
	bad[strlen(good) - 1] = '\0';
	assert_int_equal(token_parse(bad, d, s), -EINVAL);
	memcpy(bad, good, sizeof(good));
	bad[9 + TOKEN_DIGEST_LEN] = '\0';
	assert_int_equal(token_parse(bad, d, s), -EINVAL);
	memcpy(bad, good, sizeof(good));
	bad[9 + 10] = '\0';
	assert_int_equal(token_parse(bad, d, s), -EINVAL);

	/* A short heap string is never read past its end (valgrind/asan). */
	char *heap = strdup("SWMTKN-1-abc");
	assert_int_equal(token_parse(heap, d, s), -EINVAL);
	free(heap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_pinning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
