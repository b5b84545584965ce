/* memberlist packet layering; contracts in gossip_pack.h. */
#include "gossip_pack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "lzw.h"

int gossip_pack_compound(struct gossip_buf *out, const struct gossip_bytes *parts, size_t n)
{
	size_t start = out->len;
	int rc;

	if (n == 0 || n > GOSSIP_COMPOUND_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (parts[i].len > UINT16_MAX)
			return -EMSGSIZE;
	rc = gossip_buf_put_u8(out, GOSSIP_COMPOUND);
	if (rc == 0)
		rc = gossip_buf_put_u8(out, (uint8_t)n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = gossip_buf_put_be16(out, (uint16_t)parts[i].len);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = gossip_buf_append(out, parts[i].p, parts[i].len);
	if (rc < 0)
		out->len = start;
	return rc;
}

int gossip_pack_compound_split(const uint8_t *p, size_t len, struct gossip_bytes *parts,
			       size_t max_parts, size_t *n, size_t *truncated)
{
	*n = 0;
	if (truncated)
		*truncated = 0;
	if (len < 1)
		return -ENODATA;
	size_t count = p[0];
	if (len - 1 < count * 2)
		return -ENODATA;
	if (count > max_parts)
		return -ENOSPC;
	const uint8_t *lens = p + 1;
	size_t off = 1 + count * 2;
	for (size_t i = 0; i < count; i++) {
		size_t l = (size_t)lens[2 * i] << 8 | lens[2 * i + 1];
		if (len - off < l) {
			if (truncated)
				*truncated = count - i;
			break;
		}
		parts[*n].p = p + off;
		parts[*n].len = l;
		(*n)++;
		off += l;
	}
	return 0;
}

uint32_t gossip_pack_crc32(const uint8_t *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	/* zlib takes uInt lengths: feed large inputs in pieces. */
	while (len > 0) {
		uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, chunk);
		p += chunk;
		len -= chunk;
	}
	return (uint32_t)c;
}

int gossip_pack_crc_add(struct gossip_buf *out, const uint8_t *msg, size_t len)
{
	size_t start = out->len;
	int rc = gossip_buf_put_u8(out, GOSSIP_HAS_CRC);
	if (rc == 0)
		rc = gossip_buf_put_be32(out, gossip_pack_crc32(msg, len));
	if (rc == 0)
		rc = gossip_buf_append(out, msg, len);
	if (rc < 0)
		out->len = start;
	return rc;
}

int gossip_pack_crc_check(const uint8_t *p, size_t len, const uint8_t **msg, size_t *mlen)
{
	*msg = p;
	*mlen = len;
	if (len < 5 || p[0] != GOSSIP_HAS_CRC)
		return 0;
	uint32_t want = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	if (gossip_pack_crc32(p + 5, len - 5) != want)
		return -EBADMSG;
	*msg = p + 5;
	*mlen = len - 5;
	return 1;
}

int gossip_pack_label_add(struct gossip_buf *out, const char *label, const uint8_t *msg, size_t len)
{
	size_t ll = label ? strlen(label) : 0;
	size_t start = out->len;
	int rc = 0;

	if (ll > GOSSIP_LABEL_MAX)
		return -EINVAL;
	if (ll) {
		rc = gossip_buf_put_u8(out, GOSSIP_HAS_LABEL);
		if (rc == 0)
			rc = gossip_buf_put_u8(out, (uint8_t)ll);
		if (rc == 0)
			rc = gossip_buf_append(out, label, ll);
	}
	if (rc == 0)
		rc = gossip_buf_append(out, msg, len);
	if (rc < 0)
		out->len = start;
	return rc;
}

int gossip_pack_label_strip(const uint8_t *p, size_t len, struct gossip_bytes *label,
			    const uint8_t **rest, size_t *rest_len)
{
	label->p = NULL;
	label->len = 0;
	*rest = p;
	*rest_len = len;
	if (len == 0 || p[0] != GOSSIP_HAS_LABEL)
		return 0;
	if (len < 2)
		return -ENODATA;
	size_t ll = p[1];
	if (ll < 1)
		return -EBADMSG;
	if (len - 2 < ll)
		return -ENODATA;
	label->p = p + 2;
	label->len = ll;
	*rest = p + 2 + ll;
	*rest_len = len - 2 - ll;
	return 0;
}

int gossip_pack_compress(struct gossip_buf *out, const uint8_t *msg, size_t len)
{
	size_t cap = lzw_encode_bound(len);
	uint8_t *z = malloc(cap);
	int rc;

	if (!z)
		return -ENOMEM;
	long zl = lzw_encode(msg, len, z, cap);
	if (zl < 0) {
		rc = (int)zl;
		goto out;
	}
	struct gossip_compress c = { .algo = 0, .buf = { z, (size_t)zl } };
	rc = gossip_encode_compress(out, &c);
out:
	free(z);
	return rc;
}

int gossip_pack_decompress(const uint8_t *p, size_t len, size_t max_out, struct gossip_buf *out)
{
	struct gossip_compress c;
	uint8_t *plain = NULL;
	size_t plen = 0;
	int rc = gossip_decode_compress(p, len, &c, NULL);

	if (rc < 0)
		return rc;
	if (c.algo != 0)
		return -EPROTONOSUPPORT;
	rc = lzw_decode(c.buf.p, c.buf.len, max_out, &plain, &plen);
	if (rc < 0)
		return rc;
	rc = gossip_buf_append(out, plain, plen);
	free(plain);
	return rc;
}

int gossip_pack_udp_seal(struct gossip_buf *out, const uint8_t *msg, size_t len,
			 const struct gossip_udp_opts *o)
{
	struct gossip_buf a, b;
	const uint8_t *cur = msg;
	size_t cur_len = len;
	int rc = 0;

	gossip_buf_init(&a, 0);
	gossip_buf_init(&b, 0);
	if (o->compress) {
		rc = gossip_pack_compress(&a, msg, len);
		if (rc < 0)
			goto out;
		if (a.len < len) {
			cur = a.data;
			cur_len = a.len;
		}
	}
	if (o->crc) {
		rc = gossip_pack_crc_add(&b, cur, cur_len);
		if (rc < 0)
			goto out;
		cur = b.data;
		cur_len = b.len;
	}
	if (o->kr && o->kr->n > 0) {
		struct gossip_buf *dst = cur == a.data ? &b : &a;
		struct gossip_buf sealed;
		gossip_buf_init(&sealed, 0);
		rc = gossip_crypto_udp_seal(&sealed, o->kr, o->enc_vsn, cur, cur_len, o->label);
		gossip_buf_free(dst);
		*dst = sealed;
		if (rc < 0)
			goto out;
		cur = dst->data;
		cur_len = dst->len;
	}
	rc = gossip_pack_label_add(out, o->label, cur, cur_len);
out:
	gossip_buf_free(&a);
	gossip_buf_free(&b);
	return rc;
}

static bool label_matches(struct gossip_bytes got, const char *want)
{
	return gossip_bytes_eq(got, want ? want : "");
}

int gossip_pack_udp_open(const uint8_t *pkt, size_t len, const char *label,
			 const struct gossip_keyring *kr, bool verify_incoming,
			 struct gossip_buf *scratch, const uint8_t **msg, size_t *mlen)
{
	struct gossip_bytes got;
	const uint8_t *p;
	size_t n;
	int rc = gossip_pack_label_strip(pkt, len, &got, &p, &n);

	if (rc < 0)
		return rc;
	if (!label_matches(got, label))
		return -EPERM;
	if (kr && kr->n > 0) {
		scratch->len = 0;
		/* The AAD is the label as received, which equals ours. */
		rc = gossip_crypto_open(kr, p, n, got.p, got.len, scratch);
		if (rc == 0) {
			p = scratch->data;
			n = scratch->len;
		} else if (verify_incoming || rc == -ENOMEM) {
			return rc;
		}
	}
	rc = gossip_pack_crc_check(p, n, msg, mlen);
	return rc < 0 ? rc : 0;
}

static int walk(const uint8_t *p, size_t len, size_t max_dec, gossip_walk_fn fn, void *arg, int depth)
{
	int rc = 0;

	if (len < 1)
		return -ENODATA;
	if (depth > GOSSIP_WALK_MAX_DEPTH)
		return -ELOOP;
	switch (p[0]) {
	case GOSSIP_COMPOUND: {
		struct gossip_bytes parts[GOSSIP_COMPOUND_MAX];
		size_t n, trunc;
		rc = gossip_pack_compound_split(p + 1, len - 1, parts, GOSSIP_COMPOUND_MAX, &n, &trunc);
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = walk(parts[i].p, parts[i].len, max_dec, fn, arg, depth + 1);
		return rc;
	}
	case GOSSIP_COMPRESS: {
		struct gossip_buf inner;
		gossip_buf_init(&inner, max_dec + 1);
		rc = gossip_pack_decompress(p + 1, len - 1, max_dec, &inner);
		if (rc == 0)
			rc = walk(inner.data, inner.len, max_dec, fn, arg, depth + 1);
		gossip_buf_free(&inner);
		return rc;
	}
	default:
		return fn(arg, p, len);
	}
}

int gossip_pack_walk(const uint8_t *p, size_t len, size_t max_decompress, gossip_walk_fn fn, void *arg)
{
	return walk(p, len, max_decompress, fn, arg, 0);
}

int gossip_pack_tcp_seal(struct gossip_buf *out, const uint8_t *msg, size_t len,
			 const char *label, bool compress, const struct gossip_keyring *kr,
			 int enc_vsn)
{
	struct gossip_buf z, e;
	const uint8_t *cur = msg;
	size_t cur_len = len;
	size_t ll = label ? strlen(label) : 0;
	size_t start = out->len;
	int rc = 0;

	gossip_buf_init(&z, 0);
	gossip_buf_init(&e, 0);
	if (ll > GOSSIP_LABEL_MAX)
		return -EINVAL;
	if (compress) {
		rc = gossip_pack_compress(&z, msg, len);
		if (rc < 0)
			goto out;
		cur = z.data;
		cur_len = z.len;
	}
	if (kr && kr->n > 0) {
		rc = gossip_crypto_tcp_seal(&e, kr, enc_vsn, cur, cur_len, label);
		if (rc < 0)
			goto out;
		cur = e.data;
		cur_len = e.len;
	}
	rc = gossip_pack_label_add(out, label, cur, cur_len);
out:
	if (rc < 0)
		out->len = start;
	gossip_buf_free(&z);
	gossip_buf_free(&e);
	return rc;
}

int gossip_pack_tcp_open(const uint8_t *buf, size_t len, const char *label,
			 const struct gossip_keyring *kr, bool verify_incoming,
			 struct gossip_buf *scratch, const uint8_t **msg, size_t *mlen,
			 size_t *used)
{
	struct gossip_bytes got;
	struct gossip_buf plain;
	const uint8_t *p;
	size_t n, hdr;
	int rc = gossip_pack_label_strip(buf, len, &got, &p, &n);
	bool have_keys = kr && kr->n > 0;

	*used = 0;
	if (rc < 0)
		return rc;
	if (!label_matches(got, label))
		return -EPERM;
	hdr = len - n;
	if (n < 1)
		return -ENODATA;
	gossip_buf_init(&plain, 0);
	if (p[0] == GOSSIP_ENCRYPT) {
		size_t fl = 0;
		if (!have_keys)
			return -EACCES;
		rc = gossip_crypto_tcp_open(kr, p, n, label, &plain, &fl);
		if (rc < 0)
			goto out;
		*used = hdr + fl;
		p = plain.data;
		n = plain.len;
		if (n < 1) {
			rc = -EBADMSG;
			goto out;
		}
	} else if (have_keys && verify_incoming) {
		return -EACCES;
	}
	scratch->len = 0;
	if (p[0] == GOSSIP_COMPRESS)
		rc = gossip_pack_decompress(p + 1, n - 1, GOSSIP_TCP_MAX_DECOMPRESS, scratch);
	else if (p == plain.data)
		rc = gossip_buf_append(scratch, p, n);
	if (rc < 0)
		goto out;
	if (p[0] == GOSSIP_COMPRESS || p == plain.data) {
		*msg = scratch->data;
		*mlen = scratch->len;
	} else {
		*msg = p;
		*mlen = n;
	}
out:
	gossip_buf_free(&plain);
	return rc;
}
