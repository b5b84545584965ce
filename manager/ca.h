/* The cluster CA: an ECDSA P-256 root and node certificates whose subject
 * names the node ID (CN), its role (OU: swarm-manager / swarm-worker) and the
 * cluster ID (O). Pure functions over PEM strings (OpenSSL). */
#ifndef SWARM_CA_H
#define SWARM_CA_H

#include <stddef.h>
#include <stdint.h>

#define CA_ROOT_LIFETIME_NS (630720000LL * 1000000000LL)  /* 20 years */
#define CA_NODE_LIFETIME_NS (2160LL * 3600 * 1000000000LL) /* 90 days */
#define CA_MIN_LIFETIME_NS (3600LL * 1000000000LL)         /* 1 hour */

/* Makes a new root key and self-signed certificate (CN swarm-ca), valid
 * from now-1h. Outputs are malloc'd PEM strings. 0 or -errno. */
int ca_create_root(int64_t now_ns, char **cert_pem, char **key_pem);

/* Signs the CSR's public key into a node certificate with the given subject,
 * serial random, valid from now-1h for lifetime_ns, issued by the root.
 * The CSR's own subject is ignored. 0, -EINVAL (bad CSR/CA) or -errno. */
int ca_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *csr_pem,
	     const char *cn, const char *ou, const char *o,
	     int64_t now_ns, int64_t lifetime_ns, char **cert_pem);

/* Agent side: a new P-256 key and a CSR for it. Malloc'd PEM strings. */
int ca_make_key_csr(char **key_pem, char **csr_pem);

/* Validity window of a PEM certificate in unix ns. 0 or -EINVAL. */
int ca_cert_validity(const char *cert_pem, int64_t *not_before, int64_t *not_after);
/* Serial number as hex into out. */
int ca_cert_serial(const char *cert_pem, char *out, size_t outlen);

/* When to renew: not_before + (50% + r * 30%) of the lifetime, r in [0,1). */
int64_t ca_renew_at(int64_t not_before, int64_t not_after, double r);

/* Checks that cert_pem was issued by ca_cert_pem and is valid at now.
 * 0, -EINVAL (not ours), -EKEYEXPIRED (outside its validity). */
int ca_verify(const char *ca_cert_pem, const char *cert_pem, int64_t now_ns);

#endif
