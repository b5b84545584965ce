/* netd's memberlist-compatible gossip endpoint on libev: one UDP socket and
 * one TCP listener on the same port (7946), driving the pure SWIM state
 * machine (swim.h) with the codecs of gossip_wire.h / gossip_pack.h.
 *
 * UDP in: label strip, decrypt, CRC, compound/compress walk, then swim_on_*.
 * UDP out: pings, acks, nacks, indirect pings and gossip, with piggybacked
 * broadcasts, sealed (CRC, encryption when the keyring has keys).
 * TCP: push/pull as initiator (join, periodic) and responder, TCP pings
 * both ways; one exchange per connection, bounded buffer, per-connection
 * timeout. Malformed input is dropped and counted, never fatal.
 *
 * Not thread-safe: runs on the caller's loop. */
#ifndef SWARM_GOSSIP_H
#define SWARM_GOSSIP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip_crypto.h"
#include "swim.h"

/* The application above membership (netd's tables), memberlist's
 * Delegate + EventDelegate. Every member may be NULL. */
struct gossip_delegate {
	/* A user message whose first byte is 0x80 or more (ours); lower
	 * type bytes are serf's and only counted. <0: malformed (counted). */
	int (*on_user)(void *arg, const uint8_t *p, size_t len);
	/* Our push/pull user state, malloc'd into *out (len 0: none). */
	int (*local_state)(void *arg, bool join, uint8_t **out, size_t *len);
	/* A peer's push/pull user state (any bytes: a serf agent's too). */
	void (*merge_state)(void *arg, const uint8_t *p, size_t len, bool join);
	/* A membership change (join, dead, alive again, left, reaped...). */
	void (*on_event)(void *arg, const struct swim_event *ev);
	void *arg;
};

struct gossip_cfg {
	const char *node_name;          /* our memberlist name (required) */
	const char *bind_addr;          /* IPv4 to bind, NULL = "0.0.0.0" */
	uint16_t bind_port;             /* 0 = any free port (tests) */
	const char *advertise_addr;     /* IPv4 announced; NULL = bind_addr,
					   or the first non-loopback IPv4 */
	uint16_t advertise_port;        /* 0 = the bound port */
	const struct gossip_keyring *kr;/* NULL/empty = plaintext; copied */
	const uint8_t *meta;            /* our Meta (copied), may be NULL */
	size_t meta_len;                /* <= SWIM_META_MAX */
	uint8_t vsn[SWIM_VSN_LEN];      /* all zero = {1,5,2,2,5,4} (serf) */
	const struct swim_config *swim; /* NULL = swim_config_lan() */
	int64_t tcp_timeout;            /* per TCP exchange, 0 = 10 s */
	const struct gossip_delegate *del; /* NULL: membership only; copied */
};

struct gossip_stats {
	uint64_t udp_in, udp_out;   /* datagrams */
	uint64_t udp_bad;           /* dropped: bad layering or message */
	uint64_t tcp_in, tcp_out;   /* exchanges started */
	uint64_t tcp_bad;           /* dropped: bad, refused or timed out */
	uint64_t user_in;           /* our user messages (type >= 0x80) */
	uint64_t user_foreign;      /* other user messages (serf's), ignored */
};

struct gossip;

/* Binds and starts. NULL with *err = -errno (-EADDRINUSE, -EINVAL...). */
struct gossip *gossip_new(struct ev_loop *loop, const struct gossip_cfg *cfg,
			  int *err);
/* Closes sockets and connections; NULL is a no-op. */
void gossip_free(struct gossip *g);
/* Replaces the key ring at once, membership untouched (a key rotation):
 * received packets are tried with every key of the new ring, sent ones
 * sealed with its primary. kr is copied; NULL or empty = plaintext. */
void gossip_set_keyring(struct gossip *g, const struct gossip_keyring *kr);

/* Push/pull join with a seed "IP" or "IP:PORT" (default port: ours). The
 * exchange is asynchronous; seeds given here are retried every 10 s while
 * we know no other alive node. 0 or -EINVAL. */
int gossip_join(struct gossip *g, const char *seed);

/* Gossips payload (type byte >= 0x80 first) to every member as a
 * memberlist user message, on the piggyback/gossip queue; name as in
 * swim_queue_broadcast. 0 or -errno. */
int gossip_broadcast_user(struct gossip *g, const char *name,
			  const uint8_t *payload, size_t len);

/* Starts a push/pull exchange with the named alive member now (a resync
 * after it came back). 0, -ENOENT. */
int gossip_push_pull_with(struct gossip *g, const char *name);

/* Member table as a JSON array [{"Name","Addr","Port","Status"}];
 * malloc'd string. */
char *gossip_members_json(struct gossip *g);

/* Bound UDP/TCP port (useful with bind_port picked by tests). */
uint16_t gossip_port(const struct gossip *g);
const struct gossip_stats *gossip_stats(const struct gossip *g);
struct swim *gossip_swim(struct gossip *g);

#endif
