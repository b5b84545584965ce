/* swarm-sealer's link into an encrypted network's namespace: a veth pair,
 * one end (NAME) a port of br0, the other (NAME "p", sealer_link_peer)
 * read and written by the sealer through an AF_PACKET socket with vnet
 * headers; offloads a vnet header cannot describe are off on NAME. Why not a TAP: a TAP takes TCP super-frames of at most 64 KB
 * (its tso_max_size), so a container's BIG TCP frames (up to 256 KB, Linux
 * 6.3) would be cut into software segments before the sealer sees them;
 * a veth passes them whole, and the sealer reads and seals 3-4 times fewer
 * frames per byte.
 *
 * Every function but sealer_link_peer works in the caller's current
 * network namespace (the sealer enters the network's first). Both ends
 * carry the alias SEALER_LINK_ALIAS, by which netd tells them from
 * container legs. Return 0 or -errno; *what (when not NULL) names the
 * failed step. */
#ifndef SWARM_SEALER_LINK_H
#define SWARM_SEALER_LINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define SEALER_LINK_ALIAS "swarm-sealer"

/* Whether the kernel takes IPv4 super-frames over 64 KB (BIG TCP, Linux
 * 6.3): it names IFLA_GSO_IPV4_MAX_SIZE for lo (sealer_gro.h
 * gro_big_tcp_reply). */
bool sealer_link_big_tcp(void);

/* The sealer's end of the pair named name (name and "p", cut to fit). */
void sealer_link_peer(const char *name, char peer[IF_NAMESIZE]);

/* Makes the pair exist and be set: created when missing (a link of that
 * name without its peer, as the TAP of an older sealer, is deleted
 * first); both ends up, with mtu (0: the kernel's), gso_ipv4_max_size
 * gso4 (0: left; older kernels ignore it) and no IPv6 address; name on
 * br0, passing super-frames of at most segs segments (1: the kernel
 * segments them before the sealer, see sealer_link_segs; a kernel that
 * cannot change it on a live link, before 5.19, keeps what it has).
 * Needs Linux 4.20 (PACKET_IGNORE_OUTGOING). */
int sealer_link_ensure(const char *name, uint32_t mtu, uint32_t gso4, uint32_t segs,
		       const char **what);

/* Sets gso_max_segs of name (the br0 end). */
int sealer_link_segs(const char *name, uint32_t segs);

/* Deletes the pair (both ends go together); 0 when it is not there. */
int sealer_link_delete(const char *name);

/* A non-blocking AF_PACKET socket on name's peer: every frame br0 sends
 * to the pair is read with a struct virtio_net_hdr before it (native
 * byte order), and what is written the same way goes to br0; frames the
 * peer itself sends are not read back; a frame's VLAN tag, which the
 * kernel takes out of it, comes in a PACKET_AUXDATA message. bufsz: its
 * receive and send buffers (forced). */
int sealer_link_socket(const char *name, int bufsz, const char **what);

#endif
