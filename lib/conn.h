/* A framed connection on libev: a socket, optionally TLS, with a read buffer
 * that yields whole frames and a write queue. Non-blocking throughout.
 * A process using TLS conns must ignore SIGPIPE (daemon_main does): OpenSSL
 * writes with write(2). */
#ifndef SWARM_CONN_H
#define SWARM_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <ev.h>
#include <openssl/ssl.h>
#include <sys/types.h>

struct conn;

struct conn_ops {
	/* A whole frame arrived. Return 0 to go on, or negative to close the
	 * connection (the frame was bad: logged by the callee). The payload is
	 * only valid during the call. */
	int (*on_frame)(struct conn *c, const uint8_t *payload, size_t len);
	/* TLS handshake finished (server and client side). Optional. Return
	 * negative to close. */
	int (*on_ready)(struct conn *c);
	/* The connection is closing (peer gone, error, conn_close). Called once;
	 * the conn is freed right after. Optional. */
	void (*on_close)(struct conn *c, int err);
};

/* Wraps an accepted or connected non-blocking fd. ssl may be NULL (plain
 * Unix socket); with ssl, is_server selects accept vs connect handshake.
 * max_frame bounds incoming frames (oversize: the peer is dropped).
 * Takes ownership of fd and ssl. */
struct conn *conn_new(struct ev_loop *loop, int fd, SSL *ssl, bool is_server,
		      size_t max_frame, const struct conn_ops *ops, void *data);

/* Queues one frame (header added here). 0 or -errno (connection closing). */
int conn_send(struct conn *c, const void *payload, size_t len);
/* Packs a protobuf-c message and queues it as one frame. */
struct ProtobufCMessage;
int conn_send_msg(struct conn *c, const struct ProtobufCMessage *msg);

/* Closes after the write queue drains (graceful) or at once. on_close runs. */
void conn_close(struct conn *c, int err);

void *conn_data(struct conn *c);
void conn_set_data(struct conn *c, void *data);
SSL *conn_ssl(struct conn *c);
int conn_fd(struct conn *c);
/* Peer credentials of a Unix-socket conn (set by unixsock accept). */
void conn_set_peercred(struct conn *c, pid_t pid, uid_t uid);
uid_t conn_peer_uid(struct conn *c);
/* Bytes queued for writing and not yet sent. */
size_t conn_pending(struct conn *c);
/* Printable peer name ("192.0.2.12:40122", "unix:pid 123"). */
const char *conn_peer_name(struct conn *c);
void conn_set_peer_name(struct conn *c, const char *name);

/* A listening socket that wraps each accepted fd in a conn. */
struct listener;
typedef void (*listener_accept_fn)(struct listener *l, struct conn *c, void *data);

/* TCP "IP:PORT", TLS with ctx (server side). Returns NULL on error. */
struct listener *listener_tcp(struct ev_loop *loop, const char *addr, SSL_CTX *ctx,
			      size_t max_frame, const struct conn_ops *ops,
			      listener_accept_fn on_accept, void *data);
/* Unix socket at path (unlinked first), mode 0600; peers whose uid is not 0
 * or our own are refused (SO_PEERCRED). Returns NULL on error. */
struct listener *listener_unix(struct ev_loop *loop, const char *path,
			       size_t max_frame, const struct conn_ops *ops,
			       listener_accept_fn on_accept, void *data);
void listener_free(struct listener *l);
/* Swaps the TLS context used for new connections (cert renewal). */
void listener_set_ctx(struct listener *l, SSL_CTX *ctx);

/* Connects to a local Unix socket (no TLS); NULL if nobody listens. */
struct conn *conn_connect_unix(struct ev_loop *loop, const char *path, size_t max_frame,
			       const struct conn_ops *ops, void *data);
/* Non-blocking TCP connect to "IP:PORT" with TLS (client side); the conn's
 * on_ready runs after the handshake, on_close on failure. NULL on immediate
 * error. */
struct conn *conn_connect_tcp(struct ev_loop *loop, const char *addr, SSL_CTX *ctx,
			      size_t max_frame, const struct conn_ops *ops, void *data);

#endif
