/* netd's supervisor of swarm-sealer (sealer_ctl.h). */
#include "sealer_ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "pb.h"
#include "util.h"

#define SCTL_TICK 1.0              /* reconnect / respawn checks */
#define SCTL_POLL 5.0              /* status request while connected */
#define SCTL_BACKOFF_MIN 1.0
#define SCTL_BACKOFF_MAX 30.0
#define SCTL_MAX_FRAME (16u << 20)

struct sealer_ctl {
	struct ev_loop *loop;
	char *exe, *socket, *log_level, *floor_file;
	Swarm__SealerConfig *want;     /* desired, generation set; NULL = none yet */
	uint64_t next_gen;
	struct conn *conn;             /* NULL: not connected */
	bool pushed;                   /* want sent on this connection, answer pending or in */
	Swarm__SealerStatus *last;     /* last answer */
	pid_t child;                   /* our own child, 0 = none */
	ev_child child_w;
	ev_timer tick;
	double backoff, next_spawn;    /* ev_now times */
	double last_poll;
	unsigned spawns;
	bool refused_logged;
};

static bool sctl_needed(const struct sealer_ctl *c)
{
	return c->want && c->want->n_networks > 0;
}

static void sctl_push(struct sealer_ctl *c)
{
	Swarm__SealerRequest req = SWARM__SEALER_REQUEST__INIT;
	req.config = c->want;
	if (conn_send_msg(c->conn, &req.base) == 0)
		c->pushed = c->want != NULL;
}

static void sctl_poll(struct sealer_ctl *c)
{
	Swarm__SealerRequest req = SWARM__SEALER_REQUEST__INIT;
	conn_send_msg(c->conn, &req.base);
	c->last_poll = ev_now(c->loop);
}

static int sctl_frame(struct conn *conn, const uint8_t *payload, size_t len)
{
	struct sealer_ctl *c = conn_data(conn);
	Swarm__SealerStatus *st = swarm__sealer_status__unpack(NULL, len, payload);
	if (!st) {
		log_warn("netd, sealer: malformed status (%zu bytes)", len);
		return -EBADMSG;
	}
	if (st->error && c->want && !c->refused_logged) {
		log_err("netd, sealer refused config %llu: %s", (unsigned long long)c->want->generation,
			st->message);
		c->refused_logged = true;
	}
	pb_free(c->last);
	c->last = st;
	/* another generation in force (an adopted sealer, or a push that was
	 * lost): push ours, once per connection unless it changes */
	if (c->want && st->generation != c->want->generation && !c->pushed)
		sctl_push(c);
	return 0;
}

static void sctl_closed(struct conn *conn, int err)
{
	struct sealer_ctl *c = conn_data(conn);
	(void)err;
	if (!c)
		return;
	c->conn = NULL;
	c->pushed = false;
	log_warn("netd, sealer connection lost; reconnecting or restarting it");
	ev_feed_event(c->loop, &c->tick, EV_TIMER);
}

static const struct conn_ops sctl_ops = { .on_frame = sctl_frame, .on_close = sctl_closed };

static bool sctl_connect(struct sealer_ctl *c)
{
	c->conn = conn_connect_unix(c->loop, c->socket, SCTL_MAX_FRAME, &sctl_ops, c);
	if (!c->conn)
		return false;
	c->pushed = false;
	c->refused_logged = false;
	c->backoff = SCTL_BACKOFF_MIN;
	if (c->want)
		sctl_push(c);
	sctl_poll(c);
	return true;
}

static void sctl_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct sealer_ctl *c = w->data;
	(void)revents;
	ev_child_stop(loop, w);
	if (WIFSIGNALED(w->rstatus))
		log_err("netd, sealer (pid %d) killed by signal %d", w->rpid, WTERMSIG(w->rstatus));
	else
		log_warn("netd, sealer (pid %d) exited with status %d", w->rpid,
			 WEXITSTATUS(w->rstatus));
	c->child = 0;
	ev_feed_event(loop, &c->tick, EV_TIMER);
}

static void sctl_spawn(struct sealer_ctl *c)
{
	char *argv[9] = { c->exe, "--socket", c->socket, "--foreground" };
	int a = 4;
	if (c->log_level) {
		argv[a++] = "--log-level";
		argv[a++] = c->log_level;
	}
	if (c->floor_file) {
		argv[a++] = "--floor-file";
		argv[a++] = c->floor_file;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_err("netd, starting the sealer: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* own session: netd's death or a signal to its group spares it */
		setsid();
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execv(c->exe, argv);
		_exit(127);
	}
	c->child = pid;
	c->spawns++;
	ev_child_set(&c->child_w, pid, 0);
	ev_child_start(c->loop, &c->child_w);
	log_info("netd, started the sealer %s (pid %d)", c->exe, pid);
}

static void sctl_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sealer_ctl *c = w->data;
	(void)revents;
	double now = ev_now(loop);
	if (c->conn) {
		if (now - c->last_poll >= SCTL_POLL)
			sctl_poll(c);
		return;
	}
	if (!sctl_needed(c))
		return;
	if (sctl_connect(c)) {
		log_info("netd, sealer on %s answers", c->socket);
		return;
	}
	if (c->child || now < c->next_spawn)
		return;   /* ours is starting up (or dying): give it time */
	sctl_spawn(c);
	c->next_spawn = now + c->backoff;
	c->backoff = c->backoff * 2 > SCTL_BACKOFF_MAX ? SCTL_BACKOFF_MAX : c->backoff * 2;
}

int sealer_ctl_new(struct ev_loop *loop, const struct sealer_ctl_config *cfg,
		   struct sealer_ctl **out)
{
	if (!cfg->exe || !cfg->socket)
		return -EINVAL;
	struct sealer_ctl *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->exe = xstrdup(cfg->exe);
	c->socket = xstrdup(cfg->socket);
	c->log_level = cfg->log_level ? xstrdup(cfg->log_level) : NULL;
	c->floor_file = cfg->floor_file ? xstrdup(cfg->floor_file) : NULL;
	/* generations unique across netd restarts: an adopted sealer's
	 * generation never equals one of ours by chance */
	c->next_gen = (uint64_t)now_wall_ns();
	c->backoff = SCTL_BACKOFF_MIN;
	ev_child_init(&c->child_w, sctl_child_cb, 0, 0);
	c->child_w.data = c;
	ev_timer_init(&c->tick, sctl_tick_cb, 0.2, SCTL_TICK);
	c->tick.data = c;
	ev_timer_start(loop, &c->tick);
	if (sctl_connect(c))
		log_info("netd, adopted the running sealer on %s", c->socket);
	*out = c;
	return 0;
}

void sealer_ctl_free(struct sealer_ctl *c)
{
	if (!c)
		return;
	ev_timer_stop(c->loop, &c->tick);
	ev_child_stop(c->loop, &c->child_w);
	if (c->conn) {
		conn_set_data(c->conn, NULL);
		conn_close(c->conn, 0);
	}
	pb_free(c->want);
	pb_free(c->last);
	free(c->exe);
	free(c->socket);
	free(c->log_level);
	free(c->floor_file);
	free(c);
}

void sealer_ctl_set(struct sealer_ctl *c, Swarm__SealerConfig *cfg)
{
	if (c->want) {
		cfg->generation = c->want->generation;
		if (pb_equal(cfg, c->want)) {
			pb_free(cfg);
			return;
		}
	}
	cfg->generation = ++c->next_gen;
	pb_free(c->want);
	c->want = cfg;
	c->refused_logged = false;
	if (c->conn)
		sctl_push(c);
	else if (sctl_needed(c))
		ev_feed_event(c->loop, &c->tick, EV_TIMER);
}

bool sealer_ctl_in_sync(const struct sealer_ctl *c)
{
	return c->conn && c->want && c->last && c->last->generation == c->want->generation &&
	       !c->last->error;
}

const Swarm__SealerStatus *sealer_ctl_status(const struct sealer_ctl *c)
{
	return c->last;
}

unsigned sealer_ctl_spawns(const struct sealer_ctl *c)
{
	return c->spawns;
}

struct json_object *sealer_ctl_json(const struct sealer_ctl *c)
{
	struct json_object *o = json_object_new_object();
	const Swarm__SealerStatus *st = c->last;
	json_object_object_add(o, "Running", json_object_new_boolean(c->conn != NULL));
	json_object_object_add(o, "Pid", json_object_new_int(c->child));
	json_object_object_add(o, "Generation",
			       json_object_new_uint64(c->want ? c->want->generation : 0));
	json_object_object_add(o, "InSync", json_object_new_boolean(sealer_ctl_in_sync(c)));
	json_object_object_add(o, "Spawns", json_object_new_int((int)c->spawns));
	if (!st)
		return o;
	struct json_object *s = json_object_new_object();
	json_object_object_add(s, "Port", json_object_new_int((int)st->port));
	json_object_object_add(s, "TxFrames", json_object_new_uint64(st->tx_frames));
	json_object_object_add(s, "RxFrames", json_object_new_uint64(st->rx_frames));
	json_object_object_add(s, "DropAuth", json_object_new_uint64(st->drop_auth));
	json_object_object_add(s, "DropReplay", json_object_new_uint64(st->drop_replay));
	json_object_object_add(s, "DropNoPeer", json_object_new_uint64(st->drop_no_peer));
	json_object_object_add(s, "DropUnknownSender", json_object_new_uint64(st->drop_unknown_sender));
	json_object_object_add(s, "DropMalformed", json_object_new_uint64(st->drop_malformed));
	json_object_object_add(s, "DropTxError", json_object_new_uint64(st->drop_tx_error));
	json_object_object_add(s, "TrainsTx", json_object_new_uint64(st->trains_tx));
	json_object_object_add(s, "TrainsRx", json_object_new_uint64(st->trains_rx));
	json_object_object_add(s, "Coalesced", json_object_new_uint64(st->coalesced));
	json_object_object_add(s, "CoalesceMax", json_object_new_uint64(st->coalesce_max));
	json_object_object_add(s, "TrainsLost", json_object_new_uint64(st->trains_lost));
	json_object_object_add(s, "DropTooBig", json_object_new_uint64(st->drop_too_big));
	json_object_object_add(s, "TxBytes", json_object_new_uint64(st->tx_bytes));
	json_object_object_add(s, "RxBytes", json_object_new_uint64(st->rx_bytes));
	json_object_object_add(s, "Rekeys", json_object_new_uint64(st->rekeys));
	struct json_object *ids = json_object_new_array();
	for (size_t i = 0; i < st->n_key_ids; i++)
		json_object_array_add(ids, json_object_new_int((int)st->key_ids[i]));
	json_object_object_add(s, "KeyIds", ids);
	struct json_object *nets = json_object_new_array();
	for (size_t i = 0; i < st->n_networks; i++) {
		struct json_object *n = json_object_new_object();
		json_object_object_add(n, "VNI", json_object_new_int((int)st->networks[i]->vni));
		json_object_object_add(n, "Tap", json_object_new_string(st->networks[i]->tap));
		json_object_object_add(n, "Open", json_object_new_boolean(st->networks[i]->open));
		if (st->networks[i]->error[0])
			json_object_object_add(n, "Error", json_object_new_string(st->networks[i]->error));
		json_object_array_add(nets, n);
	}
	json_object_object_add(s, "Networks", nets);
	json_object_object_add(o, "Status", s);
	return o;
}
