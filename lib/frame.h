/* Length-prefixed frames: a 4-byte big-endian payload length, then the
 * payload. Pure functions; no I/O. */
#ifndef SWARM_FRAME_H
#define SWARM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4
#define FRAME_MAX_DEFAULT (16u << 20)

/* Looks at the bytes buffered so far.
 * Returns 0 when more bytes are needed, -EMSGSIZE when the announced payload
 * exceeds max (the peer must be dropped), or 1 with *payload_len set when a
 * whole frame (FRAME_HDR + *payload_len bytes) is at buf. */
int frame_parse(const uint8_t *buf, size_t len, size_t max, size_t *payload_len);

/* Writes the 4-byte header for a payload of len bytes into hdr. */
void frame_put_header(uint8_t hdr[FRAME_HDR], uint32_t len);

#endif
