/* Framed connections on libev, plain or TLS. One state machine per
 * connection: HANDSHAKE (TLS only) -> OPEN -> CLOSING (draining writes) ->
 * freed. A conn is never freed while one of its callbacks runs: closing from
 * inside on_frame only marks it, and the I/O handler finishes the job. */
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/err.h>
#include <protobuf-c/protobuf-c.h>

enum conn_state { CONN_HANDSHAKE, CONN_OPEN, CONN_CLOSING, CONN_DEAD };

struct conn {
	struct ev_loop *loop;
	int fd;
	SSL *ssl;
	bool is_server;
	bool connecting;        /* TCP connect in progress */
	enum conn_state state;
	int close_err;
	int busy;               /* > 0 while inside a callback */
	ev_io rio, wio;
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t woff, wlen, wcap;
	size_t max_frame;
	const struct conn_ops *ops;
	void *data;
	pid_t peer_pid;
	uid_t peer_uid;
	char peer[64];
};

static void conn_update_io(struct conn *c);
static void conn_finish(struct conn *c);

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

void *conn_data(struct conn *c) { return c->data; }
void conn_set_data(struct conn *c, void *data) { c->data = data; }
SSL *conn_ssl(struct conn *c) { return c->ssl; }
int conn_fd(struct conn *c) { return c->fd; }
uid_t conn_peer_uid(struct conn *c) { return c->peer_uid; }
size_t conn_pending(struct conn *c) { return c->wlen - c->woff; }
const char *conn_peer_name(struct conn *c) { return c->peer; }

void conn_set_peercred(struct conn *c, pid_t pid, uid_t uid)
{
	c->peer_pid = pid;
	c->peer_uid = uid;
	snprintf(c->peer, sizeof(c->peer), "unix:pid %d", (int)pid);
}

void conn_set_peer_name(struct conn *c, const char *name)
{
	snprintf(c->peer, sizeof(c->peer), "%s", name);
}

/* Marks the connection dead; it is freed now, or when the running callback
 * returns. */
static void conn_kill(struct conn *c, int err)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	c->close_err = err;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	if (!c->busy)
		conn_finish(c);
}

static void conn_finish(struct conn *c)
{
	if (c->ops->on_close) {
		c->busy++;
		c->ops->on_close(c, c->close_err);
		c->busy--;
	}
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

void conn_close(struct conn *c, int err)
{
	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return;
	if (err || conn_pending(c) == 0 || c->state == CONN_HANDSHAKE) {
		conn_kill(c, err);
		return;
	}
	c->state = CONN_CLOSING;
	c->close_err = err;
	ev_io_stop(c->loop, &c->rio);
	conn_update_io(c);
}

/* Returns bytes read (>0), 0 for "try later", or -errno / -ECONNRESET. */
static ssize_t conn_raw_read(struct conn *c, void *buf, size_t n)
{
	if (!c->ssl) {
		ssize_t r = read(c->fd, buf, n);
		if (r > 0)
			return r;
		if (r == 0)
			return -ECONNRESET;
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	}
	ERR_clear_error();
	int r = SSL_read(c->ssl, buf, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return e == SSL_ERROR_ZERO_RETURN ? -ECONNRESET : -EPROTO;
}

static ssize_t conn_raw_write(struct conn *c, const void *buf, size_t n)
{
	if (!c->ssl) {
		ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	}
	ERR_clear_error();
	int r = SSL_write(c->ssl, buf, (int)n);
	if (r > 0)
		return r;
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return -EPIPE;
}

static void conn_update_io(struct conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	bool want_write = c->connecting || conn_pending(c) > 0 ||
			  (c->ssl && SSL_want_write(c->ssl));
	if (want_write && !ev_is_active(&c->wio))
		ev_io_start(c->loop, &c->wio);
	else if (!want_write && ev_is_active(&c->wio))
		ev_io_stop(c->loop, &c->wio);
}

static void conn_flush(struct conn *c)
{
	while (c->state != CONN_DEAD && conn_pending(c) > 0) {
		ssize_t w = conn_raw_write(c, c->wbuf + c->woff, conn_pending(c));
		if (w < 0) {
			conn_kill(c, (int)w);
			return;
		}
		if (w == 0)
			break;
		c->woff += (size_t)w;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	if (c->state == CONN_CLOSING && conn_pending(c) == 0) {
		conn_kill(c, c->close_err);
		return;
	}
	conn_update_io(c);
}

static void conn_handshake(struct conn *c)
{
	ERR_clear_error();
	int r = c->is_server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
	if (r == 1) {
		c->state = CONN_OPEN;
		if (c->ops->on_ready) {
			c->busy++;
			int rr = c->ops->on_ready(c);
			c->busy--;
			if (rr < 0 && c->state != CONN_DEAD)
				conn_kill(c, rr);
		}
		if (c->state != CONN_DEAD)
			conn_update_io(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		conn_update_io(c);
		return;
	}
	unsigned long le = ERR_peek_error();
	char buf[200] = "";
	if (le)
		ERR_error_string_n(le, buf, sizeof(buf));
	log_info("conn, TLS handshake with %s failed: %s", c->peer, buf[0] ? buf : "peer closed");
	ERR_clear_error();
	conn_kill(c, -EPROTO);
}

static void conn_read(struct conn *c)
{
	for (;;) {
		if (c->rcap - c->rlen < 16384) {
			c->rcap = c->rcap ? c->rcap * 2 : 32768;
			c->rbuf = xrealloc(c->rbuf, c->rcap);
		}
		ssize_t r = conn_raw_read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (r < 0) {
			conn_kill(c, r == -ECONNRESET ? 0 : (int)r);
			return;
		}
		if (r == 0)
			break;
		c->rlen += (size_t)r;

		size_t off = 0;
		while (c->state == CONN_OPEN) {
			size_t plen;
			int fr = frame_parse(c->rbuf + off, c->rlen - off, c->max_frame, &plen);
			if (fr < 0) {
				log_warn("conn, %s sent an oversized frame; closing", c->peer);
				conn_kill(c, -EMSGSIZE);
				return;
			}
			if (fr == 0)
				break;
			c->busy++;
			int cr = c->ops->on_frame(c, c->rbuf + off + FRAME_HDR, plen);
			c->busy--;
			off += FRAME_HDR + plen;
			if (cr < 0 && c->state != CONN_DEAD)
				conn_kill(c, cr);
		}
		if (c->state == CONN_DEAD)
			return;
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
		/* Shrink a buffer that grew for one large frame. */
		if (c->rlen == 0 && c->rcap > (1u << 20)) {
			free(c->rbuf);
			c->rbuf = NULL;
			c->rcap = 0;
		}
		if (c->state != CONN_OPEN)
			break;
	}
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	c->busy++;
	if (c->connecting && (revents & EV_WRITE)) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		c->connecting = false;
		if (err) {
			log_info("conn, connect to %s failed: %s", c->peer, strerror(err));
			conn_kill(c, -err);
			goto out;
		}
		ev_io_start(loop, &c->rio);
	}
	if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
	} else if (c->state == CONN_OPEN || c->state == CONN_CLOSING) {
		if (c->state == CONN_OPEN && (revents & EV_READ || (c->ssl && SSL_pending(c->ssl))))
			conn_read(c);
		if (c->state != CONN_DEAD)
			conn_flush(c);
	}
out:
	c->busy--;
	if (c->state == CONN_DEAD && !c->busy)
		conn_finish(c);
}

/* Starts watching the socket. Callbacks only ever run from the loop, so the
 * creator can still set the peer name and data after conn_new returns. */
static void conn_start(struct conn *c)
{
	if (c->connecting) {
		ev_io_start(c->loop, &c->wio);
		return;
	}
	ev_io_start(c->loop, &c->rio);
	/* A client starts its handshake from the loop (the socket is writable
	 * at once), so that no callback runs before the caller has the conn. */
	if (c->state == CONN_HANDSHAKE && !c->is_server)
		ev_io_start(c->loop, &c->wio);
}

struct conn *conn_new(struct ev_loop *loop, int fd, SSL *ssl, bool is_server,
		      size_t max_frame, const struct conn_ops *ops, void *data)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->ssl = ssl;
	c->is_server = is_server;
	c->max_frame = max_frame ? max_frame : FRAME_MAX_DEFAULT;
	c->ops = ops;
	c->data = data;
	c->peer_uid = (uid_t)-1;
	snprintf(c->peer, sizeof(c->peer), "fd %d", fd);
	set_nonblock(fd);
	ev_io_init(&c->rio, conn_io_cb, fd, EV_READ);
	ev_io_init(&c->wio, conn_io_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	if (ssl) {
		SSL_set_fd(ssl, fd);
		c->state = CONN_HANDSHAKE;
	} else {
		c->state = CONN_OPEN;
	}
	conn_start(c);
	return c;
}

int conn_send(struct conn *c, const void *payload, size_t len)
{
	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return -EPIPE;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	size_t need = c->wlen + FRAME_HDR + len;
	if (need > c->wcap) {
		if (c->woff > 0) {
			memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
			c->wlen -= c->woff;
			c->woff = 0;
			need = c->wlen + FRAME_HDR + len;
		}
		if (need > c->wcap) {
			size_t cap = c->wcap ? c->wcap : 16384;
			while (cap < need)
				cap *= 2;
			c->wbuf = xrealloc(c->wbuf, cap);
			c->wcap = cap;
		}
	}
	frame_put_header(c->wbuf + c->wlen, (uint32_t)len);
	if (len)
		memcpy(c->wbuf + c->wlen + FRAME_HDR, payload, len);
	c->wlen += FRAME_HDR + len;
	if (c->state == CONN_OPEN && !c->busy)
		conn_flush(c);
	else
		conn_update_io(c);
	return 0;
}

int conn_send_msg(struct conn *c, const struct ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size((const ProtobufCMessage *)msg);
	uint8_t stackbuf[4096];
	uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : xmalloc(n);
	protobuf_c_message_pack((const ProtobufCMessage *)msg, buf);
	int r = conn_send(c, buf, n);
	if (buf != stackbuf)
		free(buf);
	return r;
}

struct listener {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	SSL_CTX *ctx;
	bool is_unix;
	size_t max_frame;
	const struct conn_ops *ops;
	listener_accept_fn on_accept;
	void *data;
};

static void listener_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("conn, accept: %s", strerror(errno));
			return;
		}
		char name[64] = "";
		pid_t pid = 0;
		uid_t uid = (uid_t)-1;
		if (l->is_unix) {
			struct ucred cr;
			socklen_t cl = sizeof(cr);
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
			    (cr.uid != 0 && cr.uid != geteuid())) {
				log_warn("conn, refusing local peer uid %d",
					 getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ? -1 : (int)cr.uid);
				close(fd);
				continue;
			}
			pid = cr.pid;
			uid = cr.uid;
		} else {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			char ip[INET_ADDRSTRLEN] = "?";
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
			snprintf(name, sizeof(name), "%s:%u", ip, ntohs(sin->sin_port));
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		SSL *ssl = NULL;
		if (l->ctx) {
			ssl = SSL_new(l->ctx);
			if (!ssl) {
				close(fd);
				continue;
			}
		}
		struct conn *c = conn_new(loop, fd, ssl, true, l->max_frame, l->ops, NULL);
		if (l->is_unix)
			conn_set_peercred(c, pid, uid);
		else
			conn_set_peer_name(c, name);
		if (l->on_accept)
			l->on_accept(l, c, l->data);
	}
}

static struct listener *listener_new(struct ev_loop *loop, int fd, SSL_CTX *ctx, bool is_unix,
				     size_t max_frame, const struct conn_ops *ops,
				     listener_accept_fn on_accept, void *data)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->fd = fd;
	l->ctx = ctx;
	if (ctx)
		SSL_CTX_up_ref(ctx);
	l->is_unix = is_unix;
	l->max_frame = max_frame;
	l->ops = ops;
	l->on_accept = on_accept;
	l->data = data;
	ev_io_init(&l->io, listener_cb, fd, EV_READ);
	l->io.data = l;
	ev_io_start(loop, &l->io);
	return l;
}

static int sockaddr_from(const char *addr, struct sockaddr_in *sin)
{
	char ip[16];
	uint16_t port = 0;
	if (hostport_parse(addr, ip, &port) < 0 || port == 0)
		return -EINVAL;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	inet_pton(AF_INET, ip, &sin->sin_addr);
	return 0;
}

struct listener *listener_tcp(struct ev_loop *loop, const char *addr, SSL_CTX *ctx,
			      size_t max_frame, const struct conn_ops *ops,
			      listener_accept_fn on_accept, void *data)
{
	struct sockaddr_in sin;
	if (sockaddr_from(addr, &sin) < 0) {
		log_err("conn, bad listen address %s", addr);
		return NULL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 512) < 0) {
		log_err("conn, cannot listen on %s: %s", addr, strerror(errno));
		close(fd);
		return NULL;
	}
	return listener_new(loop, fd, ctx, false, max_frame, ops, on_accept, data);
}

struct listener *listener_unix(struct ev_loop *loop, const char *path, size_t max_frame,
			       const struct conn_ops *ops, listener_accept_fn on_accept, void *data)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("conn, socket path too long: %s", path);
		return NULL;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	unlink(path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		log_err("conn, cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	return listener_new(loop, fd, NULL, true, max_frame, ops, on_accept, data);
}

void listener_set_ctx(struct listener *l, SSL_CTX *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(l->ctx);
	l->ctx = ctx;
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	ev_io_stop(l->loop, &l->io);
	close(l->fd);
	SSL_CTX_free(l->ctx);
	free(l);
}

struct conn *conn_connect_unix(struct ev_loop *loop, const char *path, size_t max_frame,
			       const struct conn_ops *ops, void *data)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return NULL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	/* a local stream socket connects at once or not at all */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return NULL;
	}
	return conn_new(loop, fd, NULL, false, max_frame, ops, data);
}

struct conn *conn_connect_tcp(struct ev_loop *loop, const char *addr, SSL_CTX *ctx,
			      size_t max_frame, const struct conn_ops *ops, void *data)
{
	struct sockaddr_in sin;
	if (sockaddr_from(addr, &sin) < 0)
		return NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int r = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (r < 0 && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	struct conn *c = conn_new(loop, fd, ssl, false, max_frame, ops, data);
	conn_set_peer_name(c, addr);
	if (r < 0) {
		/* Wait for the connect to finish before reading or handshaking. */
		ev_io_stop(loop, &c->rio);
		c->connecting = true;
		ev_io_start(loop, &c->wio);
	}
	return c;
}
