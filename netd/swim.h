/* SWIM membership with Lifeguard, as hashicorp/memberlist (state.go,
 * awareness.go, suspicion.go, queue.go), written as a pure state machine.
 *
 * Nothing here touches a socket or a clock. The caller (netd's gossip
 * layer) feeds decoded messages in with swim_on_*(), calls swim_tick() at
 * swim_next_deadline() and performs the actions it returns; every call
 * takes `now`, monotonic ns. Wire encoding is the caller's business too:
 * the only bytes swim produces are gossip broadcasts, made by the
 * cfg->encode callback (netd plugs in its memberlist msgpack encoder).
 *
 * Behaviour follows reference/memberlist.md §2:
 * - probe loop: shuffled round robin over non-dead peers, ping, after
 *   ProbeTimeout indirect pings (with nack) to IndirectChecks peers plus a
 *   TCP ping, suspect at the end of the (awareness-scaled) interval;
 * - suspicion: Lifeguard timer (suspicion.h) with confirmations, then dead;
 * - alive/suspect/dead rules with incarnations, refutation about self;
 * - awareness 0..AwarenessMaxMultiplier-1 scaling the probe interval;
 * - gossip every GossipInterval to GossipNodes peers, push/pull every
 *   PushPullInterval (scaled above 32 nodes), retransmit-limited queue.
 *
 * Not thread-safe: one owner calls everything. Events (joined, suspect,
 * dead, ...) queue inside and are read with swim_next_event(). */
#ifndef SWARM_SWIM_H
#define SWARM_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broadcast.h"

#define SWIM_NAME_MAX 128  /* longest node name, bytes without the NUL */
#define SWIM_META_MAX 512  /* memberlist MetaMaxSize */
#define SWIM_VSN_LEN 6     /* [PMin, PMax, PCur, DMin, DMax, DCur] */

/* Node states; the values are memberlist's pushNodeState.State. */
enum swim_state {
	SWIM_ALIVE = 0,
	SWIM_SUSPECT = 1,
	SWIM_DEAD = 2,
	SWIM_LEFT = 3,
};

/* An IPv4 (len 4) or IPv6 (len 16) address and port, as on the wire. */
struct swim_addr {
	uint8_t ip[16];   /* address bytes, network order */
	uint8_t len;      /* 4 or 16; 0 = unknown */
	uint16_t port;    /* host order */
};

/* Gossip message types swim understands (memberlist alive/suspect/dead). */
enum swim_msg_type {
	SWIM_MSG_ALIVE,
	SWIM_MSG_SUSPECT,
	SWIM_MSG_DEAD,
};

/* A decoded alive/suspect/dead message, in or out. Pointers are borrowed
 * for the duration of the call. */
struct swim_msg {
	enum swim_msg_type type;  /* which message */
	uint32_t incarnation;     /* Incarnation */
	const char *node;         /* Node: who the message is about */
	const char *from;         /* suspect/dead From (dead: == node is leave) */
	struct swim_addr addr;    /* alive Addr/Port */
	const uint8_t *meta;      /* alive Meta (may be NULL) */
	size_t meta_len;          /* <= SWIM_META_MAX */
	const uint8_t *vsn;       /* alive Vsn (NULL/0 = absent) */
	size_t vsn_len;           /* normally SWIM_VSN_LEN */
};

/* Encodes m into buf (cap bytes) as one complete wire message (type byte
 * + msgpack for memberlist); returns its length or -errno. */
typedef int (*swim_encode_fn)(void *ctx, const struct swim_msg *m,
			      uint8_t *buf, size_t cap);
/* Returns 64 random bits. */
typedef uint64_t (*swim_rand_fn)(void *ctx);

/* Configuration; swim_config_lan() fills memberlist DefaultLANConfig. All
 * durations in ns. Copied by swim_new() (meta bytes included). */
struct swim_config {
	int64_t probe_interval;          /* ProbeInterval, 1 s */
	int64_t probe_timeout;           /* ProbeTimeout, 500 ms */
	int indirect_checks;             /* IndirectChecks, 3 */
	int retransmit_mult;             /* RetransmitMult, 4 */
	int suspicion_mult;              /* SuspicionMult, 4 */
	int suspicion_max_timeout_mult;  /* SuspicionMaxTimeoutMult, 6 */
	int awareness_max_multiplier;    /* AwarenessMaxMultiplier, 8 */
	int64_t gossip_interval;         /* GossipInterval, 200 ms */
	int gossip_nodes;                /* GossipNodes, 3 */
	int64_t gossip_to_the_dead_time; /* GossipToTheDeadTime, 30 s */
	int64_t push_pull_interval;      /* PushPullInterval, 30 s; 0 = off */
	int64_t dead_node_reclaim_time;  /* DeadNodeReclaimTime, 0 = never */
	bool disable_tcp_pings;          /* DisableTcpPings */
	size_t udp_buffer_size;          /* UDPBufferSize, 1400 */
	size_t packet_overhead;          /* label + encryption bytes to keep
					    free in a gossip packet */
	struct swim_addr self_addr;      /* our advertised address */
	const uint8_t *self_meta;        /* our Meta (copied), may be NULL */
	size_t self_meta_len;            /* <= SWIM_META_MAX */
	uint8_t self_vsn[SWIM_VSN_LEN];  /* our Vsn, e.g. {1,5,2,0,0,0} */
	swim_encode_fn encode;           /* required: broadcast encoder */
	swim_rand_fn rand;               /* NULL: internal PRNG from seed */
	void *ctx;                       /* passed to encode and rand */
	uint64_t seed;                   /* seed of the internal PRNG */
};

/* What the caller must do; filled by swim_tick() and some inputs. */
enum swim_action_type {
	SWIM_ACT_PING,           /* UDP ping{seq, Node: to_name} to `to` */
	SWIM_ACT_INDIRECT_PING,  /* indirectPingReq{seq, target*, nack} to `to` */
	SWIM_ACT_TCP_PING,       /* TCP ping{seq} to `to`; report the result
				    with swim_on_tcp_ping_result() by deadline */
	SWIM_ACT_ACK,            /* ackResp{seq} to `to` (relayed ack) */
	SWIM_ACT_NACK,           /* nackResp{seq} to `to` */
	SWIM_ACT_GOSSIP,         /* UDP compound of batch's messages to `to` */
	SWIM_ACT_PUSH_PULL,      /* TCP push/pull with `to` (join flag) */
};

struct swim_action {
	enum swim_action_type type;
	char to_name[SWIM_NAME_MAX + 1];  /* destination's name, "" if unknown */
	struct swim_addr to;              /* destination address */
	uint32_t seq;                     /* PING/INDIRECT/TCP/ACK/NACK SeqNo */
	bool with_suspect;                /* PING: send compound [ping,
					     suspect{suspect_inc, to_name,
					     From: self}] (buddy system) */
	uint32_t suspect_inc;             /* PING: incarnation for that suspect */
	char target_name[SWIM_NAME_MAX + 1]; /* INDIRECT_PING: Node */
	struct swim_addr target;          /* INDIRECT_PING: Target/Port */
	bool nack;                        /* INDIRECT_PING: Nack */
	int64_t deadline;                 /* TCP_PING: give up at this time */
	bool join;                        /* PUSH_PULL: Join flag */
	struct broadcast_batch batch;     /* GOSSIP: the messages (owned) */
};

/* Growable list of actions. init before first use, clear to reuse (frees
 * gossip batches), free at the end. */
struct swim_actions {
	struct swim_action *v;  /* n entries */
	size_t n, cap;          /* used / allocated */
};

enum swim_event_type {
	SWIM_EV_JOIN,        /* new node alive, or dead/left -> alive */
	SWIM_EV_UPDATE,      /* alive node's meta or address changed */
	SWIM_EV_SUSPECT,     /* alive -> suspect */
	SWIM_EV_ALIVE,       /* suspect -> alive: the node refuted */
	SWIM_EV_DEAD,        /* -> dead (failed) */
	SWIM_EV_LEFT,        /* -> left (graceful) */
	SWIM_EV_REAPED,      /* dead/left node forgotten */
	SWIM_EV_CONFLICT,    /* alive for a known name with another address */
	SWIM_EV_REFUTE,      /* we were accused and broadcast a refutation */
};

struct swim_event {
	enum swim_event_type type;
	char name[SWIM_NAME_MAX + 1];  /* the node */
	struct swim_addr addr;         /* its address (CONFLICT: the new one) */
	uint32_t incarnation;          /* its incarnation after the change */
	char from[SWIM_NAME_MAX + 1];  /* SUSPECT/DEAD: accuser, if known */
	int confirmations;             /* DEAD by our timer: confirmations */
	uint8_t meta[SWIM_META_MAX];   /* its Meta */
	size_t meta_len;
};

/* A node's state, pointing into swim's table: valid until the next call
 * that changes the table (any swim_on_*, tick, merge, leave). Also the
 * shape of a push/pull pushNodeState. */
struct swim_node_view {
	const char *name;
	struct swim_addr addr;
	const uint8_t *meta;
	size_t meta_len;
	uint32_t incarnation;
	enum swim_state state;
	const uint8_t *vsn;   /* NULL/0 if unknown */
	size_t vsn_len;
	int64_t state_change; /* when state last changed (local view only) */
};

/* An indirect ping request received from a peer. */
struct swim_indirect_req {
	uint32_t seq;              /* requester's SeqNo */
	const char *target_name;   /* Node */
	struct swim_addr target;   /* Target/Port */
	bool nack;                 /* Nack */
};

struct swim;

/* memberlist DefaultLANConfig; encode, self_* and seed left zero. */
void swim_config_lan(struct swim_config *cfg);

/* New member table with ourselves alive at incarnation 1. Probe, gossip
 * and push/pull start after a random stagger below their interval.
 * NULL with errno EINVAL (no encode, bad name) or ENOMEM. */
struct swim *swim_new(const struct swim_config *cfg, const char *self_name,
		      int64_t now);
void swim_free(struct swim *s);

/* Gossip input. Each applies memberlist's rules (aliveNode, suspectNode,
 * deadNode): may change state, queue re-broadcasts and events, refute
 * accusations about us. 0, -EINVAL (malformed), -ENOMEM. An ignored
 * message (stale incarnation, ...) is 0. */
int swim_on_alive(struct swim *s, const struct swim_msg *m, int64_t now);
int swim_on_suspect(struct swim *s, const struct swim_msg *m, int64_t now);
int swim_on_dead(struct swim *s, const struct swim_msg *m, int64_t now);
/* Dispatches on m->type. */
int swim_on_msg(struct swim *s, const struct swim_msg *m, int64_t now);

/* A ping arrived naming target_node (NULL or "" = any): true if we must
 * answer with ackResp{same seq} (memberlist drops pings for other names). */
bool swim_ping_accept(const struct swim *s, const char *target_node);

/* We are asked to probe req->target for `requester` (its Source* fields,
 * else the UDP source). Appends a PING to out; later an ACK (when the
 * target answers) or a NACK (after ProbeTimeout, if req->nack) to the
 * requester comes out of swim_on_ack() / swim_tick(). 0 or -errno. */
int swim_on_indirect_ping(struct swim *s, const struct swim_indirect_req *req,
			  const struct swim_addr *requester,
			  const char *requester_name, int64_t now,
			  struct swim_actions *out);

/* An ackResp (UDP, or relayed) with this SeqNo arrived. May append a
 * relayed ACK to out. Unknown or expired seqs are ignored. */
int swim_on_ack(struct swim *s, uint32_t seq, int64_t now,
		struct swim_actions *out);
/* A nackResp with this SeqNo arrived (counts for awareness). */
void swim_on_nack(struct swim *s, uint32_t seq, int64_t now);
/* Outcome of a SWIM_ACT_TCP_PING: ok = an ack with the right seq came
 * back before the deadline. */
void swim_on_tcp_ping_result(struct swim *s, uint32_t seq, bool ok,
			     int64_t now);

/* Runs everything due at now (probe phases, suspicion timers, relay
 * expiries, gossip, push/pull) and appends the actions to out. */
int swim_tick(struct swim *s, int64_t now, struct swim_actions *out);
/* When swim_tick must run next (absolute ns). */
int64_t swim_next_deadline(const struct swim *s);

/* Join: appends a PUSH_PULL{join} to the seed (name may be NULL). The
 * caller runs the exchange and feeds the reply to
 * swim_merge_remote_state(). */
int swim_join(struct swim *s, const char *name, const struct swim_addr *addr,
	      int64_t now, struct swim_actions *out);
/* Merges a push/pull peer's table (memberlist mergeState): alive -> alive
 * rules; left -> dead{From: name}; dead or suspect -> suspect (never dead
 * directly). Protocol-version checks are the caller's. 0 or -errno. */
int swim_merge_remote_state(struct swim *s, const struct swim_node_view *nodes,
			    size_t n, int64_t now);
/* Our table for a push/pull reply (all nodes, dead and left included):
 * fills up to cap entries, returns the total count. */
size_t swim_local_state(const struct swim *s, struct swim_node_view *out,
			size_t cap);
/* One node's state; 0 or -ENOENT. */
int swim_node_get(const struct swim *s, const char *name,
		  struct swim_node_view *out);

/* Piggyback: broadcasts that fit limit bytes with overhead each, for a
 * packet being sent anyway (memberlist getBroadcasts). */
int swim_get_broadcasts(struct swim *s, size_t overhead, size_t limit,
			struct broadcast_batch *out);

/* Queues an application message (a whole wire message, e.g. a memberlist
 * user message) on the same transmit-limited queue as membership news, so
 * it rides the same gossip rounds and piggybacks. name as in
 * broadcast_queue_push (a newer message with the same name replaces the
 * queued one); callers keep their names apart from node names. */
int swim_queue_broadcast(struct swim *s, const char *name, const uint8_t *msg,
			 size_t len);

/* Next queued event; false if none. */
bool swim_next_event(struct swim *s, struct swim_event *out);

/* Graceful leave: marks us left and broadcasts dead{From: self}. */
int swim_leave(struct swim *s, int64_t now);
/* True once the leave broadcast is used up or nobody is alive to tell. */
bool swim_leave_done(const struct swim *s);
/* New Meta for ourselves: incarnation + 1 and an alive broadcast. */
int swim_update_meta(struct swim *s, const uint8_t *meta, size_t len,
		     int64_t now);

/* Introspection. */
int swim_num_nodes(const struct swim *s);      /* table size, self included */
int swim_num_alive(const struct swim *s);      /* alive + suspect, self incl. */
int swim_awareness(const struct swim *s);      /* 0..max-1 */
uint32_t swim_incarnation(const struct swim *s);
size_t swim_broadcasts_queued(const struct swim *s);
/* Awareness delta as memberlist ApplyDelta, for tests and netd health. */
void swim_awareness_apply(struct swim *s, int delta);

void swim_actions_init(struct swim_actions *a);
void swim_actions_clear(struct swim_actions *a);
void swim_actions_free(struct swim_actions *a);

#endif
