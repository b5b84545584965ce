/* netd gossip: libev glue between sockets and the SWIM state machine. See
 * gossip.h; wire details in reference/memberlist.md §1-§4. */
#include "gossip.h"

#include "gossip_pack.h"
#include "gossip_wire.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GOSSIP_UDP_RECV_MAX 65536
#define GOSSIP_TCP_BUF_MAX (8u << 20)   /* one push/pull, bounded */
#define GOSSIP_TCP_MAX_CONNS 128        /* memberlist's inbound limit */
#define GOSSIP_PP_MAX_NODES 65536       /* states accepted in one push/pull */
#define GOSSIP_SEEDS_MAX 16
#define GOSSIP_REJOIN_NS (10 * 1000000000LL)

enum tconn_kind {
	TC_IN,        /* accepted: read a request, answer, close */
	TC_OUT_PP,    /* our push/pull (join or periodic) */
	TC_OUT_PING,  /* our TCP ping fallback */
};

struct tconn {
	struct gossip *g;
	enum tconn_kind kind;
	int fd;
	ev_io io;
	ev_timer tm;
	bool connecting;        /* outbound connect in progress */
	bool replying;          /* request answered; close once written */
	struct gossip_buf rbuf; /* bytes read */
	struct gossip_buf wbuf; /* bytes to write */
	size_t woff;            /* written so far */
	uint32_t seq;           /* TC_OUT_PING */
	bool join;              /* TC_OUT_PP */
	char peer[64];          /* for logs */
	struct tconn *prev, *next;
};

struct gossip {
	struct ev_loop *loop;
	struct swim *swim;
	char name[SWIM_NAME_MAX + 1];
	struct gossip_keyring kr;
	int64_t key_warned_ns;      /* last "no key decrypts" warning (mono) */
	uint64_t key_failures;      /* such packets since */
	struct swim_addr self;  /* advertised */
	uint16_t port;          /* bound */
	int udp_fd, tcp_fd;
	ev_io udp_io, tcp_io;
	ev_timer tick;
	ev_timer rejoin;
	int64_t tcp_timeout;
	size_t overhead;        /* encryption bytes per UDP packet */
	struct tconn *conns;
	size_t n_conns;
	struct swim_addr seeds[GOSSIP_SEEDS_MAX];
	size_t n_seeds;
	struct gossip_buf scratch;
	struct gossip_stats st;
	struct gossip_delegate del;
};

static void g_run_actions(struct gossip *g, struct swim_actions *acts);
static void g_after(struct gossip *g);
static void g_arm(struct gossip *g);

/* ---- helpers ---- */

static void addr_str(const struct swim_addr *a, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (a->len == 4)
		inet_ntop(AF_INET, a->ip, ip, sizeof(ip));
	else if (a->len == 16)
		inet_ntop(AF_INET6, a->ip, ip, sizeof(ip));
	snprintf(out, len, "%s:%u", ip, a->port);
}

/* swim_addr <-> sockaddr (IPv4 only for now; IPv6 peers are skipped). */
static int addr_to_sin(const struct swim_addr *a, struct sockaddr_in *sin)
{
	if (a->len != 4)
		return -EAFNOSUPPORT;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, a->ip, 4);
	sin->sin_port = htons(a->port);
	return 0;
}

static void sin_to_addr(const struct sockaddr_in *sin, struct swim_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->len = 4;
	memcpy(a->ip, &sin->sin_addr, 4);
	a->port = ntohs(sin->sin_port);
}

static int bytes_to_addr(struct gossip_bytes ip, uint16_t port, struct swim_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ip.len != 4 && ip.len != 16)
		return -EINVAL;
	memcpy(a->ip, ip.p, ip.len);
	a->len = (uint8_t)ip.len;
	a->port = port;
	return 0;
}

/* Copies a wire string into a NUL-terminated name; -EINVAL if too long. */
static int name_copy(char *out, struct gossip_bytes b)
{
	if (b.len > SWIM_NAME_MAX)
		return -EINVAL;
	if (b.len)
		memcpy(out, b.p, b.len);
	out[b.len] = '\0';
	return 0;
}

static bool g_encrypted(const struct gossip *g)
{
	return g->kr.n > 0;
}

/* swim's broadcast encoder: alive/suspect/dead as memberlist messages. */
static int g_encode(void *ctx, const struct swim_msg *m, uint8_t *buf, size_t cap)
{
	struct gossip_buf b;
	int r = -EINVAL;
	(void)ctx;
	gossip_buf_init_fixed(&b, buf, cap);
	switch (m->type) {
	case SWIM_MSG_ALIVE: {
		struct gossip_alive a = {
			.incarnation = m->incarnation,
			.node = gossip_str(m->node),
			.addr = { m->addr.ip, m->addr.len },
			.port = m->addr.port,
			.meta = { m->meta, m->meta_len },
			.vsn = { m->vsn, m->vsn_len },
		};
		r = gossip_encode_alive(&b, &a);
		break;
	}
	case SWIM_MSG_SUSPECT: {
		struct gossip_suspect s = { m->incarnation, gossip_str(m->node), gossip_str(m->from) };
		r = gossip_encode_suspect(&b, &s);
		break;
	}
	case SWIM_MSG_DEAD: {
		struct gossip_dead d = { m->incarnation, gossip_str(m->node), gossip_str(m->from) };
		r = gossip_encode_dead(&b, &d);
		break;
	}
	}
	return r < 0 ? r : (int)b.len;
}

/* ---- events ---- */

static void g_drain_events(struct gossip *g)
{
	static const char *const what[] = {
		[SWIM_EV_JOIN] = "joined", [SWIM_EV_UPDATE] = "updated",
		[SWIM_EV_SUSPECT] = "suspect", [SWIM_EV_ALIVE] = "alive again",
		[SWIM_EV_DEAD] = "failed", [SWIM_EV_LEFT] = "left",
		[SWIM_EV_REAPED] = "reaped", [SWIM_EV_CONFLICT] = "conflicts",
		[SWIM_EV_REFUTE] = "refuted (us)",
	};
	struct swim_event ev;
	while (swim_next_event(g->swim, &ev)) {
		char a[80];
		addr_str(&ev.addr, a, sizeof(a));
		if (ev.type == SWIM_EV_SUSPECT || ev.type == SWIM_EV_DEAD)
			log_info("gossip, node %s (%s) %s, from %s", ev.name, a,
				 what[ev.type], ev.from[0] ? ev.from : "?");
		else
			log_info("gossip, node %s (%s) %s, incarnation %u", ev.name, a,
				 what[ev.type], ev.incarnation);
		if (g->del.on_event)
			g->del.on_event(g->del.arg, &ev);
	}
}

/* ---- UDP out ---- */

static void g_sendto(struct gossip *g, const struct swim_addr *to,
		     const uint8_t *msg, size_t len)
{
	struct sockaddr_in sin;
	struct gossip_buf pkt;
	struct gossip_udp_opts o = {
		.crc = true,
		.compress = false,
		.label = NULL,
		.kr = g_encrypted(g) ? &g->kr : NULL,
		.enc_vsn = 1,
	};
	if (addr_to_sin(to, &sin) < 0)
		return;
	gossip_buf_init(&pkt, 0);
	if (gossip_pack_udp_seal(&pkt, msg, len, &o) == 0) {
		if (sendto(g->udp_fd, pkt.data, pkt.len, 0, (struct sockaddr *)&sin,
			   sizeof(sin)) < 0)
			log_debug("gossip, sendto: %s", strerror(errno));
		else
			g->st.udp_out++;
	}
	gossip_buf_free(&pkt);
}

/* Sends msg with as many queued broadcasts as fit (memberlist sendMsg). */
static void g_send_piggy(struct gossip *g, const struct swim_addr *to,
			 const uint8_t *msg, size_t len)
{
	struct broadcast_batch bb;
	size_t budget = GOSSIP_UDP_BUDGET;
	size_t fixed = len + 2 + 5 + g->overhead; /* compound hdr, crc, crypto */
	broadcast_batch_init(&bb);
	if (fixed < budget)
		swim_get_broadcasts(g->swim, 2, budget - fixed, &bb);
	if (bb.n == 0 || bb.n + 1 > GOSSIP_COMPOUND_MAX) {
		g_sendto(g, to, msg, len);
	} else {
		struct gossip_bytes parts[GOSSIP_COMPOUND_MAX];
		struct gossip_buf c;
		size_t n = 0;
		parts[n++] = (struct gossip_bytes){ msg, len };
		for (size_t i = 0; i < bb.n; i++)
			parts[n++] = (struct gossip_bytes){ bb.items[i].p, bb.items[i].len };
		gossip_buf_init(&c, 0);
		if (gossip_pack_compound(&c, parts, n) == 0)
			g_sendto(g, to, c.data, c.len);
		gossip_buf_free(&c);
	}
	broadcast_batch_clear(&bb);
}

static void g_send_ack(struct gossip *g, const struct swim_addr *to, uint32_t seq)
{
	struct gossip_buf b;
	struct gossip_ack a = { .seq_no = seq };
	gossip_buf_init(&b, 0);
	if (gossip_encode_ack(&b, &a) == 0)
		g_send_piggy(g, to, b.data, b.len);
	gossip_buf_free(&b);
}

/* ---- TCP connections ---- */

static void tc_free(struct tconn *c, bool ok)
{
	struct gossip *g = c->g;
	if (!ok)
		g->st.tcp_bad++;
	if (c->kind == TC_OUT_PING)
		swim_on_tcp_ping_result(g->swim, c->seq, ok, now_mono_ns());
	ev_io_stop(g->loop, &c->io);
	ev_timer_stop(g->loop, &c->tm);
	if (c->fd >= 0)
		close(c->fd);
	gossip_buf_free(&c->rbuf);
	gossip_buf_free(&c->wbuf);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->n_conns--;
	free(c);
}

static void tc_set_events(struct tconn *c, int events)
{
	ev_io_stop(c->g->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->g->loop, &c->io);
}

/* Queues msg (a whole message with its type byte) sealed for TCP. */
static int tc_queue(struct tconn *c, const uint8_t *msg, size_t len)
{
	struct gossip *g = c->g;
	return gossip_pack_tcp_seal(&c->wbuf, msg, len, NULL, false,
				    g_encrypted(g) ? &g->kr : NULL, 1);
}

/* Our push/pull message: header, all our states, no user state. */
static int g_build_push_pull(struct gossip *g, bool join, struct gossip_buf *out)
{
	size_t n = swim_local_state(g->swim, NULL, 0);
	struct swim_node_view *v = calloc(n + 1, sizeof(*v));
	struct gossip_push_node_state *ps = calloc(n + 1, sizeof(*ps));
	int r = -ENOMEM;
	if (!v || !ps)
		goto out;
	n = swim_local_state(g->swim, v, n);
	for (size_t i = 0; i < n; i++) {
		ps[i].name = gossip_str(v[i].name);
		ps[i].addr = (struct gossip_bytes){ v[i].addr.ip, v[i].addr.len };
		ps[i].port = v[i].addr.port;
		ps[i].meta = (struct gossip_bytes){ v[i].meta, v[i].meta_len };
		ps[i].incarnation = v[i].incarnation;
		ps[i].state = v[i].state;
		ps[i].vsn = (struct gossip_bytes){ v[i].vsn, v[i].vsn_len };
	}
	uint8_t *us = NULL;
	size_t ul = 0;
	if (g->del.local_state && g->del.local_state(g->del.arg, join, &us, &ul) < 0)
		ul = 0;
	r = gossip_encode_push_pull(out, join, ps, n, ul ? us : NULL, ul);
	free(us);
out:
	free(v);
	free(ps);
	return r;
}

/* Parses a push/pull body (after the [6] byte) and merges it. -ENODATA if
 * it is not complete yet. */
static int g_merge_push_pull(struct gossip *g, const uint8_t *p, size_t len,
			     bool *join, bool apply)
{
	struct gossip_push_pull_header h;
	size_t used, off = 0;
	int r = gossip_decode_push_pull_header(p, len, &h, &used);
	if (r < 0)
		return r;
	if (h.nodes > GOSSIP_PP_MAX_NODES)
		return -E2BIG;
	off = used;
	*join = h.join;
	struct swim_node_view *v = calloc((size_t)h.nodes + 1, sizeof(*v));
	char (*names)[SWIM_NAME_MAX + 1] = calloc((size_t)h.nodes + 1, sizeof(*names));
	size_t n = 0;
	if (!v || !names) {
		r = -ENOMEM;
		goto out;
	}
	for (int64_t i = 0; i < h.nodes; i++) {
		struct gossip_push_node_state s;
		r = gossip_decode_push_node_state(p + off, len - off, &s, &used);
		if (r < 0)
			goto out;
		off += used;
		if (name_copy(names[n], s.name) < 0 || s.meta.len > SWIM_META_MAX ||
		    bytes_to_addr(s.addr, s.port, &v[n].addr) < 0 ||
		    s.state < 0 || s.state > SWIM_LEFT)
			continue; /* skip a bad entry, keep the rest */
		v[n].name = names[n];
		v[n].meta = s.meta.p;
		v[n].meta_len = s.meta.len;
		v[n].incarnation = s.incarnation;
		v[n].state = (enum swim_state)s.state;
		v[n].vsn = s.vsn.p;
		v[n].vsn_len = s.vsn.len;
		n++;
	}
	if ((uint64_t)(len - off) < (uint64_t)h.user_state_len) {
		r = -ENODATA;
		goto out;
	}
	r = 0;
	if (apply) {
		r = swim_merge_remote_state(g->swim, v, n, now_mono_ns());
		if (h.user_state_len > 0 && g->del.merge_state)
			g->del.merge_state(g->del.arg, p + off, (size_t)h.user_state_len, h.join);
	}
out:
	free(v);
	free(names);
	return r;
}

/* Tries to make sense of the bytes read so far. Returns 1 when the
 * exchange is done (close ok), 0 to keep reading/writing, <0 on error. */
static int tc_process(struct tconn *c)
{
	struct gossip *g = c->g;
	const uint8_t *msg;
	size_t mlen, used;
	int r = gossip_pack_tcp_open(c->rbuf.data, c->rbuf.len, NULL,
				     g_encrypted(g) ? &g->kr : NULL, true,
				     &g->scratch, &msg, &mlen, &used);
	if (r == -ENODATA)
		return 0;
	if (r < 0)
		return r;
	if (mlen < 1)
		return -EBADMSG;
	bool join = false;
	switch (msg[0]) {
	case GOSSIP_PUSH_PULL:
		if (c->kind == TC_OUT_PING)
			return -EBADMSG;
		/* Check completeness first: a plaintext stream has no length. */
		r = g_merge_push_pull(g, msg + 1, mlen - 1, &join, false);
		if (r < 0)
			return r;
		if (c->kind == TC_IN) {
			struct gossip_buf out;
			gossip_buf_init(&out, 0);
			r = g_build_push_pull(g, join, &out);
			if (r == 0)
				r = tc_queue(c, out.data, out.len);
			gossip_buf_free(&out);
			if (r < 0)
				return r;
		}
		r = g_merge_push_pull(g, msg + 1, mlen - 1, &join, true);
		if (r < 0)
			log_warn("gossip, push/pull from %s not merged: %s", c->peer, strerror(-r));
		else
			log_debug("gossip, merged push/pull %s %s%s", c->kind == TC_IN ? "from" : "with",
				  c->peer, join ? " (join)" : "");
		if (c->kind == TC_IN) {
			c->replying = true;
			tc_set_events(c, EV_WRITE);
			return 0;
		}
		if (c->join)
			log_info("gossip, joined via %s", c->peer);
		return 1;
	case GOSSIP_PING: {
		struct gossip_ping p;
		r = gossip_decode_ping(msg + 1, mlen - 1, &p, NULL);
		if (r < 0)
			return r;
		if (c->kind != TC_IN)
			return -EBADMSG;
		char target[SWIM_NAME_MAX + 1];
		if (name_copy(target, p.node) < 0 || !swim_ping_accept(g->swim, target))
			return -EINVAL;
		struct gossip_buf out;
		struct gossip_ack a = { .seq_no = p.seq_no };
		gossip_buf_init(&out, 0);
		r = gossip_encode_ack(&out, &a);
		if (r == 0)
			r = tc_queue(c, out.data, out.len);
		gossip_buf_free(&out);
		if (r < 0)
			return r;
		c->replying = true;
		tc_set_events(c, EV_WRITE);
		return 0;
	}
	case GOSSIP_ACK: {
		struct gossip_ack a;
		r = gossip_decode_ack(msg + 1, mlen - 1, &a, NULL);
		if (r < 0)
			return r;
		if (c->kind != TC_OUT_PING || a.seq_no != c->seq)
			return -EBADMSG;
		return 1;
	}
	case GOSSIP_USER:
		/* Stream user messages (serf does not use them): ignored. */
		return c->kind == TC_IN ? 1 : -EBADMSG;
	case GOSSIP_ERR: {
		struct gossip_err e;
		if (gossip_decode_err(msg + 1, mlen - 1, &e, NULL) == 0)
			log_warn("gossip, %s says: %.*s", c->peer, (int)e.error.len,
				 (const char *)e.error.p);
		return -EPROTO;
	}
	default:
		return -EBADMSG;
	}
}

static void tc_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tconn *c = w->data;
	(void)loop;
	if (c->connecting && (revents & EV_WRITE)) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			log_info("gossip, connect to %s: %s", c->peer, strerror(err));
			tc_free(c, false);
			return;
		}
		c->connecting = false;
	}
	if (revents & EV_WRITE) {
		while (c->woff < c->wbuf.len) {
			ssize_t n = write(c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				tc_free(c, false);
				return;
			}
			c->woff += (size_t)n;
		}
		if (c->replying) {
			tc_free(c, true);
			return;
		}
		tc_set_events(c, EV_READ);
		return;
	}
	if (revents & EV_READ) {
		uint8_t tmp[16384];
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			tc_free(c, false);
			return;
		}
		if (n == 0) {
			log_debug("gossip, %s closed early", c->peer);
			tc_free(c, false);
			return;
		}
		if (c->replying)
			return;
		if (gossip_buf_append(&c->rbuf, tmp, (size_t)n) < 0) {
			log_warn("gossip, %s: message too large", c->peer);
			tc_free(c, false);
			return;
		}
		int r = tc_process(c);
		g_drain_events(c->g);
		struct gossip *g = c->g;
		if (r < 0) {
			log_info("gossip, dropping TCP exchange with %s: %s", c->peer, strerror(-r));
			tc_free(c, false);
		} else if (r == 1) {
			tc_free(c, true);
		}
		g_after(g);
	}
}

static void tc_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tconn *c = w->data;
	struct gossip *g = c->g;
	(void)loop;
	(void)revents;
	log_info("gossip, TCP exchange with %s timed out", c->peer);
	tc_free(c, false);
	g_after(g);
}

static struct tconn *tc_new(struct gossip *g, int fd, enum tconn_kind kind, double timeout)
{
	struct tconn *c = xcalloc(1, sizeof(*c));
	c->g = g;
	c->fd = fd;
	c->kind = kind;
	gossip_buf_init(&c->rbuf, GOSSIP_TCP_BUF_MAX);
	gossip_buf_init(&c->wbuf, GOSSIP_TCP_BUF_MAX);
	ev_io_init(&c->io, tc_io_cb, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->tm, tc_timeout_cb, timeout, 0);
	c->tm.data = c;
	ev_timer_start(g->loop, &c->tm);
	c->next = g->conns;
	if (g->conns)
		g->conns->prev = c;
	g->conns = c;
	g->n_conns++;
	return c;
}

/* Starts an outbound exchange: msg is sent, then a reply is awaited. */
static void tc_connect(struct gossip *g, const struct swim_addr *to, enum tconn_kind kind,
		       const uint8_t *msg, size_t len, uint32_t seq, bool join, int64_t deadline)
{
	struct sockaddr_in sin;
	int fd = -1;
	if (addr_to_sin(to, &sin) < 0 || g->n_conns >= GOSSIP_TCP_MAX_CONNS)
		goto fail;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS)
		goto fail;
	double tmo = (double)g->tcp_timeout / 1e9;
	if (deadline) {
		int64_t left = deadline - now_mono_ns();
		tmo = left > 0 ? (double)left / 1e9 : 0.001;
	}
	struct tconn *c = tc_new(g, fd, kind, tmo);
	c->seq = seq;
	c->join = join;
	c->connecting = true;
	addr_str(to, c->peer, sizeof(c->peer));
	if (tc_queue(c, msg, len) < 0) {
		tc_free(c, false);
		return;
	}
	g->st.tcp_out++;
	tc_set_events(c, EV_WRITE);
	return;
fail:
	if (fd >= 0)
		close(fd);
	g->st.tcp_bad++;
	if (kind == TC_OUT_PING)
		swim_on_tcp_ping_result(g->swim, seq, false, now_mono_ns());
}

static void tcp_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gossip *g = w->data;
	struct sockaddr_in sin;
	(void)loop;
	(void)revents;
	for (;;) {
		socklen_t sl = sizeof(sin);
		int fd = accept4(g->tcp_fd, (struct sockaddr *)&sin, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (g->n_conns >= GOSSIP_TCP_MAX_CONNS) {
			close(fd);
			g->st.tcp_bad++;
			continue;
		}
		struct tconn *c = tc_new(g, fd, TC_IN, (double)g->tcp_timeout / 1e9);
		struct swim_addr a;
		sin_to_addr(&sin, &a);
		addr_str(&a, c->peer, sizeof(c->peer));
		g->st.tcp_in++;
		ev_io_start(g->loop, &c->io);
	}
}

/* ---- UDP in ---- */

struct udp_ctx {
	struct gossip *g;
	struct swim_addr from;
	struct swim_actions *acts;
	int64_t now;
};

static int udp_leaf(void *arg, const uint8_t *p, size_t len)
{
	struct udp_ctx *u = arg;
	struct gossip *g = u->g;
	struct gossip_msg m;
	char a[SWIM_NAME_MAX + 1], b[SWIM_NAME_MAX + 1];
	int r = gossip_decode_msg(p, len, &m);
	if (r < 0) {
		log_debug("gossip, bad %s message: %s", gossip_type_name(p[0]), strerror(-r));
		g->st.udp_bad++;
		return 0; /* drop the leaf, keep the rest of the packet */
	}
	switch (m.type) {
	case GOSSIP_PING: {
		struct swim_addr to = u->from;
		if (name_copy(a, m.u.ping.node) < 0)
			break;
		if (!swim_ping_accept(g->swim, a))
			break;
		if (m.u.ping.source_addr.len)
			bytes_to_addr(m.u.ping.source_addr, m.u.ping.source_port, &to);
		g_send_ack(g, &to, m.u.ping.seq_no);
		break;
	}
	case GOSSIP_INDIRECT_PING: {
		struct gossip_indirect_ping *ip = &m.u.indirect_ping;
		struct swim_indirect_req req = { .seq = ip->seq_no, .nack = ip->nack };
		struct swim_addr from = u->from;
		if (name_copy(a, ip->node) < 0 || name_copy(b, ip->source_node) < 0 ||
		    bytes_to_addr(ip->target, ip->port, &req.target) < 0)
			goto bad;
		req.target_name = a;
		if (ip->source_addr.len)
			bytes_to_addr(ip->source_addr, ip->source_port, &from);
		swim_on_indirect_ping(g->swim, &req, &from, b[0] ? b : NULL, u->now, u->acts);
		break;
	}
	case GOSSIP_ACK:
		swim_on_ack(g->swim, m.u.ack.seq_no, u->now, u->acts);
		break;
	case GOSSIP_NACK:
		swim_on_nack(g->swim, m.u.nack.seq_no, u->now);
		break;
	case GOSSIP_ALIVE: {
		struct gossip_alive *al = &m.u.alive;
		struct swim_msg sm = { .type = SWIM_MSG_ALIVE, .incarnation = al->incarnation,
				       .node = a, .meta = al->meta.p, .meta_len = al->meta.len,
				       .vsn = al->vsn.p, .vsn_len = al->vsn.len };
		if (name_copy(a, al->node) < 0 || al->meta.len > SWIM_META_MAX ||
		    bytes_to_addr(al->addr, al->port, &sm.addr) < 0)
			goto bad;
		if (swim_on_msg(g->swim, &sm, u->now) < 0)
			goto bad;
		break;
	}
	case GOSSIP_SUSPECT:
	case GOSSIP_DEAD: {
		/* suspect and dead share their fields (gossip_wire.h) */
		uint32_t inc = m.type == GOSSIP_SUSPECT ? m.u.suspect.incarnation : m.u.dead.incarnation;
		struct gossip_bytes node = m.type == GOSSIP_SUSPECT ? m.u.suspect.node : m.u.dead.node;
		struct gossip_bytes from = m.type == GOSSIP_SUSPECT ? m.u.suspect.from : m.u.dead.from;
		struct swim_msg sm = { .type = m.type == GOSSIP_SUSPECT ? SWIM_MSG_SUSPECT : SWIM_MSG_DEAD,
				       .incarnation = inc, .node = a, .from = b };
		if (name_copy(a, node) < 0 || name_copy(b, from) < 0)
			goto bad;
		if (swim_on_msg(g->swim, &sm, u->now) < 0)
			goto bad;
		break;
	}
	case GOSSIP_USER:
		/* Ours from 0x80 up; serf's intents, events and queries below. */
		if (m.u.user.len >= 1 && m.u.user.p[0] >= 0x80 && g->del.on_user) {
			g->st.user_in++;
			if (g->del.on_user(g->del.arg, m.u.user.p, m.u.user.len) < 0)
				goto bad;
		} else {
			g->st.user_foreign++;
		}
		break;
	default:
		goto bad;
	}
	return 0;
bad:
	g->st.udp_bad++;
	return 0;
}

/* A packet none of our keys decrypts: the sender holds another gossip
 * key ring (one of us missed key rotations). Said in the log at most
 * every 10 s, since a node in that state gets such packets constantly. */
static void g_key_mismatch(struct gossip *g, const struct sockaddr_in *from)
{
	int64_t now = now_mono_ns();
	g->key_failures++;
	if (g->key_warned_ns && now - g->key_warned_ns < 10000000000LL)
		return;
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &from->sin_addr, a, sizeof(a));
	log_err("gossip, %llu packet(s), the last from %s, decrypt with none of our %zu key(s): "
		"the nodes do not share a gossip key (missed key rotations?)",
		(unsigned long long)g->key_failures, a, g->kr.n);
	g->key_warned_ns = now;
	g->key_failures = 0;
}

static void udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gossip *g = w->data;
	static uint8_t pkt[GOSSIP_UDP_RECV_MAX];
	(void)loop;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		ssize_t n = recvfrom(g->udp_fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&sin, &sl);
		if (n < 0)
			break;
		g->st.udp_in++;
		if (n < 1 || sin.sin_family != AF_INET) {
			g->st.udp_bad++;
			continue;
		}
		const uint8_t *msg;
		size_t mlen;
		struct gossip_buf scratch;
		gossip_buf_init(&scratch, 0);
		int r = gossip_pack_udp_open(pkt, (size_t)n, NULL, g_encrypted(g) ? &g->kr : NULL,
					     true, &scratch, &msg, &mlen);
		if (r == -EACCES)
			g_key_mismatch(g, &sin);
		if (r < 0 || mlen < 1) {
			g->st.udp_bad++;
			log_debug("gossip, dropped UDP packet: %s", strerror(-r));
			gossip_buf_free(&scratch);
			continue;
		}
		struct swim_actions acts;
		struct udp_ctx u = { .g = g, .acts = &acts, .now = now_mono_ns() };
		swim_actions_init(&acts);
		sin_to_addr(&sin, &u.from);
		r = gossip_pack_walk(msg, mlen, GOSSIP_UDP_MAX_DECOMPRESS, udp_leaf, &u);
		if (r < 0) {
			g->st.udp_bad++;
			log_debug("gossip, bad UDP packet layering: %s", strerror(-r));
		}
		gossip_buf_free(&scratch);
		g_run_actions(g, &acts);
		swim_actions_free(&acts);
	}
	g_after(g);
}

/* ---- actions and the tick ---- */

static void g_run_actions(struct gossip *g, struct swim_actions *acts)
{
	for (size_t i = 0; i < acts->n; i++) {
		struct swim_action *a = &acts->v[i];
		struct gossip_buf b;
		gossip_buf_init(&b, 0);
		switch (a->type) {
		case SWIM_ACT_PING: {
			struct gossip_ping p = {
				.seq_no = a->seq,
				.node = gossip_str(a->to_name),
				.source_addr = { g->self.ip, g->self.len },
				.source_port = g->self.port,
				.source_node = gossip_str(g->name),
			};
			if (gossip_encode_ping(&b, &p) < 0)
				break;
			if (!a->with_suspect) {
				g_send_piggy(g, &a->to, b.data, b.len);
				break;
			}
			size_t plen = b.len;
			struct gossip_suspect s = { a->suspect_inc, gossip_str(a->to_name),
						    gossip_str(g->name) };
			if (gossip_encode_suspect(&b, &s) < 0)
				break;
			struct gossip_bytes parts[2] = { { b.data, plen },
							 { b.data + plen, b.len - plen } };
			struct gossip_buf c;
			gossip_buf_init(&c, 0);
			if (gossip_pack_compound(&c, parts, 2) == 0)
				g_sendto(g, &a->to, c.data, c.len);
			gossip_buf_free(&c);
			break;
		}
		case SWIM_ACT_INDIRECT_PING: {
			struct gossip_indirect_ping p = {
				.seq_no = a->seq,
				.target = { a->target.ip, a->target.len },
				.port = a->target.port,
				.node = gossip_str(a->target_name),
				.nack = a->nack,
				.source_addr = { g->self.ip, g->self.len },
				.source_port = g->self.port,
				.source_node = gossip_str(g->name),
			};
			if (gossip_encode_indirect_ping(&b, &p) == 0)
				g_send_piggy(g, &a->to, b.data, b.len);
			break;
		}
		case SWIM_ACT_ACK:
			g_send_ack(g, &a->to, a->seq);
			break;
		case SWIM_ACT_NACK: {
			struct gossip_nack n = { a->seq };
			if (gossip_encode_nack(&b, &n) == 0)
				g_send_piggy(g, &a->to, b.data, b.len);
			break;
		}
		case SWIM_ACT_GOSSIP: {
			struct gossip_bytes parts[GOSSIP_COMPOUND_MAX];
			size_t n = 0;
			for (size_t j = 0; j < a->batch.n && n < GOSSIP_COMPOUND_MAX; j++)
				parts[n++] = (struct gossip_bytes){ a->batch.items[j].p,
								    a->batch.items[j].len };
			if (n == 1)
				g_sendto(g, &a->to, parts[0].p, parts[0].len);
			else if (n > 1 && gossip_pack_compound(&b, parts, n) == 0)
				g_sendto(g, &a->to, b.data, b.len);
			break;
		}
		case SWIM_ACT_TCP_PING: {
			struct gossip_ping p = { .seq_no = a->seq, .node = gossip_str(a->to_name) };
			if (gossip_encode_ping(&b, &p) == 0)
				tc_connect(g, &a->to, TC_OUT_PING, b.data, b.len, a->seq, false,
					   a->deadline);
			else
				swim_on_tcp_ping_result(g->swim, a->seq, false, now_mono_ns());
			break;
		}
		case SWIM_ACT_PUSH_PULL:
			if (g_build_push_pull(g, a->join, &b) == 0)
				tc_connect(g, &a->to, TC_OUT_PP, b.data, b.len, 0, a->join, 0);
			break;
		}
		gossip_buf_free(&b);
	}
	swim_actions_clear(acts);
}

/* Re-arms the tick for swim's next deadline (at most 1 s away). */
static void g_arm(struct gossip *g)
{
	int64_t now = now_mono_ns();
	int64_t dl = swim_next_deadline(g->swim);
	double d = dl > now ? (double)(dl - now) / 1e9 : 0.0;
	if (d > 1.0)
		d = 1.0;
	ev_timer_stop(g->loop, &g->tick);
	ev_timer_set(&g->tick, d, 0);
	ev_timer_start(g->loop, &g->tick);
}

/* After any input: events out, tick timer re-armed. */
static void g_after(struct gossip *g)
{
	g_drain_events(g);
	g_arm(g);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gossip *g = w->data;
	struct swim_actions acts;
	(void)loop;
	(void)revents;
	swim_actions_init(&acts);
	swim_tick(g->swim, now_mono_ns(), &acts);
	g_run_actions(g, &acts);
	swim_actions_free(&acts);
	g_after(g);
}

static void rejoin_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gossip *g = w->data;
	(void)loop;
	(void)revents;
	if (swim_num_alive(g->swim) > 1)
		return;
	struct swim_actions acts;
	swim_actions_init(&acts);
	for (size_t i = 0; i < g->n_seeds; i++)
		swim_join(g->swim, NULL, &g->seeds[i], now_mono_ns(), &acts);
	g_run_actions(g, &acts);
	swim_actions_free(&acts);
	g_after(g);
}

/* ---- setup ---- */

static int first_ipv4(uint8_t out[4])
{
	struct ifaddrs *ifa, *i;
	int r = -EADDRNOTAVAIL;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		struct sockaddr_in *s = (struct sockaddr_in *)i->ifa_addr;
		if ((ntohl(s->sin_addr.s_addr) >> 24) == 127)
			continue;
		memcpy(out, &s->sin_addr, 4);
		r = 0;
		break;
	}
	freeifaddrs(ifa);
	return r;
}

static int g_bind(struct gossip *g, const char *ip, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, rcv = 2 << 20;
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
		return -EINVAL;
	g->tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->tcp_fd < 0)
		return -errno;
	setsockopt(g->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(g->tcp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(g->tcp_fd, 128) < 0)
		return -errno;
	socklen_t sl = sizeof(sin);
	getsockname(g->tcp_fd, (struct sockaddr *)&sin, &sl);
	g->port = ntohs(sin.sin_port);
	g->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->udp_fd < 0)
		return -errno;
	setsockopt(g->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (bind(g->udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -errno;
	return 0;
}

struct gossip *gossip_new(struct ev_loop *loop, const struct gossip_cfg *cfg, int *err)
{
	static const uint8_t serf_vsn[SWIM_VSN_LEN] = { 1, 5, 2, 2, 5, 4 };
	static const uint8_t zero[SWIM_VSN_LEN];
	struct gossip *g = xcalloc(1, sizeof(*g));
	struct swim_config sc;
	const char *bind_ip = cfg->bind_addr && *cfg->bind_addr ? cfg->bind_addr : "0.0.0.0";
	int r = -EINVAL;

	g->loop = loop;
	g->udp_fd = g->tcp_fd = -1;
	gossip_buf_init(&g->scratch, 0);
	if (!cfg->node_name || !*cfg->node_name || strlen(cfg->node_name) > SWIM_NAME_MAX ||
	    cfg->meta_len > SWIM_META_MAX)
		goto fail;
	snprintf(g->name, sizeof(g->name), "%s", cfg->node_name);
	if (cfg->kr)
		g->kr = *cfg->kr;
	if (cfg->del)
		g->del = *cfg->del;
	g->overhead = g_encrypted(g) ? gossip_crypto_sealed_len(1, 0) : 0;
	g->tcp_timeout = cfg->tcp_timeout > 0 ? cfg->tcp_timeout : 10 * 1000000000LL;
	r = g_bind(g, bind_ip, cfg->bind_port);
	if (r < 0) {
		log_err("gossip, cannot bind %s:%u: %s", bind_ip, cfg->bind_port, strerror(-r));
		goto fail;
	}

	g->self.len = 4;
	g->self.port = cfg->advertise_port ? cfg->advertise_port : g->port;
	const char *adv = cfg->advertise_addr && *cfg->advertise_addr ? cfg->advertise_addr : NULL;
	if (!adv && strcmp(bind_ip, "0.0.0.0") != 0)
		adv = bind_ip;
	if (adv) {
		if (inet_pton(AF_INET, adv, g->self.ip) != 1) {
			r = -EINVAL;
			goto fail;
		}
	} else if ((r = first_ipv4(g->self.ip)) < 0) {
		log_err("gossip, no address to advertise; set advertise_addr");
		goto fail;
	}

	if (cfg->swim)
		sc = *cfg->swim;
	else
		swim_config_lan(&sc);
	sc.encode = g_encode;
	sc.ctx = g;
	sc.packet_overhead = g->overhead + 5;
	sc.self_addr = g->self;
	sc.self_meta = cfg->meta;
	sc.self_meta_len = cfg->meta_len;
	memcpy(sc.self_vsn, memcmp(cfg->vsn, zero, SWIM_VSN_LEN) ? cfg->vsn : serf_vsn,
	       SWIM_VSN_LEN);
	random_bytes(&sc.seed, sizeof(sc.seed));
	g->swim = swim_new(&sc, g->name, now_mono_ns());
	if (!g->swim) {
		r = -errno;
		goto fail;
	}

	ev_io_init(&g->udp_io, udp_read_cb, g->udp_fd, EV_READ);
	g->udp_io.data = g;
	ev_io_start(loop, &g->udp_io);
	ev_io_init(&g->tcp_io, tcp_accept_cb, g->tcp_fd, EV_READ);
	g->tcp_io.data = g;
	ev_io_start(loop, &g->tcp_io);
	ev_timer_init(&g->tick, tick_cb, 0, 0);
	g->tick.data = g;
	ev_timer_init(&g->rejoin, rejoin_cb, GOSSIP_REJOIN_NS / 1e9, GOSSIP_REJOIN_NS / 1e9);
	g->rejoin.data = g;
	g_after(g);
	char a[80];
	addr_str(&g->self, a, sizeof(a));
	log_info("gossip, %s listening on %s:%u, advertising %s%s", g->name, bind_ip, g->port, a,
		 g_encrypted(g) ? ", encrypted" : "");
	return g;
fail:
	*err = r < 0 ? r : -EINVAL;
	gossip_free(g);
	return NULL;
}

void gossip_set_keyring(struct gossip *g, const struct gossip_keyring *kr)
{
	gossip_keyring_clear(&g->kr);
	if (kr)
		g->kr = *kr;
}

void gossip_free(struct gossip *g)
{
	if (!g)
		return;
	while (g->conns) {
		struct tconn *c = g->conns;
		c->kind = TC_IN; /* no result callback into a dying swim */
		tc_free(c, true);
	}
	if (g->loop) {
		ev_io_stop(g->loop, &g->udp_io);
		ev_io_stop(g->loop, &g->tcp_io);
		ev_timer_stop(g->loop, &g->tick);
		ev_timer_stop(g->loop, &g->rejoin);
	}
	if (g->udp_fd >= 0)
		close(g->udp_fd);
	if (g->tcp_fd >= 0)
		close(g->tcp_fd);
	swim_free(g->swim);
	gossip_buf_free(&g->scratch);
	gossip_keyring_clear(&g->kr);
	free(g);
}

int gossip_join(struct gossip *g, const char *seed)
{
	char ip[16];
	uint16_t port = g->port;
	struct swim_addr a = { .len = 4 };
	if (hostport_parse(seed, ip, &port) < 0 || inet_pton(AF_INET, ip, a.ip) != 1)
		return -EINVAL;
	a.port = port;
	if (a.port == g->self.port && !memcmp(a.ip, g->self.ip, 4))
		return 0; /* ourselves: nothing to learn */
	if (g->n_seeds < GOSSIP_SEEDS_MAX)
		g->seeds[g->n_seeds++] = a;
	if (!ev_is_active(&g->rejoin))
		ev_timer_start(g->loop, &g->rejoin);
	struct swim_actions acts;
	swim_actions_init(&acts);
	swim_join(g->swim, NULL, &a, now_mono_ns(), &acts);
	g_run_actions(g, &acts);
	swim_actions_free(&acts);
	g_after(g);
	return 0;
}

int gossip_broadcast_user(struct gossip *g, const char *name,
			  const uint8_t *payload, size_t len)
{
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	int r = len < 1 || payload[0] < 0x80 ? -EINVAL
		: gossip_encode_user_packet(&b, payload, len);
	if (r == 0)
		r = swim_queue_broadcast(g->swim, name, b.data, b.len);
	gossip_buf_free(&b);
	/* swim's deadline skips gossip rounds while its queue is empty, so
	 * the tick may be up to a probe interval away: bring it to the next
	 * round. Only the timer: no event drain from inside a delegate call. */
	if (r == 0)
		g_arm(g);
	return r;
}

int gossip_push_pull_with(struct gossip *g, const char *name)
{
	struct swim_node_view v;
	if (swim_node_get(g->swim, name, &v) < 0 || v.state != SWIM_ALIVE ||
	    !strcmp(name, g->name))
		return -ENOENT;
	struct swim_addr to = v.addr;
	struct gossip_buf b;
	gossip_buf_init(&b, 0);
	int r = g_build_push_pull(g, false, &b);
	if (r == 0)
		tc_connect(g, &to, TC_OUT_PP, b.data, b.len, 0, false, 0);
	gossip_buf_free(&b);
	return r;
}

char *gossip_members_json(struct gossip *g)
{
	static const char *const st[] = { "alive", "suspect", "dead", "left" };
	size_t n = swim_local_state(g->swim, NULL, 0);
	struct swim_node_view *v = xcalloc(n + 1, sizeof(*v));
	n = swim_local_state(g->swim, v, n);
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		char ip[INET6_ADDRSTRLEN] = "";
		if (v[i].addr.len == 4)
			inet_ntop(AF_INET, v[i].addr.ip, ip, sizeof(ip));
		else if (v[i].addr.len == 16)
			inet_ntop(AF_INET6, v[i].addr.ip, ip, sizeof(ip));
		json_object_object_add(o, "Name", json_object_new_string(v[i].name));
		json_object_object_add(o, "Addr", json_object_new_string(ip));
		json_object_object_add(o, "Port", json_object_new_int(v[i].addr.port));
		json_object_object_add(o, "Status",
				       json_object_new_string(v[i].state <= SWIM_LEFT ? st[v[i].state] : "?"));
		json_object_array_add(arr, o);
	}
	char *s = xstrdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
	json_object_put(arr);
	free(v);
	return s;
}

uint16_t gossip_port(const struct gossip *g)
{
	return g->port;
}

const struct gossip_stats *gossip_stats(const struct gossip *g)
{
	return &g->st;
}

struct swim *gossip_swim(struct gossip *g)
{
	return g->swim;
}
