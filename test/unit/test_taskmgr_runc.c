/* taskmgr with real runc containers: start, exit codes, kill, stop with
 * grace, missing image, health checks, recovery after an agent restart,
 * removal. Needs root and runc; skipped (exit 77) with a reason otherwise.
 * Uses its own runc root, cgroup parent, state and run dirs under a mktemp
 * dir, and removes all of it at the end, also when a test fails.
 *
 * swarm-shim is taken from $SWARM_SHIM, else ./agent/swarm-shim or
 * ../../agent/swarm-shim (the build tree). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>

#include "agent/taskmgr.h"
#include "agent/images.h"
#include "pb.h"
#include "util.h"

#define MAX_TASKS 32
#define MAX_HIST 32

struct rec {
	char id[64];
	Swarm__TaskStatus *last;
	int states[MAX_HIST];
	int n_states;
	char health[MAX_HIST][16];
	int n_health;
};

static struct {
	char dir[64];
	char state[128], run[128], runc_root[128], images_dir[128];
	char cgroup_parent[64];
	char shim[PATH_MAX];
	struct ev_loop *loop;
	struct images *im;
	struct taskmgr *tm;
	struct rec recs[MAX_TASKS];
	int n_recs;
	Swarm__Task *set[MAX_TASKS];   /* the current assignment set */
	int n_set;
} G;

static struct rec *rec_get(const char *id)
{
	for (int i = 0; i < G.n_recs; i++)
		if (strcmp(G.recs[i].id, id) == 0)
			return &G.recs[i];
	assert_true(G.n_recs < MAX_TASKS);
	struct rec *r = &G.recs[G.n_recs++];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	return r;
}

static void on_status(const char *id, const Swarm__TaskStatus *st, void *arg)
{
	struct rec *r = rec_get(id);
	if (!r->last || r->last->state != st->state) {
		if (r->n_states < MAX_HIST)
			r->states[r->n_states++] = st->state;
	}
	if ((!r->last && *st->health) || (r->last && strcmp(r->last->health, st->health))) {
		if (r->n_health < MAX_HIST)
			snprintf(r->health[r->n_health++], 16, "%s", st->health);
	}
	pb_free(r->last);
	r->last = pb_dup(st);
}

static void expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* Runs the loop until cond(arg) or secs pass; returns cond's last value.
 * A 20 ms tick re-checks conditions that no loop event signals (files). */
static int run_until(int (*cond)(const void *), const void *arg, double secs)
{
	int expired = 0;
	ev_timer t, tick;
	ev_timer_init(&t, expire_cb, secs, 0.);
	t.data = &expired;
	ev_timer_start(G.loop, &t);
	ev_timer_init(&tick, tick_cb, 0.02, 0.02);
	ev_timer_start(G.loop, &tick);
	while (!cond(arg) && !expired)
		ev_run(G.loop, EVRUN_ONCE);
	ev_timer_stop(G.loop, &t);
	ev_timer_stop(G.loop, &tick);
	return cond(arg);
}

struct want {
	const char *id;
	int state;
};

static int state_reached(const void *a)
{
	const struct want *w = a;
	struct rec *r = rec_get(w->id);
	return r->last && (int)r->last->state >= w->state;
}

/* Waits for the task to reach at least state; returns its status. */
static const Swarm__TaskStatus *wait_state(const char *id, int state, double secs)
{
	struct want w = { id, state };
	if (!run_until(state_reached, &w, secs)) {
		struct rec *r = rec_get(id);
		fail_msg("task %s: wanted state %d, have %d (%s)", id, state,
			 r->last ? (int)r->last->state : -1, r->last ? r->last->err : "");
	}
	return rec_get(id)->last;
}

static int health_seen(const void *a)
{
	const char *const *w = a;
	struct rec *r = rec_get(w[0]);
	for (int i = 0; i < r->n_health; i++)
		if (strcmp(r->health[i], w[1]) == 0)
			return 1;
	return 0;
}

static int has_state(const struct rec *r, int state)
{
	for (int i = 0; i < r->n_states; i++)
		if (r->states[i] == state)
			return 1;
	return 0;
}

/* ---- building tasks and the assignment set ---- */

static Swarm__Task *task_new(const char *id, const char *image, int64_t grace_ns,
			     const char *const *cmd)
{
	Swarm__Task *t = xmalloc(sizeof(*t));
	swarm__task__init(t);
	pb_set_str(&t->id, id);
	char name[128];
	snprintf(name, sizeof(name), "svc.1.%s", id);
	pb_set_str(&t->name, name);
	t->desired_state = SWARM__TASK_STATE__TASK_RUNNING;
	t->spec = xmalloc(sizeof(*t->spec));
	swarm__service_spec__init(t->spec);
	t->spec->container = xmalloc(sizeof(*t->spec->container));
	swarm__container_spec__init(t->spec->container);
	pb_set_str(&t->spec->container->image, image);
	t->spec->container->stop_grace_ns = grace_ns;
	for (size_t i = 0; cmd && cmd[i]; i++)
		PB_STRV_ADD(t->spec->container, command, cmd[i]);
	return t;
}

static void set_add(Swarm__Task *t)
{
	assert_true(G.n_set < MAX_TASKS);
	G.set[G.n_set++] = t;
}

static Swarm__Task *set_find(const char *id)
{
	for (int i = 0; i < G.n_set; i++)
		if (strcmp(G.set[i]->id, id) == 0)
			return G.set[i];
	return NULL;
}

static void set_remove_all(void)
{
	for (int i = 0; i < G.n_set; i++)
		pb_free(G.set[i]);
	G.n_set = 0;
}

static void apply(void)
{
	taskmgr_assign(G.tm, G.set, (size_t)G.n_set);
}

/* ---- fixture ---- */

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int find_shim(void)
{
	const char *env = getenv("SWARM_SHIM");
	const char *cands[] = { env, "./agent/swarm-shim", "../../agent/swarm-shim",
				"../agent/swarm-shim" };
	for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
		if (cands[i] && access(cands[i], X_OK) == 0 && realpath(cands[i], G.shim))
			return 0;
	}
	return -1;
}

static void make_busybox_image(void)
{
	static const char *const applets[] = {
		"sh", "sleep", "true", "false", "echo", "cat", "ls", "hostname", "exit",
	};
	assert_int_equal(sh("set -e; d=%s/busybox/latest; mkdir -p $d/rootfs/bin $d/rootfs/proc "
			    "$d/rootfs/sys $d/rootfs/dev $d/rootfs/etc $d/rootfs/tmp;"
			    "cp /bin/busybox $d/rootfs/bin/busybox", G.images_dir), 0);
	for (size_t i = 0; i < ARRAY_SIZE(applets); i++)
		assert_int_equal(sh("ln -sf busybox %s/busybox/latest/rootfs/bin/%s",
				    G.images_dir, applets[i]), 0);
	char *p = xasprintf("%s/busybox/latest/config.json", G.images_dir);
	const char *cfg = "{\"name\":\"busybox\",\"tag\":\"latest\",\"created\":0,\"size\":0,"
			  "\"entrypoint\":[],\"cmd\":[\"sleep\",\"1000\"],"
			  "\"env\":[\"PATH=/bin\"],\"workdir\":\"\"}";
	assert_int_equal(file_write_atomic(p, cfg, strlen(cfg), 0644), 0);
	free(p);
}

/* The sandbox hook: records calls, answers at once; "tsbfail" is refused. */
static int sb_up, sb_down;
static char sb_last_path[PATH_MAX];

static void on_sandbox(const Swarm__Task *t, const char *netns_path, int up, void *arg)
{
	if (!up) {
		sb_down++;
		return;
	}
	sb_up++;
	snprintf(sb_last_path, sizeof(sb_last_path), "%s", netns_path);
	taskmgr_sandbox_ready(G.tm, t->id, strcmp(t->id, "tsbfail") == 0 ? -ENETUNREACH : 0);
}

static struct taskmgr *tm_make(void)
{
	struct taskmgr_cfg cfg = {
		.loop = G.loop,
		.state_dir = G.state,
		.run_dir = G.run,
		.runc_root = G.runc_root,
		.cgroup_parent = G.cgroup_parent,
		.runc_path = "runc",
		.shim_path = G.shim,
		.images = G.im,
		.sandbox_fn = on_sandbox,
	};
	return taskmgr_new(&cfg, on_status, NULL);
}

static int group_setup(void **state)
{
	snprintf(G.dir, sizeof(G.dir), "/tmp/test_taskmgr.XXXXXX");
	if (!mkdtemp(G.dir))
		return -1;
	snprintf(G.state, sizeof(G.state), "%s/state", G.dir);
	snprintf(G.run, sizeof(G.run), "%s/run", G.dir);
	snprintf(G.runc_root, sizeof(G.runc_root), "%s/runc", G.dir);
	snprintf(G.images_dir, sizeof(G.images_dir), "%s/images", G.dir);
	snprintf(G.cgroup_parent, sizeof(G.cgroup_parent), "swarm-test-%d", (int)getpid());
	G.loop = EV_DEFAULT;
	make_busybox_image();
	G.im = images_open(G.loop, G.images_dir);
	G.tm = tm_make();
	return G.im && G.tm ? 0 : -1;
}

/* Removes everything the run made, whatever state the tests left. */
static int group_teardown(void **state)
{
	taskmgr_free(G.tm);
	G.tm = NULL;
	images_free(G.im);
	set_remove_all();
	sh("for c in $(runc --root %s list -q 2>/dev/null); do runc --root %s delete --force $c; done",
	   G.runc_root, G.runc_root);
	/* overlay and netns mounts under our dir, deepest first */
	sh("grep -o ' %s/[^ ]*' /proc/self/mountinfo | sort -r | while read m; do umount -l $m; done",
	   G.dir);
	sh("for c in /sys/fs/cgroup/*/%s; do [ -d $c ] && { rmdir $c/* 2>/dev/null; rmdir $c; }; done; true",
	   G.cgroup_parent);
	rm_rf(G.dir);
	for (int i = 0; i < G.n_recs; i++)
		pb_free(G.recs[i].last);
	return 0;
}

/* ---- tests ---- */

static int file_contains(const char *path, const char *needle)
{
	char *buf = NULL;
	if (file_read_all(path, 1 << 20, &buf, NULL) < 0)
		return 0;
	int r = strstr(buf, needle) != NULL;
	free(buf);
	return r;
}

struct log_want {
	const char *path, *needle;
};

static int log_has(const void *a)
{
	const struct log_want *w = a;
	return file_contains(w->path, w->needle);
}

static void test_run_and_kill(void **state)
{
	Swarm__Task *t = task_new("trun", "busybox", 0, (const char *[]){
		"sh", "-c", "cat /etc/resolv.conf /sys/class/net/lo/flags; hostname; "
		"echo out-$FOO; exec sleep 1000", NULL });
	PB_STRV_ADD(t->spec->container, env, "FOO=bar");
	t->spec->limits = xmalloc(sizeof(*t->spec->limits));
	swarm__resources__init(t->spec->limits);
	t->spec->limits->memory_bytes = 64LL << 20;
	set_add(t);
	apply();
	const Swarm__TaskStatus *st = wait_state("trun", SWARM__TASK_STATE__TASK_RUNNING, 5);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_RUNNING);
	assert_true(st->pid > 0);
	assert_string_equal(st->container_id, "trun");
	struct rec *r = rec_get("trun");
	assert_true(has_state(r, SWARM__TASK_STATE__TASK_PREPARING));
	assert_true(has_state(r, SWARM__TASK_STATE__TASK_STARTING));
	int pid = st->pid;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d", pid);
	assert_int_equal(access(path, F_OK), 0);

	/* stdout in the log; /etc files, env, lo up in the sandbox netns */
	char *logp = NULL;
	assert_int_equal(taskmgr_container_log_path(G.tm, "svc.1", &logp), 0);
	struct log_want w = { logp, "out-bar" };
	assert_true(run_until(log_has, &w, 3));
	assert_true(file_contains(logp, "nameserver 127.0.0.11"));
	assert_true(file_contains(logp, "0x9"));
	assert_true(file_contains(logp, "svc.1.trun"));
	free(logp);
	snprintf(path, sizeof(path), "%s/netns/trun", G.run);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(sb_up, 1);
	assert_string_equal(sb_last_path, path);
	assert_int_equal(sb_down, 0);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/memory/%s/trun/memory.limit_in_bytes",
		 G.cgroup_parent);
	assert_true(file_contains(path, "67108864"));

	/* the local API */
	char *json = taskmgr_container_ls_json(G.tm);
	assert_non_null(strstr(json, "\"Name\":\"svc.1.trun\""));
	assert_non_null(strstr(json, "\"State\":\"running\""));
	free(json);
	assert_int_equal(taskmgr_container_inspect_json(G.tm, "svc.1.trun", &json), 0);
	assert_non_null(strstr(json, "\"Running\":true"));
	assert_non_null(strstr(json, "FOO=bar"));
	free(json);
	char *cid = NULL;
	assert_int_equal(taskmgr_container_lookup(G.tm, "trun", &cid), 0);
	assert_string_equal(cid, "trun");
	free(cid);
	assert_int_equal(taskmgr_container_lookup(G.tm, "nothing", &cid), -ENOENT);

	kill(pid, SIGKILL);
	st = wait_state("trun", SWARM__TASK_STATE__TASK_COMPLETE, 5);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_FAILED);
	assert_int_equal(st->exit_code, 137);
	assert_string_equal(st->err, "task: non-zero exit (137)");
	assert_int_equal(sb_down, 1);  /* told when the container ended */
}

static void test_exit_codes(void **state)
{
	set_add(task_new("texit3", "busybox", 0, (const char *[]){ "sh", "-c", "exit 3", NULL }));
	set_add(task_new("texit0", "busybox", 0, (const char *[]){ "true", NULL }));
	apply();
	const Swarm__TaskStatus *st = wait_state("texit3", SWARM__TASK_STATE__TASK_COMPLETE, 5);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_FAILED);
	assert_int_equal(st->exit_code, 3);
	assert_string_equal(st->err, "task: non-zero exit (3)");
	st = wait_state("texit0", SWARM__TASK_STATE__TASK_COMPLETE, 5);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_COMPLETE);
	assert_int_equal(st->exit_code, 0);
	assert_true(has_state(rec_get("texit0"), SWARM__TASK_STATE__TASK_RUNNING));
}

static void test_bad_command(void **state)
{
	set_add(task_new("tbadcmd", "busybox", 0, (const char *[]){ "/no/such/binary", NULL }));
	apply();
	const Swarm__TaskStatus *st = wait_state("tbadcmd", SWARM__TASK_STATE__TASK_COMPLETE, 5);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_FAILED);
	assert_non_null(strstr(st->err, "/no/such/binary"));
}

static void test_missing_image(void **state)
{
	set_add(task_new("tnoimg", "nope", 0, NULL));
	apply();
	const Swarm__TaskStatus *st = wait_state("tnoimg", SWARM__TASK_STATE__TASK_REJECTED, 1);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_REJECTED);
	assert_string_equal(st->err, "No such image: nope");
}

static void test_sandbox_refused(void **state)
{
	set_add(task_new("tsbfail", "busybox", 0, NULL));
	apply();
	const Swarm__TaskStatus *st = wait_state("tsbfail", SWARM__TASK_STATE__TASK_REJECTED, 1);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_REJECTED);
	assert_string_equal(st->err, "cannot set up the sandbox: Network is unreachable");
	assert_false(has_state(rec_get("tsbfail"), SWARM__TASK_STATE__TASK_STARTING));
}

static void test_shutdown(void **state)
{
	/* handles SIGTERM: ends well before its 5 s grace */
	set_add(task_new("tterm", "busybox", 5000000000LL, (const char *[]){
		"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done", NULL }));
	/* ignores SIGTERM (pid 1 without a handler): killed after 0.5 s */
	set_add(task_new("tkill", "busybox", 500000000LL, (const char *[]){ "sleep", "1000", NULL }));
	apply();
	wait_state("tterm", SWARM__TASK_STATE__TASK_RUNNING, 5);
	wait_state("tkill", SWARM__TASK_STATE__TASK_RUNNING, 5);
	set_find("tterm")->desired_state = SWARM__TASK_STATE__TASK_SHUTDOWN;
	set_find("tkill")->desired_state = SWARM__TASK_STATE__TASK_SHUTDOWN;
	int64_t t0 = now_mono_ns();
	apply();
	const Swarm__TaskStatus *st = wait_state("tterm", SWARM__TASK_STATE__TASK_COMPLETE, 3);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_SHUTDOWN);
	assert_true(now_mono_ns() - t0 < 3000000000LL);
	st = wait_state("tkill", SWARM__TASK_STATE__TASK_COMPLETE, 4);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_SHUTDOWN);
	assert_int_equal(st->exit_code, 137);
}

static void test_health(void **state)
{
	Swarm__Task *t = task_new("tsick", "busybox", 300000000LL,
				  (const char *[]){ "sleep", "1000", NULL });
	Swarm__HealthConfig *h = xmalloc(sizeof(*h));
	swarm__health_config__init(h);
	PB_STRV_ADD(h, test, "CMD");
	PB_STRV_ADD(h, test, "false");
	h->interval_ns = 200000000LL;
	h->retries = 2;
	t->spec->container->health = h;
	set_add(t);
	t = task_new("twell", "busybox", 300000000LL, (const char *[]){ "sleep", "1000", NULL });
	h = xmalloc(sizeof(*h));
	swarm__health_config__init(h);
	PB_STRV_ADD(h, test, "CMD-SHELL");
	PB_STRV_ADD(h, test, "true");
	h->interval_ns = 200000000LL;
	t->spec->container->health = h;
	set_add(t);
	/* a check that hangs past its timeout fails */
	t = task_new("tslow", "busybox", 300000000LL, (const char *[]){ "sleep", "1000", NULL });
	h = xmalloc(sizeof(*h));
	swarm__health_config__init(h);
	PB_STRV_ADD(h, test, "CMD");
	PB_STRV_ADD(h, test, "sleep");
	PB_STRV_ADD(h, test, "100");
	h->interval_ns = 200000000LL;
	h->timeout_ns = 200000000LL;
	h->retries = 1;
	t->spec->container->health = h;
	set_add(t);
	apply();

	const char *want_healthy[] = { "twell", "healthy" };
	assert_true(run_until(health_seen, want_healthy, 5));
	const char *want_unhealthy[] = { "tsick", "unhealthy" };
	assert_true(run_until(health_seen, want_unhealthy, 5));
	struct rec *r = rec_get("tsick");
	assert_string_equal(r->health[0], "starting");
	const Swarm__TaskStatus *st = wait_state("tsick", SWARM__TASK_STATE__TASK_COMPLETE, 4);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_FAILED);
	assert_string_equal(st->err, "container unhealthy");
	assert_int_equal(rec_get("twell")->last->state, SWARM__TASK_STATE__TASK_RUNNING);
	st = wait_state("tslow", SWARM__TASK_STATE__TASK_COMPLETE, 4);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_FAILED);
	assert_string_equal(st->err, "container unhealthy");
}

static int no_stray(const void *a)
{
	char *cmd = xasprintf("runc --root %s list -q | grep -q tstray", G.runc_root);
	int r = system(cmd) != 0;
	free(cmd);
	return r;
}

static void test_recover(void **state)
{
	set_add(task_new("tkeep", "busybox", 0, (const char *[]){ "sleep", "1000", NULL }));
	apply();
	const Swarm__TaskStatus *st = wait_state("tkeep", SWARM__TASK_STATE__TASK_RUNNING, 5);
	int pid = st->pid;
	assert_true(pid > 0);
	int healthy_pid = rec_get("twell")->last->pid;

	/* agent restart: containers keep running */
	taskmgr_free(G.tm);
	G.tm = NULL;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", pid);
	assert_int_equal(access(path, F_OK), 0);
	struct rec *r = rec_get("tkeep");
	pb_free(r->last);
	r->last = NULL;
	r->n_states = 0;
	/* a runc container in our root that no task knows: deleted */
	char *bdir = xasprintf("%s/stray", G.dir);
	assert_int_equal(mkdir(bdir, 0755), 0);
	char *cfg = xasprintf(
		"{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,"
		"\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"true\"],\"cwd\":\"/\","
		"\"env\":[\"PATH=/bin\"]},\"root\":{\"path\":\"%s/busybox/latest/rootfs\","
		"\"readonly\":true},\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
		"\"source\":\"proc\"}],\"linux\":{\"cgroupsPath\":\"/%s/tstray\","
		"\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}}",
		G.images_dir, G.cgroup_parent);
	char *cfgp = xasprintf("%s/config.json", bdir);
	assert_int_equal(file_write_atomic(cfgp, cfg, strlen(cfg), 0644), 0);
	assert_int_equal(sh("runc --root %s run -d -b %s tstray </dev/null >/dev/null 2>&1",
			    G.runc_root, bdir), 0);
	free(cfgp);
	free(cfg);
	free(bdir);

	G.tm = tm_make();
	assert_non_null(G.tm);
	assert_int_equal(taskmgr_recover(G.tm), 0);
	assert_non_null(r->last);
	assert_int_equal(r->last->state, SWARM__TASK_STATE__TASK_RUNNING);
	assert_int_equal(r->last->pid, pid);                 /* adopted, not restarted */
	assert_int_equal(rec_get("twell")->last->pid, healthy_pid);
	assert_string_equal(rec_get("twell")->last->health, "healthy");  /* kept */
	assert_int_equal(rec_get("texit3")->last->exit_code, 3);         /* re-reported */
	assert_int_equal(rec_get("tsbfail")->last->state, SWARM__TASK_STATE__TASK_REJECTED);
	assert_string_equal(rec_get("tsick")->last->err, "container unhealthy");

	Swarm__TaskStatusUpdate **ups;
	size_t n = taskmgr_statuses(G.tm, &ups);
	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++)
		pb_free(ups[i]);
	free(ups);

	apply();  /* the same set again: nothing restarts */
	assert_true(run_until(no_stray, NULL, 3));
	assert_int_equal(r->last->pid, pid);
	assert_int_equal(r->n_states, 1);

	/* the re-opened pidfd still sees the end */
	kill(pid, SIGKILL);
	st = wait_state("tkeep", SWARM__TASK_STATE__TASK_COMPLETE, 5);
	assert_int_equal(st->state, SWARM__TASK_STATE__TASK_FAILED);
	assert_int_equal(st->exit_code, 137);
}

static int all_removed(const void *a)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/tasks", G.state);
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n == 0;
}

static void test_remove(void **state)
{
	set_remove_all();
	apply();  /* empty set: everything is stopped and removed */
	assert_true(run_until(all_removed, NULL, 8));
	char out[4096] = "";
	char *cmd = xasprintf("runc --root %s list -q", G.runc_root);
	FILE *p = popen(cmd, "r");
	free(cmd);
	assert_non_null(p);
	size_t len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	pclose(p);
	assert_string_equal(out, "");
	char path[256];
	snprintf(path, sizeof(path), "%s/netns", G.run);
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)))
		assert_true(de->d_name[0] == '.');
	if (d)
		closedir(d);
	char *mi = NULL;
	assert_int_equal(file_read_all("/proc/self/mountinfo", 1 << 24, &mi, NULL), 0);
	assert_null(strstr(mi, G.dir));
	free(mi);
	char *json = taskmgr_container_ls_json(G.tm);
	assert_string_equal(json, "[]");
	free(json);
}

int main(void)
{
	if (getuid() != 0) {
		printf("SKIP: test_taskmgr_runc needs root\n");
		return 77;
	}
	if (system("runc --version >/dev/null 2>&1") != 0) {
		printf("SKIP: test_taskmgr_runc needs runc in PATH\n");
		return 77;
	}
	if (find_shim() < 0) {
		printf("FAIL: swarm-shim not found (set SWARM_SHIM)\n");
		return 1;
	}
	/* As the agent should: orphans (detached shims, leftovers of killed
	 * `runc exec`) come to us and libev reaps them at once, instead of
	 * waiting on whatever pid 1 is. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_and_kill),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_bad_command),
		cmocka_unit_test(test_missing_image),
		cmocka_unit_test(test_sandbox_refused),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_recover),
		cmocka_unit_test(test_remove),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
