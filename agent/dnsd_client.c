/* The agent's side of swarm-dnsd's local socket (proto/dnsd.proto): each
 * task sandbox is announced (netns, networks) when it comes up and
 * withdrawn when it goes. dnsd opens its sockets in well under the time a
 * container takes to start, so the container does not wait for it.
 * Everything announced is kept here and sent again after a reconnect. */
#include "agent.h"

#include "conn.h"
#include "dnsd.pb-c.h"
#include "log.h"
#include "pb.h"
#include "strmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct {
	struct agent *a;
	char *path;
	struct conn *c;
	ev_timer retry;
	struct strmap *sbx;       /* task id -> Swarm__DnsdSandbox* */
	struct strmap *removes;   /* task ids to withdraw once dnsd is back */
	uint64_t next_id;
} S;

static void send_req(Swarm__DnsdRequest *q)
{
	if (!S.c)
		return;
	q->id = ++S.next_id;
	conn_send_msg(S.c, &q->base);
}

static void send_add(Swarm__DnsdSandbox *s)
{
	Swarm__DnsdRequest q = SWARM__DNSD_REQUEST__INIT;
	q.body_case = SWARM__DNSD_REQUEST__BODY_ADD;
	q.add = s;
	send_req(&q);
}

static void send_remove(const char *task_id)
{
	Swarm__DnsdRequest q = SWARM__DNSD_REQUEST__INIT;
	q.body_case = SWARM__DNSD_REQUEST__BODY_REMOVE;
	q.remove = (char *)task_id;
	send_req(&q);
}

static int on_frame(struct conn *c, const uint8_t *p, size_t len)
{
	(void)c;
	Swarm__DnsdResponse *r = swarm__dnsd_response__unpack(NULL, len, p);
	if (!r)
		return -EBADMSG;
	if (r->error[0])
		log_warn("agent, swarm-dnsd refused a sandbox: %s", r->error);
	swarm__dnsd_response__free_unpacked(r, NULL);
	return 0;
}

static void on_close(struct conn *c, int err)
{
	(void)err;
	if (S.c == c)
		S.c = NULL;
}

static const struct conn_ops dnsdc_ops = { .on_frame = on_frame, .on_close = on_close };

static void dnsdc_connect(void)
{
	S.c = conn_connect_unix(S.a->loop, S.path, 1u << 20, &dnsdc_ops, NULL);
	if (!S.c)
		return;
	log_info("agent, connected to swarm-dnsd");
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(S.sbx, &pos, &k, &v))
		send_add(v);
	pos = 0;
	while (strmap_next(S.removes, &pos, &k, &v))
		send_remove(k);
	strmap_free(S.removes);
	S.removes = strmap_new();
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (!S.c)
		dnsdc_connect();
}

void dnsdc_init(struct agent *a, const char *socket_path)
{
	S.a = a;
	S.path = xstrdup(socket_path);
	S.sbx = strmap_new();
	S.removes = strmap_new();
	ev_timer_init(&S.retry, retry_cb, 1.0, 1.0);
	ev_timer_start(a->loop, &S.retry);
	dnsdc_connect();
}

void dnsdc_stop(void)
{
	if (!S.a)
		return;
	ev_timer_stop(S.a->loop, &S.retry);
	if (S.c) {
		struct conn *c = S.c;
		S.c = NULL;
		conn_close(c, 0);
	}
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(S.sbx, &pos, &k, &v))
		pb_free(v);
	strmap_free(S.sbx);
	strmap_free(S.removes);
	free(S.path);
	memset(&S, 0, sizeof(S));
}

void dnsdc_sandbox(const Swarm__Task *t, const char *netns_path, int up)
{
	if (!S.a)
		return;
	if (!up) {
		pb_free(strmap_del(S.sbx, t->id));
		if (S.c)
			send_remove(t->id);
		else
			strmap_put(S.removes, t->id, S.removes);
		return;
	}
	Swarm__DnsdSandbox *s = xmalloc(sizeof(*s));
	swarm__dnsd_sandbox__init(s);
	pb_set_str(&s->task_id, t->id);
	pb_set_str(&s->netns, netns_path);
	for (size_t i = 0; i < t->n_networks; i++) {
		PB_STRV_ADD(s, network_ids, t->networks[i]->network_id);
		PB_STRV_ADD(s, network_names, t->networks[i]->network_name);
	}
	pb_free(strmap_put(S.sbx, t->id, s));
	strmap_del(S.removes, t->id);
	send_add(s);
}
