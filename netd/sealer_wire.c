/* The sealer's plaintext formats (sealer_wire.h). */
#include "sealer_wire.h"

#include <errno.h>
#include <string.h>

bool sw_vnet_ok(const struct virtio_net_hdr *h, size_t flen)
{
	uint8_t type = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	if (type != VIRTIO_NET_HDR_GSO_NONE && type != VIRTIO_NET_HDR_GSO_TCPV4 &&
	    type != VIRTIO_NET_HDR_GSO_TCPV6)
		return false;
	if (type == VIRTIO_NET_HDR_GSO_NONE && (h->gso_type & VIRTIO_NET_HDR_GSO_ECN))
		return false;
	if (type != VIRTIO_NET_HDR_GSO_NONE && (!h->gso_size || h->hdr_len > flen))
		return false;
	if (h->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return false;
	return !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
	       (size_t)h->csum_start + h->csum_offset + 2 <= flen;
}

int sw_frame_parse(const uint8_t *pt, size_t len, struct sw_frame *out)
{
	if (len < SW_VNI_LEN)
		return -EBADMSG;
	uint32_t word = sw_get32(pt);
	size_t hl = word & SW_F_VNET ? SW_VNET_LEN : 0;
	if ((word & ~SW_F_VNET) > 0xffffffu || len < SW_VNI_LEN + hl + SW_ETH_HLEN)
		return -EBADMSG;
	out->vni = word & 0xffffffu;
	out->vnet = hl ? (const struct virtio_net_hdr *)(const void *)(pt + SW_VNI_LEN) : NULL;
	out->frame = pt + SW_VNI_LEN + hl;
	out->frame_len = len - SW_VNI_LEN - hl;
	if (out->vnet) {
		/* the header may sit unaligned in the plaintext: check a copy */
		struct virtio_net_hdr h;
		memcpy(&h, pt + SW_VNI_LEN, sizeof(h));
		if (!sw_vnet_ok(&h, out->frame_len))
			return -EBADMSG;
	}
	return 0;
}

void sw_chunk_header(uint8_t *out, uint32_t vni, uint32_t id, unsigned idx, unsigned cnt,
		     size_t unit)
{
	sw_put32(out, (vni & 0xffffffu) | SW_F_TRAIN);
	sw_put32(out + 4, id);
	out[8] = (uint8_t)idx;
	out[9] = (uint8_t)cnt;
	out[10] = (uint8_t)(unit >> 8);
	out[11] = (uint8_t)unit;
}

int sw_chunk_parse(const uint8_t *pt, size_t len, size_t max, struct sw_chunk *out)
{
	size_t hdr = SW_VNI_LEN + SW_TRAIN_HDR;
	if (len <= hdr || (sw_get32(pt) & 0xff000000u) != SW_F_TRAIN)
		return -EBADMSG;
	out->id = sw_get32(pt + 4);
	out->idx = pt[8];
	out->cnt = pt[9];
	out->unit = (size_t)pt[10] << 8 | pt[11];
	out->data = pt + hdr;
	out->len = len - hdr;
	if (!out->cnt || out->idx >= out->cnt || out->unit < 64 || out->cnt * out->unit > max)
		return -EBADMSG;
	if (out->idx + 1 < out->cnt ? out->len != out->unit : out->len > out->unit)
		return -EBADMSG;
	return 0;
}

int sw_reasm_add(struct sw_reasm *r, uint8_t *buf, size_t cap, const struct sw_chunk *c,
		 size_t *total, uint64_t *lost)
{
	if (c->cnt * c->unit > cap || c->idx >= c->cnt)
		return -EBADMSG;
	if (!r->active || r->id != c->id) {
		if (r->active)
			(*lost)++;
		memset(r, 0, sizeof(*r));
		r->active = true;
		r->id = c->id;
		r->cnt = c->cnt;
		r->unit = c->unit;
	} else if (r->cnt != c->cnt || r->unit != c->unit) {
		return -EBADMSG;
	}
	uint8_t bit = (uint8_t)(1u << (c->idx & 7));
	if (r->got[c->idx >> 3] & bit)
		return 0;
	r->got[c->idx >> 3] |= bit;
	memcpy(buf + c->idx * c->unit, c->data, c->len);
	if (c->idx + 1 == c->cnt)
		r->last_len = c->len;
	if (++r->ngot < r->cnt)
		return 0;
	r->active = false;
	*total = (r->cnt - 1) * r->unit + r->last_len;
	return 1;
}

bool sw_csum_complete(uint8_t *f, size_t len, size_t start, size_t off)
{
	if (start >= len || off + 2 > len - start)
		return false;
	uint32_t sum = 0;
	size_t i = start;
	for (; i + 1 < len; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	if (i < len)
		sum += (uint32_t)f[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t c = (uint16_t)~sum;
	if (!c)
		c = 0xffff;   /* as the kernel does: 0 would mean "no checksum" to UDP */
	f[start + off] = (uint8_t)(c >> 8);
	f[start + off + 1] = (uint8_t)c;
	return true;
}
