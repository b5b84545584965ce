/* TLS 1.3 with mutual authentication against the cluster CA (OpenSSL). */
#ifndef SWARM_TLS_H
#define SWARM_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Server context: our cert/key (PEM buffers), peers verified against ca_pem.
 * A client certificate is requested but not required: the caller decides,
 * per message, what a peer without one may do (only JoinRequest).
 * Returns NULL on error (logged). */
SSL_CTX *tls_server_ctx(const char *cert_pem, size_t cert_len,
			const char *key_pem, size_t key_len,
			const char *ca_pem, size_t ca_len);

/* Client context. With cert/key NULL the client presents no certificate
 * (joining). With ca_pem NULL the server is not verified during the handshake
 * (joining: the caller pins the CA with tls_peer_ca_matches afterwards).
 * Returns NULL on error (logged). */
SSL_CTX *tls_client_ctx(const char *cert_pem, size_t cert_len,
			const char *key_pem, size_t key_len,
			const char *ca_pem, size_t ca_len);

/* The verified peer's identity, from its certificate subject. Returns 0 and
 * fills the buffers (may be NULL), or -ENOENT when the peer sent no
 * certificate or it did not verify. */
int tls_peer_identity(SSL *ssl, char *cn, size_t cnlen, char *ou, size_t oulen,
		      char *o, size_t olen);

/* Hex SHA-256 of the DER encoding of a PEM certificate, into out[65]. */
int tls_cert_digest_hex(const char *pem, size_t len, char out[65]);

/* Finds, in the chain the server sent, a CA certificate for which
 * match(pem, len, arg) returns true (the joining node pins the CA by the
 * digest in its token); returns it as a malloc'd PEM string, or NULL (no such
 * certificate: do not trust this server). */
char *tls_peer_find_ca(SSL *ssl, int (*match)(const char *pem, size_t len, void *arg), void *arg);

/* SHA-256 of the DER form of a PEM certificate into out[32]; 0 or -EINVAL. */
int tls_cert_sha256(const char *pem, size_t len, unsigned char out[32]);

#endif
