/* netd's supervisor of swarm-sealer (sealer_ctl.h) with the real program.
 * The sealer is given one network whose namespace file does not exist, so
 * it runs with its UDP socket on 127.0.0.1 and keeps retrying that TAP;
 * no root, no kernel networking beyond loopback. Checks, in order (the
 * tests share one sealer and run as a group):
 *   - a config with a network starts the sealer (one spawn) and gets in
 *     sync; its status shows the network's TAP not open, with the reason;
 *   - SIGKILL of the sealer: a new one is started (second spawn) and gets
 *     the config again;
 *   - sealer_ctl_free leaves it running; a new sealer_ctl on the same
 *     socket adopts it (no spawn), sees the config it still holds, and is
 *     in sync after the same config is set again;
 *   - a config without networks, with no sealer on the socket, starts
 *     nothing.
 * The program is "$SWARM_BUILDDIR/netd/swarm-sealer", else netd/swarm-sealer
 * relative to the working directory (make check runs in the build tree);
 * exits 77 (skip) when it is missing. Every wait is bounded (WAIT_S). The
 * sealers are killed and the mkdtemp dir removed in the group teardown,
 * also when a test fails: every pid seen is recorded, and any process
 * whose command line names the temp dir is killed as well. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <json-c/json.h>

#include "netd/sealer_ctl.h"
#include "pb.h"
#include "util.h"

#define WAIT_S 10.0
#define VNI 4343
#define MAX_PIDS 16

static struct {
	char dir[64];               /* mkdtemp root */
	char sock[128];             /* the sealer's control socket */
	char exe[PATH_MAX];         /* swarm-sealer */
	uint16_t port;              /* its UDP port on 127.0.0.1 */
	struct ev_loop *loop;       /* the default loop (ev_child needs it) */
	struct sealer_ctl *ctl;
	pid_t pids[MAX_PIDS];       /* every sealer seen, for teardown */
	size_t n_pids;
	pid_t cur;                  /* the sealer running now */
	uint64_t gen;               /* the generation it holds */
} G;

/* ---- helpers ---- */

static void record_pid(pid_t pid)
{
	for (size_t i = 0; i < G.n_pids; i++)
		if (G.pids[i] == pid)
			return;
	if (pid > 0 && G.n_pids < MAX_PIDS)
		G.pids[G.n_pids++] = pid;
}

/* An integer member of sealer_ctl_json (-1 when absent). */
static int64_t ctl_json_int(struct sealer_ctl *c, const char *key)
{
	struct json_object *o = sealer_ctl_json(c), *v;
	int64_t r = json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
	json_object_put(o);
	return r;
}

static bool ctl_json_bool(struct sealer_ctl *c, const char *key)
{
	struct json_object *o = sealer_ctl_json(c), *v;
	bool r = json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
	json_object_put(o);
	return r;
}

/* Our child's pid (0 for an adopted sealer), recorded for teardown. */
static pid_t ctl_pid(struct sealer_ctl *c)
{
	pid_t pid = (pid_t)ctl_json_int(c, "Pid");
	record_pid(pid);
	return pid;
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Runs the loop until cond() holds or timeout seconds pass; a 20 ms timer
 * bounds every ev_run round. Returns cond(). */
static bool run_until(bool (*cond)(void), double timeout)
{
	ev_timer t;
	ev_timer_init(&t, poll_cb, 0.02, 0.02);
	ev_timer_start(G.loop, &t);
	ev_now_update(G.loop);
	double end = ev_now(G.loop) + timeout;
	while (!(cond && cond()) && ev_now(G.loop) < end)
		ev_run(G.loop, EVRUN_ONCE);
	ev_timer_stop(G.loop, &t);
	return cond ? cond() : true;
}

/* Runs the loop for seconds, whatever happens. */
static void run_for(double seconds)
{
	run_until(NULL, seconds);
}

/* A free UDP port on 127.0.0.1 (free when asked; nothing else binds it here). */
static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		abort();
	close(fd);
	return ntohs(sa.sin_port);
}

/* The test's config: self 127.0.0.1, G.port, one 16-byte key, and network
 * VNI in a namespace file that does not exist when with_net. */
static Swarm__SealerConfig *mkconfig(bool with_net)
{
	Swarm__SealerConfig *c = xmalloc(sizeof(*c));
	swarm__sealer_config__init(c);
	pb_set_str(&c->self, "127.0.0.1");
	c->port = G.port;
	Swarm__SealerKey *k = xmalloc(sizeof(*k));
	swarm__sealer_key__init(k);
	k->id = 7;
	k->key.len = 16;
	k->key.data = xmalloc(16);
	memset(k->key.data, 0x5a, 16);
	PB_PTRV_ADD(c, keys, k);
	if (with_net) {
		Swarm__SealerNetwork *n = xmalloc(sizeof(*n));
		swarm__sealer_network__init(n);
		n->vni = VNI;
		n->netns = xasprintf("%s/no-such-netns", G.dir);
		n->tap = xstrdup("sealer0");
		PB_PTRV_ADD(c, networks, n);
	}
	return c;
}

static struct sealer_ctl *new_ctl(const char *sock)
{
	struct sealer_ctl_config cfg = { .exe = G.exe, .socket = sock, .log_level = "warn" };
	struct sealer_ctl *c = NULL;
	assert_int_equal(sealer_ctl_new(G.loop, &cfg, &c), 0);
	assert_non_null(c);
	return c;
}

static bool alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

/* Pids of the processes whose command line mentions needle (at most max). */
static size_t procs_naming(const char *needle, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, needle))
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

/* ---- conditions ---- */

static bool spawned_in_sync(void)
{
	return sealer_ctl_spawns(G.ctl) == 1 && sealer_ctl_in_sync(G.ctl) && ctl_pid(G.ctl) > 0;
}

static bool respawned_in_sync(void)
{
	pid_t pid = ctl_pid(G.ctl);
	return sealer_ctl_spawns(G.ctl) == 2 && sealer_ctl_in_sync(G.ctl) && pid > 0 &&
	       pid != G.cur;
}

static bool has_status(void)
{
	return sealer_ctl_status(G.ctl) != NULL;
}

static bool in_sync(void)
{
	return sealer_ctl_in_sync(G.ctl);
}

/* ---- fixture ---- */

static int teardown(void **unused)
{
	(void)unused;
	sealer_ctl_free(G.ctl);
	G.ctl = NULL;
	pid_t more[MAX_PIDS];
	size_t n = G.dir[0] ? procs_naming(G.dir, more, MAX_PIDS) : 0;
	for (size_t i = 0; i < n; i++)
		record_pid(more[i]);
	for (size_t i = 0; i < G.n_pids; i++)
		kill(G.pids[i], SIGKILL);
	/* Reap them (our children; libev may have reaped some already), at
	 * most WAIT_S in all. */
	for (int tries = 0; tries < (int)(WAIT_S * 100); tries++) {
		bool any = false;
		for (size_t i = 0; i < G.n_pids; i++) {
			if (!G.pids[i])
				continue;
			pid_t r = waitpid(G.pids[i], NULL, WNOHANG);
			if (r == G.pids[i] || (r < 0 && !alive(G.pids[i])))
				G.pids[i] = 0;
			else
				any = true;
		}
		if (!any)
			break;
		usleep(10000);
	}
	G.n_pids = 0;
	if (G.dir[0])
		rm_rf(G.dir);
	G.dir[0] = '\0';
	return 0;
}

static int setup(void **unused)
{
	(void)unused;
	snprintf(G.dir, sizeof(G.dir), "/tmp/sctl-XXXXXX");
	if (!mkdtemp(G.dir)) {
		G.dir[0] = '\0';
		return -1;
	}
	snprintf(G.sock, sizeof(G.sock), "%s/sealer.sock", G.dir);
	G.port = free_port();
	G.loop = ev_default_loop(0);
	return G.loop ? 0 : -1;
}

/* ---- tests ---- */

static void test_spawn(void **unused)
{
	(void)unused;
	G.ctl = new_ctl(G.sock);
	/* Nothing runs before a config asks for a network. */
	run_for(0.3);
	assert_int_equal(sealer_ctl_spawns(G.ctl), 0);
	assert_false(sealer_ctl_in_sync(G.ctl));

	sealer_ctl_set(G.ctl, mkconfig(true));
	assert_true(run_until(spawned_in_sync, WAIT_S));
	G.cur = ctl_pid(G.ctl);
	G.gen = (uint64_t)ctl_json_int(G.ctl, "Generation");
	assert_true(alive(G.cur));
	assert_true(ctl_json_bool(G.ctl, "Running"));
	assert_true(ctl_json_bool(G.ctl, "InSync"));
	assert_int_equal(ctl_json_int(G.ctl, "Spawns"), 1);

	/* The sealer holds our generation and port; the TAP cannot open (no
	 * namespace), which is retried, not refused. */
	const Swarm__SealerStatus *st = sealer_ctl_status(G.ctl);
	assert_non_null(st);
	assert_int_equal(st->error, 0);
	assert_int_equal(st->generation, G.gen);
	assert_int_equal(st->port, G.port);
	assert_int_equal(st->n_networks, 1);
	assert_int_equal(st->networks[0]->vni, VNI);
	assert_false(st->networks[0]->open);
	assert_true(st->networks[0]->error[0] != '\0');

	/* The same config again changes nothing. */
	sealer_ctl_set(G.ctl, mkconfig(true));
	assert_int_equal((uint64_t)ctl_json_int(G.ctl, "Generation"), G.gen);
	run_for(0.2);
	assert_true(sealer_ctl_in_sync(G.ctl));
	assert_int_equal(sealer_ctl_spawns(G.ctl), 1);
}

static void test_respawn(void **unused)
{
	(void)unused;
	assert_non_null(G.ctl);
	assert_true(G.cur > 0);
	pid_t old = G.cur;
	assert_int_equal(kill(old, SIGKILL), 0);
	assert_true(run_until(respawned_in_sync, WAIT_S));
	G.cur = ctl_pid(G.ctl);
	assert_true(alive(G.cur));
	/* The old one was reaped by the supervisor. */
	assert_false(alive(old));
	assert_int_equal(sealer_ctl_status(G.ctl)->generation, G.gen);
	assert_int_equal(ctl_json_int(G.ctl, "Spawns"), 2);
}

static void test_adopt(void **unused)
{
	(void)unused;
	assert_non_null(G.ctl);
	assert_true(G.cur > 0);
	sealer_ctl_free(G.ctl);
	G.ctl = NULL;
	run_for(0.3);
	assert_true(alive(G.cur));

	/* A new supervisor (netd restarted) finds the sealer answering, with
	 * the config the last one gave it. */
	G.ctl = new_ctl(G.sock);
	assert_true(run_until(has_status, WAIT_S));
	assert_int_equal(sealer_ctl_spawns(G.ctl), 0);
	assert_int_equal(ctl_pid(G.ctl), 0); /* not its child */
	assert_true(ctl_json_bool(G.ctl, "Running"));
	assert_int_equal(sealer_ctl_status(G.ctl)->generation, G.gen);
	assert_false(sealer_ctl_in_sync(G.ctl)); /* no config of its own yet */

	sealer_ctl_set(G.ctl, mkconfig(true));
	assert_true(run_until(in_sync, WAIT_S));
	assert_int_equal(sealer_ctl_spawns(G.ctl), 0);
	assert_true(sealer_ctl_status(G.ctl)->generation != G.gen); /* ours now */
	G.gen = sealer_ctl_status(G.ctl)->generation;
	run_for(0.3);
	assert_true(sealer_ctl_in_sync(G.ctl));
	assert_int_equal(sealer_ctl_spawns(G.ctl), 0);
	assert_true(alive(G.cur));
	/* Still the one sealer on this socket. */
	pid_t found[MAX_PIDS];
	size_t n = procs_naming(G.sock, found, MAX_PIDS);
	for (size_t i = 0; i < n; i++)
		record_pid(found[i]);
	assert_int_equal(n, 1);
	assert_int_equal(found[0], G.cur);
}

static void test_no_networks_no_spawn(void **unused)
{
	(void)unused;
	char sock[160];
	snprintf(sock, sizeof(sock), "%s/idle.sock", G.dir);
	struct sealer_ctl *c = new_ctl(sock);
	sealer_ctl_set(c, mkconfig(false));
	run_for(1.5); /* more than one tick */
	assert_int_equal(sealer_ctl_spawns(c), 0);
	assert_false(sealer_ctl_in_sync(c));
	assert_null(sealer_ctl_status(c));
	assert_int_equal(ctl_json_int(c, "Pid"), 0);
	assert_false(ctl_json_bool(c, "Running"));
	pid_t found[MAX_PIDS];
	assert_int_equal(procs_naming(sock, found, MAX_PIDS), 0);
	assert_int_equal(access(sock, F_OK), -1);
	sealer_ctl_free(c);
}

/* The sealer program, into G.exe; -1 when it is not there. */
static int find_sealer(void)
{
	const char *env = getenv("SWARM_BUILDDIR");
	char from_env[PATH_MAX] = "";
	if (env && env[0])
		snprintf(from_env, sizeof(from_env), "%s/netd/swarm-sealer", env);
	const char *cands[] = { from_env, "./netd/swarm-sealer", "../../netd/swarm-sealer",
				"../netd/swarm-sealer" };
	for (size_t i = 0; i < ARRAY_SIZE(cands); i++)
		if (cands[i][0] && access(cands[i], X_OK) == 0 && realpath(cands[i], G.exe))
			return 0;
	return -1;
}

int main(void)
{
	if (find_sealer() < 0) {
		printf("SKIP: test_sealer_ctl: swarm-sealer not found (set SWARM_BUILDDIR to the "
		       "build tree)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn),
		cmocka_unit_test(test_respawn),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_no_networks_no_spawn),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
