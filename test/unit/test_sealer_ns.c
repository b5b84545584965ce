/* swarm-sealer on a real kernel. Two "nodes" are network namespaces on a
 * veth pair (underlay 198.51.100.1/24 and .2/24, MTU 1500). Each node has
 * an overlay namespace (the ov-<vni> netd would make) with br0, and a
 * "container" namespace on a veth into br0 (198.18.0.2 on node A,
 * 198.18.0.3 on node B, MTU 1500 - SEALER_OVERHEAD). Each node runs a
 * sealer engine in a forked child (in the node's namespace, serving the
 * control socket; the test is its netd), which creates its veth pair
 * slt-tap0 / slt-tap0p in the overlay namespace (sealer_link.h). Checks:
 *   - a ping container A -> container B works (ARP answered by the sealer);
 *   - a UDP payload with a marker arrives at container B, and the marker
 *     is never in cleartext on the underlay (AF_PACKET capture on node A's
 *     veth; the same capture does see it when sent in clear);
 *   - a sealer with another ring (same key id, other key) cannot talk:
 *     frames are dropped as authentication failures;
 *   - a key rotation (new key added, made primary, old one removed) keeps
 *     traffic going, and the wire then carries the new key id;
 *   - a bad config is refused whole, the old one stays in force;
 *   - SIGKILL of sealer A leaves its pair; a new sealer A given the same
 *     config restores traffic;
 *   - the pair deleted under the sealer: it makes it again and traffic
 *     resumes; a TAP of the same name (an older sealer's) is replaced;
 *   - an 802.1Q-tagged frame inside the overlay crosses with its tag;
 *   - TCP crosses as trains, coalesced on receipt, and with BIG TCP the
 *     container's super-frames over 64 KB are read whole; the throughput
 *     through the sealed path vs the plain underlay is information only
 *     (SEALER_TEST_MB, default 20 MB; 0 skips it).
 * With SEALER_BIN=<path of swarm-sealer> the children exec the program
 * instead of running the engine in the forked test process.
 * Everything is made by the test (names "slt-", namespaces under a mkdtemp
 * dir) and removed in teardown, also on failure. Needs root, iproute2 and
 * a ping (busybox or iputils); exits 77 (skip) otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "frame.h"
#include "log.h"
#include "netd/datapath.h"
#include "netd/seal.h"
#include "netd/sealer.h"
#include "netd/sealer_gro.h"
#include "netns_util.h"
#include "util.h"

#define VNI 4100
#define TAP "slt-tap0"
#define IP_A "198.51.100.1"
#define IP_B "198.51.100.2"
#define CT_A "198.18.0.2"
#define CT_B "198.18.0.3"
#define MAC_A "02:42:c6:12:00:02"
#define MAC_B "02:42:c6:12:00:03"
#define MARKER "SLT-MARKER-cleartext-7d41c2"

struct node {
	char ns[128], ov[128], ct[128]; /* node, overlay, container namespaces */
	char sock[100];                 /* control socket (fits sun_path) */
	pid_t pid;                      /* sealer child, 0 = none */
	char floor[128];                /* counter floor file ("": none) */
	int64_t clock_ahead;            /* ns the child's wall clock is ahead */
	const char *self, *peer_vtep, *ct_ip, *ct_mac, *peer_ip, *peer_mac;
};

static struct {
	char dir[64];
	struct node a, b;
	const char *ip;             /* ip binary */
	const char *ping;           /* ping binary */
	bool ping_busybox;
	int cap;                    /* AF_PACKET socket on node A's underlay veth */
} fx = { .cap = -1 };

static const uint8_t K1[16] = "slt-key-one-16b";
static const uint8_t K2[32] = "slt-key-two-is-32-bytes-long-ok";
static const uint8_t K3[16] = "slt-key-other16";

/* ---- processes and namespaces ---- */

static void enter(const char *ns)
{
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		_exit(126);
	close(fd);
}

/* Runs argv in namespace ns with stdout/stderr to /dev/null unless loud;
 * returns the exit status or -1. */
static int run_in(const char *ns, char *const argv[], bool loud)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		enter(ns);
		if (!loud) {
			int nul = open("/dev/null", O_WRONLY);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `ip <words>` in ns: the formatted command is split on spaces. */
static int ip_in(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ip_in(const char *ns, const char *fmt, ...)
{
	char buf[512];
	char *argv[40];
	int n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	argv[n++] = (char *)fx.ip;
	for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && n < 38;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	int r = run_in(ns, argv, true);
	if (r != 0)
		fprintf(stderr, "ip %s: exit %d\n", fmt, r);
	return r;
}

static int ping_ok(const char *from, const char *ip)
{
	char *bb[] = { (char *)fx.ping, "ping", "-c1", "-W", "2", (char *)ip, NULL };
	char *pl[] = { (char *)fx.ping, "-c1", "-W", "2", (char *)ip, NULL };
	return run_in(from, fx.ping_busybox ? bb : pl, false);
}

/* Up to tries pings; 0 on the first answer. */
static int ping_retry(const char *from, const char *ip, int tries)
{
	for (int i = 0; i < tries; i++)
		if (ping_ok(from, ip) == 0)
			return 0;
	return -1;
}

/* ---- the sealer child ---- */

/* The forked engine's wall clock: clock_ahead ns ahead of the real one. */
static int64_t child_ahead;
static int64_t child_clock(void)
{
	return now_wall_ns() + child_ahead;
}

static void sealer_start(struct node *n)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		enter(n->ns);
		const char *bin = getenv("SEALER_BIN");
		if (bin) {
			execl(bin, bin, "--socket", n->sock, "--foreground", "--log-level", "warn",
			      (char *)NULL);
			_exit(127);
		}
		signal(SIGPIPE, SIG_IGN);
		struct ev_loop *loop = ev_loop_new(0);
		struct sealer *s;
		if (!loop || sealer_new(loop, &s) < 0)
			_exit(1);
		child_ahead = n->clock_ahead;
		if (child_ahead)
			sealer_set_wall_clock(s, child_clock);
		if (n->floor[0])
			sealer_set_floor_file(s, n->floor);
		if (sealer_listen(s, n->sock) < 0)
			_exit(1);
		ev_run(loop, 0);
		_exit(0);
	}
	n->pid = pid;
}

static void sealer_kill(struct node *n)
{
	if (n->pid <= 0)
		return;
	kill(n->pid, SIGKILL);
	waitpid(n->pid, NULL, 0);
	n->pid = 0;
	unlink(n->sock);
}

/* Sends req to n's sealer and returns its answer (NULL on failure). */
static Swarm__SealerStatus *ctl(struct node *n, const Swarm__SealerRequest *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", n->sock);
	int fd = -1;
	for (int i = 0; i < 100; i++) {   /* up to 2 s for a starting sealer */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(20000);
	}
	if (fd < 0)
		return NULL;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t len = swarm__sealer_request__get_packed_size(req);
	uint8_t *buf = xmalloc(FRAME_HDR + len);
	frame_put_header(buf, (uint32_t)len);
	swarm__sealer_request__pack(req, buf + FRAME_HDR);
	Swarm__SealerStatus *st = NULL;
	if (write(fd, buf, FRAME_HDR + len) != (ssize_t)(FRAME_HDR + len))
		goto out;
	uint8_t hdr[FRAME_HDR];
	if (recv(fd, hdr, sizeof(hdr), MSG_WAITALL) != sizeof(hdr))
		goto out;
	size_t plen = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
	free(buf);
	buf = xmalloc(plen + 1);
	if (recv(fd, buf, plen, MSG_WAITALL) != (ssize_t)plen)
		goto out;
	st = swarm__sealer_status__unpack(NULL, plen, buf);
out:
	free(buf);
	close(fd);
	return st;
}

static Swarm__SealerStatus *status_of(struct node *n)
{
	Swarm__SealerRequest req = SWARM__SEALER_REQUEST__INIT;
	Swarm__SealerStatus *st = ctl(n, &req);
	assert_non_null(st);
	return st;
}

/* Configures n with keys (ids and bytes, primary first); returns the
 * status answered. */
static bool no_trains;   /* configure() sends it */

static Swarm__SealerStatus *configure(struct node *n, uint64_t gen, size_t nkeys,
				      const uint32_t *ids, const uint8_t *const *keys,
				      const size_t *lens)
{
	Swarm__SealerKey k[4], *kp[4];
	for (size_t i = 0; i < nkeys; i++) {
		swarm__sealer_key__init(&k[i]);
		k[i].id = ids[i];
		k[i].key.data = (uint8_t *)keys[i];
		k[i].key.len = lens[i];
		kp[i] = &k[i];
	}
	Swarm__SealerNetwork net = SWARM__SEALER_NETWORK__INIT, *netp = &net;
	net.vni = VNI;
	net.netns = n->ov;
	net.tap = TAP;
	net.mtu = 1500 - SEALER_OVERHEAD;
	Swarm__SealerPeer peer = SWARM__SEALER_PEER__INIT, *peerp = &peer;
	peer.vni = VNI;
	peer.mac = (char *)n->peer_mac;
	peer.ipv4 = (char *)n->peer_ip;
	peer.vtep = (char *)n->peer_vtep;
	Swarm__SealerConfig cfg = SWARM__SEALER_CONFIG__INIT;
	cfg.generation = gen;
	cfg.self = (char *)n->self;
	cfg.n_keys = nkeys;
	cfg.keys = kp;
	cfg.n_networks = 1;
	cfg.networks = &netp;
	cfg.n_peers = 1;
	cfg.peers = &peerp;
	cfg.no_trains = no_trains;
	Swarm__SealerRequest req = SWARM__SEALER_REQUEST__INIT;
	req.config = &cfg;
	Swarm__SealerStatus *st = ctl(n, &req);
	assert_non_null(st);
	if (st->error)
		fprintf(stderr, "config refused: %s\n", st->message);
	assert_int_equal(st->error, 0);
	assert_int_equal(st->n_networks, 1);
	if (!st->networks[0]->open)
		fprintf(stderr, "tap: %s\n", st->networks[0]->error);
	assert_true(st->networks[0]->open);
	return st;
}

static void configure_ring(struct node *n, uint64_t gen, int which)
{
	static const uint32_t ids1[] = { 1 }, ids3[] = { 1 }, ids12[] = { 1, 2 },
			      ids21[] = { 2, 1 }, ids2[] = { 2 };
	static const uint8_t *const k1[] = { K1 }, *const k3[] = { K3 }, *const k12[] = { K1, K2 },
				    *const k21[] = { K2, K1 }, *const k2[] = { K2 };
	static const size_t l1[] = { 16 }, l12[] = { 16, 32 }, l21[] = { 32, 16 }, l2[] = { 32 };
	Swarm__SealerStatus *st = NULL;
	switch (which) {
	case 1: st = configure(n, gen, 1, ids1, k1, l1); break;
	case 3: st = configure(n, gen, 1, ids3, k3, l1); break;
	case 12: st = configure(n, gen, 2, ids12, k12, l12); break;
	case 21: st = configure(n, gen, 2, ids21, k21, l21); break;
	case 2: st = configure(n, gen, 1, ids2, k2, l2); break;
	default: fail();
	}
	swarm__sealer_status__free_unpacked(st, NULL);
}

/* ---- underlay capture ---- */

static void capture_open(void)
{
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int nsfd = open(fx.a.ns, O_RDONLY | O_CLOEXEC);
	assert_true(orig >= 0 && nsfd >= 0);
	assert_int_equal(setns(nsfd, CLONE_NEWNET), 0);
	fx.cap = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	sll.sll_ifindex = (int)if_nametoindex("slt-u0");
	int bound = fx.cap >= 0 && sll.sll_ifindex > 0 &&
		    bind(fx.cap, (struct sockaddr *)&sll, sizeof(sll)) == 0;
	int sz = 8 << 20;
	setsockopt(fx.cap, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	close(nsfd);
	assert_true(bound);
}

struct capture {
	int frames;                 /* frames seen */
	int sealed;                 /* UDP to SEALER_PORT */
	int marker;                 /* frames holding MARKER */
	int key_id;                 /* key id of the last sealed one, -1 none */
};

/* Reads everything captured so far. */
static struct capture capture_drain(void)
{
	struct capture c = { .key_id = -1 };
	uint8_t buf[70000];
	for (;;) {
		ssize_t n = recv(fx.cap, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			break;
		c.frames++;
		if (memmem(buf, (size_t)n, MARKER, strlen(MARKER)))
			c.marker++;
		/* Ethernet + IPv4 (ihl) + UDP to the sealer port */
		if (n >= 14 + 20 + 8 + 16 && buf[12] == 0x08 && buf[13] == 0 && buf[23] == 17) {
			size_t ihl = (size_t)(buf[14] & 15) * 4;
			const uint8_t *udp = buf + 14 + ihl;
			if ((udp[2] << 8 | udp[3]) == SEALER_PORT && (size_t)n >= 14 + ihl + 8 + 16) {
				c.sealed++;
				c.key_id = udp[8 + 1];
			}
		}
	}
	return c;
}

/* Forks child(arg, ready): it writes one byte to ready once it listens;
 * returns its pid after that byte came. */
static pid_t spawn_ready(void (*child)(const void *arg, int ready), const void *arg)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0)
		child(arg, pfd[1]);   /* exits */
	char c;
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	close(pfd[1]);
	return pid;
}

/* In namespace to (a child): exits 0 when MARKER arrives on UDP 9999
 * within 3 s. */
static void marker_receiver(const void *to, int ready)
{
	enter(to);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9999) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(2);
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(ready, "r", 1) != 1)
		_exit(2);
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	_exit(n == (ssize_t)strlen(MARKER) && !memcmp(buf, MARKER, (size_t)n) ? 0 : 1);
}

/* Sends MARKER in one UDP datagram from namespace from to ip:9999 and
 * returns 0 if a receiver in namespace to got it (to may be NULL: no
 * receiver, just send). */
static int send_marker(const char *from, const char *to, const char *ip)
{
	pid_t rcv = to ? spawn_ready(marker_receiver, to) : 0;
	pid_t snd = fork();
	if (snd == 0) {
		enter(from);
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9999) };
		inet_pton(AF_INET, ip, &sa.sin_addr);
		ssize_t n = sendto(fd, MARKER, strlen(MARKER), 0, (struct sockaddr *)&sa, sizeof(sa));
		_exit(n == (ssize_t)strlen(MARKER) ? 0 : 1);
	}
	int st;
	waitpid(snd, &st, 0);
	if (!to)
		return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
	waitpid(rcv, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- throughput (information only) ---- */

/* Bytes/s of one TCP transfer of total bytes from namespace from to
 * ip:9998 in namespace to; -1 on failure. */
/* The byte at offset o of a TCP test stream: no two 64 KB blocks, and
 * no segments within one, alike, so a merge out of order shows. */
static uint8_t pattern(size_t o)
{
	return (uint8_t)(o ^ (o >> 8) ^ (o >> 16) * 31);
}

/* Bytes/s of total bytes of TCP from namespace from to ip (in to), every
 * byte checked on arrival; -1 when it failed. */
static double tcp_rate(const char *from, const char *to, const char *ip, size_t total)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	pid_t rcv = fork();
	if (rcv == 0) {
		enter(to);
		int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9998) };
		if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0)
			_exit(2);
		if (write(pfd[1], "r", 1) != 1)
			_exit(2);
		struct timeval tv = { .tv_sec = 30 };
		setsockopt(ls, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			_exit(2);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		static uint8_t buf[1 << 16];
		size_t got = 0;
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			for (size_t i = 0; i < (size_t)n; i++)
				if (buf[i] != pattern(got + i))
					_exit(3);   /* a byte out of place: a bad merge */
			got += (size_t)n;
		}
		_exit(got == total ? 0 : 1);
	}
	char c;
	if (read(pfd[0], &c, 1) != 1)
		return -1;
	close(pfd[0]);
	close(pfd[1]);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t snd = fork();
	if (snd == 0) {
		enter(from);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9998) };
		inet_pton(AF_INET, ip, &sa.sin_addr);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(1);
		static uint8_t buf[1 << 16];
		size_t sent = 0;
		while (sent < total) {
			size_t w = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
			for (size_t i = 0; i < w; i++)
				buf[i] = pattern(sent + i);
			ssize_t n = write(fd, buf, w);
			if (n <= 0)
				_exit(1);
			sent += (size_t)n;
		}
		close(fd);
		_exit(0);
	}
	int s1, s2;
	waitpid(snd, &s1, 0);
	waitpid(rcv, &s2, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!WIFEXITED(s1) || WEXITSTATUS(s1) || !WIFEXITED(s2) || WEXITSTATUS(s2))
		return -1;
	double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return (double)total / dt;
}

/* ---- fixture ---- */

static int teardown(void **unused)
{
	(void)unused;
	sealer_kill(&fx.a);
	sealer_kill(&fx.b);
	if (fx.cap >= 0)
		close(fx.cap);
	fx.cap = -1;
	struct node *ns[] = { &fx.a, &fx.b };
	for (int i = 0; i < 2; i++) {
		/* the overlay namespace takes br0, the TAP and the container
		 * veth with it; the node namespaces the underlay pair */
		drop_netns(ns[i]->ct);
		drop_netns(ns[i]->ov);
		drop_netns(ns[i]->ns);
	}
	if (fx.dir[0])
		rm_rf(fx.dir);
	fx.dir[0] = 0;
	return 0;
}

/* Whether the kernel takes IPv4 super-frames over 64 KB (BIG TCP), as the
 * sealer probes it (sealer_gro.h). */
static bool big_tcp(const char *ns)
{
	static uint8_t buf[32768];
	ssize_t n = netns_link_get(ns, "lo", buf, sizeof(buf));
	return n > 0 && gro_big_tcp_reply(buf, (size_t)n);
}

/* rx_packets of link ifname in ns (IFLA_STATS64), 0 when unknown. */
static uint64_t rx_packets(const char *ns, const char *ifname)
{
	static uint8_t buf[32768];
	ssize_t n = netns_link_get(ns, ifname, buf, sizeof(buf));
	size_t off = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(struct ifinfomsg)));
	while (n > 0 && off + sizeof(struct rtattr) <= (size_t)n) {
		struct rtattr a;
		memcpy(&a, buf + off, sizeof(a));
		if (a.rta_len < sizeof(a) || off + a.rta_len > (size_t)n)
			break;
		if (a.rta_type == IFLA_STATS64 && a.rta_len >= RTA_LENGTH(sizeof(uint64_t))) {
			uint64_t v;
			memcpy(&v, buf + off + RTA_LENGTH(0), sizeof(v));
			return v;
		}
		off += RTA_ALIGN(a.rta_len);
	}
	return 0;
}

static int node_setup(struct node *n, const char *letter)
{
	if (make_netns(n->ns) < 0 || make_netns(n->ov) < 0 || make_netns(n->ct) < 0)
		return -1;
	if (ip_in(n->ov, "link add br0 type bridge") || ip_in(n->ov, "link set br0 up") ||
	    ip_in(n->ov, "link add slt-c%s type veth peer name eth0 netns %s", letter, n->ct) ||
	    ip_in(n->ov, "link set slt-c%s master br0 up", letter) ||
	    ip_in(n->ct, "link set eth0 address %s mtu %d gso_max_size %d", n->ct_mac,
		  1500 - SEALER_OVERHEAD, DP_SEALED_GSO_MAX) ||
	    ip_in(n->ct, "addr add %s/24 dev eth0", n->ct_ip) ||
	    ip_in(n->ct, "link set eth0 up") || ip_in(n->ct, "link set lo up"))
		return -1;
	/* the host end passes the sealer's coalesced frames whole, as netd
	 * sets it (dp_netlink.c), where the kernel can */
	char host[IFNAMSIZ];
	snprintf(host, sizeof(host), "slt-c%s", letter);
	if (big_tcp(n->ov) &&
	    netns_link_set_u32(n->ov, host, GRO_IFLA_GSO_IPV4_MAX_SIZE, GRO_MAX_LEN) < 0)
		return -1;
	/* and the container sends BIG TCP super-frames, as netd lets it */
	if (big_tcp(n->ov) &&
	    netns_link_set_u32(n->ct, "eth0", GRO_IFLA_GSO_IPV4_MAX_SIZE, DP_SEALED_GSO4_MAX) < 0)
		return -1;
	return 0;
}

static int setup(void **unused)
{
	(void)unused;
	if (geteuid() != 0) {
		fprintf(stderr, "test_sealer_ns: needs root, skipped\n");
		exit(77);
	}
	fx.ip = access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip";
	if (access("/bin/ping", X_OK) == 0 || access("/usr/bin/ping", X_OK) == 0) {
		fx.ping = access("/bin/ping", X_OK) == 0 ? "/bin/ping" : "/usr/bin/ping";
	} else {
		fx.ping = "/usr/bin/busybox";
		fx.ping_busybox = true;
	}
	if (access(fx.ip, X_OK) || access(fx.ping, X_OK)) {
		fprintf(stderr, "test_sealer_ns: needs ip and ping, skipped\n");
		exit(77);
	}
	log_init("test_sealer_ns", LOG_LVL_WARN, 0);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/slt-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	struct node *ns[] = { &fx.a, &fx.b };
	const char *l[] = { "a", "b" };
	for (int i = 0; i < 2; i++) {
		snprintf(ns[i]->ns, sizeof(ns[i]->ns), "%s/node-%s", fx.dir, l[i]);
		snprintf(ns[i]->ov, sizeof(ns[i]->ov), "%s/ov-%s", fx.dir, l[i]);
		snprintf(ns[i]->ct, sizeof(ns[i]->ct), "%s/ct-%s", fx.dir, l[i]);
		snprintf(ns[i]->sock, sizeof(ns[i]->sock), "%s/sealer-%s.sock", fx.dir, l[i]);
	}
	fx.a.self = fx.b.peer_vtep = IP_A;
	fx.b.self = fx.a.peer_vtep = IP_B;
	fx.a.ct_ip = fx.b.peer_ip = CT_A;
	fx.b.ct_ip = fx.a.peer_ip = CT_B;
	fx.a.ct_mac = fx.b.peer_mac = MAC_A;
	fx.b.ct_mac = fx.a.peer_mac = MAC_B;
	if (node_setup(&fx.a, "a") || node_setup(&fx.b, "b"))
		goto fail;
	if (ip_in(fx.a.ns, "link add slt-u0 type veth peer name slt-u1 netns %s", fx.b.ns) ||
	    ip_in(fx.a.ns, "addr add %s/24 dev slt-u0", IP_A) ||
	    ip_in(fx.a.ns, "link set slt-u0 up") ||
	    ip_in(fx.b.ns, "addr add %s/24 dev slt-u1", IP_B) ||
	    ip_in(fx.b.ns, "link set slt-u1 up") || ip_in(fx.a.ns, "link set lo up") ||
	    ip_in(fx.b.ns, "link set lo up"))
		goto fail;
	sealer_start(&fx.a);
	sealer_start(&fx.b);
	return 0;
fail:
	teardown(NULL);
	return -1;
}

/* ---- tests ---- */

static void test_ping(void **unused)
{
	(void)unused;
	configure_ring(&fx.a, 1, 1);
	configure_ring(&fx.b, 1, 1);
	/* the same config again changes nothing */
	configure_ring(&fx.a, 1, 1);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	Swarm__SealerStatus *a = status_of(&fx.a), *b = status_of(&fx.b);
	fprintf(stderr, "sealer A: tx %llu rx %llu arp %llu; B: tx %llu rx %llu arp %llu\n",
		(unsigned long long)a->tx_frames, (unsigned long long)a->rx_frames,
		(unsigned long long)a->arp_replies, (unsigned long long)b->tx_frames,
		(unsigned long long)b->rx_frames, (unsigned long long)b->arp_replies);
	assert_true(a->arp_replies >= 1);
	assert_true(a->tx_frames >= 1 && a->rx_frames >= 1);
	assert_true(b->tx_frames >= 1 && b->rx_frames >= 1);
	assert_int_equal(a->drop_auth + b->drop_auth, 0);
	assert_int_equal(a->port, SEALER_PORT);
	swarm__sealer_status__free_unpacked(a, NULL);
	swarm__sealer_status__free_unpacked(b, NULL);
}

static void test_no_cleartext(void **unused)
{
	(void)unused;
	capture_open();
	capture_drain();
	assert_int_equal(send_marker(fx.a.ct, fx.b.ct, CT_B), 0);
	struct capture c = capture_drain();
	fprintf(stderr, "underlay: %d frames, %d sealed, %d with the marker\n", c.frames, c.sealed,
		c.marker);
	assert_true(c.sealed >= 1);
	assert_int_equal(c.marker, 0);
	assert_int_equal(c.key_id, 1);
	/* the capture would have seen it in clear */
	assert_int_equal(send_marker(fx.a.ns, NULL, IP_B), 0);
	usleep(100000);
	c = capture_drain();
	assert_true(c.marker >= 1);
}

static void test_wrong_ring(void **unused)
{
	(void)unused;
	Swarm__SealerStatus *b0 = status_of(&fx.b);
	uint64_t auth0 = b0->drop_auth;
	swarm__sealer_status__free_unpacked(b0, NULL);
	configure_ring(&fx.b, 2, 3);
	assert_int_not_equal(ping_ok(fx.a.ct, CT_B), 0);
	Swarm__SealerStatus *b = status_of(&fx.b);
	fprintf(stderr, "sealer B with another ring: %llu auth failures\n",
		(unsigned long long)(b->drop_auth - auth0));
	assert_true(b->drop_auth > auth0);
	swarm__sealer_status__free_unpacked(b, NULL);
	configure_ring(&fx.b, 3, 1);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
}

static void test_rotation(void **unused)
{
	(void)unused;
	/* keymgr's order: the new key arrives first as a secondary, then
	 * becomes primary, then the old one leaves */
	configure_ring(&fx.a, 4, 12);
	configure_ring(&fx.b, 4, 12);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	configure_ring(&fx.a, 5, 21);
	configure_ring(&fx.b, 5, 21);
	capture_drain();
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	struct capture c = capture_drain();
	assert_int_equal(c.key_id, 2);
	configure_ring(&fx.a, 6, 2);
	configure_ring(&fx.b, 6, 2);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	assert_int_equal(send_marker(fx.b.ct, fx.a.ct, CT_A), 0);
}

/* A bad config is refused whole; the one in force stays. */
static void test_bad_config(void **unused)
{
	(void)unused;
	Swarm__SealerKey k = SWARM__SEALER_KEY__INIT, *kp = &k;
	k.id = 9;
	k.key.data = (uint8_t *)K1;
	k.key.len = 5;
	Swarm__SealerConfig cfg = SWARM__SEALER_CONFIG__INIT;
	cfg.generation = 99;
	cfg.self = (char *)IP_A;
	cfg.n_keys = 1;
	cfg.keys = &kp;
	Swarm__SealerRequest req = SWARM__SEALER_REQUEST__INIT;
	req.config = &cfg;
	Swarm__SealerStatus *st = ctl(&fx.a, &req);
	assert_non_null(st);
	assert_int_equal(st->error, -EINVAL);
	assert_non_null(strstr(st->message, "key 0"));
	assert_int_equal(st->generation, 6);
	assert_int_equal(st->n_networks, 1);
	swarm__sealer_status__free_unpacked(st, NULL);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
}

static void test_restart(void **unused)
{
	(void)unused;
	sealer_kill(&fx.a);
	assert_int_not_equal(ping_ok(fx.a.ct, CT_B), 0);
	/* the pair outlived its sealer, still on br0 */
	char *tap[] = { (char *)fx.ip, "link", "show", "dev", TAP, "master", "br0", NULL };
	assert_int_equal(run_in(fx.a.ov, tap, false), 0);
	sealer_start(&fx.a);
	configure_ring(&fx.a, 6, 2);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	Swarm__SealerStatus *b = status_of(&fx.b);
	assert_int_equal(b->n_vteps, 1);
	assert_true(b->vteps[0]->rx_epochs >= 2);   /* A's old and new epoch */
	swarm__sealer_status__free_unpacked(b, NULL);
}

#define VLAN_MARKER "slt-vlan-tagged"

/* Parses "xx:xx:xx:xx:xx:xx" into m. */
static void mac_parse(const char *s, uint8_t m[6])
{
	unsigned v[6];
	assert_int_equal(sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]), 6);
	for (int i = 0; i < 6; i++)
		m[i] = (uint8_t)v[i];
}

/* In container B (a child): waits up to 3 s on eth0 for the frame holding
 * VLAN_MARKER; exits 0 when it came with VLAN id 5 (the kernel gives the
 * tag apart, in PACKET_AUXDATA), 3 when without, 1 when it never came. */
static void vlan_receiver(const void *unused, int ready)
{
	(void)unused;
	enter(fx.b.ct);
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)), one = 1;
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	ll.sll_ifindex = (int)if_nametoindex("eth0");
	struct timeval tv = { .tv_sec = 3 };
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0 || write(ready, "r", 1) != 1)
		_exit(2);
	for (;;) {
		uint8_t buf[2048];
		union {
			struct cmsghdr h;
			uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
		} cb;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb,
				     .msg_controllen = sizeof(cb) };
		ssize_t n = recvmsg(fd, &mh, 0);
		if (n < 0)
			_exit(1);
		if (!memmem(buf, (size_t)n, VLAN_MARKER, strlen(VLAN_MARKER)))
			continue;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			struct tpacket_auxdata aux;
			if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
				continue;
			memcpy(&aux, CMSG_DATA(c), sizeof(aux));
			_exit((aux.tp_status & TP_STATUS_VLAN_VALID) && (aux.tp_vlan_tci & 0xfff) == 5 ? 0 : 3);
		}
		_exit(3);
	}
}

/* An 802.1Q-tagged frame inside the overlay (as a container's VLAN
 * sub-interface sends it; this kernel may have no 8021q, so it is written
 * raw): it reaches container B with its tag. The kernel hands the
 * sealer's packet socket the frame without it; the sealer puts it back
 * from PACKET_AUXDATA. */
static void test_vlan(void **unused)
{
	(void)unused;
	pid_t rcv = spawn_ready(vlan_receiver, NULL);
	pid_t snd = fork();
	if (snd == 0) {
		enter(fx.a.ct);
		uint8_t f[64] = { 0 };
		mac_parse(fx.b.ct_mac, f);
		mac_parse(fx.a.ct_mac, f + 6);
		memcpy(f + 12, "\x81\x00\x00\x05\x88\xb5", 6);   /* VLAN 5, local ethertype */
		memcpy(f + 18, VLAN_MARKER, strlen(VLAN_MARKER));
		int fd = socket(AF_PACKET, SOCK_RAW, 0);
		struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_halen = 6 };
		ll.sll_ifindex = (int)if_nametoindex("eth0");
		memcpy(ll.sll_addr, f, 6);
		for (int i = 0; i < 5; i++) {   /* a few, 200 ms apart: the first may find no ARP yet */
			if (sendto(fd, f, sizeof(f), 0, (struct sockaddr *)&ll, sizeof(ll)) < 0)
				_exit(2);
			usleep(200000);
		}
		_exit(0);
	}
	int st = -1, ss = -1;
	assert_int_equal(waitpid(snd, &ss, 0), snd);
	assert_int_equal(waitpid(rcv, &st, 0), rcv);
	assert_true(WIFEXITED(ss) && WEXITSTATUS(ss) == 0);
	assert_true(WIFEXITED(st));
	fprintf(stderr, "tagged frame at container B: %s\n",
		WEXITSTATUS(st) == 0 ? "with its tag" : WEXITSTATUS(st) == 3 ? "WITHOUT its tag" : "none");
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* An upgrade from a sealer that used a TAP of the same name: the new one
 * replaces the TAP with its veth pair and traffic resumes. */
static void test_tap_replaced(void **unused)
{
	(void)unused;
	sealer_kill(&fx.a);
	assert_int_equal(ip_in(fx.a.ov, "link del dev %s", TAP), 0);
	assert_int_equal(ip_in(fx.a.ov, "tuntap add dev %s mode tap", TAP), 0);
	assert_int_equal(ip_in(fx.a.ov, "link set %s master br0 up", TAP), 0);
	sealer_start(&fx.a);
	configure_ring(&fx.a, 8, 2);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	char *peer[] = { (char *)fx.ip, "link", "show", "dev", TAP "p", "type", "veth", NULL };
	char *tap[] = { (char *)fx.ip, "link", "show", "dev", TAP, "master", "br0", "type", "veth", NULL };
	assert_int_equal(run_in(fx.a.ov, peer, false), 0);
	assert_int_equal(run_in(fx.a.ov, tap, false), 0);
}

/* A wall clock set back across a restart: sealer A first runs with a
 * clock an hour ahead (so B has seen counters an hour in the future),
 * then restarts with the true clock. Its counter floor file makes it
 * start above what B has seen: traffic resumes at once instead of being
 * dropped as replays for an hour. Without the floor file it is dropped. */
static void test_clock_set_back(void **unused)
{
	(void)unused;
	if (getenv("SEALER_BIN")) {
		skip(); /* the clock is set in the forked engine only */
		return;
	}
	const int64_t hour = INT64_C(3600000000000);
	sealer_kill(&fx.a);
	snprintf(fx.a.floor, sizeof(fx.a.floor), "%s/a.floor", fx.dir);
	unlink(fx.a.floor);
	fx.a.clock_ahead = hour;
	sealer_start(&fx.a);
	configure_ring(&fx.a, 7, 2);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	/* the reservation on disk is above the clock an hour ahead */
	char *text = NULL;
	size_t len = 0;
	uint64_t floor = 0;
	assert_int_equal(file_read_all(fx.a.floor, 64, &text, &len), 0);
	assert_int_equal(seal_floor_parse(text, len, &floor), 0);
	free(text);
	assert_true(floor > (uint64_t)(now_wall_ns() + hour));

	/* back to the true clock, the floor file kept: B takes A's frames */
	sealer_kill(&fx.a);
	fx.a.clock_ahead = 0;
	sealer_start(&fx.a);
	configure_ring(&fx.a, 8, 2);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);

	/* the same without the floor file: B drops A's frames as replays */
	sealer_kill(&fx.a);
	fx.a.floor[0] = '\0';
	sealer_start(&fx.a);
	configure_ring(&fx.a, 9, 2);
	Swarm__SealerStatus *b0 = status_of(&fx.b);
	uint64_t replays0 = b0->drop_replay;
	swarm__sealer_status__free_unpacked(b0, NULL);
	assert_int_not_equal(ping_retry(fx.a.ct, CT_B, 2), 0);
	Swarm__SealerStatus *b1 = status_of(&fx.b);
	assert_true(b1->drop_replay > replays0);
	swarm__sealer_status__free_unpacked(b1, NULL);

	/* leave a working pair: B forgets A when B restarts */
	sealer_kill(&fx.b);
	sealer_start(&fx.b);
	configure_ring(&fx.b, 10, 2);
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
}

/* The pair deleted under the running sealer (as when netd remakes the
 * network's namespace): the sealer sees its fd fail, reopens a new TAP on
 * br0 within its retry period, and traffic resumes. */
static void test_tap_lost(void **unused)
{
	(void)unused;
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 3), 0);
	assert_int_equal(ip_in(fx.a.ov, "link del dev %s", TAP), 0);
	/* ping until it answers again: about SEALER_RETRY_S, bounded at 10 tries */
	assert_int_equal(ping_retry(fx.a.ct, CT_B, 10), 0);
	char *tap[] = { (char *)fx.ip, "link", "show", "dev", TAP, "master", "br0", NULL };
	assert_int_equal(run_in(fx.a.ov, tap, false), 0);
	Swarm__SealerStatus *a = status_of(&fx.a);
	assert_int_equal(a->n_networks, 1);
	assert_true(a->networks[0]->open);
	swarm__sealer_status__free_unpacked(a, NULL);
}

static void test_throughput(void **unused)
{
	(void)unused;
	const char *mb = getenv("SEALER_TEST_MB");
	size_t total = (size_t)(mb ? atoi(mb) : 20) << 20;
	if (!total)
		skip();
	uint64_t pk0 = rx_packets(fx.b.ct, "eth0");
	double sealed = tcp_rate(fx.a.ct, fx.b.ct, CT_B, total);
	uint64_t pk = rx_packets(fx.b.ct, "eth0") - pk0;
	double plain = tcp_rate(fx.a.ns, fx.b.ns, IP_B, total);
	fprintf(stderr, "throughput, %zu MB over TCP: sealed %.1f MB/s, plain veth %.1f MB/s\n",
		total >> 20, sealed / 1e6, plain / 1e6);
	assert_true(sealed > 0);
	Swarm__SealerStatus *a = status_of(&fx.a), *b = status_of(&fx.b);
	fprintf(stderr, "sealer A: %llu trains sent; B: %llu whole, %llu lost, %llu frames "
		"coalesced into others; too big %llu\n",
		(unsigned long long)a->trains_tx, (unsigned long long)b->trains_rx,
		(unsigned long long)b->trains_lost, (unsigned long long)b->coalesced,
		(unsigned long long)a->drop_too_big);
	/* TCP super-frames crossed as trains (the TAPs' TSO offload), none
	 * was too big for one, and they arrived whole */
	assert_true(a->trains_tx > 0);
	assert_true(b->trains_rx > 0);
	assert_int_equal(a->drop_too_big, 0);
	/* B found several in one batch and wrote them as one (sealer_gro.h),
	 * every byte in its place (tcp_rate checks them), and they reached
	 * the container whole: a packet per write, not per segment. Without
	 * BIG TCP two trains of up to 62000 bytes cannot pair below 64 KB. */
	fprintf(stderr, "B's container took %llu packets for %zu segments; coalescing below %llu\n",
		(unsigned long long)pk, total / (1500 - SEALER_OVERHEAD - 52),
		(unsigned long long)b->coalesce_max);
	if (b->coalesce_max > GRO_MAX_LEGACY) {
		assert_true(b->coalesced > 0);
		assert_true(pk < total / (1500 - SEALER_OVERHEAD - 52) / 4);
	}
	/* With BIG TCP, A read the container's super-frames over 64 KB whole
	 * through its veth pair (sealer_link.h): a TAP would have had the
	 * kernel cut them to 64 KB first. */
	fprintf(stderr, "sealer A: %llu bytes per train\n",
		(unsigned long long)(a->tx_bytes / (a->trains_tx ? a->trains_tx : 1)));
	if (a->coalesce_max > GRO_MAX_LEGACY)
		assert_true(a->tx_bytes / a->trains_tx > GRO_MAX_LEGACY);
	fprintf(stderr, "sealer A: tx %llu frames %llu bytes, drops: tx %llu; B: rx %llu frames, "
		"drops: auth %llu replay %llu tx %llu\n",
		(unsigned long long)a->tx_frames, (unsigned long long)a->tx_bytes,
		(unsigned long long)a->drop_tx_error, (unsigned long long)b->rx_frames,
		(unsigned long long)b->drop_auth, (unsigned long long)b->drop_replay,
		(unsigned long long)b->drop_tx_error);
	swarm__sealer_status__free_unpacked(a, NULL);
	swarm__sealer_status__free_unpacked(b, NULL);
}

/* Trains off (lossy underlays): TCP still crosses, segmented by the
 * kernel before the TAP, each segment sealed alone; no train is sent.
 * Back on, trains resume. */
static void test_no_trains(void **unused)
{
	(void)unused;
	no_trains = true;
	configure_ring(&fx.a, 7, 2);
	configure_ring(&fx.b, 7, 2);
	Swarm__SealerStatus *a0 = status_of(&fx.a);
	double rate = tcp_rate(fx.a.ct, fx.b.ct, CT_B, (size_t)4 << 20);
	Swarm__SealerStatus *a1 = status_of(&fx.a);
	fprintf(stderr, "trains off: 4 MB over TCP at %.1f MB/s in %llu frames, %llu trains\n",
		rate / 1e6, (unsigned long long)(a1->tx_frames - a0->tx_frames),
		(unsigned long long)(a1->trains_tx - a0->trains_tx));
	assert_true(rate > 0);
	assert_int_equal(a1->trains_tx, a0->trains_tx);
	assert_true(a1->tx_frames - a0->tx_frames > (4u << 20) / 1500);
	no_trains = false;
	configure_ring(&fx.a, 8, 2);
	configure_ring(&fx.b, 8, 2);
	assert_true(tcp_rate(fx.a.ct, fx.b.ct, CT_B, (size_t)4 << 20) > 0);
	Swarm__SealerStatus *a2 = status_of(&fx.a);
	assert_true(a2->trains_tx > a1->trains_tx);
	swarm__sealer_status__free_unpacked(a0, NULL);
	swarm__sealer_status__free_unpacked(a1, NULL);
	swarm__sealer_status__free_unpacked(a2, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_no_cleartext),
		cmocka_unit_test(test_wrong_ring),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_clock_set_back),
		cmocka_unit_test(test_tap_lost),
		cmocka_unit_test(test_tap_replaced),
		cmocka_unit_test(test_vlan),
		cmocka_unit_test(test_throughput),
		cmocka_unit_test(test_no_trains),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
