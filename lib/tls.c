#include "tls.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

static void tls_log_errors(const char *what)
{
	unsigned long e;
	char buf[256];
	while ((e = ERR_get_error())) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warn("tls, %s: %s", what, buf);
	}
}

static X509 *pem_to_x509(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return NULL;
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

static int ctx_load(SSL_CTX *ctx, const char *cert_pem, size_t cert_len,
		    const char *key_pem, size_t key_len, const char *ca_pem, size_t ca_len)
{
	if (cert_pem && key_pem) {
		X509 *cert = pem_to_x509(cert_pem, cert_len);
		BIO *kb = BIO_new_mem_buf(key_pem, (int)key_len);
		EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
		BIO_free(kb);
		int ok = cert && key && SSL_CTX_use_certificate(ctx, cert) == 1 &&
			 SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
			 SSL_CTX_check_private_key(ctx) == 1;
		X509_free(cert);
		EVP_PKEY_free(key);
		if (!ok)
			return -EINVAL;
	}
	if (ca_pem) {
		X509 *ca = pem_to_x509(ca_pem, ca_len);
		if (!ca)
			return -EINVAL;
		X509_STORE *st = SSL_CTX_get_cert_store(ctx);
		int ok = X509_STORE_add_cert(st, ca) == 1;
		/* Send the CA along with our certificate so that a joining
		 * node can pin it by digest. */
		if (ok && cert_pem)
			ok = SSL_CTX_add1_chain_cert(ctx, ca) == 1;
		X509_free(ca);
		if (!ok)
			return -EINVAL;
	}
	return 0;
}

static SSL_CTX *ctx_new(const SSL_METHOD *m)
{
	SSL_CTX *ctx = SSL_CTX_new(m);
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

SSL_CTX *tls_server_ctx(const char *cert_pem, size_t cert_len, const char *key_pem,
			size_t key_len, const char *ca_pem, size_t ca_len)
{
	SSL_CTX *ctx = ctx_new(TLS_server_method());
	if (!ctx)
		goto fail;
	if (ctx_load(ctx, cert_pem, cert_len, key_pem, key_len, ca_pem, ca_len) < 0)
		goto fail;
	/* Request a certificate, do not require one: joining nodes have none
	 * and may only send JoinRequest (checked by the dispatcher). A
	 * certificate that is sent must verify, or the handshake fails. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
fail:
	tls_log_errors("server context");
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_client_ctx(const char *cert_pem, size_t cert_len, const char *key_pem,
			size_t key_len, const char *ca_pem, size_t ca_len)
{
	SSL_CTX *ctx = ctx_new(TLS_client_method());
	if (!ctx)
		goto fail;
	if (ctx_load(ctx, cert_pem, cert_len, key_pem, key_len, ca_pem, ca_len) < 0)
		goto fail;
	SSL_CTX_set_verify(ctx, ca_pem ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	tls_log_errors("client context");
	SSL_CTX_free(ctx);
	return NULL;
}

static int name_entry(X509_NAME *name, int nid, char *out, size_t outlen)
{
	if (!out)
		return 0;
	out[0] = '\0';
	int idx = X509_NAME_get_index_by_NID(name, nid, -1);
	if (idx < 0)
		return 0;
	ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, s);
	if (n < 0)
		return -EINVAL;
	snprintf(out, outlen, "%.*s", n, utf8);
	OPENSSL_free(utf8);
	return 0;
}

int tls_peer_identity(SSL *ssl, char *cn, size_t cnlen, char *ou, size_t oulen,
		      char *o, size_t olen)
{
	X509 *peer = SSL_get1_peer_certificate(ssl);
	if (!peer)
		return -ENOENT;
	if (SSL_get_verify_result(ssl) != X509_V_OK) {
		X509_free(peer);
		return -ENOENT;
	}
	X509_NAME *name = X509_get_subject_name(peer);
	int r = name_entry(name, NID_commonName, cn, cnlen);
	if (!r)
		r = name_entry(name, NID_organizationalUnitName, ou, oulen);
	if (!r)
		r = name_entry(name, NID_organizationName, o, olen);
	X509_free(peer);
	return r;
}

int tls_cert_sha256(const char *pem, size_t len, unsigned char out[32])
{
	X509 *x = pem_to_x509(pem, len);
	if (!x)
		return -EINVAL;
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	X509_free(x);
	if (n <= 0)
		return -EINVAL;
	SHA256(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

int tls_cert_digest_hex(const char *pem, size_t len, char out[65])
{
	unsigned char d[32];
	int r = tls_cert_sha256(pem, len, d);
	if (r < 0)
		return r;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	return 0;
}

char *tls_peer_find_ca(SSL *ssl, int (*match)(const char *pem, size_t len, void *arg), void *arg)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	if (!chain)
		return NULL;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		BIO *b = BIO_new(BIO_s_mem());
		if (!b || PEM_write_bio_X509(b, x) != 1) {
			BIO_free(b);
			continue;
		}
		char *data;
		long n = BIO_get_mem_data(b, &data);
		char *pem = NULL;
		if (n > 0 && match(data, (size_t)n, arg)) {
			pem = xmalloc((size_t)n + 1);
			memcpy(pem, data, (size_t)n);
			pem[n] = '\0';
		}
		BIO_free(b);
		if (pem)
			return pem;
	}
	return NULL;
}
