/* Blocking request/response for command-line tools: one frame out, one frame
 * in, over a Unix socket. Not for daemons. */
#ifndef SWARM_CLIENT_H
#define SWARM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Connects to a Unix socket; returns fd or -errno. */
int client_connect_unix(const char *path);
/* Sends payload as one frame; 0 or -errno. */
int client_send(int fd, const void *payload, size_t len);
/* Receives one frame into a malloc'd buffer; 0 or -errno (-EMSGSIZE over
 * max, -ECONNRESET on EOF). timeout_ms < 0 waits forever. */
int client_recv(int fd, size_t max, int timeout_ms, uint8_t **payload, size_t *len);

struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;

/* The run directory a daemon's client subcommand talks to: --run-dir DIR
 * among argv[2..], else $SWARM_RUN_DIR, else /run/swarm. */
const char *client_run_dir(int argc, char **argv);
/* One request to a daemon's local socket whose answer (of type resp) has
 * string fields "error" and "json", as the node-local APIs do: prints the
 * json on stdout, or the error (or why there was no answer) on stderr
 * after "prog: ". Returns 0 when json was printed, else 1. */
int client_json(const char *prog, const char *path, const struct ProtobufCMessage *req,
		const struct ProtobufCMessageDescriptor *resp, int timeout_ms);

#endif
