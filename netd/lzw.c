/* Go compress/lzw (LSB, litWidth 8); contracts in lzw.h. The writer keeps
 * Go's hash table layout so its output matches Go's exactly; the reader is
 * Go's decode loop with prefix/suffix tables. */
#include "lzw.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LZW_LIT_WIDTH 8
#define LZW_CLEAR 256u
#define LZW_EOF 257u
#define LZW_MAX_WIDTH 12
#define LZW_MAX_CODE 4095u            /* 1<<12 - 1 */
#define LZW_TABLE_SIZE (4 * 4096)     /* Go's tableSize */
#define LZW_TABLE_MASK (LZW_TABLE_SIZE - 1)
#define LZW_INVALID_CODE 0xffffffffu

size_t lzw_encode_bound(size_t n)
{
	/* One code per input byte at most, a clear every ~3838 codes, the
	 * first clear, the last code and eof; 12 bits each, plus padding. */
	size_t codes = n + n / 1024 + 4;
	return (codes * 12 + 7) / 8 + 1;
}

struct lzw_writer {
	uint8_t *out;       /* output */
	size_t cap, len;    /* output capacity and bytes written */
	uint32_t bits;      /* pending bits, LSB first */
	unsigned nbits;     /* number of pending bits */
	unsigned width;     /* current code width */
	uint32_t hi;        /* last code assigned */
	uint32_t overflow;  /* hi at which width grows */
	int err;            /* -ENOSPC once out is full */
	uint32_t *table;    /* key<<12 | code, 0 = empty (Go's layout) */
};

static void w_put(struct lzw_writer *w, uint32_t code)
{
	w->bits |= code << w->nbits;
	w->nbits += w->width;
	while (w->nbits >= 8) {
		if (w->len < w->cap)
			w->out[w->len++] = (uint8_t)w->bits;
		else
			w->err = -ENOSPC;
		w->bits >>= 8;
		w->nbits -= 8;
	}
}

/* Go's incHi: returns true when the table was full and has been reset
 * after writing a clear code. */
static bool w_inc_hi(struct lzw_writer *w)
{
	w->hi++;
	if (w->hi == w->overflow) {
		w->width++;
		w->overflow <<= 1;
	}
	if (w->hi == LZW_MAX_CODE) {
		w_put(w, LZW_CLEAR);
		w->width = LZW_LIT_WIDTH + 1;
		w->hi = LZW_CLEAR + 1;
		w->overflow = LZW_CLEAR << 1;
		memset(w->table, 0, LZW_TABLE_SIZE * sizeof(uint32_t));
		return true;
	}
	return false;
}

long lzw_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	struct lzw_writer w = {
		.out = out, .cap = cap, .width = LZW_LIT_WIDTH + 1,
		.hi = LZW_CLEAR + 1, .overflow = LZW_CLEAR << 1,
	};

	w.table = calloc(LZW_TABLE_SIZE, sizeof(uint32_t));
	if (!w.table)
		return -ENOMEM;
	/* Go 1.19+ starts every stream with a clear code. */
	w_put(&w, LZW_CLEAR);
	if (n > 0) {
		uint32_t code = in[0];
		for (size_t i = 1; i < n; i++) {
			uint32_t key = code << 8 | in[i];
			uint32_t hash = ((key >> 12) ^ key) & LZW_TABLE_MASK;
			bool hit = false;
			for (uint32_t h = hash, t = w.table[hash]; t != 0;) {
				if (key == t >> 12) {
					code = t & LZW_MAX_CODE;
					hit = true;
					break;
				}
				h = (h + 1) & LZW_TABLE_MASK;
				t = w.table[h];
			}
			if (hit)
				continue;
			w_put(&w, code);
			code = in[i];
			if (w_inc_hi(&w))
				continue;
			while (w.table[hash] != 0)
				hash = (hash + 1) & LZW_TABLE_MASK;
			w.table[hash] = key << 12 | w.hi;
		}
		w_put(&w, code);
		w_inc_hi(&w);
	}
	w_put(&w, LZW_EOF);
	if (w.nbits > 0) {
		if (w.len < w.cap)
			w.out[w.len++] = (uint8_t)w.bits;
		else
			w.err = -ENOSPC;
	}
	free(w.table);
	return w.err ? w.err : (long)w.len;
}

struct lzw_out {
	uint8_t *p;     /* output so far */
	size_t len;     /* bytes used */
	size_t cap;     /* bytes allocated */
	size_t max;     /* never more than this */
};

static int o_append(struct lzw_out *o, const uint8_t *p, size_t n)
{
	if (n > o->max - o->len)
		return -E2BIG;
	if (n > o->cap - o->len) {
		size_t ncap = o->cap ? o->cap : 1024;
		while (ncap - o->len < n)
			ncap *= 2;
		if (ncap > o->max)
			ncap = o->max;
		uint8_t *q = realloc(o->p, ncap ? ncap : 1);
		if (!q)
			return -ENOMEM;
		o->p = q;
		o->cap = ncap;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	return 0;
}

int lzw_decode(const uint8_t *in, size_t n, size_t max_out, uint8_t **out, size_t *out_len)
{
	uint16_t prefix[4096];
	uint8_t suffix[4096];
	uint8_t tmp[4096 + 1];          /* one code's expansion, built backwards */
	struct lzw_out o = { .max = max_out };
	uint32_t bits = 0;
	unsigned nbits = 0, width = LZW_LIT_WIDTH + 1;
	uint32_t hi = LZW_EOF, overflow = 1u << width, last = LZW_INVALID_CODE;
	size_t pos = 0;
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	memset(prefix, 0, sizeof(prefix));
	memset(suffix, 0, sizeof(suffix));
	for (;;) {
		while (nbits < width) {
			if (pos >= n) {
				rc = -ENODATA; /* Go: io.ErrUnexpectedEOF */
				goto out;
			}
			bits |= (uint32_t)in[pos++] << nbits;
			nbits += 8;
		}
		uint32_t code = bits & ((1u << width) - 1);
		bits >>= width;
		nbits -= width;

		if (code < LZW_CLEAR) {
			uint8_t c = (uint8_t)code;
			rc = o_append(&o, &c, 1);
			if (rc < 0)
				goto out;
			if (last != LZW_INVALID_CODE) {
				suffix[hi] = c;
				prefix[hi] = (uint16_t)last;
			}
		} else if (code == LZW_CLEAR) {
			width = LZW_LIT_WIDTH + 1;
			hi = LZW_EOF;
			overflow = 1u << width;
			last = LZW_INVALID_CODE;
			continue;
		} else if (code == LZW_EOF) {
			break;
		} else if (code <= hi) {
			size_t i = sizeof(tmp) - 1;
			uint32_t c = code;
			if (code == hi && last != LZW_INVALID_CODE) {
				/* KwKwK: last's expansion followed by its first byte. */
				c = last;
				while (c >= LZW_CLEAR)
					c = prefix[c];
				tmp[i--] = (uint8_t)c;
				c = last;
			}
			/* prefix[c] < c always holds, so this ends; i cannot pass
			 * 0 since an expansion is at most 4096 - 258 + 2 bytes. */
			while (c >= LZW_CLEAR && i > 0) {
				tmp[i--] = suffix[c];
				c = prefix[c];
			}
			if (c >= LZW_CLEAR) {
				rc = -EBADMSG;
				goto out;
			}
			tmp[i] = (uint8_t)c;
			rc = o_append(&o, tmp + i, sizeof(tmp) - i);
			if (rc < 0)
				goto out;
			if (last != LZW_INVALID_CODE) {
				suffix[hi] = (uint8_t)c;
				prefix[hi] = (uint16_t)last;
			}
		} else {
			rc = -EBADMSG; /* Go: "lzw: invalid code" */
			goto out;
		}
		last = code;
		hi++;
		if (hi >= overflow) {
			if (width == LZW_MAX_WIDTH) {
				/* Table full: stop adding until a clear. */
				last = LZW_INVALID_CODE;
				hi--;
			} else {
				width++;
				overflow = 1u << width;
			}
		}
	}
out:
	if (rc < 0) {
		free(o.p);
		return rc;
	}
	if (!o.p) {
		o.p = malloc(1);
		if (!o.p)
			return -ENOMEM;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}
