/* netd's endpoint stream into the name index. A snapshot (begin, records,
 * end) is collected aside and replaces the index whole at its end, so
 * queries never see half a snapshot; deltas apply at once. Reconnects
 * every second while netd is away, answering from what it has. */
#include "dnsd.h"

#include "conn.h"
#include "log.h"
#include "netd.pb-c.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_MAX_FRAME (16u << 20)

static int st_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct dnsd *d = conn_data(c);
	Swarm__NetdResponse *r = swarm__netd_response__unpack(NULL, len, p);
	if (!r) {
		log_warn("dnsd, undecodable frame on netd's stream");
		return -EBADMSG;
	}
	Swarm__EndpointEvent *e = r->event;
	if (!e) {
		if (r->error[0])
			log_warn("dnsd, netd refused the subscription: %s", r->error);
		goto out;
	}
	if (e->snapshot_begin) {
		names_free(d->staging);
		d->staging = names_new();
		if (e->epoch != d->epoch)
			log_info("dnsd, netd epoch %llu: taking its snapshot", (unsigned long long)e->epoch);
		d->epoch = e->epoch;
	} else if (e->snapshot_end) {
		if (d->staging) {
			names_free(d->names);
			d->names = d->staging;
			d->staging = NULL;
			d->synced = true;
			log_info("dnsd, %zu endpoint(s) from netd", names_count(d->names));
		}
	} else if (e->record) {
		struct names *into = d->staging ? d->staging : d->names;
		if (e->deleted)
			names_del(into, e->record->endpoint_id);
		else
			names_put(into, e->record);
	}
out:
	swarm__netd_response__free_unpacked(r, NULL);
	return 0;
}

static void st_close(struct conn *c, int err)
{
	struct dnsd *d = conn_data(c);
	(void)err;
	if (d->stream != c)
		return;
	d->stream = NULL;
	names_free(d->staging);
	d->staging = NULL;
	log_warn("dnsd, netd's stream closed; answering from what we have");
}

static const struct conn_ops st_ops = { .on_frame = st_frame, .on_close = st_close };

static void st_connect(struct dnsd *d)
{
	char *path = xasprintf("%s/netd.sock", d->run_dir);
	d->stream = conn_connect_unix(d->loop, path, STREAM_MAX_FRAME, &st_ops, d);
	free(path);
	if (!d->stream)
		return;
	conn_set_peer_name(d->stream, "swarm-netd");
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdSubscribe sub = SWARM__NETD_SUBSCRIBE__INIT;
	q.id = 1;
	q.body_case = SWARM__NETD_REQUEST__BODY_SUBSCRIBE;
	q.subscribe = &sub;
	conn_send_msg(d->stream, &q.base);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dnsd *d = w->data;
	(void)loop;
	(void)revents;
	if (!d->stream)
		st_connect(d);
}

void dnsd_stream_start(struct dnsd *d)
{
	ev_timer_init(&d->stream_retry, retry_cb, 1.0, 1.0);
	d->stream_retry.data = d;
	ev_timer_start(d->loop, &d->stream_retry);
	st_connect(d);
}

void dnsd_stream_stop(struct dnsd *d)
{
	ev_timer_stop(d->loop, &d->stream_retry);
	if (d->stream) {
		struct conn *c = d->stream;
		d->stream = NULL;
		conn_close(c, 0);
	}
	names_free(d->staging);
	d->staging = NULL;
}
