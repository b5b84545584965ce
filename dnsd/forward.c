/* Forwarding to the node's upstream resolvers with c-ares on libev.
 *
 * Two channels: UDP (ARES_FLAG_IGNTC, so a truncated upstream answer goes
 * to the client as it is and the client retries over TCP, to us) and TCP
 * (ARES_FLAG_USEVC) for queries that came over TCP. Each server gets
 * timeout_ms, then the next one (c-ares' own failover; SERVFAIL and
 * REFUSED also move on); none answering gives done(NULL). c-ares picks a
 * fresh query id upstream; the caller puts the client's id back. */
#include "dnsd.h"

#include "log.h"
#include "util.h"

#include <ares.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FWD_MAX_SOCKS 64

struct fwd_sock {
	int fd;
	ev_io io;
	struct fwd_chan *ch;
};

struct fwd_chan {
	struct fwd *f;
	ares_channel ch;
	struct fwd_sock socks[FWD_MAX_SOCKS];
	ev_timer tm;
};

struct fwd {
	struct ev_loop *loop;
	struct fwd_chan udp, tcp;
	unsigned inflight, max_inflight;
};

struct fwd_req {
	struct fwd *f;
	fwd_done_fn done;
	void *arg;
};

static void chan_rearm(struct fwd_chan *c)
{
	struct timeval tv, *tp = ares_timeout(c->ch, NULL, &tv);
	ev_timer_stop(c->f->loop, &c->tm);
	if (!tp)
		return;
	ev_timer_set(&c->tm, (double)tp->tv_sec + (double)tp->tv_usec / 1e6 + 0.001, 0);
	ev_timer_start(c->f->loop, &c->tm);
}

static void sock_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fwd_sock *s = w->data;
	struct fwd_chan *c = s->ch;
	(void)loop;
	ares_process_fd(c->ch, revents & EV_READ ? s->fd : ARES_SOCKET_BAD,
			revents & EV_WRITE ? s->fd : ARES_SOCKET_BAD);
	chan_rearm(c);
}

static void tm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fwd_chan *c = w->data;
	(void)loop;
	(void)revents;
	ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	chan_rearm(c);
}

/* c-ares tells us which sockets to watch. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct fwd_chan *c = data;
	struct fwd_sock *s = NULL, *free_slot = NULL;
	for (int i = 0; i < FWD_MAX_SOCKS; i++) {
		if (c->socks[i].fd == fd)
			s = &c->socks[i];
		else if (!free_slot && c->socks[i].fd < 0)
			free_slot = &c->socks[i];
	}
	if (!readable && !writable) {
		if (s) {
			ev_io_stop(c->f->loop, &s->io);
			s->fd = -1;
		}
		return;
	}
	if (!s) {
		if (!free_slot) {
			log_err("dnsd, more than %d upstream sockets", FWD_MAX_SOCKS);
			return;
		}
		s = free_slot;
		s->fd = fd;
		s->ch = c;
		ev_io_init(&s->io, sock_cb, fd, 0);
		s->io.data = s;
	}
	ev_io_stop(c->f->loop, &s->io);
	ev_io_set(&s->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	ev_io_start(c->f->loop, &s->io);
}

static int chan_init(struct fwd *f, struct fwd_chan *c, const char *servers, int timeout_ms,
		     int flags)
{
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	c->f = f;
	for (int i = 0; i < FWD_MAX_SOCKS; i++)
		c->socks[i].fd = -1;
	o.flags = flags | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = timeout_ms;
	o.tries = 1;
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = c;
	int r = ares_init_options(&c->ch, &o,
				  ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				  ARES_OPT_SOCK_STATE_CB);
	if (r != ARES_SUCCESS) {
		log_err("dnsd, c-ares: %s", ares_strerror(r));
		return -ENOMEM;
	}
	if (servers && *servers && (r = ares_set_servers_ports_csv(c->ch, servers)) != ARES_SUCCESS) {
		log_err("dnsd, bad upstream list '%s': %s", servers, ares_strerror(r));
		return -EINVAL;
	}
	ev_timer_init(&c->tm, tm_cb, 0, 0);
	c->tm.data = c;
	return 0;
}

static void chan_fini(struct fwd_chan *c)
{
	if (!c->ch)
		return;
	ares_destroy(c->ch); /* runs the callbacks of queries in flight */
	c->ch = NULL;
	ev_timer_stop(c->f->loop, &c->tm);
	for (int i = 0; i < FWD_MAX_SOCKS; i++)
		if (c->socks[i].fd >= 0)
			ev_io_stop(c->f->loop, &c->socks[i].io);
}

struct fwd *fwd_new(struct ev_loop *loop, const char *servers, int timeout_ms,
		    unsigned max_inflight, int *err)
{
	static bool lib_ready;
	if (!lib_ready && ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS)
		lib_ready = true;
	struct fwd *f = xcalloc(1, sizeof(*f));
	f->loop = loop;
	f->max_inflight = max_inflight ? max_inflight : 1024;
	int r = chan_init(f, &f->udp, servers, timeout_ms, ARES_FLAG_IGNTC);
	if (r == 0)
		r = chan_init(f, &f->tcp, servers, timeout_ms, ARES_FLAG_USEVC);
	if (r < 0) {
		*err = r;
		fwd_free(f);
		return NULL;
	}
	return f;
}

void fwd_free(struct fwd *f)
{
	if (!f)
		return;
	chan_fini(&f->udp);
	chan_fini(&f->tcp);
	free(f);
}

static void answer_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct fwd_req *q = arg;
	(void)timeouts;
	q->f->inflight--;
	if (status == ARES_SUCCESS && abuf && alen >= DNS_HEADER_LEN)
		q->done(q->arg, abuf, (size_t)alen);
	else
		q->done(q->arg, NULL, 0);
	free(q);
}

int fwd_query(struct fwd *f, bool tcp, const uint8_t *query, size_t len, fwd_done_fn done,
	      void *arg)
{
	if (f->inflight >= f->max_inflight)
		return -EBUSY;
	struct fwd_req *q = xmalloc(sizeof(*q));
	q->f = f;
	q->done = done;
	q->arg = arg;
	f->inflight++;
	struct fwd_chan *c = tcp ? &f->tcp : &f->udp;
	ares_send(c->ch, query, (int)len, answer_cb, q);
	chan_rearm(c);
	return 0;
}

unsigned fwd_inflight(const struct fwd *f)
{
	return f ? f->inflight : 0;
}
