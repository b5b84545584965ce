/* The nftables load-balancing provider on a real kernel. A "bridge"
 * namespace (lbt-br, bridge lbt-br0 at 198.51.100.1/24, forwarding on)
 * joins a client (lbt-client, .2) and three backends (lbt-b1..3, .11-.13)
 * by veth pairs. Each backend runs a TCP server on port 80 (a child of the
 * test) that answers every connection with "bN <peer address>" and then
 * echoes. The client routes the VIP range 198.18.0.0/15 via .1; the
 * provider works in the client's namespace, so the VIP 198.18.0.100 is
 * balanced in the client's own output path.
 *
 * Checks: round robin over both backends; ping VIP answers; an update of
 * the backend set is atomic (connections made while it is replaced over and
 * over all succeed, then only the new set answers); an established
 * connection survives updates that remove another backend and, draining,
 * its own; lb_conntrack_flush then makes it reset instead of hang; no
 * backends rejects at once; the routing mesh (a published port in the
 * bridge namespace, masqueraded); a restarted provider reads its services
 * back, applies nothing, removes a stale one and leaves a foreign table
 * alone; deleting every service; services with published ports only
 * (no vips element, read back complete, nothing to apply again, a VIP
 * service losing its VIP); keep_source in a load-balancer namespace (no
 * masquerade: the backend sees the client; the skeleton is recognised
 * across a restart and switching either way takes effect). The IPVS
 * provider is probed and skipped with its reason when the kernel has no
 * ip_vs.
 *
 * Every namespace, link, process and table is made by the test (names
 * start with "lbt-"), inside namespaces it made; teardown kills the
 * servers and removes the namespaces, also after a failure. Needs root;
 * exits 77 with a reason otherwise. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lbd/lb.h"
#include "log.h"
#include "util.h"
#include "netns_util.h"

#define IP "/usr/sbin/ip"
#define NFT "/usr/sbin/nft"
#define VIP "198.18.0.100"
#define BR_ADDR "198.51.100.1"
#define PREFIX "lbt-"
#define TABLE "lbt-swarm_lb"
#define NBACK 3

/* Everything the test made, for teardown. */
struct fixture {
	char dir[64];                  /* mkdtemp root */
	char br[128], client[128];     /* namespace files */
	char lb[128];                  /* test_keep_source's namespace, "" when none */
	char back[NBACK][128];
	pid_t servers[NBACK];          /* server processes (0 = none) */
	struct lb_provider *p;         /* provider in the client namespace */
	struct lb_provider *mesh;      /* provider in the bridge namespace */
	int conn;                      /* a held connection, or -1 */
	const char *ping;              /* ping binary */
	bool ping_busybox;             /* run it as "busybox ping" */
};

static struct fixture fx = { .conn = -1 };

static const char *const back_ip[NBACK] = { "198.51.100.11", "198.51.100.12", "198.51.100.13" };

/* ---- processes and namespaces ---- */

/* Runs argv in namespace ns; its stdout goes to out (may be NULL: to
 * stderr). Returns the exit status or -1. */
static int run_in(const char *ns, char *const argv[], char *out, size_t outlen)
{
	int pfd[2];
	if (pipe(pfd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(ns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(126);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	size_t len = 0;
	char buf[512];
	ssize_t n;
	while ((n = read(pfd[0], buf, sizeof(buf))) > 0) {
		if (out && len + (size_t)n < outlen) {
			memcpy(out + len, buf, (size_t)n);
			len += (size_t)n;
		} else if (!out) {
			fwrite(buf, 1, (size_t)n, stderr);
		}
	}
	if (out && outlen)
		out[len] = '\0';
	close(pfd[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs "ip <args>" in ns; args are space-separated words. */
static int ip_in(const char *ns, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	char *argv[32] = { IP };
	int n = 1;
	for (char *save, *t = strtok_r(line, " ", &save); t && n < 31; t = strtok_r(NULL, " ", &save))
		argv[n++] = t;
	argv[n] = NULL;
	int r = run_in(ns, argv, NULL, 0);
	if (r != 0)
		fprintf(stderr, "ip %s: exit %d\n", fmt, r);
	return r;
}


/* Writes val to a /proc/sys file as seen from namespace ns. */
static int sysctl_in(const char *ns, const char *path, const char *val)
{
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (orig < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		abort();
	int sf = open(path, O_WRONLY | O_CLOEXEC);
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	close(fd);
	if (sf < 0)
		return -errno;
	int r = write(sf, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -errno;
	close(sf);
	return r;
}

/* A leaf namespace on the bridge: veth "lbt-v<tag>" in the bridge
 * namespace, "eth0" with addr/24 in ns. */
static int attach(const char *ns, const char *tag, const char *addr)
{
	int r = ip_in(fx.br, "link add lbt-v%s type veth peer name eth0 netns %s", tag, ns);
	if (r == 0)
		r = ip_in(fx.br, "link set lbt-v%s master lbt-br0 up", tag);
	if (r == 0)
		r = ip_in(ns, "addr add %s/24 dev eth0", addr);
	if (r == 0)
		r = ip_in(ns, "link set eth0 up");
	if (r == 0)
		r = ip_in(ns, "link set lo up");
	return r;
}

/* ---- backends ---- */

/* One connection: "<name> <peer address>\n", then an echo until EOF. */
static void serve_conn(int c, const char *name)
{
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	char line[64], buf[256];
	getpeername(c, (struct sockaddr *)&peer, &pl);
	int n = snprintf(line, sizeof(line), "%s %s\n", name, inet_ntoa(peer.sin_addr));
	if (write(c, line, (size_t)n) != n)
		_exit(1);
	ssize_t r;
	while ((r = read(c, buf, sizeof(buf))) > 0)
		if (write(c, buf, (size_t)r) != r)
			break;
	_exit(0);
}

/* Forks the server of backend i inside its namespace; returns once it
 * listens. */
static int start_server(int i)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGCHLD, SIG_IGN); /* connection children reap themselves */
		int fd = open(fx.back[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(126);
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80) };
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0)
			_exit(125);
		if (write(ready[1], "r", 1) != 1)
			_exit(124);
		char name[8];
		snprintf(name, sizeof(name), "b%d", i + 1);
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0)
				continue;
			if (fork() == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				close(s);
				serve_conn(c, name);
			}
			close(c);
		}
	}
	close(ready[1]);
	char c;
	bool ok = read(ready[0], &c, 1) == 1;
	close(ready[0]);
	fx.servers[i] = pid;
	return ok ? 0 : -1;
}

/* ---- client side ---- */

/* A TCP socket made inside the client namespace. */
static int client_socket(void)
{
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(fx.client, O_RDONLY | O_CLOEXEC);
	if (orig < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		abort();
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	close(fd);
	return s;
}

/* Reads one line from s within 2 s: 0, -ETIMEDOUT, -ECONNRESET (or the
 * read's error), -EPIPE at EOF. */
static int read_line(int s, char *line, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, 2000) <= 0)
			return -ETIMEDOUT;
		ssize_t r = read(s, line + n, 1);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	return 0;
}

/* Connects from the client to ip:port within 2 s; the connected socket,
 * or -errno. */
static int connect_to(const char *ip, uint16_t port)
{
	int s = client_socket();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	fcntl(s, F_SETFL, O_NONBLOCK);
	int r = connect(s, (struct sockaddr *)&a, sizeof(a));
	if (r < 0 && errno == EINPROGRESS) {
		struct pollfd p = { .fd = s, .events = POLLOUT };
		int err = 0;
		socklen_t el = sizeof(err);
		r = poll(&p, 1, 2000);
		if (r == 0)
			err = ETIMEDOUT;
		else
			getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el);
		r = err ? -1 : 0;
		errno = err;
	}
	if (r < 0) {
		int err = -errno;
		close(s);
		return err;
	}
	fcntl(s, F_SETFL, 0);
	return s;
}

/* One connection to ip:port: the answering backend's line into who
 * ("b1 198.51.100.2"). 0 or -errno. */
static int ask(const char *ip, uint16_t port, char *who, size_t len)
{
	int s = connect_to(ip, port);
	if (s < 0)
		return s;
	int r = read_line(s, who, len);
	close(s);
	if (r == 0)
		who[strcspn(who, "\n")] = '\0';
	return r;
}

/* Backend name ("b2") of an answer line. */
static int backend_of(const char *who)
{
	return who[0] == 'b' && who[1] >= '1' && who[1] <= '3' ? who[1] - '0' : 0;
}

/* Connects n times; counts answers per backend into seen[1..3] and checks
 * that consecutive answers alternate among the set (round robin). */
static void round_robin(const char *ip, uint16_t port, int n, int seen[NBACK + 1], int nset)
{
	int prev = 0;
	memset(seen, 0, (NBACK + 1) * sizeof(int));
	for (int i = 0; i < n; i++) {
		char who[64];
		assert_int_equal(ask(ip, port, who, sizeof(who)), 0);
		int b = backend_of(who);
		assert_int_not_equal(b, 0);
		if (nset > 1)
			assert_int_not_equal(b, prev);
		seen[b]++;
		prev = b;
	}
}

/* Echo check on a held connection: 0 when "x\n" comes back. */
static int echo(int s)
{
	char line[16];
	if (write(s, "x\n", 2) != 2)
		return -errno;
	int r = read_line(s, line, sizeof(line));
	return r < 0 ? r : strcmp(line, "x\n") == 0 ? 0 : -EPROTO;
}

static int ping_vip(const char *wait)
{
	char *bb[] = { (char *)fx.ping, "ping", "-c1", "-W", (char *)wait, VIP, NULL };
	char *pl[] = { (char *)fx.ping, "-c1", "-W", (char *)wait, VIP, NULL };
	char out[1024];
	return run_in(fx.client, fx.ping_busybox ? bb : pl, out, sizeof(out));
}

/* ---- desired states ---- */

static struct in_addr ip4(const char *s)
{
	struct in_addr a;
	inet_pton(AF_INET, s, &a);
	return a;
}

/* Desired: service web at VIP with backends numbered in mask (bit 0 = b1);
 * ports as in lb_port, or none. */
static void desired(struct lb_state *st, const char *id, const char *vip, unsigned mask,
		    const struct lb_port *ports, size_t n_ports)
{
	struct in_addr b[NBACK];
	struct lb_service s = { .vip = ip4(vip), .backends = b, .ports = (struct lb_port *)ports,
				.n_ports = n_ports };
	snprintf(s.id, sizeof(s.id), "%s", id);
	for (int i = 0; i < NBACK; i++)
		if (mask & (1u << i))
			b[s.n_backends++] = ip4(back_ip[i]);
	assert_int_equal(lb_state_add(st, &s), 0);
}

static void set_web(unsigned mask, unsigned expect_applied)
{
	struct lb_state d;
	struct lb_stats st;
	lb_state_init(&d);
	desired(&d, "web", VIP, mask, NULL, 0);
	assert_int_equal(lb_reconcile(fx.p, &d, &st), 0);
	assert_int_equal(st.applied, expect_applied);
	assert_int_equal(st.failed, 0);
	lb_state_clear(&d);
}

static struct lb_provider *new_provider(const char *ns)
{
	struct lb_config cfg = { .netns = ns, .prefix = PREFIX };
	struct lb_provider *p = NULL;
	assert_int_equal(lb_nft_new(&cfg, &p), 0);
	return p;
}

/* ---- fixture ---- */

static int teardown(void **unused)
{
	(void)unused;
	if (fx.conn >= 0)
		close(fx.conn);
	fx.conn = -1;
	for (int i = 0; i < NBACK; i++) {
		if (fx.servers[i] > 0) {
			kill(fx.servers[i], SIGKILL);
			waitpid(fx.servers[i], NULL, 0);
		}
		fx.servers[i] = 0;
	}
	lb_provider_free(fx.p);
	lb_provider_free(fx.mesh);
	fx.p = fx.mesh = NULL;
	drop_netns(fx.client);
	drop_netns(fx.lb);
	fx.lb[0] = '\0';
	for (int i = 0; i < NBACK; i++)
		drop_netns(fx.back[i]);
	drop_netns(fx.br); /* takes the bridge and the veth ends with it */
	if (fx.dir[0])
		rm_rf(fx.dir);
	fx.dir[0] = '\0';
	return 0;
}

static int setup(void **unused)
{
	(void)unused;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/lbt-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.br, sizeof(fx.br), "%s/lbt-br", fx.dir);
	snprintf(fx.client, sizeof(fx.client), "%s/lbt-client", fx.dir);
	for (int i = 0; i < NBACK; i++)
		snprintf(fx.back[i], sizeof(fx.back[i]), "%s/lbt-b%d", fx.dir, i + 1);
	if (make_netns(fx.br) < 0 || make_netns(fx.client) < 0)
		goto fail;
	for (int i = 0; i < NBACK; i++)
		if (make_netns(fx.back[i]) < 0)
			goto fail;
	if (ip_in(fx.br, "link add lbt-br0 type bridge") || ip_in(fx.br, "addr add " BR_ADDR "/24 dev lbt-br0") ||
	    ip_in(fx.br, "link set lbt-br0 up") || ip_in(fx.br, "link set lo up") ||
	    sysctl_in(fx.br, "/proc/sys/net/ipv4/ip_forward", "1") < 0)
		goto fail;
	if (attach(fx.client, "c", "198.51.100.2") ||
	    ip_in(fx.client, "route add 198.18.0.0/15 via " BR_ADDR))
		goto fail;
	for (int i = 0; i < NBACK; i++) {
		char tag[4];
		snprintf(tag, sizeof(tag), "b%d", i + 1);
		if (attach(fx.back[i], tag, back_ip[i]) || start_server(i) < 0)
			goto fail;
	}
	fx.p = new_provider(fx.client);
	return 0;
fail:
	teardown(NULL);
	return -1;
}

/* ---- tests ---- */

static void test_probe(void **unused)
{
	(void)unused;
	struct lb_config cfg = { .netns = fx.client, .prefix = PREFIX };
	struct lb_provider *p = NULL;
	char why[256];
	assert_int_equal(lb_ipvs_new(&cfg, &p), 0);
	int r = p->ops->probe(p->ctx, why, sizeof(why));
	if (r < 0)
		print_message("ipvs provider skipped: %s\n", why);
	else
		print_message("ipvs is available here; this test exercises nftables only\n");
	lb_provider_free(p);

	/* The choice: nftables here (or IPVS on a kernel that has it). */
	assert_int_equal(lb_probe(&cfg, &p, why, sizeof(why)), 0);
	assert_string_equal(p->ops->name, r < 0 ? "nftables" : "ipvs");
	lb_provider_free(p);
	/* The probe's scratch table is gone; our table is not made by it. */
	char out[4096];
	char *list[] = { NFT, "list", "tables", NULL };
	assert_int_equal(run_in(fx.client, list, out, sizeof(out)), 0);
	assert_null(strstr(out, "probe"));
	assert_null(strstr(out, TABLE));
}

static void test_round_robin(void **unused)
{
	(void)unused;
	int seen[NBACK + 1];
	set_web(0x3, 1);
	round_robin(VIP, 80, 6, seen, 2);
	assert_int_equal(seen[1], 3);
	assert_int_equal(seen[2], 3);
	assert_int_equal(seen[3], 0);
	/* Any port: the VIP keeps the client's port (nobody listens on 81). */
	assert_int_equal(connect_to(VIP, 81), -ECONNREFUSED);
	set_web(0x3, 0); /* again: nothing to do */
}

static void test_ping(void **unused)
{
	(void)unused;
	assert_int_equal(ping_vip("2"), 0);
}

/* Backends replaced over and over while a child connects: every
 * connection is answered, by b1/b2 or b2/b3, never refused or lost. 
 * Without the backstop rules (see lb_nft.c) about one connection in a
 * hundred raced a replacement here and was lost; the replacements go on
 * until the child is done (bounded). */
#define ATOMIC_CONNECTIONS 2000
#define ATOMIC_MAX_UPDATES 200000

static void test_update_atomic(void **unused)
{
	(void)unused;
	pid_t pid = fork();
	if (pid == 0) {
		int bad = 0;
		for (int i = 0; i < ATOMIC_CONNECTIONS; i++) {
			char who[64];
			int r = ask(VIP, 80, who, sizeof(who));
			if (r != 0 || !backend_of(who)) {
				bad++;
				fprintf(stderr, "connection %d: %s\n", i, r ? strerror(-r) : who);
			}
		}
		_exit(bad > 255 ? 255 : bad);
	}
	int status, updates = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && updates < ATOMIC_MAX_UPDATES)
		set_web(updates++ % 2 ? 0x3 : 0x6, 1);
	if (w == 0)
		assert_int_equal(waitpid(pid, &status, 0), pid);
	print_message("%d connections during %d replacements, %d failed\n", ATOMIC_CONNECTIONS, updates,
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	if (updates % 2)
		set_web(0x3, 1); /* the last one was {b2, b3} */

	/* Now {b2, b3}: only they answer. */
	int seen[NBACK + 1];
	set_web(0x6, 1);
	round_robin(VIP, 80, 6, seen, 2);
	assert_int_equal(seen[1], 0);
	assert_int_equal(seen[2], 3);
	assert_int_equal(seen[3], 3);
}

/* An established connection through updates; then the conntrack flush. */
static void test_established(void **unused)
{
	(void)unused;
	char who[64];
	set_web(0x3, 1);
	fx.conn = connect_to(VIP, 80);
	assert_true(fx.conn >= 0);
	assert_int_equal(read_line(fx.conn, who, sizeof(who)), 0);
	int mine = backend_of(who);
	assert_true(mine == 1 || mine == 2);
	int other = mine == 1 ? 2 : 1;

	/* The other backend goes, b3 comes: the connection keeps working. */
	set_web((1u << (mine - 1)) | 0x4, 1);
	assert_int_equal(echo(fx.conn), 0);
	(void)other;

	/* Its own backend goes (only b3 left): it drains, still working. */
	set_web(0x4, 1);
	assert_int_equal(echo(fx.conn), 0);
	char tmp[64];
	assert_int_equal(ask(VIP, 80, tmp, sizeof(tmp)), 0);
	assert_int_equal(backend_of(tmp), 3);

	/* The task exits: its conntrack entries go, and the next packet of
	 * the connection starts over at b3, which resets it. */
	unsigned deleted = 0;
	assert_int_equal(lb_conntrack_flush(fx.client, ip4(VIP), ip4(back_ip[mine - 1]), &deleted), 0);
	assert_true(deleted >= 1);
	int r = echo(fx.conn);
	assert_true(r == -ECONNRESET || r == -EPIPE);
	close(fx.conn);
	fx.conn = -1;
	/* Nothing left to delete; a backend never used: 0 entries. */
	assert_int_equal(lb_conntrack_flush(fx.client, ip4(VIP), ip4(back_ip[mine - 1]), &deleted), 0);
	assert_int_equal(deleted, 0);
}

static void test_no_backends(void **unused)
{
	(void)unused;
	set_web(0, 1);
	/* Refused at once (tcp reset), not a timeout. */
	int64_t t0 = now_mono_ns();
	assert_int_equal(connect_to(VIP, 80), -ECONNREFUSED);
	assert_true(now_mono_ns() - t0 < 1000000000);
	assert_int_not_equal(ping_vip("1"), 0);
	set_web(0x3, 1);
	char who[64];
	assert_int_equal(ask(VIP, 80, who, sizeof(who)), 0);
}

/* The routing mesh: published tcp 8080 -> 80 in the bridge namespace;
 * the client connects to the bridge's own address. */
static void test_mesh(void **unused)
{
	(void)unused;
	fx.mesh = new_provider(fx.br);
	struct lb_state d;
	struct lb_stats st;
	struct lb_port port = { .proto = IPPROTO_TCP, .published = 8080, .target = 80 };
	lb_state_init(&d);
	desired(&d, "mesh", "198.18.0.200", 0x3, &port, 1);
	assert_int_equal(lb_reconcile(fx.mesh, &d, &st), 0);
	assert_int_equal(st.applied, 1);
	int b[2] = { 0, 0 };
	for (int i = 0; i < 4; i++) {
		char who[64];
		assert_int_equal(ask(BR_ADDR, 8080, who, sizeof(who)), 0);
		/* The backend sees the bridge namespace's address: masqueraded. */
		assert_non_null(strstr(who, " " BR_ADDR));
		int k = backend_of(who);
		assert_true(k == 1 || k == 2);
		b[k - 1]++;
	}
	assert_int_equal(b[0], 2);
	assert_int_equal(b[1], 2);
	/* Unpublished ports are not taken. */
	assert_int_equal(connect_to(BR_ADDR, 8081), -ECONNREFUSED);
	assert_int_equal(lb_reconcile(fx.mesh, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	lb_state_clear(&d);
	/* Removed: the port is closed again. */
	lb_state_init(&d);
	assert_int_equal(lb_reconcile(fx.mesh, &d, &st), 0);
	assert_int_equal(st.applied, 1);
	assert_int_equal(connect_to(BR_ADDR, 8080), -ECONNREFUSED);
}

/* lbd restarts: a new provider reads back only its own table. */
static void test_restart(void **unused)
{
	(void)unused;
	struct lb_state d, dumped;
	struct lb_stats st;
	/* A foreign table with a chain named like ours. */
	char *foreign[] = { NFT, "add table ip lbt-other; add chain ip lbt-other svc_web", NULL };
	assert_int_equal(run_in(fx.client, foreign, NULL, 0), 0);
	/* A stale service made by "the previous run". */
	lb_state_init(&d);
	desired(&d, "stale", "198.18.0.101", 0x1, NULL, 0);
	assert_int_equal(fx.p->ops->svc_set(fx.p->ctx, NULL, &d.svcs[0]), 0);
	lb_state_clear(&d);

	lb_provider_free(fx.p);
	fx.p = new_provider(fx.client);
	lb_state_init(&dumped);
	assert_int_equal(fx.p->ops->dump(fx.p->ctx, &dumped), 0);
	assert_int_equal(dumped.n_svcs, 2);
	const struct lb_service *w = lb_state_find(&dumped, "web");
	assert_non_null(w);
	assert_true(w->complete);
	assert_int_equal(w->vip.s_addr, ip4(VIP).s_addr);
	assert_int_equal(w->n_backends, 2);
	lb_state_clear(&dumped);

	lb_state_init(&d);
	desired(&d, "web", VIP, 0x3, NULL, 0);
	assert_int_equal(lb_reconcile(fx.p, &d, &st), 0);
	assert_int_equal(st.applied, 1); /* the stale one */
	assert_int_equal(lb_reconcile(fx.p, &d, &st), 0);
	assert_int_equal(st.applied, 0);
	lb_state_clear(&d);
	char who[64];
	assert_int_equal(ask(VIP, 80, who, sizeof(who)), 0);
	/* The foreign table is untouched. */
	char out[1024];
	char *list[] = { NFT, "list", "table", "ip", "lbt-other", NULL };
	assert_int_equal(run_in(fx.client, list, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "svc_web"));
	char *del[] = { NFT, "delete", "table", "ip", "lbt-other", NULL };
	assert_int_equal(run_in(fx.client, del, NULL, 0), 0);
}

static void test_delete_all(void **unused)
{
	(void)unused;
	struct lb_state none;
	struct lb_stats st;
	lb_state_init(&none);
	assert_int_equal(lb_reconcile(fx.p, &none, &st), 0);
	assert_int_equal(st.applied, 1);
	/* The VIP now goes to the bridge namespace, which has no route for it. */
	int r = connect_to(VIP, 80);
	assert_true(r < 0);
	char out[4096];
	char *list[] = { NFT, "list", "table", "ip", TABLE, NULL };
	assert_int_equal(run_in(fx.client, list, out, sizeof(out)), 0);
	assert_null(strstr(out, "svc_"));
	assert_non_null(strstr(out, "map vips")); /* the table itself stays */
	assert_int_equal(lb_reconcile(fx.p, &none, &st), 0);
	assert_int_equal(st.applied, 0);
}

/* ---- published ports only, keep_source ---- */

static struct lb_provider *new_provider_cfg(const char *ns, const char *prefix, bool keep_source)
{
	struct lb_config cfg = { .netns = ns, .prefix = prefix, .keep_source = keep_source };
	struct lb_provider *p = NULL;
	assert_int_equal(lb_nft_new(&cfg, &p), 0);
	return p;
}

/* A ports-only service (published port bit set: bit 0 = b1). */
static void desired_ports(struct lb_state *st, const char *id, const char *vip, unsigned mask,
			  const char *ports)
{
	struct lb_port p[4];
	size_t n = 0;
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", ports);
	for (char *save, *t = strtok_r(buf, ",", &save); t && n < 4; t = strtok_r(NULL, ",", &save)) {
		char proto[8];
		unsigned pub, tgt;
		assert_int_equal(sscanf(t, "%7[a-z]:%u:%u", proto, &pub, &tgt), 3);
		p[n++] = (struct lb_port){ strcmp(proto, "tcp") == 0 ? IPPROTO_TCP : IPPROTO_UDP,
					   (uint16_t)pub, (uint16_t)tgt };
	}
	desired(st, id, vip, mask, p, n);
}

/* Dumps p and checks that it holds exactly the services of d, each
 * complete and the same. */
static void dump_is(struct lb_provider *p, const struct lb_state *d)
{
	struct lb_state a;
	lb_state_init(&a);
	assert_int_equal(p->ops->dump(p->ctx, &a), 0);
	assert_int_equal(a.n_svcs, d->n_svcs);
	for (size_t i = 0; i < d->n_svcs; i++) {
		const struct lb_service *s = lb_state_find(&a, d->svcs[i].id);
		assert_non_null(s);
		assert_true(s->complete);
		assert_true(lb_service_same(s, &d->svcs[i]));
	}
	lb_state_clear(&a);
}

static void reconcile_is(struct lb_provider *p, const struct lb_state *d, unsigned applied)
{
	struct lb_stats st;
	assert_int_equal(lb_reconcile(p, d, &st), 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.applied, applied);
}

/* Services with published ports only, next to a VIP service, in their own
 * table of the client namespace: the client connects to its own address. */
static void test_ports_only(void **unused)
{
	(void)unused;
	struct lb_provider *p = new_provider_cfg(fx.client, "lbp-", false);
	struct lb_state d;
	lb_state_init(&d);
	desired_ports(&d, "pub", "0.0.0.0", 0x3, "tcp:8080:80");
	desired_ports(&d, "pub2", "0.0.0.0", 0, "tcp:8081:80,udp:8053:53");
	desired_ports(&d, "pubv", "198.18.0.150", 0x4, "tcp:8082:80");
	for (size_t i = 0; i < d.n_svcs; i++)
		assert_int_equal(p->ops->svc_set(p->ctx, NULL, &d.svcs[i]), 0);
	dump_is(p, &d);
	reconcile_is(p, &d, 0);
	/* Only the VIP service has a vips element. */
	char out[4096];
	char *vips[] = { NFT, "list", "map", "ip", "lbp-swarm_lb", "vips", NULL };
	assert_int_equal(run_in(fx.client, vips, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "198.18.0.150"));
	assert_null(strstr(out, "0.0.0.0"));

	int seen[NBACK + 1];
	round_robin("198.51.100.2", 8080, 4, seen, 2);
	assert_int_equal(seen[1], 2);
	assert_int_equal(seen[2], 2);
	assert_int_equal(connect_to("198.51.100.2", 8081), -ECONNREFUSED); /* no backends */
	char who[64];
	assert_int_equal(ask("198.51.100.2", 8082, who, sizeof(who)), 0);
	assert_int_equal(backend_of(who), 3);

	/* pubv loses its VIP: replaced in place, its vips element gone. */
	lb_state_clear(&d);
	lb_state_init(&d);
	desired_ports(&d, "pub", "0.0.0.0", 0x3, "tcp:8080:80");
	desired_ports(&d, "pub2", "0.0.0.0", 0, "tcp:8081:80,udp:8053:53");
	desired_ports(&d, "pubv", "0.0.0.0", 0x4, "tcp:8082:80");
	reconcile_is(p, &d, 1);
	dump_is(p, &d);
	reconcile_is(p, &d, 0);
	assert_int_equal(run_in(fx.client, vips, out, sizeof(out)), 0);
	assert_null(strstr(out, "198.18.0.150"));
	assert_int_equal(ask("198.51.100.2", 8082, who, sizeof(who)), 0);
	assert_int_equal(backend_of(who), 3);

	/* A restarted provider reads them back the same. */
	lb_provider_free(p);
	p = new_provider_cfg(fx.client, "lbp-", false);
	dump_is(p, &d);
	reconcile_is(p, &d, 0);

	lb_state_clear(&d);
	reconcile_is(p, &d, 3);
	assert_int_equal(connect_to("198.51.100.2", 8080), -ECONNREFUSED);
	lb_provider_free(p);
	char *del[] = { NFT, "delete", "table", "ip", "lbp-swarm_lb", NULL };
	assert_int_equal(run_in(fx.client, del, NULL, 0), 0);
}

/* The base chains of table t in ns, with rule handles: equal text before
 * and after means the skeleton was not rewritten. */
static void base_chains(const char *ns, const char *t, char *out, size_t len)
{
	static const char *const chains[] = { "output", "prerouting", "postrouting" };
	size_t used = 0;
	/* One nft run per chain: nft 1.0.6 fills its cache for the first
	 * "list chain" of a multi-command line only. */
	for (size_t i = 0; i < ARRAY_SIZE(chains); i++) {
		char *argv[] = { NFT, "-a", "list", "chain", "ip", (char *)t, (char *)chains[i], NULL };
		assert_int_equal(run_in(ns, argv, out + used, len - used), 0);
		used += strlen(out + used);
	}
	assert_non_null(strstr(out, "hook postrouting"));
}

/* keep_source in a load-balancer namespace lbt-lb (198.51.100.3 on the
 * bridge, forwarding on, no redirects) publishing tcp 8080 -> b3:80; b3
 * routes the client's address back through lbt-lb, so the connection
 * works with or without masquerade and the backend's view of the peer
 * tells which one ran. The skeleton is recognised across a restart (its
 * rules keep their handles), and switching keep_source either way takes
 * effect with the next change. */
static void test_keep_source(void **unused)
{
	(void)unused;
	snprintf(fx.lb, sizeof(fx.lb), "%s/lbt-lb", fx.dir);
	assert_int_equal(make_netns(fx.lb), 0);
	assert_int_equal(attach(fx.lb, "lb", "198.51.100.3"), 0);
	assert_int_equal(sysctl_in(fx.lb, "/proc/sys/net/ipv4/ip_forward", "1"), 0);
	assert_int_equal(sysctl_in(fx.lb, "/proc/sys/net/ipv4/conf/all/send_redirects", "0"), 0);
	assert_int_equal(sysctl_in(fx.lb, "/proc/sys/net/ipv4/conf/eth0/send_redirects", "0"), 0);

	struct lb_provider *p = new_provider_cfg(fx.lb, "lbk-", true);
	struct lb_state d;
	lb_state_init(&d);
	desired_ports(&d, "mesh", "0.0.0.0", 0x4, "tcp:8080:80");
	reconcile_is(p, &d, 1);
	reconcile_is(p, &d, 0);
	dump_is(p, &d);
	char before[4096], after[4096];
	base_chains(fx.lb, "lbk-swarm_lb", before, sizeof(before));
	assert_null(strstr(before, "masquerade"));

	/* Restart, then a change: the batch does not redo the skeleton. */
	lb_provider_free(p);
	p = new_provider_cfg(fx.lb, "lbk-", true);
	reconcile_is(p, &d, 0);
	lb_state_clear(&d);
	lb_state_init(&d);
	desired_ports(&d, "mesh", "0.0.0.0", 0x4, "tcp:8080:80,tcp:8083:80");
	reconcile_is(p, &d, 1);
	reconcile_is(p, &d, 0);
	base_chains(fx.lb, "lbk-swarm_lb", after, sizeof(after));
	assert_string_equal(before, after);

	/* The backend sees the client. */
	assert_int_equal(ip_in(fx.back[2], "route add 198.51.100.2/32 via 198.51.100.3"), 0);
	char who[64];
	assert_int_equal(ask("198.51.100.3", 8080, who, sizeof(who)), 0);
	assert_string_equal(who, "b3 198.51.100.2");

	/* The same table under a masquerading provider: its services are
	 * right (nothing applied), and its next change brings the
	 * masquerade rule. */
	lb_provider_free(p);
	p = new_provider_cfg(fx.lb, "lbk-", false);
	reconcile_is(p, &d, 0);
	lb_state_clear(&d);
	lb_state_init(&d);
	desired_ports(&d, "mesh", "0.0.0.0", 0x4, "tcp:8080:80");
	reconcile_is(p, &d, 1);
	reconcile_is(p, &d, 0);
	base_chains(fx.lb, "lbk-swarm_lb", after, sizeof(after));
	assert_non_null(strstr(after, "masquerade"));
	assert_int_equal(ask("198.51.100.3", 8080, who, sizeof(who)), 0);
	assert_string_equal(who, "b3 198.51.100.3");

	/* And back. */
	lb_provider_free(p);
	p = new_provider_cfg(fx.lb, "lbk-", true);
	reconcile_is(p, &d, 0);
	lb_state_clear(&d);
	lb_state_init(&d);
	desired_ports(&d, "mesh", "0.0.0.0", 0x4, "tcp:8080:80,tcp:8083:80");
	reconcile_is(p, &d, 1);
	base_chains(fx.lb, "lbk-swarm_lb", after, sizeof(after));
	assert_null(strstr(after, "masquerade"));
	assert_int_equal(ask("198.51.100.3", 8083, who, sizeof(who)), 0);
	assert_string_equal(who, "b3 198.51.100.2");

	lb_state_clear(&d);
	lb_provider_free(p);
	assert_int_equal(ip_in(fx.back[2], "route del 198.51.100.2/32 via 198.51.100.3"), 0);
	drop_netns(fx.lb);
	fx.lb[0] = '\0';
}

/* Why the test cannot run here, or NULL. */
static const char *skip_reason(void)
{
	static char why[200];
	if (geteuid() != 0)
		return "needs root (network namespaces, nftables)";
	if (access(IP, X_OK) < 0 || access(NFT, X_OK) < 0)
		return "ip (iproute2) or nft is missing";
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0 || unshare(CLONE_NEWNET) < 0) {
		snprintf(why, sizeof(why), "cannot unshare a network namespace: %s", strerror(errno));
		return why;
	}
	struct lb_config cfg = { .prefix = PREFIX };
	struct lb_provider *p = NULL;
	int r = lb_nft_new(&cfg, &p);
	if (r == 0)
		r = p->ops->probe(p->ctx, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "nftables provider: %s", strerror(-r));
	lb_provider_free(p);
	if (setns(orig, CLONE_NEWNET) < 0)
		abort();
	close(orig);
	return r < 0 ? why : NULL;
}

static void find_ping(void)
{
	static const char *plain[] = { "/usr/bin/ping", "/bin/ping" };
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++)
		if (access(plain[i], X_OK) == 0) {
			fx.ping = plain[i];
			return;
		}
	static const char *bb[] = { "/usr/bin/busybox", "/bin/busybox" };
	for (size_t i = 0; i < ARRAY_SIZE(bb); i++)
		if (access(bb[i], X_OK) == 0) {
			fx.ping = bb[i];
			fx.ping_busybox = true;
			return;
		}
}

int main(void)
{
	log_set_level(LOG_LVL_WARN);
	const char *why = skip_reason();
	find_ping();
	if (!why && !fx.ping)
		why = "no ping (iputils or busybox)";
	if (why) {
		printf("SKIP: test_lb_nft: %s\n", why);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_update_atomic),
		cmocka_unit_test(test_established),
		cmocka_unit_test(test_no_backends),
		cmocka_unit_test(test_mesh),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_delete_all),
		cmocka_unit_test(test_ports_only),
		cmocka_unit_test(test_keep_source),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
