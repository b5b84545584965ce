/* swarm-sealer's veth pair and packet socket (sealer_link.h), over raw
 * rtnetlink: a few fixed requests, two attributes of which (IPv4 GSO size,
 * address generation mode inside AF_SPEC) libnl-route has no setter for. */
#include "sealer_link.h"

#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/veth.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sealer_gro.h"   /* GRO_IFLA_GSO_IPV4_MAX_SIZE */

/* Packet sockets give and take vnet headers in the host's byte order, and
 * the sealer carries them between nodes little endian (sealer.h). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vnet headers are sent little endian");

/* One request being built: header, ifinfomsg, attributes. */
struct req {
	union {
		struct nlmsghdr n;
		uint8_t buf[1024];
	};
};

static struct ifinfomsg *req_init(struct req *q, int type, int flags, int index)
{
	memset(q, 0, sizeof(*q));
	q->n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	q->n.nlmsg_type = (uint16_t)type;
	q->n.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	struct ifinfomsg *i = NLMSG_DATA(&q->n);
	i->ifi_family = AF_UNSPEC;
	i->ifi_index = index;
	return i;
}

/* Appends an attribute; returns it (for nesting) or NULL when full. */
static struct rtattr *put(struct req *q, int type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(q->n.nlmsg_len);
	if (at + RTA_SPACE(len) > sizeof(q->buf))
		return NULL;
	struct rtattr *a = (struct rtattr *)(q->buf + at);
	a->rta_type = (uint16_t)type;
	a->rta_len = (uint16_t)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	q->n.nlmsg_len = (uint32_t)(at + RTA_SPACE(len));
	return a;
}

static bool put_u32(struct req *q, int type, uint32_t v)
{
	return put(q, type, &v, sizeof(v)) != NULL;
}

static bool put_str(struct req *q, int type, const char *s)
{
	return put(q, type, s, strlen(s) + 1) != NULL;
}

/* Closes the nest a: its length runs to the end of the message. */
static void nest_end(struct req *q, struct rtattr *a)
{
	a->rta_len = (uint16_t)(q->buf + q->n.nlmsg_len - (uint8_t *)a);
}

/* Sends q and waits for the kernel's answer: 0 or its -errno. With ans,
 * the message before the answer (a GET's reply) is copied to ans[cap] and
 * its length put in *alen (0: none, or longer than cap). */
static int talk_answer(struct req *q, uint8_t *ans, size_t cap, size_t *alen)
{
	if (alen)
		*alen = 0;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct timeval tv = { .tv_sec = 5 };   /* the kernel always answers; never hang on it */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	int r = 0;
	if (sendto(fd, q->buf, q->n.nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k)) < 0)
		r = -errno;
	while (!r) {
		union {
			struct nlmsghdr n;
			uint8_t b[32768];   /* a link's reply, stats and all */
		} a;
		ssize_t n = recv(fd, a.b, sizeof(a.b), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n >= (ssize_t)NLMSG_HDRLEN && a.n.nlmsg_type != NLMSG_ERROR && ans &&
		    (size_t)n <= cap) {
			memcpy(ans, a.b, (size_t)n);
			*alen = (size_t)n;
		}
		if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || a.n.nlmsg_type != NLMSG_ERROR)
			continue;   /* not our answer */
		const struct nlmsgerr *e = NLMSG_DATA(&a.n);
		r = e->error ? e->error : 1;
	}
	close(fd);
	return r == 1 ? 0 : r;
}

static int talk(struct req *q)
{
	return talk_answer(q, NULL, 0, NULL);
}

bool sealer_link_big_tcp(void)
{
	struct req q;
	req_init(&q, RTM_GETLINK, 0, 1);   /* lo: ifindex 1 in every namespace */
	size_t cap = 32768, n = 0;
	uint8_t *ans = malloc(cap);
	bool big = ans && talk_answer(&q, ans, cap, &n) == 0 && gro_big_tcp_reply(ans, n);
	free(ans);
	return big;
}

void sealer_link_peer(const char *name, char peer[IF_NAMESIZE])
{
	snprintf(peer, IF_NAMESIZE, "%.*sp", IF_NAMESIZE - 2, name);
}

/* Offloads the br0 end must not have: what a packet socket cannot describe
 * in a vnet header (SCTP, fraglist and tunnel GSO always; UDP GSO before
 * Linux 6.2; it would drop such a frame). Turned off, the kernel segments
 * before the frame reaches the sealer, as it did for the TAP, which never
 * offered them. (VLAN tags come apart from the frame whatever the
 * offloads: the sealer puts them back from PACKET_AUXDATA.) */
static const char *const offloads_off[] = {
	"tx-udp-segmentation", "tx-sctp-segmentation", "tx-gso-list", "tx-gso-partial",
	"tx-gre-segmentation", "tx-gre-csum-segmentation", "tx-ipxip4-segmentation",
	"tx-ipxip6-segmentation", "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation",
	"tx-tunnel-remcsum-segmentation", "tx-esp-segmentation",
};

/* Turns offloads_off off on name (SIOCETHTOOL: the kernel's feature names,
 * those it does not know skipped). 0 or -errno. */
static int features_off(const char *name)
{
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	struct {
		struct ethtool_sset_info h;
		uint32_t n;
	} info = { .h = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_FEATURES } };
	struct ethtool_gstrings *names = NULL;
	struct ethtool_sfeatures *set = NULL;
	int r = 0;
	ifr.ifr_data = (void *)&info;
	if (ioctl(sk, SIOCETHTOOL, &ifr) < 0) {
		r = -errno;
		goto out;
	}
	if (!info.h.sset_mask) {
		r = -EOPNOTSUPP;
		goto out;
	}
	uint32_t n = info.n, blocks = (n + 31) / 32;
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	set = calloc(1, sizeof(*set) + blocks * sizeof(set->features[0]));
	if (!names || !set) {
		r = -ENOMEM;
		goto out;
	}
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_FEATURES;
	names->len = n;
	ifr.ifr_data = (void *)names;
	if (ioctl(sk, SIOCETHTOOL, &ifr) < 0) {
		r = -errno;
		goto out;
	}
	set->cmd = ETHTOOL_SFEATURES;
	set->size = blocks;
	for (uint32_t i = 0; i < n; i++) {
		const char *f = (const char *)names->data + (size_t)i * ETH_GSTRING_LEN;
		for (size_t k = 0; k < sizeof(offloads_off) / sizeof(offloads_off[0]); k++)
			if (strncmp(f, offloads_off[k], ETH_GSTRING_LEN) == 0)
				set->features[i / 32].valid |= 1u << (i % 32);   /* requested 0: off */
	}
	ifr.ifr_data = (void *)set;
	if (ioctl(sk, SIOCETHTOOL, &ifr) < 0)
		r = -errno;
out:
	free(names);
	free(set);
	close(sk);
	return r;
}

/* Sets one end: alias, MTU, IPv4 GSO size, and for the br0 end its
 * master, segment limit and offloads (master 0: not the br0 end). */
static int end_set(const char *name, uint32_t mtu, uint32_t gso4, int master, uint32_t segs)
{
	int idx = (int)if_nametoindex(name);
	if (!idx)
		return -ENODEV;
	struct req q;
	req_init(&q, RTM_NEWLINK, 0, idx);
	bool ok = put_str(&q, IFLA_IFALIAS, SEALER_LINK_ALIAS) &&
		  (!mtu || put_u32(&q, IFLA_MTU, mtu)) &&
		  (!gso4 || put_u32(&q, GRO_IFLA_GSO_IPV4_MAX_SIZE, gso4)) &&
		  (!master || put_u32(&q, IFLA_MASTER, (uint32_t)master));
	if (!ok)
		return -ENOBUFS;
	int r = talk(&q);
	if (r < 0)
		return r;
	/* Apart: kernels before 5.19 set gso_max_segs only at creation. Such
	 * a kernel passes super-frames whatever trains say. */
	if (master && (r = sealer_link_segs(name, segs)) < 0 && r != -EOPNOTSUPP && r != -EINVAL)
		return r;
	if (master && (r = features_off(name)) < 0)
		return r;
	/* No IPv6 link-local address: the sealer's end would send router
	 * and neighbour solicitations into the network. Best effort: a
	 * kernel without IPv6 has nothing to switch off. */
	req_init(&q, RTM_NEWLINK, 0, idx);
	struct rtattr *af = put(&q, IFLA_AF_SPEC, NULL, 0);
	struct rtattr *in6 = af ? put(&q, AF_INET6, NULL, 0) : NULL;
	uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
	if (in6 && put(&q, IFLA_INET6_ADDR_GEN_MODE, &mode, 1)) {
		nest_end(&q, in6);
		nest_end(&q, af);
		talk(&q);
	}
	struct ifinfomsg *i = req_init(&q, RTM_NEWLINK, 0, idx);
	i->ifi_flags = IFF_UP;
	i->ifi_change = IFF_UP;
	return talk(&q);
}

/* The pair; name's segment limit set at creation too, where every kernel
 * takes it (before 5.19 a live link's cannot change). */
static int create(const char *name, const char *peer, uint32_t mtu, uint32_t segs)
{
	struct req q;
	req_init(&q, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	if (!put_str(&q, IFLA_IFNAME, name) || (mtu && !put_u32(&q, IFLA_MTU, mtu)) ||
	    !put_u32(&q, IFLA_GSO_MAX_SEGS, segs))
		return -ENOBUFS;
	struct rtattr *li = put(&q, IFLA_LINKINFO, NULL, 0);
	if (!li || !put_str(&q, IFLA_INFO_KIND, "veth"))
		return -ENOBUFS;
	struct rtattr *data = put(&q, IFLA_INFO_DATA, NULL, 0);
	struct ifinfomsg pi = { .ifi_family = AF_UNSPEC };
	struct rtattr *pa = data ? put(&q, VETH_INFO_PEER, &pi, sizeof(pi)) : NULL;
	if (!pa || !put_str(&q, IFLA_IFNAME, peer) || (mtu && !put_u32(&q, IFLA_MTU, mtu)))
		return -ENOBUFS;
	nest_end(&q, pa);
	nest_end(&q, data);
	nest_end(&q, li);
	return talk(&q);
}

int sealer_link_delete(const char *name)
{
	int idx = (int)if_nametoindex(name);
	if (!idx)
		return 0;
	struct req q;
	req_init(&q, RTM_DELLINK, 0, idx);
	int r = talk(&q);
	return r == -ENODEV ? 0 : r;
}

int sealer_link_ensure(const char *name, uint32_t mtu, uint32_t gso4, uint32_t segs,
		       const char **what)
{
	char peer[IF_NAMESIZE];
	sealer_link_peer(name, peer);
	const char *w = "";
	int r = 0;
	if (if_nametoindex(name) && !if_nametoindex(peer)) {
		w = "deleting the old link";
		r = sealer_link_delete(name);
	}
	if (!r && !if_nametoindex(name)) {
		w = "creating the veth pair";
		r = create(name, peer, mtu, segs);
	}
	int br = (int)if_nametoindex("br0");
	if (!r && !br) {
		w = "br0";
		r = -ENODEV;
	}
	if (!r) {
		w = "setting the sealer's end";
		r = end_set(peer, mtu, gso4, 0, 0);
	}
	if (!r) {
		w = "attaching to br0";
		r = end_set(name, mtu, gso4, br, segs);
	}
	if (what)
		*what = w;
	return r;
}

int sealer_link_segs(const char *name, uint32_t segs)
{
	int idx = (int)if_nametoindex(name);
	if (!idx)
		return -ENODEV;
	struct req q;
	req_init(&q, RTM_NEWLINK, 0, idx);
	return put_u32(&q, IFLA_GSO_MAX_SEGS, segs) ? talk(&q) : -ENOBUFS;
}

int sealer_link_socket(const char *name, int bufsz, const char **what)
{
	char peer[IF_NAMESIZE];
	sealer_link_peer(name, peer);
	const char *unused;
	if (!what)
		what = &unused;
	int idx = (int)if_nametoindex(peer);
	if (!idx) {
		*what = "the sealer's end";
		return -ENODEV;
	}
	/* protocol 0 until bound: no frame of another link gets in between */
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*what = "AF_PACKET socket";
		return -errno;
	}
	int one = 1;
	struct sockaddr_ll ll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = idx,
	};
	const char *w = NULL;
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
		w = "PACKET_VNET_HDR";
	else if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
		w = "PACKET_IGNORE_OUTGOING";
	else if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
		w = "PACKET_AUXDATA";
	else if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)) < 0 ||
		 setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		w = "socket buffers";
	else if (bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		w = "binding to the sealer's end";
	if (w) {
		int e = -errno;
		close(fd);
		*what = w;
		return e;
	}
	return fd;
}
