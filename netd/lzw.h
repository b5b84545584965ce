/* Go's compress/lzw, LSB order, literal width 8, as memberlist uses it for
 * its compressMsg (GIF-style: 9- to 12-bit codes, clear = 256, eof = 257,
 * no "early change"). The encoder reproduces Go 1.19's writer byte for
 * byte: a clear code first, a clear code when the next code would be 4095,
 * then eof and padding to a byte. The decoder accepts what Go's reader
 * accepts: streams with or without the leading clear, clear codes
 * anywhere, a full 12-bit table that stops growing until a clear; it
 * requires the eof code and ignores bytes after it. */
#ifndef SWARM_LZW_H
#define SWARM_LZW_H

#include <stddef.h>
#include <stdint.h>

/* Upper bound of lzw_encode's output for n input bytes. */
size_t lzw_encode_bound(size_t n);

/* Compresses in[n] into out[cap]. Returns the output length, -ENOSPC if
 * cap is too small (cap >= lzw_encode_bound(n) never is), -ENOMEM. */
long lzw_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Decompresses in[n] into a malloc'd *out (caller frees; non-NULL on
 * success even when empty) of *out_len bytes, at most max_out bytes.
 * Returns 0, -E2BIG (output would pass max_out), -EBADMSG (invalid code),
 * -ENODATA (stream ends before the eof code), -ENOMEM. */
int lzw_decode(const uint8_t *in, size_t n, size_t max_out, uint8_t **out, size_t *out_len);

#endif
