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

uint32_t sw_sum16(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 1 < n; i += 2)
		sum += sw_get16(p + i);
	if (i < n)
		sum += (uint32_t)p[i] << 8;
	return sum;
}

uint16_t sw_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

bool sw_csum_complete(uint8_t *f, size_t len, size_t start, size_t off)
{
	if (start >= len || off + 2 > len - start)
		return false;
	uint16_t c = (uint16_t)~sw_fold(sw_sum16(0, f + start, len - start));
	if (!c)
		c = 0xffff;   /* as the kernel does: 0 would mean "no checksum" to UDP */
	f[start + off] = (uint8_t)(c >> 8);
	f[start + off + 1] = (uint8_t)c;
	return true;
}
