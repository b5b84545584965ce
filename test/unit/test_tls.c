/* TLS 1.3 handshakes between two conns on a socket pair: a good client
 * certificate, one from another CA, an expired one, and none at all. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ca.h"
#include "conn.h"
#include "tls.h"
#include "util.h"

#define HOUR (3600LL * 1000000000LL)

struct side {
	int ready;
	int closed;
	int frames;
	char cn[64], ou[64], o[64];
	int ident;           /* tls_peer_identity result */
};

static int s_ready(struct conn *c)
{
	struct side *s = conn_data(c);
	s->ready = 1;
	s->ident = tls_peer_identity(conn_ssl(c), s->cn, sizeof(s->cn), s->ou, sizeof(s->ou),
				     s->o, sizeof(s->o));
	return 0;
}

static int s_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct side *s = conn_data(c);
	s->frames++;
	return 0;
}

static void s_close(struct conn *c, int err)
{
	struct side *s = conn_data(c);
	s->closed = 1;
}

static const struct conn_ops ops = { .on_frame = s_frame, .on_ready = s_ready, .on_close = s_close };

struct pki {
	char *ca, *ca_key;
	char *srv, *srv_key;
};

static char *issue(const struct pki *p, const char *cn, const char *ou, int64_t now, int64_t life,
		   char **key)
{
	char *csr = NULL, *cert = NULL;
	assert_int_equal(ca_make_key_csr(key, &csr), 0);
	assert_int_equal(ca_issue(p->ca, p->ca_key, csr, cn, ou, "cluster1", now, life, &cert), 0);
	free(csr);
	return cert;
}

static void pki_make(struct pki *p)
{
	int64_t now = now_wall_ns();
	assert_int_equal(ca_create_root(now, &p->ca, &p->ca_key), 0);
	p->srv = issue(p, "swarm-manager", "swarm-manager", now, 24 * HOUR, &p->srv_key);
}

static void pki_free(struct pki *p)
{
	free(p->ca);
	free(p->ca_key);
	free(p->srv);
	free(p->srv_key);
}

/* Runs a handshake with the given client cert (NULL = none); the server
 * trusts srvpki's CA. Returns the server side's view. */
static void handshake(const struct pki *srvpki, const char *ccert, const char *ckey,
		      const char *trust_ca, struct side *sv, struct side *cl)
{
	struct ev_loop *loop = ev_loop_new(0);
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	SSL_CTX *sctx = tls_server_ctx(srvpki->srv, strlen(srvpki->srv), srvpki->srv_key,
				       strlen(srvpki->srv_key), srvpki->ca, strlen(srvpki->ca));
	SSL_CTX *cctx = tls_client_ctx(ccert, ccert ? strlen(ccert) : 0, ckey, ckey ? strlen(ckey) : 0,
				       trust_ca, trust_ca ? strlen(trust_ca) : 0);
	assert_non_null(sctx);
	assert_non_null(cctx);
	struct conn *s = conn_new(loop, fds[0], SSL_new(sctx), true, 1024, &ops, sv);
	struct conn *c = conn_new(loop, fds[1], SSL_new(cctx), false, 1024, &ops, cl);
	conn_send(c, "hi", 2);
	int64_t end = now_mono_ns() + 2000000000LL;
	while (now_mono_ns() < end && !(sv->closed && cl->closed) && !(sv->frames && cl->ready))
		ev_run(loop, EVRUN_NOWAIT);
	if (!sv->closed)
		conn_close(s, 0);
	if (!cl->closed)
		conn_close(c, 0);
	ev_run(loop, EVRUN_NOWAIT);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	ev_loop_destroy(loop);
}

static void test_good_cert(void **state)
{
	struct pki p = { 0 };
	pki_make(&p);
	char *key = NULL;
	char *cert = issue(&p, "node123", "swarm-worker", now_wall_ns(), 24 * HOUR, &key);
	struct side sv = { 0 }, cl = { 0 };
	handshake(&p, cert, key, p.ca, &sv, &cl);
	assert_int_equal(sv.ready, 1);
	assert_int_equal(cl.ready, 1);
	assert_int_equal(sv.frames, 1);
	assert_int_equal(sv.ident, 0);
	assert_string_equal(sv.cn, "node123");
	assert_string_equal(sv.ou, "swarm-worker");
	assert_string_equal(sv.o, "cluster1");
	free(cert);
	free(key);
	pki_free(&p);
}

static void test_wrong_ca(void **state)
{
	struct pki p = { 0 }, other = { 0 };
	pki_make(&p);
	pki_make(&other);
	char *key = NULL;
	char *cert = issue(&other, "intruder", "swarm-worker", now_wall_ns(), 24 * HOUR, &key);
	struct side sv = { 0 }, cl = { 0 };
	handshake(&p, cert, key, p.ca, &sv, &cl);
	assert_int_equal(sv.ready, 0);
	assert_int_equal(sv.frames, 0);
	assert_int_equal(sv.closed, 1);
	free(cert);
	free(key);
	pki_free(&p);
	pki_free(&other);
}

static void test_expired(void **state)
{
	struct pki p = { 0 };
	pki_make(&p);
	char *key = NULL;
	/* Issued two days ago for one day (valid from now-49h to now-25h). */
	char *cert = issue(&p, "old", "swarm-worker", now_wall_ns() - 48 * HOUR, 24 * HOUR, &key);
	struct side sv = { 0 }, cl = { 0 };
	handshake(&p, cert, key, p.ca, &sv, &cl);
	assert_int_equal(sv.frames, 0);
	assert_int_equal(sv.closed, 1);
	free(cert);
	free(key);
	pki_free(&p);
}

static void test_no_cert(void **state)
{
	struct pki p = { 0 };
	pki_make(&p);
	struct side sv = { 0 }, cl = { 0 };
	/* Joining nodes have no certificate: the handshake succeeds, the
	 * server sees no identity (and only accepts a join request). */
	handshake(&p, NULL, NULL, NULL, &sv, &cl);
	assert_int_equal(sv.ready, 1);
	assert_int_equal(sv.ident, -ENOENT);
	assert_int_equal(sv.frames, 1);
	pki_free(&p);
}

static void test_client_rejects_foreign_server(void **state)
{
	struct pki p = { 0 }, other = { 0 };
	pki_make(&p);
	pki_make(&other);
	char *key = NULL;
	char *cert = issue(&p, "node1", "swarm-worker", now_wall_ns(), 24 * HOUR, &key);
	struct side sv = { 0 }, cl = { 0 };
	/* The client trusts another CA than the server's. */
	handshake(&p, cert, key, other.ca, &sv, &cl);
	assert_int_equal(cl.ready, 0);
	assert_int_equal(sv.frames, 0);
	free(cert);
	free(key);
	pki_free(&p);
	pki_free(&other);
}

int main(void)
{
	/* As in the daemons: a peer that hangs up must not kill us (OpenSSL
	 * writes with write(2), not send(MSG_NOSIGNAL)). */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_cert),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_no_cert),
		cmocka_unit_test(test_client_rejects_foreign_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
