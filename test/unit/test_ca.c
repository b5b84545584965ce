/* Unit tests for manager/ca.c: root creation, issuing from a CSR, subject
 * and extensions, verification (good, other CA, expired, not yet valid),
 * renewal point. Certificates are inspected with OpenSSL directly. */
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "manager/ca.h"

#define S 1000000000LL
/* A fixed "now": 2023-11-14T22:13:20Z. */
#define NOW (1700000000LL * S)

struct fixture {
	char *ca_cert, *ca_key;   /* our root */
	char *key, *csr;          /* a node's key and CSR */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (ca_create_root(NOW, &f->ca_cert, &f->ca_key) ||
	    ca_make_key_csr(&f->key, &f->csr))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->ca_cert);
	free(f->ca_key);
	free(f->key);
	free(f->csr);
	free(f);
	return 0;
}

static X509 *parse(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *parse_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(k);
	return k;
}

static void assert_name(X509_NAME *name, int nid, const char *want)
{
	char buf[256];
	if (!want) {
		assert_int_equal(X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf)), -1);
		return;
	}
	assert_true(X509_NAME_get_text_by_NID(name, nid, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, want);
}

/* The SAN DNS names joined by commas. */
static void san_dns(X509 *x, char *out, size_t outlen)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	out[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		assert_int_equal(g->type, GEN_DNS);
		size_t l = strlen(out);
		snprintf(out + l, outlen - l, "%s%s", l ? "," : "",
			 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
}

static bool ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static void test_root(void **state)
{
	struct fixture *f = *state;
	X509 *x = parse(f->ca_cert);
	EVP_PKEY *k = parse_key(f->ca_key);
	char group[64];

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_name(X509_get_subject_name(x), NID_commonName, "swarm-ca");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	assert_int_equal(X509_check_ca(x), 1);
	assert_true(ext_critical(x, NID_basic_constraints));
	assert_true(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_key_usage(x) & KU_CRL_SIGN);
	assert_false(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof(group), NULL), 1);
	assert_string_equal(group, "prime256v1");
	/* Self-signature. */
	assert_int_equal(X509_verify(x, k), 1);

	int64_t nb, na;
	assert_int_equal(ca_cert_validity(f->ca_cert, &nb, &na), 0);
	assert_int_equal(nb, NOW - 3600 * S);
	assert_int_equal(na, NOW + CA_ROOT_LIFETIME_NS);

	/* Two roots: different keys and serials. */
	char *c2, *k2, s1[80], s2[80];
	assert_int_equal(ca_create_root(NOW, &c2, &k2), 0);
	assert_int_equal(ca_cert_serial(f->ca_cert, s1, sizeof(s1)), 0);
	assert_int_equal(ca_cert_serial(c2, s2, sizeof(s2)), 0);
	assert_string_not_equal(s1, s2);
	assert_true(strlen(s1) <= 32 && strlen(s1) >= 20);
	assert_int_equal(strspn(s1, "0123456789abcdef"), strlen(s1));
	assert_int_equal(ca_cert_serial(f->ca_cert, s1, 4), -ENOSPC);
	assert_string_not_equal(f->ca_key, k2);
	/* The root is not a node certificate. */
	assert_int_equal(ca_verify(f->ca_cert, f->ca_cert, NOW), -EINVAL);
	free(c2);
	free(k2);
	EVP_PKEY_free(k);
	X509_free(x);
}

static void test_issue(void **state)
{
	struct fixture *f = *state;
	char *cert, san[256], s1[80], s2[80];
	int64_t nb, na;

	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "node1", "swarm-worker",
				  "cluster1", NOW, CA_NODE_LIFETIME_NS, &cert), 0);
	X509 *x = parse(cert), *ca = parse(f->ca_cert);
	EVP_PKEY *k = parse_key(f->key);

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_name(X509_get_subject_name(x), NID_commonName, "node1");
	assert_name(X509_get_subject_name(x), NID_organizationalUnitName, "swarm-worker");
	assert_name(X509_get_subject_name(x), NID_organizationName, "cluster1");
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)), 0);
	/* It certifies the CSR's key, and is signed by the root. */
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_check_ca(x), 0);
	assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	assert_true(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT);
	assert_false(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	san_dns(x, san, sizeof(san));
	assert_string_equal(san, "node1");
	assert_int_equal(X509_check_host(x, "node1", 0, 0, NULL), 1);

	assert_int_equal(ca_cert_validity(cert, &nb, &na), 0);
	assert_int_equal(nb, NOW - 3600 * S);
	assert_int_equal(na, NOW + CA_NODE_LIFETIME_NS);
	assert_int_equal(ca_verify(f->ca_cert, cert, NOW), 0);

	/* A manager's: the role name and swarm-ca in the SAN too. */
	char *mcert;
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "node2", "swarm-manager",
				  "cluster1", NOW, CA_NODE_LIFETIME_NS, &mcert), 0);
	X509 *m = parse(mcert);
	san_dns(m, san, sizeof(san));
	assert_string_equal(san, "node2,swarm-manager,swarm-ca");
	assert_name(X509_get_subject_name(m), NID_organizationalUnitName, "swarm-manager");
	assert_int_equal(ca_cert_serial(cert, s1, sizeof(s1)), 0);
	assert_int_equal(ca_cert_serial(mcert, s2, sizeof(s2)), 0);
	assert_string_not_equal(s1, s2);

	X509_free(m);
	free(mcert);
	EVP_PKEY_free(k);
	X509_free(ca);
	X509_free(x);
	free(cert);
}

/* A CSR asking for its own subject: the CA ignores it. */
static void test_csr_subject_ignored(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = parse_key(f->key);
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_REQ_get_subject_name(req);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"evil", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_UTF8, (const unsigned char *)"swarm-manager", -1, -1, 0);
	X509_REQ_set_pubkey(req, k);
	assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509_REQ(b, req);
	char *data;
	long len = BIO_get_mem_data(b, &data);
	char *csr = strndup(data, (size_t)len);

	char *cert;
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, csr, "node1", "swarm-worker", "c1",
				  NOW, CA_NODE_LIFETIME_NS, &cert), 0);
	X509 *x = parse(cert);
	assert_name(X509_get_subject_name(x), NID_commonName, "node1");
	assert_name(X509_get_subject_name(x), NID_organizationalUnitName, "swarm-worker");
	X509_free(x);
	free(cert);
	free(csr);
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void test_issue_errors(void **state)
{
	struct fixture *f = *state;
	char *cert = (char *)1, *c2, *k2;

	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, "garbage", "n", "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	assert_null(cert);
	assert_int_equal(ca_issue("garbage", f->ca_key, f->csr, "n", "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	assert_int_equal(ca_issue(f->ca_cert, "garbage", f->csr, "n", "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "", "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, NULL, "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	/* Another root's key with our certificate. */
	assert_int_equal(ca_create_root(NOW, &c2, &k2), 0);
	assert_int_equal(ca_issue(f->ca_cert, k2, f->csr, "n", "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	assert_null(cert);
	/* A certificate is not a CSR. */
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, c2, "n", "swarm-worker", "c",
				  NOW, CA_NODE_LIFETIME_NS, &cert), -EINVAL);
	free(c2);
	free(k2);
	int64_t nb, na;
	assert_int_equal(ca_cert_validity("garbage", &nb, &na), -EINVAL);
	char serial[64];
	assert_int_equal(ca_cert_serial("garbage", serial, sizeof(serial)), -EINVAL);
}

static void test_lifetimes(void **state)
{
	struct fixture *f = *state;
	char *cert;
	int64_t nb, na, rnb, rna;

	/* Below the minimum: the minimum. Unset: the default. */
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "n", "swarm-worker", "c",
				  NOW, 60 * S, &cert), 0);
	assert_int_equal(ca_cert_validity(cert, &nb, &na), 0);
	assert_int_equal(na, NOW + CA_MIN_LIFETIME_NS);
	free(cert);
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "n", "swarm-worker", "c",
				  NOW, 0, &cert), 0);
	assert_int_equal(ca_cert_validity(cert, &nb, &na), 0);
	assert_int_equal(na, NOW + CA_NODE_LIFETIME_NS);
	free(cert);
	/* Never beyond the root's own end. */
	assert_int_equal(ca_cert_validity(f->ca_cert, &rnb, &rna), 0);
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "n", "swarm-worker", "c",
				  rna - 24 * 3600 * S, CA_NODE_LIFETIME_NS, &cert), 0);
	assert_int_equal(ca_cert_validity(cert, &nb, &na), 0);
	assert_int_equal(na, rna);
	free(cert);
}

static void test_verify(void **state)
{
	struct fixture *f = *state;
	char *cert, *other_cert, *other_key, *foreign;

	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "node1", "swarm-worker", "c1",
				  NOW, CA_NODE_LIFETIME_NS, &cert), 0);
	assert_int_equal(ca_verify(f->ca_cert, cert, NOW), 0);
	assert_int_equal(ca_verify(f->ca_cert, cert, NOW + CA_NODE_LIFETIME_NS - S), 0);
	/* Back-dated: valid an hour before issue, not two. */
	assert_int_equal(ca_verify(f->ca_cert, cert, NOW - 3599 * S), 0);
	assert_int_equal(ca_verify(f->ca_cert, cert, NOW - 7200 * S), -EKEYEXPIRED);
	assert_int_equal(ca_verify(f->ca_cert, cert, NOW + CA_NODE_LIFETIME_NS + 2 * S), -EKEYEXPIRED);

	/* Issued in the past with a short life: expired now. */
	char *old;
	assert_int_equal(ca_issue(f->ca_cert, f->ca_key, f->csr, "node1", "swarm-worker", "c1",
				  NOW - 10 * 3600 * S, CA_MIN_LIFETIME_NS, &old), 0);
	assert_int_equal(ca_verify(f->ca_cert, old, NOW), -EKEYEXPIRED);
	/* (Then it was valid, but the root was not yet: also outside.) */
	assert_int_equal(ca_verify(f->ca_cert, old, NOW - 10 * 3600 * S), -EKEYEXPIRED);
	free(old);

	/* Issued by another root with the same name. */
	assert_int_equal(ca_create_root(NOW, &other_cert, &other_key), 0);
	assert_int_equal(ca_issue(other_cert, other_key, f->csr, "node1", "swarm-worker", "c1",
				  NOW, CA_NODE_LIFETIME_NS, &foreign), 0);
	assert_int_equal(ca_verify(f->ca_cert, foreign, NOW), -EINVAL);
	assert_int_equal(ca_verify(other_cert, foreign, NOW), 0);
	assert_int_equal(ca_verify(other_cert, cert, NOW), -EINVAL);
	assert_int_equal(ca_verify(f->ca_cert, "garbage", NOW), -EINVAL);
	assert_int_equal(ca_verify("garbage", cert, NOW), -EINVAL);
	free(foreign);
	free(other_cert);
	free(other_key);
	free(cert);
}

static void test_renew_at(void **state)
{
	const int64_t nb = NOW - 3600 * S, na = NOW + CA_NODE_LIFETIME_NS;
	const int64_t life = na - nb;
	for (int i = 0; i < 100; i++) {
		double r = i / 100.0;
		int64_t t = ca_renew_at(nb, na, r);
		assert_true(t >= nb + life / 2);
		assert_true(t < nb + life * 8 / 10);
	}
	assert_int_equal(ca_renew_at(0, 1000, 0.0), 500);
	assert_int_equal(ca_renew_at(0, 1000, 0.5), 650);
	assert_int_equal(ca_renew_at(0, 1000, -1.0), 500);
	assert_true(ca_renew_at(0, 1000, 5.0) < 800);
	assert_true(ca_renew_at(0, 1000, 0.9999) <= 800);
}

static void test_make_key_csr(void **state)
{
	char *k1, *c1, *k2, *c2;
	assert_int_equal(ca_make_key_csr(&k1, &c1), 0);
	assert_int_equal(ca_make_key_csr(&k2, &c2), 0);
	assert_non_null(strstr(k1, "-----BEGIN PRIVATE KEY-----"));
	assert_non_null(strstr(c1, "-----BEGIN CERTIFICATE REQUEST-----"));
	assert_string_not_equal(k1, k2);
	BIO *b = BIO_new_mem_buf(c1, -1);
	X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	assert_non_null(req);
	EVP_PKEY *k = parse_key(k1);
	assert_int_equal(X509_REQ_verify(req, k), 1);
	EVP_PKEY_free(k);
	X509_REQ_free(req);
	BIO_free(b);
	free(k1);
	free(c1);
	free(k2);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csr_subject_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lifetimes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test(test_renew_at),
		cmocka_unit_test(test_make_key_csr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
