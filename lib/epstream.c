/* netd's endpoint stream for subscribers (see epstream.h). */
#include "epstream.h"

#include "conn.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EPS_MAX_FRAME (16u << 20)
#define EPS_RETRY 1.0

struct epstream {
	struct ev_loop *loop;
	char *path, *who;
	const struct epstream_ops *ops;
	void *arg;
	struct conn *c;
	ev_timer retry;
	bool in_snapshot;
};

static int eps_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct epstream *s = conn_data(c);
	Swarm__NetdResponse *r = swarm__netd_response__unpack(NULL, len, p);
	if (!r) {
		log_warn("%s, undecodable frame on netd's stream", s->who);
		return -EBADMSG;
	}
	Swarm__EndpointEvent *e = r->event;
	if (!e) {
		if (r->error[0])
			log_warn("%s, netd refused the subscription: %s", s->who, r->error);
	} else if (e->snapshot_begin) {
		s->in_snapshot = true;
		s->ops->begin(s->arg, e->epoch);
	} else if (e->snapshot_end) {
		s->in_snapshot = false;
		s->ops->end(s->arg);
	} else if (e->record) {
		s->ops->record(s->arg, e->record, e->deleted);
	}
	swarm__netd_response__free_unpacked(r, NULL);
	return 0;
}

static void eps_close(struct conn *c, int err)
{
	struct epstream *s = conn_data(c);
	(void)err;
	if (s->c != c)
		return;
	s->c = NULL;
	s->in_snapshot = false;
	log_warn("%s, netd's stream closed; serving what we have", s->who);
	s->ops->lost(s->arg);
}

static const struct conn_ops eps_ops = { .on_frame = eps_frame, .on_close = eps_close };

static void eps_connect(struct epstream *s)
{
	s->c = conn_connect_unix(s->loop, s->path, EPS_MAX_FRAME, &eps_ops, s);
	if (!s->c)
		return;
	conn_set_peer_name(s->c, "swarm-netd");
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdSubscribe sub = SWARM__NETD_SUBSCRIBE__INIT;
	q.id = 1;
	q.body_case = SWARM__NETD_REQUEST__BODY_SUBSCRIBE;
	q.subscribe = &sub;
	conn_send_msg(s->c, &q.base);
}

static void eps_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct epstream *s = w->data;
	(void)loop;
	(void)revents;
	if (!s->c)
		eps_connect(s);
}

struct epstream *epstream_start(struct ev_loop *loop, const char *run_dir, const char *who,
				const struct epstream_ops *ops, void *arg)
{
	struct epstream *s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->path = xasprintf("%s/netd.sock", run_dir);
	s->who = xstrdup(who);
	s->ops = ops;
	s->arg = arg;
	ev_timer_init(&s->retry, eps_retry, EPS_RETRY, EPS_RETRY);
	s->retry.data = s;
	ev_timer_start(loop, &s->retry);
	eps_connect(s);
	return s;
}

bool epstream_connected(const struct epstream *s)
{
	return s && s->c;
}

void epstream_stop(struct epstream *s)
{
	if (!s)
		return;
	ev_timer_stop(s->loop, &s->retry);
	if (s->c) {
		struct conn *c = s->c;
		s->c = NULL;
		conn_close(c, 0);
	}
	free(s->path);
	free(s->who);
	free(s);
}
