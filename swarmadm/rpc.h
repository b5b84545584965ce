/* swarmadm's requests: one AdminRequest to the manager's Unix socket or one
 * LocalRequest to the agent's, one response back (lib/client.h framing).
 * Sockets are $SWARM_RUN_DIR/manager.sock and $SWARM_RUN_DIR/agent.sock
 * (default /run/swarm). */
#ifndef SWARMADM_RPC_H
#define SWARMADM_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include "admin.pb-c.h"
#include "netd.pb-c.h"

/* Sends req (its id is filled in) and waits up to timeout_ms for the
 * answer. 0 with *resp set (free with pb_free) when the manager answered,
 * whether or not it refused (resp->error); -errno with a one-line reason in
 * err when it could not be reached or answered garbage. */
int rpc_admin(Swarm__AdminRequest *req, int timeout_ms, Swarm__AdminResponse **resp,
	      char *err, size_t errlen);
int rpc_local(Swarm__LocalRequest *req, int timeout_ms, Swarm__LocalResponse **resp,
	      char *err, size_t errlen);
/* True if the daemon's socket ("manager.sock") exists here. */
bool rpc_socket_exists(const char *name);
/* The same with the local swarm-netd ($SWARM_RUN_DIR/netd.sock). */
int rpc_netd(Swarm__NetdRequest *req, int timeout_ms, Swarm__NetdResponse **resp,
	     char *err, size_t errlen);

/* The common case: sends, and on any failure or refusal prints
 * "swarmadm: <reason>" to stderr and returns NULL. */
Swarm__AdminResponse *rpc_admin_call(Swarm__AdminRequest *req);
Swarm__LocalResponse *rpc_local_call(Swarm__LocalRequest *req);

/* Default answer timeout: generous, since init and join create keys and
 * talk to other nodes. */
#define RPC_TIMEOUT_MS 60000

#endif
