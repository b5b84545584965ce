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
};

struct gossip_stats {
	uint64_t udp_in, udp_out;   /* datagrams */
	uint64_t udp_bad;           /* dropped: bad layering or message */
	uint64_t tcp_in, tcp_out;   /* exchanges started */
	uint64_t tcp_bad;           /* dropped: bad, refused or timed out */
};

struct gossip;

/* Binds and starts. NULL with *err = -errno (-EADDRINUSE, -EINVAL...). */
struct gossip *gossip_new(struct ev_loop *loop, const struct gossip_cfg *cfg,
			  int *err);
/* Closes sockets and connections; NULL is a no-op. */
void gossip_free(struct gossip *g);

/* Push/pull join with a seed "IP" or "IP:PORT" (default port: ours). The
 * exchange is asynchronous; seeds given here are retried every 10 s while
 * we know no other alive node. 0 or -EINVAL. */
int gossip_join(struct gossip *g, const char *seed);

/* Member table as a JSON array [{"Name","Addr","Port","Status"}];
 * malloc'd string. */
char *gossip_members_json(struct gossip *g);

/* Bound UDP/TCP port (useful with bind_port picked by tests). */
uint16_t gossip_port(const struct gossip *g);
const struct gossip_stats *gossip_stats(const struct gossip *g);
struct swim *gossip_swim(struct gossip *g);

#endif
