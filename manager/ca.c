/* The cluster CA (see ca.h), on OpenSSL 3 EVP APIs.
 *
 * Root: ECDSA P-256, CN swarm-ca, basicConstraints CA:TRUE (critical),
 * keyUsage keyCertSign,cRLSign (critical), subject key id.
 * Node certificates: subject O=<cluster>, OU=<role>, CN=<node id>;
 * basicConstraints CA:FALSE, keyUsage digitalSignature,keyEncipherment,
 * extKeyUsage serverAuth,clientAuth, SAN DNS:<cn> (plus DNS:swarm-manager
 * and DNS:swarm-ca for managers, who answer as the CA too), authority key
 * id. Serials are 128 random bits; every certificate is back-dated 1 h to
 * absorb clock skew between nodes, and signed with SHA-256. */
#include "ca.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "util.h"

#define NS_PER_S 1000000000LL
#define BACKDATE_S 3600
#define ROLE_MANAGER "swarm-manager"

/* Logs OpenSSL's error queue under what (and empties it). */
static void ssl_err(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_err("ca, %s: %s", what, buf);
	ERR_clear_error();
}

/* A new P-256 key, or NULL (logged). */
static EVP_PKEY *key_new(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!k)
		ssl_err("key generation");
	return k;
}

static X509 *cert_parse(const char *pem)
{
	if (!pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	return x;
}

static EVP_PKEY *key_parse(const char *pem)
{
	if (!pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	return k;
}

static X509_REQ *csr_parse(const char *pem)
{
	if (!pem)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	return r;
}

/* Copies a memory BIO's contents into a malloc'd NUL-terminated string. */
static char *bio_to_str(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	if (n < 0)
		return NULL;
	char *s = xmalloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

typedef int (*pem_writer)(BIO *, const void *);

static int write_cert(BIO *b, const void *x)
{
	return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
	return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

static int write_csr(BIO *b, const void *r)
{
	return PEM_write_bio_X509_REQ(b, (X509_REQ *)r);
}

/* obj as a malloc'd PEM string through writer; NULL on error (logged). */
static char *to_pem(pem_writer writer, const void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (b && writer(b, obj) == 1)
		s = bio_to_str(b);
	if (!s)
		ssl_err("PEM encoding");
	BIO_free(b);
	return s;
}

/* Unix seconds of an ASN1_TIME into *out. */
static int asn1_time_ns(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EINVAL;
	time_t s = timegm(&tm);
	if (s == (time_t)-1)
		return -EINVAL;
	*out = (int64_t)s * NS_PER_S;
	return 0;
}

/* Sets a random positive 128-bit serial. */
static int set_random_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1;
	if (ok && BN_is_zero(bn))
		ok = BN_one(bn);
	ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -ENOMEM;
}

/* Validity from now-1h to now+lifetime (seconds resolution). */
static int set_validity(X509 *x, int64_t now_ns, int64_t lifetime_ns)
{
	time_t now = (time_t)(now_ns / NS_PER_S);
	time_t end = (time_t)((now_ns + lifetime_ns) / NS_PER_S);
	if (!ASN1_TIME_set(X509_getm_notBefore(x), now - BACKDATE_S) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), end))
		return -EINVAL;
	return 0;
}

/* Adds an extension from its OpenSSL config text (fixed strings only:
 * nothing caller-supplied goes through the config parser). */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EINVAL;
}

/* Adds subjectAltName with these DNS names, built as GENERAL_NAMEs so that
 * a node id can never be read as config syntax. */
static int add_san_dns(X509 *x, const char *const *names, size_t n)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int ok = gens != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
		ok = g && ia5 && ASN1_STRING_set(ia5, names[i], -1);
		if (ok) {
			GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
			ia5 = NULL;
			ok = sk_GENERAL_NAME_push(gens, g) > 0;
		}
		if (!ok) {
			ASN1_IA5STRING_free(ia5);
			GENERAL_NAME_free(g);
		}
	}
	ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -EINVAL;
}

static int name_add(X509_NAME *name, const char *field, const char *value)
{
	if (!value || !*value)
		return 0;
	return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
					  (const unsigned char *)value, -1, -1, 0) ? 0 : -EINVAL;
}

int ca_create_root(int64_t now_ns, char **cert_pem, char **key_pem)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int r = -EINVAL;

	*cert_pem = *key_pem = NULL;
	key = key_new();
	x = X509_new();
	if (!key || !x) {
		r = -ENOMEM;
		goto out;
	}
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) || set_random_serial(x) ||
	    set_validity(x, now_ns, CA_ROOT_LIFETIME_NS) ||
	    name_add(name, "CN", "swarm-ca") || !X509_set_issuer_name(x, name) ||
	    !X509_set_pubkey(x, key) ||
	    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    !X509_sign(x, key, EVP_sha256())) {
		ssl_err("root certificate");
		goto out;
	}
	*cert_pem = to_pem(write_cert, x);
	*key_pem = to_pem(write_key, key);
	if (!*cert_pem || !*key_pem) {
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
		goto out;
	}
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

int ca_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem,
	     const char *cn, const char *ou, const char *o,
	     int64_t now_ns, int64_t lifetime_ns, char **cert_pem)
{
	X509 *ca = cert_parse(ca_cert_pem), *x = NULL;
	EVP_PKEY *ca_key = key_parse(ca_key_pem), *pub = NULL;
	X509_REQ *req = csr_parse(csr_pem);
	int r = -EINVAL;

	*cert_pem = NULL;
	if (!ca || !ca_key || !req || !cn || !*cn) {
		log_warn("ca, cannot issue: %s", !ca ? "bad CA certificate" : !ca_key ? "bad CA key" :
			 !req ? "bad CSR" : "no common name");
		goto out;
	}
	if (X509_check_private_key(ca, ca_key) != 1) {
		log_warn("ca, cannot issue: the CA key does not match its certificate");
		goto out;
	}
	/* The CSR must be signed by the key it carries (proof of possession). */
	pub = X509_REQ_get_pubkey(req);
	if (!pub || X509_REQ_verify(req, pub) != 1) {
		log_warn("ca, cannot issue: the CSR signature does not verify");
		goto out;
	}
	/* Unset (proto3 zero): the default; shorter than the minimum: the
	 * minimum. Callers validate user input; this only keeps certificates
	 * usable. */
	if (lifetime_ns <= 0)
		lifetime_ns = CA_NODE_LIFETIME_NS;
	if (lifetime_ns < CA_MIN_LIFETIME_NS)
		lifetime_ns = CA_MIN_LIFETIME_NS;

	x = X509_new();
	if (!x) {
		r = -ENOMEM;
		goto out;
	}
	X509_NAME *name = X509_get_subject_name(x);
	bool manager = ou && strcmp(ou, ROLE_MANAGER) == 0;
	const char *sans[3] = { cn, ROLE_MANAGER, "swarm-ca" };
	if (!X509_set_version(x, X509_VERSION_3) || set_random_serial(x) ||
	    set_validity(x, now_ns, lifetime_ns) ||
	    name_add(name, "O", o) || name_add(name, "OU", ou) || name_add(name, "CN", cn) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
	    !X509_set_pubkey(x, pub) ||
	    add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
	    add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    add_ext(x, ca, NID_subject_key_identifier, "hash") ||
	    add_ext(x, ca, NID_authority_key_identifier, "keyid:always") ||
	    add_san_dns(x, sans, manager ? 3 : 1)) {
		ssl_err("node certificate");
		goto out;
	}
	/* Never valid beyond the root. */
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0 &&
	    !X509_set1_notAfter(x, X509_get0_notAfter(ca))) {
		ssl_err("node certificate");
		goto out;
	}
	if (!X509_sign(x, ca_key, EVP_sha256())) {
		ssl_err("signing");
		goto out;
	}
	*cert_pem = to_pem(write_cert, x);
	r = *cert_pem ? 0 : -ENOMEM;
out:
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	return r;
}

int ca_make_key_csr(char **key_pem, char **csr_pem)
{
	EVP_PKEY *key = key_new();
	X509_REQ *req = X509_REQ_new();
	int r = -ENOMEM;

	*key_pem = *csr_pem = NULL;
	if (!key || !req)
		goto out;
	/* The manager ignores the CSR's subject; it only proves the key. */
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_sign(req, key, EVP_sha256())) {
		ssl_err("CSR");
		r = -EINVAL;
		goto out;
	}
	*key_pem = to_pem(write_key, key);
	*csr_pem = to_pem(write_csr, req);
	if (!*key_pem || !*csr_pem) {
		free(*key_pem);
		free(*csr_pem);
		*key_pem = *csr_pem = NULL;
		goto out;
	}
	r = 0;
out:
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return r;
}

int ca_cert_validity(const char *cert_pem, int64_t *not_before, int64_t *not_after)
{
	X509 *x = cert_parse(cert_pem);
	int r = -EINVAL;
	if (x && asn1_time_ns(X509_get0_notBefore(x), not_before) == 0 &&
	    asn1_time_ns(X509_get0_notAfter(x), not_after) == 0)
		r = 0;
	X509_free(x);
	return r;
}

int ca_cert_serial(const char *cert_pem, char *out, size_t outlen)
{
	X509 *x = cert_parse(cert_pem);
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int r = -EINVAL;

	if (!x)
		goto out;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	if (!hex)
		goto out;
	/* Lower case, as the rest of the project prints ids and digests. */
	for (char *p = hex; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	r = (size_t)snprintf(out, outlen, "%s", hex) < outlen ? 0 : -ENOSPC;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	return r;
}

int64_t ca_renew_at(int64_t not_before, int64_t not_after, double r)
{
	if (!(r >= 0.0))
		r = 0.0; /* also NaN */
	if (r >= 1.0)
		r = 0.999999;
	double life = (double)(not_after - not_before);
	return not_before + (int64_t)(life * (0.5 + r * 0.3));
}

int ca_verify(const char *ca_cert_pem, const char *cert_pem, int64_t now_ns)
{
	X509 *ca = cert_parse(ca_cert_pem), *x = cert_parse(cert_pem);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r = -EINVAL;

	if (!ca || !x || !st || !ctx || X509_STORE_add_cert(st, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, st, x, NULL) != 1)
		goto out;
	/* A CA certificate (the root itself) is not a node certificate. */
	if (X509_check_ca(x) != 0)
		goto out;
	/* Time is the caller's, not the wall clock's. */
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)(now_ns / NS_PER_S));
	if (X509_verify_cert(ctx) == 1) {
		r = 0;
		goto out;
	}
	switch (X509_STORE_CTX_get_error(ctx)) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		r = -EKEYEXPIRED;
		break;
	default:
		log_debug("ca, certificate does not verify: %s",
			  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		break;
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	X509_free(ca);
	return r;
}
