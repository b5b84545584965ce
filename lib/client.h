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

#endif
