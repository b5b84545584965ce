/* The dispatcher: agent sessions over mutual TLS on 2377. It admits joining
 * nodes (token check, certificate issue), keeps one session per node,
 * tracks heartbeats (a node is Down after 3 missed periods, or a short grace
 * after its connection closes), applies task status reports and pushes each
 * node its assignment set whenever that changes. */
#ifndef SWARM_DISPATCHER_H
#define SWARM_DISPATCHER_H

#include <openssl/ssl.h>
#include "manager.h"
#include "dispatcher.pb-c.h"

struct dispatcher *dispatcher_new(struct mgr *m);
void dispatcher_free(struct dispatcher *d);

/* Listens on addr ("IP:PORT") with the manager's TLS context. */
int dispatcher_listen(struct dispatcher *d, const char *addr, SSL_CTX *ctx);
/* New TLS context after the manager's certificate was renewed. */
void dispatcher_set_ctx(struct dispatcher *d, SSL_CTX *ctx);
/* Sends changed assignment sets to connected nodes (the manager's dirty
 * list), and clears that list. */
void dispatcher_push(struct dispatcher *d);
/* Number of nodes with an open session. */
size_t dispatcher_sessions(const struct dispatcher *d);

/* Join admission, shared with tests: checks the token against the cluster
 * and issues a certificate for a new node. Fills resp or returns -EACCES /
 * -EINVAL with err set. Commits the new node. */
int dispatcher_admit(struct mgr *m, const Swarm__JoinRequest *req, int64_t now,
		     Swarm__JoinResponse *resp, char *err, size_t errlen);

#endif
