/* swarm-sealer's engine: the userspace data path of encrypted overlay
 * networks (this kernel has no ESP). One engine per node, one libev loop,
 * one thread.
 *
 * Per network, a veth pair inside the network's namespace (sealer_link.h)
 * is the bridge port where the kernel VXLAN device would be: one end on
 * br0, the other read and written by the sealer through an AF_PACKET
 * socket (the sealer makes the pair if missing and sets it; the namespace
 * is entered only for that, then left). Below, "the link" is that socket.
 * A frame read from the link goes to the vtep of the peer owning its
 * destination MAC; broadcast and multicast go to every vtep of the
 * network, except ARP requests for a known peer IP, which the sealer
 * answers itself into the link (proxy ARP, like the kernel path's
 * neighbour entries). Unknown unicast is dropped.
 *
 * Wire format: one UDP datagram from self:port to vtep:port per frame,
 * holding seal_tx_seal(plaintext) (seal.h: 16-byte header, ciphertext,
 * 16-byte tag), or a train of them for a super-frame (below), where
 * plaintext = VNI word (4 bytes, big endian: the VNI
 * in the low 24 bits; bit 31 set = a vnet header follows; the other bits
 * 0) [|| struct virtio_net_hdr, 10 bytes, little endian] || the Ethernet
 * frame (from its destination MAC, no FCS).
 *
 * Offload: the links carry vnet headers, so the kernel hands over a
 * container's TCP super-frames (up to its veth's gso_max_size, which netd
 * sets to DP_SEALED_GSO_MAX on encrypted networks, and for IPv4 with BIG
 * TCP its gso_ipv4_max_size, DP_SEALED_GSO4_MAX: 256 KB) in one read. Such
 * a plaintext (with its vnet header: GSO type and size, partial checksum
 * offsets) is sealed once as a train (seal.h: seal_tx_train): its sealed
 * bytes cut into datagrams, every one but the last exactly as large as
 * the underlay MTU allows (MTU - 28), sent in UDP_SEGMENT calls of up to
 * 64 KB each. The receiver (UDP_GRO, or datagram by datagram)
 * gathers one train at a time per sender (seal_train_add), opens it once
 * and writes it into its link with the header; the kernel delivers it as
 * one. A train missing a datagram is abandoned when the next one starts.
 * No IP fragments. One GCM pass per super-frame, not per datagram: the
 * per-call cost of an EVP seal was as much as sealing 1.4 KB. Every
 * other frame has its partial checksum finished here and travels alone
 * without the header, so its overhead stays SEALER_OVERHEAD.
 * The default
 * port is SEALER_PORT (4793/udp): the kernel VXLAN sockets hold 4789, and
 * a sealed packet sent to 4789 by mistake is dropped by the kernel (the
 * VXLAN I flag is clear in SEAL_MAGIC).
 *
 * MTU: per inner IP packet the underlay carries SEALER_OVERHEAD (78)
 * bytes more: outer IPv4 20 + UDP 8 + seal header 16 + VNI 4 + inner
 * Ethernet 14 + tag 16. So containers need MTU <= underlay MTU - 78
 * (kernel VXLAN: - 50); bigger packets are fragmented by the underlay's
 * IP layer (they still work, slowly). SealerNetwork.mtu sets the link's.
 *
 * Keys: the ring of the config (primary first). Every vtep direction has
 * its own seal_tx (sealing with the primary) and seal_rx (opening with
 * any ring key); a ring change applies at once (seal_tx_set_key), a vtep
 * seals SEAL_REKEY_SOFT frames per epoch before it re-keys. Frames are
 * accepted only from vteps named in the peers (others are counted as
 * unknown senders without any crypto work).
 *
 * Restart: killing the process leaves the veth pairs on their bridges; a
 * new process given the same config opens them again (a TAP left by an
 * older sealer under the same name is replaced), draws new
 * epochs (counters start at the wall clock, so receivers accept them at
 * once, see seal.h) and traffic resumes. A network removed from the
 * config has its pair deleted. */
#ifndef SWARM_SEALER_H
#define SWARM_SEALER_H

#include <ev.h>
#include <stddef.h>

#include "sealer.pb-c.h"

#define SEALER_PORT 4793
#define SEALER_OVERHEAD (20 + 8 + 16 + 4 + 14 + 16)
#define SEALER_BATCH 32          /* datagrams per recvmmsg / sendmmsg */
#define SEALER_MAX_KEYS 8        /* ring keys kept (keymgr sends 3) */
#define SEALER_RETRY_S 2.0       /* networks whose link failed are retried this often */

struct sealer;

/* A new engine on loop with an empty config (nothing open). 0 or -errno. */
int sealer_new(struct ev_loop *loop, struct sealer **out);
/* Stops and frees everything; the links stay. NULL: no-op. */
void sealer_free(struct sealer *s);

/* Keeps the counter floor (seal.h) in the file at path: reads it (a
 * missing or unreadable file counts as 0, logged), then writes a
 * reservation above the clock, and again whenever due. Call before the
 * first config. 0, or -EIO when the reservation could not be written (the
 * engine runs on, retrying; logged). */
int sealer_set_floor_file(struct sealer *s, const char *path);
/* Replaces the wall clock (ns; now_wall_ns by default): for tests. */
void sealer_set_wall_clock(struct sealer *s, int64_t (*wall)(void));
/* Coalesced writes into the links (sealer_gro.h) below max bytes; 0
 * writes every frame alone. Probed at sealer_new: for tests. */
void sealer_set_coalescing(struct sealer *s, size_t max);

/* Replaces the desired state with cfg, idempotently. The config is
 * checked whole first: on a bad one nothing changes, -EINVAL is returned
 * and err[errlen] says why. A new self address or port rebinds the UDP
 * socket (-errno if that fails: the old socket is kept). Links that cannot
 * be opened do not fail the call: their network is retried every
 * SEALER_RETRY_S and its status says why. */
int sealer_apply(struct sealer *s, const Swarm__SealerConfig *cfg, char *err, size_t errlen);

/* Fills st (initialized by the caller) with the counters and per-network
 * and per-vtep state; everything added is malloc-owned by st (free with
 * sealer_status_clear). */
void sealer_status(const struct sealer *s, Swarm__SealerStatus *st);
/* Frees what sealer_status added to st and re-initializes it. */
void sealer_status_clear(Swarm__SealerStatus *st);

/* Serves the control protocol (proto/sealer.proto) on a Unix socket at
 * path (mode 0600, root or our uid only). Clients come and go; the
 * config stays. 0 or -errno. */
int sealer_listen(struct sealer *s, const char *path);

#endif
