/* Sandboxes and their queries: 127.0.0.11:53 udp+tcp opened inside each
 * task's netns, answered from the name index or forwarded.
 *
 * A socket belongs to the namespace it was made in, so the thread enters
 * the sandbox's netns only to make and bind the two sockets, then returns;
 * everything else (the loop, upstream sockets) stays in dnsd's namespace.
 * Sandboxes and TCP connections are reference counted: a forwarded query
 * holds its sandbox (and connection) until its answer is handled, so a
 * sandbox removed meanwhile just drops the late answer. */
#include "dnsd.h"

#include "log.h"
#include "pb.h"
#include "strmap.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNSD_ADDR "127.0.0.11"
#define DNSD_PORT 53
#define TCP_IDLE 10.0
#define TCP_MAX_CONNS 64     /* per sandbox */

struct sbx {
	struct dnsd *d;
	Swarm__DnsdSandbox *spec;
	struct names_scope scope;
	int ufd, tfd;
	ev_io uio, tio;
	int refs;
	bool gone;
	unsigned n_tcp;
};

struct tconn {
	struct sbx *sb;
	int fd;
	ev_io io;
	ev_timer idle;
	uint8_t rbuf[2 + DNS_TCP_MAX];
	size_t rlen;
	int refs;
	bool gone;
};

struct pend {
	struct sbx *sb;
	struct tconn *tc;          /* NULL: udp */
	struct sockaddr_in peer;
	uint16_t id;
	size_t limit;
};

static void sbx_unref(struct sbx *sb)
{
	if (--sb->refs > 0)
		return;
	pb_free(sb->spec);
	free(sb);
}

static void tc_unref(struct tconn *tc)
{
	if (--tc->refs > 0)
		return;
	sbx_unref(tc->sb);
	free(tc);
}

static void tc_close(struct tconn *tc)
{
	if (tc->gone)
		return;
	tc->gone = true;
	ev_io_stop(tc->sb->d->loop, &tc->io);
	ev_timer_stop(tc->sb->d->loop, &tc->idle);
	close(tc->fd);
	tc->sb->n_tcp--;
	tc_unref(tc);
}

/* ---- answering ---- */

static void send_udp(struct sbx *sb, const struct sockaddr_in *to, const uint8_t *p, size_t n)
{
	if (sb->gone)
		return;
	if (sendto(sb->ufd, p, n, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof(*to)) < 0)
		log_debug("dnsd, reply to %s: %s", sb->spec->task_id, strerror(errno));
}

static void send_tcp(struct tconn *tc, uint8_t *p, size_t n)
{
	uint8_t hdr[2];
	if (tc->gone)
		return;
	dns_tcp_put_len(hdr, n);
	struct iovec iov[2] = { { hdr, 2 }, { p, n } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	/* answers are small and the client reads them: a full socket
	 * buffer means a client that does not, which loses its connection */
	ssize_t w = sendmsg(tc->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w != (ssize_t)(n + 2))
		tc_close(tc);
}

static void fwd_done(void *arg, const uint8_t *answer, size_t len)
{
	struct pend *p = arg;
	struct dnsd *d = p->sb->d;
	uint8_t buf[DNS_TCP_MAX];
	if (answer && len <= sizeof(buf)) {
		memcpy(buf, answer, len);
		dns_set_id(buf, len, p->id);
	} else {
		/* nobody answered: SERVFAIL built from the header we kept */
		struct dns_query q;
		memset(&q, 0, sizeof(q));
		q.id = p->id;
		q.rd = true;
		int n = dns_write_reply(&q, DNS_RCODE_SERVFAIL, false, buf, sizeof(buf), p->limit);
		d->st.fwd_failed++;
		len = n > 0 ? (size_t)n : 0;
	}
	if (len) {
		if (p->tc)
			send_tcp(p->tc, buf, len);
		else
			send_udp(p->sb, &p->peer, buf, len);
	}
	if (p->tc)
		tc_unref(p->tc);
	sbx_unref(p->sb);
	free(p);
}

/* Builds the reply to one query into out; returns its length, 0 when
 * nothing is to be sent now (dropped, or forwarded: the answer comes in
 * fwd_done). */
static size_t handle_query(struct sbx *sb, struct tconn *tc, const struct sockaddr_in *peer,
			   const uint8_t *pkt, size_t n, uint8_t *out, size_t cap)
{
	struct dnsd *d = sb->d;
	struct dns_query q;
	d->st.queries++;
	int rc = dns_parse_query(pkt, n, &q);
	if (rc < 0) {
		d->st.dropped++;
		return 0;
	}
	size_t limit = tc ? DNS_TCP_MAX : dns_udp_limit(&q, DNS_EDNS_UDP_MAX);
	if (rc != DNS_RCODE_NOERROR) {
		if (rc == DNS_RCODE_FORMERR)
			d->st.formerr++;
		int w = dns_write_reply(&q, (unsigned)rc, false, out, cap, limit);
		return w > 0 ? (size_t)w : 0;
	}
	bool local = q.qclass == DNS_CLASS_IN;
	struct names_answer *ans = NULL;
	static struct names_answer ansbuf;
	char ptr[NAMES_NAME_MAX + 1];
	uint8_t ip4[4];
	if (local && q.qtype == DNS_TYPE_PTR && dns_ptr_ipv4(q.qname, ip4) == 0) {
		struct in_addr a;
		memcpy(&a, ip4, 4);
		if (names_ptr(d->names, &sb->scope, a, ptr, sizeof(ptr))) {
			struct dns_resp r;
			if (dns_resp_begin(&r, &q, out, cap, limit, DNS_RCODE_NOERROR, true) < 0)
				return 0;
			dns_resp_add_ptr(&r, d->task_ttl, ptr);
			d->st.answered_local++;
			return dns_resp_finish(&r);
		}
	} else if (local) {
		ans = &ansbuf;
		names_lookup(d->names, &sb->scope, q.qname, d->seed++, ans);
		if (ans->kind == NAMES_UNKNOWN)
			ans = NULL;
	}
	if (ans) {
		/* ours: addresses for A (and ANY), NODATA for any other type */
		struct dns_resp r;
		uint32_t ttl = ans->kind == NAMES_VIP ? d->vip_ttl : d->task_ttl;
		if (dns_resp_begin(&r, &q, out, cap, limit, DNS_RCODE_NOERROR, true) < 0)
			return 0;
		if (q.qtype == DNS_TYPE_A || q.qtype == DNS_TYPE_ANY)
			for (size_t i = 0; i < ans->n; i++)
				if (dns_resp_add_a(&r, ttl, (const uint8_t *)&ans->addrs[i]) < 0)
					break;
		if (r.ancount == 0)
			d->st.nodata++;
		d->st.answered_local++;
		return dns_resp_finish(&r);
	}
	/* not ours: upstream */
	struct pend *p = xcalloc(1, sizeof(*p));
	p->sb = sb;
	sb->refs++;
	if (tc) {
		p->tc = tc;
		tc->refs++;
	} else {
		p->peer = *peer;
	}
	p->id = q.id;
	p->limit = limit;
	if (fwd_query(d->fwd, tc != NULL, pkt, n, fwd_done, p) < 0) {
		static int64_t last_log;
		int64_t now = now_mono_ns();
		if (now - last_log > 2000000000LL) {
			log_warn("dnsd, %u queries in flight upstream: refusing", fwd_inflight(d->fwd));
			last_log = now;
		}
		if (p->tc)
			tc_unref(p->tc);
		sbx_unref(p->sb);
		free(p);
		d->st.refused++;
		int w = dns_write_reply(&q, DNS_RCODE_REFUSED, false, out, cap, limit);
		return w > 0 ? (size_t)w : 0;
	}
	d->st.forwarded++;
	return 0;
}

static void udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sbx *sb = w->data;
	uint8_t pkt[DNS_TCP_MAX], out[DNS_EDNS_UDP_MAX + 64];
	(void)loop;
	(void)revents;
	for (int i = 0; i < 64 && !sb->gone; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(sb->ufd, pkt, sizeof(pkt), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		size_t len = handle_query(sb, NULL, &from, pkt, (size_t)n, out, sizeof(out));
		if (len)
			send_udp(sb, &from, out, len);
	}
}

static void tc_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tconn *tc = w->data;
	static uint8_t out[DNS_TCP_MAX];
	(void)revents;
	ssize_t n = read(tc->fd, tc->rbuf + tc->rlen, sizeof(tc->rbuf) - tc->rlen);
	if (n <= 0) {
		tc_close(tc);
		return;
	}
	tc->rlen += (size_t)n;
	ev_timer_again(loop, &tc->idle);
	tc->refs++; /* the connection may close while we answer */
	for (;;) {
		const uint8_t *msg;
		size_t mlen, used = dns_tcp_next(tc->rbuf, tc->rlen, &msg, &mlen);
		if (!used || tc->gone)
			break;
		size_t len = handle_query(tc->sb, tc, NULL, msg, mlen, out, sizeof(out));
		memmove(tc->rbuf, tc->rbuf + used, tc->rlen - used);
		tc->rlen -= used;
		if (len)
			send_tcp(tc, out, len);
	}
	tc_unref(tc);
}

static void tc_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	tc_close(w->data);
}

static void tcp_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sbx *sb = w->data;
	(void)revents;
	int fd = accept4(sb->tfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (sb->n_tcp >= TCP_MAX_CONNS) {
		close(fd);
		return;
	}
	struct tconn *tc = xcalloc(1, sizeof(*tc));
	tc->sb = sb;
	sb->refs++;
	sb->n_tcp++;
	tc->fd = fd;
	tc->refs = 1;
	sb->d->st.tcp_conns++;
	ev_io_init(&tc->io, tc_read_cb, fd, EV_READ);
	tc->io.data = tc;
	ev_io_start(loop, &tc->io);
	ev_timer_init(&tc->idle, tc_idle_cb, TCP_IDLE, TCP_IDLE);
	tc->idle.data = tc;
	ev_timer_again(loop, &tc->idle);
}

/* ---- sockets in the sandbox ---- */

static int open_in_netns(const char *netns, int *ufd, int *tfd)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int target = open(netns, O_RDONLY | O_CLOEXEC);
	int r = 0, one = 1;
	*ufd = *tfd = -1;
	if (self < 0 || target < 0) {
		r = -errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		r = -errno;
		goto out;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(DNSD_PORT) };
	inet_pton(AF_INET, DNSD_ADDR, &sin.sin_addr);
	*ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	*tfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (*ufd < 0 || *tfd < 0)
		r = -errno;
	if (r == 0) {
		setsockopt(*tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(*ufd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    bind(*tfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(*tfd, 64) < 0)
			r = -errno;
	}
	/* back home whatever happened; a failure to return is fatal */
	if (setns(self, CLONE_NEWNET) < 0) {
		log_err("dnsd, cannot return to our own netns: %s", strerror(errno));
		abort();
	}
out:
	if (r < 0) {
		if (*ufd >= 0)
			close(*ufd);
		if (*tfd >= 0)
			close(*tfd);
		*ufd = *tfd = -1;
	}
	if (self >= 0)
		close(self);
	if (target >= 0)
		close(target);
	return r;
}

static void sbx_close(struct sbx *sb)
{
	if (sb->gone)
		return;
	sb->gone = true;
	ev_io_stop(sb->d->loop, &sb->uio);
	ev_io_stop(sb->d->loop, &sb->tio);
	close(sb->ufd);
	close(sb->tfd);
	sbx_unref(sb);
}

int dnsd_sandbox_add(struct dnsd *d, const Swarm__DnsdSandbox *s, const char **err)
{
	if (!s->task_id[0] || s->netns[0] != '/') {
		*err = "task_id and an absolute netns path are required";
		return -EINVAL;
	}
	if (s->n_network_ids != s->n_network_names) {
		*err = "one name per network id";
		return -EINVAL;
	}
	struct sbx *old = strmap_get(d->sandboxes, s->task_id);
	if (old && !strcmp(old->spec->netns, s->netns)) {
		/* same sandbox, new networks: keep the sockets */
		pb_free(old->spec);
		old->spec = pb_dup(s);
		old->scope.net_ids = (const char *const *)old->spec->network_ids;
		old->scope.net_names = (const char *const *)old->spec->network_names;
		old->scope.n = old->spec->n_network_ids;
		dnsd_save_soon(d);
		return 0;
	}
	struct sbx *sb = xcalloc(1, sizeof(*sb));
	int r = open_in_netns(s->netns, &sb->ufd, &sb->tfd);
	if (r < 0) {
		log_warn("dnsd, cannot listen on %s:53 in %s: %s", DNSD_ADDR, s->netns, strerror(-r));
		free(sb);
		*err = "cannot open 127.0.0.11:53 in the sandbox";
		return r;
	}
	sb->d = d;
	sb->refs = 1;
	sb->spec = pb_dup(s);
	sb->scope.net_ids = (const char *const *)sb->spec->network_ids;
	sb->scope.net_names = (const char *const *)sb->spec->network_names;
	sb->scope.n = sb->spec->n_network_ids;
	ev_io_init(&sb->uio, udp_cb, sb->ufd, EV_READ);
	sb->uio.data = sb;
	ev_io_start(d->loop, &sb->uio);
	ev_io_init(&sb->tio, tcp_accept_cb, sb->tfd, EV_READ);
	sb->tio.data = sb;
	ev_io_start(d->loop, &sb->tio);
	if (old)
		sbx_close(strmap_del(d->sandboxes, s->task_id));
	strmap_put(d->sandboxes, s->task_id, sb);
	log_debug("dnsd, serving sandbox %s (%zu networks)", s->task_id, sb->scope.n);
	dnsd_save_soon(d);
	return 0;
}

void dnsd_sandbox_remove(struct dnsd *d, const char *task_id)
{
	struct sbx *sb = strmap_del(d->sandboxes, task_id);
	if (!sb)
		return;
	sbx_close(sb);
	dnsd_save_soon(d);
}

void dnsd_sandboxes_free(struct dnsd *d)
{
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(d->sandboxes, &pos, &k, &v))
		sbx_close(v);
	strmap_free(d->sandboxes);
	d->sandboxes = NULL;
}

/* ---- persistence: the sandboxes, so a restarted dnsd serves them again
 * without the agent ---- */

void dnsd_save(struct dnsd *d)
{
	Swarm__DnsdState st = SWARM__DNSD_STATE__INIT;
	size_t n = strmap_count(d->sandboxes), i = 0, pos = 0;
	const char *k;
	void *v;
	st.sandboxes = xcalloc(n + 1, sizeof(*st.sandboxes));
	while (strmap_next(d->sandboxes, &pos, &k, &v))
		st.sandboxes[i++] = ((struct sbx *)v)->spec;
	st.n_sandboxes = i;
	size_t len;
	uint8_t *buf = pb_pack(&st, &len);
	char *path = xasprintf("%s/dnsd.state", d->state_dir);
	int r = file_write_atomic(path, buf, len, 0600);
	if (r < 0)
		log_err("dnsd, cannot save %s: %s", path, strerror(-r));
	free(path);
	free(buf);
	free(st.sandboxes);
}

static void save_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	dnsd_save(w->data);
}

/* One write for a burst of adds and removes (the file holds them all);
 * what a crash loses in between, the agent sends again on reconnect. */
void dnsd_save_soon(struct dnsd *d)
{
	if (!ev_is_active(&d->save_t)) {
		ev_timer_init(&d->save_t, save_cb, 0.2, 0);
		d->save_t.data = d;
		ev_timer_start(d->loop, &d->save_t);
	}
}

void dnsd_load(struct dnsd *d)
{
	char *path = xasprintf("%s/dnsd.state", d->state_dir), *buf = NULL;
	size_t len;
	if (file_read_all(path, 64u << 20, &buf, &len) == 0) {
		Swarm__DnsdState *st = swarm__dnsd_state__unpack(NULL, len, (uint8_t *)buf);
		for (size_t i = 0; st && i < st->n_sandboxes; i++) {
			const char *err;
			/* a sandbox whose task ended while we were away is gone */
			if (access(st->sandboxes[i]->netns, F_OK) == 0)
				dnsd_sandbox_add(d, st->sandboxes[i], &err);
		}
		if (st)
			log_info("dnsd, serving %zu sandbox(es) again", strmap_count(d->sandboxes));
		else
			log_err("dnsd, %s is corrupt; waiting for the agent", path);
		swarm__dnsd_state__free_unpacked(st, NULL);
	}
	free(buf);
	free(path);
}
