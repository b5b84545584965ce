/* The agent's task manager (see taskmgr.h).
 *
 * runc container id = task id. Per task, <state>/tasks/<id>/ holds:
 *   task.pb      the Swarm__Task as last assigned (packed)
 *   config.json  the OCI bundle config; the task dir is the bundle
 *   rootfs/      overlayfs: lower = image rootfs, upper/ and work/ here
 *   resolv.conf, hosts, hostname   bind-mounted into /etc
 *   log          the container's stdout+stderr (appended by the shim)
 *   shim.pid, pid, exit, runc.log  written by swarm-shim and runc
 *   health       the last health status, so a restarted agent keeps it
 *   status.pb    the final TaskStatus once reported (packed), so a restarted
 *                agent reports the same end
 * and <run>/netns/<id> is its sandbox network namespace.
 *
 * A task moves through phases: NEW -> (SANDBOX: waiting for the sandbox
 * hook) -> STARTING (shim launched) -> RUNNING (shim watched with a pidfd)
 * -> EXITED; removal from the assignment set stops it if needed and then
 * REMOVING (runc delete) -> cleanup -> freed. Every runc call and health
 * check is a child process on the loop (proc.c); timers drive the stop
 * grace period and health intervals. Nothing here blocks except the tiny
 * netns helper and small local file operations. */
#include "taskmgr.h"
#include "bundle.h"
#include "netns.h"
#include "proc.h"
#include "pb.h"
#include "log.h"
#include "util.h"
#include "dispatcher.pb-c.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#define TM_DEFAULT_GRACE_NS (10LL * 1000000000LL)
#define TM_FILE_MAX (1024 * 1024)
/* Starts are paced: at most this many tasks between "preparing" and a
 * launched shim, and this many new starts per loop turn. Preparing a task
 * does short synchronous work (bundle files, overlay mount, the netns
 * helper); a burst of 100 assignments must not hold the loop, or the
 * session's heartbeats and reports stall behind it. */
#define TM_MAX_STARTING 8
#define TM_STARTS_PER_TURN 2

enum tm_phase {
	TM_NEW,       /* known, nothing started */
	TM_SANDBOX,   /* prepared, waiting for taskmgr_sandbox_ready */
	TM_STARTING,  /* shim launched, runc starting the container */
	TM_RUNNING,   /* container running, shim watched */
	TM_EXITED,    /* ended or never started; final status reported */
	TM_REMOVING,  /* runc delete in flight, then cleanup */
};

struct tm_task {
	struct taskmgr *tm;
	struct tm_task *next;
	char *id;
	char *dir;                 /* <state>/tasks/<id> */
	char *netns;               /* <run>/netns/<id> */
	Swarm__Task *t;            /* as last assigned */
	Swarm__TaskStatus *st;     /* as last observed and reported */
	enum tm_phase phase;
	bool stop_wanted;          /* desired state is past RUNNING */
	bool remove_wanted;        /* gone from the assignment set */
	bool unhealthy_kill;       /* stopping because unhealthy */
	bool sandbox_up;           /* hook told "up", not yet "down" */
	bool in_set;               /* seen in the assignment being applied */
	bool queued;               /* TM_NEW, waiting for its turn to start */
	int64_t created_ns;        /* wall: bundle made */
	int64_t started_ns;        /* wall: running */
	int64_t finished_ns;       /* wall: exited */
	pid_t shim_pid;
	int pidfd;                 /* shim's pidfd, -1 when not watched */
	ev_io shim_w;              /* readable when the shim exits */
	ev_timer poll_w;           /* without pidfd_open: polls for the exit file */
	struct proc *launch;       /* the shim launcher while STARTING */
	ev_timer kill_w;           /* SIGKILL after the grace period */
	bool killing;              /* SIGTERM sent */
	struct bundle_health hc;   /* argc 0: no health check */
	ev_timer health_w;
	struct proc *health_proc;
	int health_failures;       /* consecutive */
	int64_t health_since_mono; /* start of the start period */
};

struct taskmgr {
	struct ev_loop *loop;
	char *state_dir, *tasks_dir, *netns_dir;
	char *runc_root, *cgroup_parent, *runc_path, *shim_path;
	struct images *images;
	taskmgr_status_fn fn;
	void *arg;
	taskmgr_sandbox_fn sandbox_fn;
	void *sandbox_arg;
	struct tm_task *tasks;
	struct tm_call *calls;     /* runc invocations in flight */
	ev_timer pump_w;           /* starts queued tasks a few at a time */
};

static void tm_stop(struct tm_task *k);
static void tm_remove(struct tm_task *k);
static void tm_exited(struct tm_task *k);
static void tm_pump_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- small helpers ---- */

static char *tm_path(const struct tm_task *k, const char *name)
{
	return xasprintf("%s/%s", k->dir, name);
}

static int tm_write(const struct tm_task *k, const char *name, const char *text)
{
	char *p = tm_path(k, name);
	int err = file_write_atomic(p, text, strlen(text), 0644);
	free(p);
	return err;
}

/* Reads a small file of the task dir; NULL when absent. */
static char *tm_read(const struct tm_task *k, const char *name)
{
	char *p = tm_path(k, name), *buf = NULL;
	if (file_read_all(p, TM_FILE_MAX, &buf, NULL) < 0)
		buf = NULL;
	free(p);
	return buf;
}

static bool tm_exists(const struct tm_task *k, const char *name)
{
	char *p = tm_path(k, name);
	bool r = access(p, F_OK) == 0;
	free(p);
	return r;
}

static int64_t tm_mtime_ns(const struct tm_task *k, const char *name)
{
	char *p = tm_path(k, name);
	struct stat st;
	int64_t r = 0;
	if (stat(p, &st) == 0)
		r = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	free(p);
	return r;
}

static const char *tm_image(const struct tm_task *k)
{
	if (k->t && k->t->spec && k->t->spec->container)
		return k->t->spec->container->image;
	return "";
}

static int64_t tm_grace_ns(const struct tm_task *k)
{
	if (k->t && k->t->spec && k->t->spec->container &&
	    k->t->spec->container->stop_grace_ns > 0)
		return k->t->spec->container->stop_grace_ns;
	return TM_DEFAULT_GRACE_NS;
}

static struct tm_task *tm_find(struct taskmgr *tm, const char *id)
{
	for (struct tm_task *k = tm->tasks; k; k = k->next)
		if (strcmp(k->id, id) == 0)
			return k;
	return NULL;
}

/* Reports a state change; states only move forward. */
static void tm_report(struct tm_task *k, Swarm__TaskState state, const char *msg,
		      const char *err)
{
	if (state < k->st->state)
		return;
	k->st->state = state;
	pb_set_str(&k->st->message, msg);
	pb_set_str(&k->st->err, err);
	k->st->timestamp = now_wall_ns();
	log_info("taskmgr, task %s %s%s%s", k->id, msg, err && *err ? ": " : "",
		 err ? err : "");
	if (state >= SWARM__TASK_STATE__TASK_COMPLETE && access(k->dir, F_OK) == 0) {
		size_t len;
		uint8_t *buf = pb_pack(k->st, &len);
		char *p = tm_path(k, "status.pb");
		file_write_atomic(p, buf, len, 0600);
		free(p);
		free(buf);
	}
	k->tm->fn(k->id, k->st, k->tm->arg);
}

static void tm_set_health(struct tm_task *k, const char *health)
{
	if (strcmp(k->st->health, health) == 0)
		return;
	pb_set_str(&k->st->health, health);
	tm_write(k, "health", health);
	log_info("taskmgr, task %s health %s", k->id, *health ? health : "none");
	k->tm->fn(k->id, k->st, k->tm->arg);
}

static void tm_sandbox_down(struct tm_task *k)
{
	if (!k->sandbox_up)
		return;
	k->sandbox_up = false;
	if (k->tm->sandbox_fn)
		k->tm->sandbox_fn(k->t, k->netns, 0, k->tm->sandbox_arg);
}

/* A runc invocation in flight. It names its task by id, so a task freed
 * meanwhile is simply not found when it completes. */
struct tm_call {
	struct taskmgr *tm;
	struct tm_call *next;
	struct proc *proc;
	char *id;                  /* task id or NULL */
	void (*done)(struct taskmgr *tm, const char *id, const struct proc_result *r);
	char what[32];             /* subcommand, for the log */
};

static void tm_call_free(struct tm_call *c)
{
	for (struct tm_call **pp = &c->tm->calls; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	free(c->id);
	free(c);
}

static void tm_runc_done(const struct proc_result *r, void *arg)
{
	struct tm_call *c = arg;
	if (!(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0))
		log_debug("taskmgr, runc %s %s: %s", c->what, c->id ? c->id : "",
			  r->out ? r->out : "");
	if (c->done)
		c->done(c->tm, c->id, r);
	tm_call_free(c);
}

/* Runs `runc --root R ARGS...`; done (may be NULL: the result is only
 * logged) gets the output. 0 or -errno. */
static int tm_runc(struct taskmgr *tm, const char *id, const char *const *args, size_t n,
		   void (*done)(struct taskmgr *, const char *, const struct proc_result *))
{
	char *argv[16];
	size_t a = 0;
	argv[a++] = tm->runc_path;
	argv[a++] = "--root";
	argv[a++] = tm->runc_root;
	for (size_t i = 0; i < n && a + 1 < ARRAY_SIZE(argv); i++)
		argv[a++] = (char *)args[i];
	argv[a] = NULL;
	struct tm_call *c = xcalloc(1, sizeof(*c));
	c->tm = tm;
	c->id = id ? xstrdup(id) : NULL;
	c->done = done;
	snprintf(c->what, sizeof(c->what), "%s", args[0]);
	struct proc_opts o = { PROC_NULL, PROC_CAPTURE, PROC_CAPTURE, 60LL * 1000000000LL,
			       1024 * 1024 };
	int err;
	c->proc = proc_spawn(tm->loop, argv, &o, tm_runc_done, c, &err);
	if (!c->proc) {
		log_err("taskmgr, cannot run %s: %s", tm->runc_path, strerror(-err));
		free(c->id);
		free(c);
		return err;
	}
	c->next = tm->calls;
	tm->calls = c;
	return 0;
}

/* ---- task records ---- */

static struct tm_task *tm_task_new(struct taskmgr *tm, const char *id)
{
	struct tm_task *k = xcalloc(1, sizeof(*k));
	k->tm = tm;
	k->id = xstrdup(id);
	k->dir = xasprintf("%s/%s", tm->tasks_dir, id);
	k->netns = xasprintf("%s/%s", tm->netns_dir, id);
	k->st = xmalloc(sizeof(*k->st));
	swarm__task_status__init(k->st);
	k->st->state = SWARM__TASK_STATE__TASK_ASSIGNED;
	k->pidfd = -1;
	ev_timer_init(&k->kill_w, NULL, 0., 0.);
	ev_timer_init(&k->health_w, NULL, 0., 0.);
	ev_timer_init(&k->poll_w, NULL, 0., 0.);
	k->next = tm->tasks;
	tm->tasks = k;
	return k;
}

/* Stops every watcher and forgets children; containers are untouched. */
static void tm_task_quiesce(struct tm_task *k)
{
	struct ev_loop *loop = k->tm->loop;
	ev_timer_stop(loop, &k->kill_w);
	ev_timer_stop(loop, &k->health_w);
	ev_timer_stop(loop, &k->poll_w);
	if (k->pidfd >= 0) {
		ev_io_stop(loop, &k->shim_w);
		close(k->pidfd);
		k->pidfd = -1;
	}
	if (k->health_proc) {
		proc_kill(k->health_proc, SIGKILL);
		proc_detach(k->health_proc);
		k->health_proc = NULL;
	}
	proc_detach(k->launch);
	k->launch = NULL;
}

static void tm_task_free(struct tm_task *k)
{
	struct taskmgr *tm = k->tm;
	for (struct tm_task **pp = &tm->tasks; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	tm_task_quiesce(k);
	bundle_health_free(&k->hc);
	pb_free(k->t);
	pb_free(k->st);
	free(k->id);
	free(k->dir);
	free(k->netns);
	free(k);
}

static void tm_save_task(struct tm_task *k)
{
	size_t len;
	uint8_t *buf = pb_pack(k->t, &len);
	char *p = tm_path(k, "task.pb");
	int err = file_write_atomic(p, buf, len, 0600);
	if (err < 0)
		log_warn("taskmgr, cannot write %s: %s", p, strerror(-err));
	free(p);
	free(buf);
}

/* ---- health checks ---- */

static void tm_health_arm(struct tm_task *k);

/* After a timed-out check: runc exec was killed, but the process it started
 * in the container may still run. Kill it if that pid is still in the
 * container's cgroup (not reused since). */
static void tm_health_kill_leftover(struct tm_task *k)
{
	char *s = tm_read(k, "health.pid");
	pid_t pid = s ? (pid_t)atoi(s) : 0;
	free(s);
	char *p = tm_path(k, "health.pid");
	unlink(p);
	free(p);
	if (pid <= 0)
		return;
	char path[64], *cg = NULL;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (file_read_all(path, 64 * 1024, &cg, NULL) < 0)
		return;
	char *needle = xasprintf(":/%s/%s\n", k->tm->cgroup_parent, k->id);
	if (strstr(cg, needle))
		kill(pid, SIGKILL);
	free(needle);
	free(cg);
}

static void tm_health_done(const struct proc_result *r, void *arg)
{
	struct tm_task *k = arg;
	k->health_proc = NULL;
	if (r->timed_out)
		tm_health_kill_leftover(k);
	if (k->phase != TM_RUNNING || k->killing || k->stop_wanted || k->remove_wanted)
		return;
	bool ok = !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
	if (ok) {
		k->health_failures = 0;
		tm_set_health(k, "healthy");
	} else {
		bool in_start = strcmp(k->st->health, "starting") == 0 &&
			now_mono_ns() - k->health_since_mono < k->hc.start_period_ns;
		if (!in_start)
			k->health_failures++;
		log_debug("taskmgr, task %s health check failed (%d/%d)%s", k->id,
			  k->health_failures, k->hc.retries, r->timed_out ? ": timed out" : "");
		if (k->health_failures >= k->hc.retries) {
			tm_set_health(k, "unhealthy");
			k->unhealthy_kill = true;
			tm_stop(k);
			return;
		}
	}
	tm_health_arm(k);
}

static void tm_health_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tm_task *k = w->data;
	struct taskmgr *tm = k->tm;
	if (k->phase != TM_RUNNING || k->health_proc)
		return;
	char *argv[8 + 64];
	size_t a = 0;
	char *pidfile = tm_path(k, "health.pid");
	argv[a++] = tm->runc_path;
	argv[a++] = "--root";
	argv[a++] = tm->runc_root;
	argv[a++] = "exec";
	argv[a++] = "--pid-file";
	argv[a++] = pidfile;
	argv[a++] = k->id;
	for (size_t i = 0; i < k->hc.argc && a + 1 < ARRAY_SIZE(argv); i++)
		argv[a++] = k->hc.argv[i];
	argv[a] = NULL;
	/* A check that outlives its timeout is killed (runc exec and with it
	 * the exec'd process's stdio) and counts as a failure. */
	struct proc_opts o = { PROC_NULL, PROC_CAPTURE, PROC_CAPTURE, k->hc.timeout_ns, 4096 };
	int err;
	k->health_proc = proc_spawn(loop, argv, &o, tm_health_done, k, &err);
	free(pidfile);
	if (!k->health_proc) {
		log_warn("taskmgr, task %s: cannot run health check: %s", k->id, strerror(-err));
		tm_health_arm(k);
	}
}

static void tm_health_arm(struct tm_task *k)
{
	ev_timer_stop(k->tm->loop, &k->health_w);
	ev_timer_init(&k->health_w, tm_health_cb, (double)k->hc.interval_ns / 1e9, 0.);
	k->health_w.data = k;
	ev_timer_start(k->tm->loop, &k->health_w);
}

/* recovered: the container ran before an agent restart; its last health
 * (already restored into st by tm_set_running) is kept, and checks resume
 * without a new start period. */
static void tm_health_start(struct tm_task *k, bool recovered)
{
	if (k->hc.argc == 0)
		return;
	k->health_failures = 0;
	k->health_since_mono = now_mono_ns();
	if (recovered && *k->st->health)
		k->health_since_mono -= k->hc.start_period_ns;
	else
		tm_set_health(k, "starting");
	tm_health_arm(k);
}

/* The health config of a task, from its spec and image. */
static void tm_health_config(struct tm_task *k, const struct image_config *img)
{
	bundle_health_free(&k->hc);
	bundle_health(k->t->spec ? k->t->spec->container : NULL, img, &k->hc);
}

/* ---- running and exiting ---- */

static void tm_shim_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	tm_exited(w->data);
}

/* Fallback where pidfd_open is missing (old kernels, valgrind): the shim
 * writes exit before it exits; a shim gone without it is reported lost. */
static void tm_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tm_task *k = w->data;
	if (tm_exists(k, "exit") || (kill(k->shim_pid, 0) < 0 && errno == ESRCH))
		tm_exited(k);
}

/* Watches the shim; 0, or -errno when it is already gone. */
static int tm_watch_shim(struct tm_task *k)
{
	char *s = tm_read(k, "shim.pid");
	k->shim_pid = s ? (pid_t)atoi(s) : 0;
	free(s);
	if (k->shim_pid <= 0)
		return -ENOENT;
	int fd = (int)syscall(SYS_pidfd_open, k->shim_pid, 0);
	if (fd < 0 && errno == ENOSYS) {
		if (kill(k->shim_pid, 0) < 0 || tm_exists(k, "exit"))
			return -ESRCH;
		ev_timer_init(&k->poll_w, tm_poll_cb, 0.25, 0.25);
		k->poll_w.data = k;
		ev_timer_start(k->tm->loop, &k->poll_w);
		return 0;
	}
	if (fd < 0)
		return -errno;
	/* The shim writes exit before it exits: if exit is absent now, the
	 * shim was alive when the pidfd was opened, so it is the right one. */
	if (tm_exists(k, "exit")) {
		close(fd);
		return -ESRCH;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	k->pidfd = fd;
	ev_io_init(&k->shim_w, tm_shim_cb, fd, EV_READ);
	k->shim_w.data = k;
	ev_io_start(k->tm->loop, &k->shim_w);
	return 0;
}

static void tm_set_running(struct tm_task *k, bool recovered)
{
	char *s = tm_read(k, "pid");
	k->st->pid = s ? atoi(s) : 0;
	free(s);
	pb_set_str(&k->st->container_id, k->id);
	if (recovered && k->hc.argc > 0) {
		char *h = tm_read(k, "health");
		if (h && (strcmp(h, "healthy") == 0 || strcmp(h, "unhealthy") == 0))
			pb_set_str(&k->st->health, h);
		free(h);
	}
	k->phase = TM_RUNNING;
	k->started_ns = tm_mtime_ns(k, "pid");
	if (!k->started_ns)
		k->started_ns = now_wall_ns();
	tm_report(k, SWARM__TASK_STATE__TASK_RUNNING, "started", NULL);
	tm_health_start(k, recovered);
}

/* The container has ended (the shim is gone, or never ran it): read its
 * exit file and report the final state. */
static void tm_exited(struct tm_task *k)
{
	struct ev_loop *loop = k->tm->loop;
	if (k->pidfd >= 0) {
		ev_io_stop(loop, &k->shim_w);
		close(k->pidfd);
		k->pidfd = -1;
	}
	ev_timer_stop(loop, &k->poll_w);
	ev_timer_stop(loop, &k->kill_w);
	ev_timer_stop(loop, &k->health_w);
	if (k->health_proc) {
		proc_kill(k->health_proc, SIGKILL);
		proc_detach(k->health_proc);
		k->health_proc = NULL;
	}
	k->killing = false;
	k->phase = TM_EXITED;
	k->st->pid = 0;
	k->finished_ns = tm_mtime_ns(k, "exit");
	if (!k->finished_ns)
		k->finished_ns = now_wall_ns();

	char *text = tm_read(k, "exit");
	int code = 128;
	const char *why = "container lost";
	if (text) {
		code = atoi(text);
		char *nl = strchr(text, '\n');
		why = nl && nl[1] ? nl + 1 : NULL;
		if (why) {
			char *end = strchr(nl + 1, '\n');
			if (end)
				*end = '\0';
		}
	}
	k->st->exit_code = code;
	char err[512];
	if (k->unhealthy_kill) {
		tm_report(k, SWARM__TASK_STATE__TASK_FAILED, "failed", "container unhealthy");
	} else if (k->stop_wanted || k->remove_wanted) {
		tm_report(k, SWARM__TASK_STATE__TASK_SHUTDOWN, "shutdown", NULL);
	} else if (text && !why && code == 0) {
		tm_report(k, SWARM__TASK_STATE__TASK_COMPLETE, "finished", NULL);
	} else {
		if (text && !why)
			snprintf(err, sizeof(err), "task: non-zero exit (%d)", code);
		else
			snprintf(err, sizeof(err), "%s", why);
		tm_report(k, SWARM__TASK_STATE__TASK_FAILED, "failed", err);
	}
	free(text);
	tm_sandbox_down(k);
	if (k->remove_wanted)
		tm_remove(k);
}

static void tm_launch_done(const struct proc_result *r, void *arg)
{
	struct tm_task *k = arg;
	k->launch = NULL;
	if (!(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0)) {
		/* runc failed; the shim wrote the reason into exit. */
		if (!tm_exists(k, "exit"))
			tm_write(k, "exit", "128\ncannot start the container shim\n");
		tm_exited(k);
		return;
	}
	int err = tm_watch_shim(k);
	tm_set_running(k, false);
	if (err < 0) {
		/* Already over (or the shim is lost; then exit says so). */
		tm_exited(k);
		return;
	}
	if (k->stop_wanted || k->remove_wanted)
		tm_stop(k);
}

static void tm_launch(struct tm_task *k)
{
	struct taskmgr *tm = k->tm;
	if (k->stop_wanted || k->remove_wanted) {
		k->phase = TM_EXITED;
		tm_report(k, SWARM__TASK_STATE__TASK_SHUTDOWN, "shutdown", NULL);
		tm_sandbox_down(k);
		if (k->remove_wanted)
			tm_remove(k);
		return;
	}
	k->phase = TM_STARTING;
	tm_report(k, SWARM__TASK_STATE__TASK_STARTING, "starting", NULL);
	char *argv[] = { tm->shim_path, k->dir, tm->runc_path, tm->runc_root, k->id, k->dir, NULL };
	int err;
	k->launch = proc_spawn(tm->loop, argv, NULL, tm_launch_done, k, &err);
	if (!k->launch) {
		char msg[256];
		snprintf(msg, sizeof(msg), "128\ncannot run %s: %s\n", tm->shim_path, strerror(-err));
		tm_write(k, "exit", msg);
		tm_exited(k);
	}
}

static void tm_reject(struct tm_task *k, const char *err)
{
	k->phase = TM_EXITED;
	tm_report(k, SWARM__TASK_STATE__TASK_REJECTED, "rejected", err);
	tm_sandbox_down(k);
}

/* Mounts the overlay rootfs unless it is mounted already. */
static int tm_mount_rootfs(struct tm_task *k, const char *lower)
{
	char *rootfs = tm_path(k, "rootfs"), *upper = tm_path(k, "upper");
	char *work = tm_path(k, "work");
	struct stat a, b;
	int err = 0;
	if (stat(rootfs, &a) == 0 && stat(k->dir, &b) == 0 && a.st_dev != b.st_dev)
		goto out;  /* mounted */
	char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (mount("overlay", rootfs, "overlay", 0, opts) < 0)
		err = -errno;
	free(opts);
out:
	free(rootfs);
	free(upper);
	free(work);
	return err;
}

/* Builds the task dir, rootfs, netns and bundle. err text into why. */
static int tm_prepare(struct tm_task *k, const struct image_config *img, char *why, size_t len)
{
	struct taskmgr *tm = k->tm;
	int err = mkdir_p(k->dir, 0711);
	if (err < 0) {
		snprintf(why, len, "cannot create %s: %s", k->dir, strerror(-err));
		return err;
	}
	tm_save_task(k);
	static const char *const dirs[] = { "rootfs", "upper", "work" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char *p = tm_path(k, dirs[i]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			err = -errno;
		free(p);
		if (err) {
			snprintf(why, len, "cannot create task dirs: %s", strerror(-err));
			return err;
		}
	}
	char *hostname = bundle_hostname(k->t);
	char *hosts = bundle_hosts(k->t, hostname);
	char *resolv = bundle_resolv_conf();
	char *hn = xasprintf("%s\n", hostname);
	err = tm_write(k, "hosts", hosts);
	if (!err)
		err = tm_write(k, "resolv.conf", resolv);
	if (!err)
		err = tm_write(k, "hostname", hn);
	free(hostname);
	free(hosts);
	free(resolv);
	free(hn);
	if (err) {
		snprintf(why, len, "cannot write /etc files: %s", strerror(-err));
		return err;
	}
	err = tm_mount_rootfs(k, img->rootfs);
	if (err) {
		snprintf(why, len, "cannot mount the rootfs: %s", strerror(-err));
		return err;
	}
	err = netns_create(k->netns);
	if (err) {
		snprintf(why, len, "cannot create the network namespace: %s", strerror(-err));
		return err;
	}
	char *rootfs = tm_path(k, "rootfs"), *rc = tm_path(k, "resolv.conf");
	char *hp = tm_path(k, "hosts"), *hnp = tm_path(k, "hostname");
	char *cg = xasprintf("/%s/%s", tm->cgroup_parent, k->id);
	struct bundle_paths paths = {
		.rootfs = rootfs, .netns = k->netns, .cgroups_path = cg,
		.resolv_conf = rc, .hosts = hp, .hostname = hnp,
	};
	char *json = NULL;
	err = bundle_config_json(k->t, img, &paths, &json);
	if (err)
		snprintf(why, len, "no command specified");
	else if ((err = tm_write(k, "config.json", json)) < 0)
		snprintf(why, len, "cannot write the bundle: %s", strerror(-err));
	free(json);
	free(rootfs);
	free(rc);
	free(hp);
	free(hnp);
	free(cg);
	if (err)
		return err;
	/* Leftovers of an attempt interrupted by an agent restart. */
	static const char *const stale[] = { "exit", "pid", "shim.pid", "health", "status.pb" };
	for (size_t i = 0; i < ARRAY_SIZE(stale); i++) {
		char *p = tm_path(k, stale[i]);
		unlink(p);
		free(p);
	}
	k->created_ns = now_wall_ns();
	return 0;
}

static void tm_start(struct tm_task *k)
{
	struct taskmgr *tm = k->tm;
	tm_report(k, SWARM__TASK_STATE__TASK_PREPARING, "preparing", NULL);
	struct image_config img;
	const char *image = tm_image(k);
	char why[512];
	if (!k->t->spec || !k->t->spec->container) {
		tm_reject(k, "task has no container spec");
		return;
	}
	if (images_get(tm->images, image, &img) < 0) {
		snprintf(why, sizeof(why), "No such image: %s", image);
		tm_reject(k, why);
		return;
	}
	int err = tm_prepare(k, &img, why, sizeof(why));
	if (!err)
		tm_health_config(k, &img);
	image_config_free(&img);
	if (err) {
		tm_reject(k, why);
		return;
	}
	if (tm->sandbox_fn) {
		k->phase = TM_SANDBOX;
		k->sandbox_up = true;
		tm->sandbox_fn(k->t, k->netns, 1, tm->sandbox_arg);
		return;  /* continues in taskmgr_sandbox_ready */
	}
	tm_launch(k);
}

void taskmgr_sandbox_ready(struct taskmgr *tm, const char *task_id, int err)
{
	struct tm_task *k = tm_find(tm, task_id);
	if (!k || k->phase != TM_SANDBOX)
		return;
	if (err) {
		char why[256];
		snprintf(why, sizeof(why), "cannot set up the sandbox: %s", strerror(-err));
		tm_reject(k, why);
		if (k->remove_wanted)
			tm_remove(k);
		return;
	}
	tm_launch(k);
}

/* ---- stopping and removing ---- */

static void tm_kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tm_task *k = w->data;
	if (k->phase != TM_RUNNING)
		return;
	log_info("taskmgr, task %s: grace period over, killing", k->id);
	const char *a[3] = { "kill", k->id, "KILL" };
	tm_runc(k->tm, k->id, a, 3, NULL);
}

static void tm_stop(struct tm_task *k)
{
	switch (k->phase) {
	case TM_NEW:
		k->phase = TM_EXITED;
		if (!k->remove_wanted)
			tm_report(k, SWARM__TASK_STATE__TASK_SHUTDOWN, "shutdown", NULL);
		return;
	case TM_SANDBOX:
	case TM_STARTING:
		return;  /* acted on when the start step finishes */
	case TM_RUNNING:
		break;
	case TM_EXITED:
	case TM_REMOVING:
		return;
	}
	if (k->killing)
		return;
	k->killing = true;
	ev_timer_stop(k->tm->loop, &k->health_w);
	const char *a[3] = { "kill", k->id, "TERM" };
	tm_runc(k->tm, k->id, a, 3, NULL);
	ev_timer_init(&k->kill_w, tm_kill_cb, (double)tm_grace_ns(k) / 1e9, 0.);
	k->kill_w.data = k;
	ev_timer_start(k->tm->loop, &k->kill_w);
}

/* Local state of a removed task: mounts, netns, files. */
static void tm_cleanup(struct tm_task *k)
{
	tm_sandbox_down(k);
	char *rootfs = tm_path(k, "rootfs");
	if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("taskmgr, umount %s: %s", rootfs, strerror(errno));
	free(rootfs);
	int err = netns_remove(k->netns);
	if (err < 0)
		log_warn("taskmgr, remove %s: %s", k->netns, strerror(-err));
	err = rm_rf(k->dir);
	if (err < 0)
		log_warn("taskmgr, remove %s: %s", k->dir, strerror(-err));
	log_info("taskmgr, task %s removed", k->id);
	tm_task_free(k);
}

static void tm_deleted(struct taskmgr *tm, const char *id, const struct proc_result *r)
{
	struct tm_task *k = tm_find(tm, id);
	if (k && k->phase == TM_REMOVING)
		tm_cleanup(k);
}

static void tm_remove(struct tm_task *k)
{
	k->remove_wanted = true;
	switch (k->phase) {
	case TM_SANDBOX:
	case TM_STARTING:
		return;  /* the start step sees remove_wanted */
	case TM_RUNNING:
		tm_stop(k);
		return;  /* tm_exited comes back here */
	case TM_REMOVING:
		return;
	case TM_NEW:
	case TM_EXITED:
		break;
	}
	k->phase = TM_REMOVING;
	if (access(k->dir, F_OK) < 0) {
		tm_cleanup(k);
		return;
	}
	const char *a[3] = { "delete", "--force", k->id };
	if (tm_runc(k->tm, k->id, a, 3, tm_deleted) < 0)
		tm_cleanup(k);
}

/* ---- assignments ---- */

static bool tm_desired_run(const Swarm__Task *t)
{
	return t->desired_state <= SWARM__TASK_STATE__TASK_RUNNING;
}

static void tm_assign_new(struct taskmgr *tm, Swarm__Task *const t)
{
	Swarm__TaskState seen = t->status ? t->status->state : SWARM__TASK_STATE__TASK_NEW;
	if (seen >= SWARM__TASK_STATE__TASK_COMPLETE)
		return;  /* over, and nothing of it here */
	struct tm_task *k = tm_task_new(tm, t->id);
	k->t = pb_dup(t);
	k->in_set = true;
	if (!tm_desired_run(t)) {
		k->stop_wanted = true;
		tm_stop(k);
	} else if (seen >= SWARM__TASK_STATE__TASK_STARTING) {
		/* The manager saw it start here, but we have no trace of it. */
		k->phase = TM_EXITED;
		tm_report(k, SWARM__TASK_STATE__TASK_FAILED, "failed", "container lost");
	} else {
		k->queued = true;
		if (!ev_is_active(&tm->pump_w))
			ev_timer_start(tm->loop, &tm->pump_w);
	}
}

/* Starts queued tasks, a few per turn and never more than TM_MAX_STARTING
 * at once; runs again until the queue is empty. */
static void tm_pump_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct taskmgr *tm = w->data;
	size_t inflight = 0, queued = 0;
	for (struct tm_task *k = tm->tasks; k; k = k->next) {
		if (k->phase == TM_SANDBOX || k->phase == TM_STARTING)
			inflight++;
		else if (k->phase == TM_NEW && k->queued)
			queued++;
	}
	for (int started = 0; queued > 0 && inflight < TM_MAX_STARTING &&
			      started < TM_STARTS_PER_TURN; started++) {
		struct tm_task *pick = NULL;
		for (struct tm_task *k = tm->tasks; k; k = k->next)
			if (k->phase == TM_NEW && k->queued)
				pick = k; /* the oldest: the list is newest first */
		if (!pick)
			break;
		pick->queued = false;
		queued--;
		inflight++;
		tm_start(pick);
	}
	if (queued == 0)
		ev_timer_stop(loop, w);
}

/* Task ids name files and runc containers: [A-Za-z0-9_.-], not "." or "..". */
static bool tm_id_ok(const char *id)
{
	if (!id || !*id || id[0] == '.' || strlen(id) > 128)
		return false;
	for (const char *p = id; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
			return false;
	return true;
}

void taskmgr_assign(struct taskmgr *tm, Swarm__Task *const *tasks, size_t n)
{
	for (struct tm_task *k = tm->tasks; k; k = k->next)
		k->in_set = false;
	for (size_t i = 0; i < n; i++) {
		Swarm__Task *t = tasks[i];
		if (!tm_id_ok(t->id)) {
			log_warn("taskmgr, ignoring a task with an unusable id \"%s\"",
				 t->id ? t->id : "");
			continue;
		}
		struct tm_task *k = tm_find(tm, t->id);
		if (!k) {
			tm_assign_new(tm, t);
			continue;
		}
		k->in_set = true;
		if (k->remove_wanted)
			continue;
		bool changed = k->t->desired_state != t->desired_state;
		pb_free(k->t);
		k->t = pb_dup(t);
		if (changed && access(k->dir, F_OK) == 0)
			tm_save_task(k);
		if (!tm_desired_run(t) && !k->stop_wanted) {
			k->stop_wanted = true;
			tm_stop(k);
		}
	}
	/* tm_remove may free the task: walk a snapshot of the ids. */
	size_t m = 0;
	for (struct tm_task *k = tm->tasks; k; k = k->next)
		m++;
	char **gone = xcalloc(m + 1, sizeof(char *));
	size_t g = 0;
	for (struct tm_task *k = tm->tasks; k; k = k->next)
		if (!k->in_set && !k->remove_wanted)
			gone[g++] = xstrdup(k->id);
	for (size_t i = 0; i < g; i++) {
		struct tm_task *k = tm_find(tm, gone[i]);
		if (k)
			tm_remove(k);
		free(gone[i]);
	}
	free(gone);
}

size_t taskmgr_statuses(struct taskmgr *tm, Swarm__TaskStatusUpdate ***out)
{
	size_t n = 0;
	for (struct tm_task *k = tm->tasks; k; k = k->next)
		n++;
	Swarm__TaskStatusUpdate **v = xcalloc(n ? n : 1, sizeof(*v));
	size_t i = 0;
	for (struct tm_task *k = tm->tasks; k; k = k->next) {
		if (k->st->state <= SWARM__TASK_STATE__TASK_ASSIGNED)
			continue;
		Swarm__TaskStatusUpdate *u = xmalloc(sizeof(*u));
		swarm__task_status_update__init(u);
		u->task_id = xstrdup(k->id);
		u->status = pb_dup(k->st);
		v[i++] = u;
	}
	*out = v;
	return i;
}

/* ---- recovery ---- */

/* True when pid is a swarm-shim serving this task dir. */
static bool tm_is_our_shim(const struct tm_task *k, pid_t pid)
{
	char path[64], *buf = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (file_read_all(path, 64 * 1024, &buf, &len) < 0)
		return false;
	bool ok = false;
	const char *argv0 = buf;
	const char *argv1 = buf + strlen(buf) + 1;
	if (strstr(argv0, "swarm-shim") && (size_t)(argv1 - buf) < len &&
	    strcmp(argv1, k->dir) == 0)
		ok = true;
	free(buf);
	return ok;
}

static void tm_recover_one(struct taskmgr *tm, const char *id)
{
	struct tm_task *k = tm_task_new(tm, id);
	char *p = tm_path(k, "task.pb");
	char *buf = NULL;
	size_t len = 0;
	if (file_read_all(p, 64 * 1024 * 1024, &buf, &len) == 0)
		k->t = swarm__task__unpack(NULL, len, (const uint8_t *)buf);
	free(buf);
	free(p);
	if (!k->t) {
		log_warn("taskmgr, task dir %s without a readable task.pb, removing", k->dir);
		k->t = xmalloc(sizeof(*k->t));
		swarm__task__init(k->t);
		pb_set_str(&k->t->id, id);
		k->phase = TM_EXITED;
		tm_remove(k);
		return;
	}
	k->stop_wanted = !tm_desired_run(k->t);
	k->created_ns = tm_mtime_ns(k, "config.json");
	struct image_config img;
	if (images_get(tm->images, tm_image(k), &img) == 0) {
		tm_health_config(k, &img);
		image_config_free(&img);
	} else {
		tm_health_config(k, NULL);
	}
	char *s = tm_read(k, "shim.pid");
	pid_t shim = s ? (pid_t)atoi(s) : 0;
	free(s);
	if (shim > 0 && tm_is_our_shim(k, shim) && tm_watch_shim(k) == 0) {
		log_info("taskmgr, adopting running container %s", id);
		k->sandbox_up = true;
		/* the hook re-learns the sandbox (its answer is not waited for) */
		if (tm->sandbox_fn)
			tm->sandbox_fn(k->t, k->netns, 1, tm->sandbox_arg);
		tm_set_running(k, true);
		if (k->stop_wanted)
			tm_stop(k);
		return;
	}
	/* Ended and reported before the restart: the same end again. */
	p = tm_path(k, "status.pb");
	Swarm__TaskStatus *saved = NULL;
	if (file_read_all(p, 1024 * 1024, &buf, &len) == 0) {
		saved = swarm__task_status__unpack(NULL, len, (const uint8_t *)buf);
		free(buf);
	}
	free(p);
	if (saved && saved->state >= SWARM__TASK_STATE__TASK_COMPLETE) {
		pb_free(k->st);
		k->st = saved;
		k->phase = TM_EXITED;
		k->started_ns = tm_mtime_ns(k, "pid");
		k->finished_ns = tm_mtime_ns(k, "status.pb");
		k->tm->fn(k->id, k->st, k->tm->arg);
		return;
	}
	pb_free(saved);
	if (!tm_exists(k, "shim.pid") && !tm_exists(k, "exit")) {
		k->phase = TM_EXITED;
		tm_report(k, SWARM__TASK_STATE__TASK_FAILED, "failed", "container lost");
		return;
	}
	/* Ended while we were away (exit file), or the shim died (lost). */
	pb_set_str(&k->st->container_id, id);
	k->started_ns = tm_mtime_ns(k, "pid");
	char *h = tm_read(k, "health");
	if (h && strcmp(h, "unhealthy") == 0)
		k->unhealthy_kill = true;
	if (h)
		pb_set_str(&k->st->health, h);
	free(h);
	tm_exited(k);
}

static void tm_orphans_done(struct taskmgr *tm, const char *unused,
			    const struct proc_result *r)
{
	if (!(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0) || !r->out)
		return;
	char *save = NULL;
	for (char *id = strtok_r(r->out, " \t\n", &save); id; id = strtok_r(NULL, " \t\n", &save)) {
		if (tm_find(tm, id))
			continue;
		log_info("taskmgr, deleting runc container %s that has no task", id);
		const char *a[3] = { "delete", "--force", id };
		tm_runc(tm, NULL, a, 3, NULL);
	}
}

int taskmgr_recover(struct taskmgr *tm)
{
	DIR *d = opendir(tm->tasks_dir);
	if (!d)
		return -errno;
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || tm_find(tm, de->d_name))
			continue;
		ids = xrealloc(ids, (n + 1) * sizeof(char *));
		ids[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		tm_recover_one(tm, ids[i]);
		free(ids[i]);
	}
	free(ids);

	/* Sandboxes whose task dir is gone. */
	d = opendir(tm->netns_dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || tm_find(tm, de->d_name))
			continue;
		char *p = xasprintf("%s/%s", tm->netns_dir, de->d_name);
		netns_remove(p);
		free(p);
	}
	if (d)
		closedir(d);

	/* runc containers in our root that no task dir knows. */
	const char *a[2] = { "list", "-q" };
	return tm_runc(tm, NULL, a, 2, tm_orphans_done);
}

/* ---- local API ---- */

/* RFC 3339 for inspect; an unset time (not started, not ended) is "". */
static void tm_rfc3339(int64_t ns, char *out, size_t len)
{
	if (ns > 0)
		time_rfc3339(ns, out, len);
	else if (len)
		out[0] = '\0';
}

static const char *tm_docker_state(const struct tm_task *k)
{
	switch (k->phase) {
	case TM_RUNNING:
		return "running";
	case TM_EXITED:
	case TM_REMOVING:
		return k->started_ns || tm_exists(k, "exit") ? "exited" : "created";
	default:
		return "created";
	}
}

static void tm_docker_status(const struct tm_task *k, char *out, size_t len)
{
	char d[64];
	int64_t now = now_wall_ns();
	if (k->phase == TM_RUNNING) {
		human_duration(now - k->started_ns, d, sizeof(d));
		snprintf(out, len, "Up %s%s%s%s", d, *k->st->health ? " (" : "",
			 k->st->health, *k->st->health ? ")" : "");
	} else if (strcmp(tm_docker_state(k), "exited") == 0) {
		human_duration(now - k->finished_ns, d, sizeof(d));
		snprintf(out, len, "Exited (%d) %s ago", k->st->exit_code, d);
	} else {
		snprintf(out, len, "Created");
	}
}

static const char *tm_name(const struct tm_task *k)
{
	return k->t && k->t->name && *k->t->name ? k->t->name : k->id;
}

char *taskmgr_container_ls_json(struct taskmgr *tm)
{
	json_object *a = json_object_new_array();
	for (struct tm_task *k = tm->tasks; k; k = k->next) {
		if (k->phase == TM_NEW || k->phase == TM_SANDBOX || !k->created_ns)
			continue;  /* no container (yet) */
		char status[128], created[64];
		tm_docker_status(k, status, sizeof(status));
		tm_rfc3339(k->created_ns, created, sizeof(created));
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ID", json_object_new_string(k->id));
		json_object_object_add(o, "Name", json_object_new_string(tm_name(k)));
		json_object_object_add(o, "Image", json_object_new_string(tm_image(k)));
		json_object_object_add(o, "State", json_object_new_string(tm_docker_state(k)));
		json_object_object_add(o, "Status", json_object_new_string(status));
		json_object_object_add(o, "Pid", json_object_new_int(k->st->pid));
		json_object_object_add(o, "Created", json_object_new_string(created));
		json_object_array_add(a, o);
	}
	char *s = xstrdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
	return s;
}

/* Finds a container by full name or id, then by a name prefix that ends at
 * a '.' ("my-nginx.1"), then by any prefix of either; among several
 * matches a single running one wins. -ENOENT or -EEXIST (ambiguous). */
static int tm_lookup(struct taskmgr *tm, const char *name, struct tm_task **out)
{
	if (!name || !*name)
		return -ENOENT;
	size_t nl = strlen(name);
	for (int pass = 0; pass < 3; pass++) {
		struct tm_task *hit = NULL, *running = NULL;
		int n = 0, n_running = 0;
		for (struct tm_task *k = tm->tasks; k; k = k->next) {
			const char *kn = tm_name(k);
			bool m;
			if (pass == 0)
				m = strcmp(kn, name) == 0 || strcmp(k->id, name) == 0;
			else if (pass == 1)
				m = strncmp(kn, name, nl) == 0 && kn[nl] == '.';
			else
				m = strncmp(kn, name, nl) == 0 || strncmp(k->id, name, nl) == 0;
			if (!m)
				continue;
			n++;
			hit = k;
			if (k->phase == TM_RUNNING) {
				n_running++;
				running = k;
			}
		}
		if (n == 1) {
			*out = hit;
			return 0;
		}
		if (n > 1 && n_running == 1) {
			*out = running;
			return 0;
		}
		if (n > 1)
			return -EEXIST;
	}
	return -ENOENT;
}

int taskmgr_container_lookup(struct taskmgr *tm, const char *name, char **container_id)
{
	struct tm_task *k;
	int err = tm_lookup(tm, name, &k);
	if (err)
		return err;
	*container_id = xstrdup(k->id);
	return 0;
}

int taskmgr_container_log_path(struct taskmgr *tm, const char *name, char **path)
{
	struct tm_task *k;
	int err = tm_lookup(tm, name, &k);
	if (err)
		return err;
	*path = tm_path(k, "log");
	return 0;
}

static json_object *tm_json_copy(json_object *o, const char *key)
{
	json_object *v;
	if (o && json_object_object_get_ex(o, key, &v))
		return json_object_get(v);
	return NULL;
}

int taskmgr_container_inspect_json(struct taskmgr *tm, const char *name, char **json)
{
	struct tm_task *k;
	int err = tm_lookup(tm, name, &k);
	if (err)
		return err;
	/* The bundle is the truth about what the container runs. */
	char *cfgtext = tm_read(k, "config.json");
	json_object *cfg = cfgtext ? json_tokener_parse(cfgtext) : NULL;
	free(cfgtext);
	json_object *process = NULL;
	if (cfg)
		json_object_object_get_ex(cfg, "process", &process);

	char created[64];
	tm_rfc3339(k->created_ns, created, sizeof(created));
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Id", json_object_new_string(k->id));
	char *slash_name = xasprintf("/%s", tm_name(k));
	json_object_object_add(o, "Name", json_object_new_string(slash_name));
	free(slash_name);
	json_object_object_add(o, "Image", json_object_new_string(tm_image(k)));
	json_object_object_add(o, "Created", json_object_new_string(created));

	json_object *state = json_object_new_object();
	json_object_object_add(state, "Status", json_object_new_string(tm_docker_state(k)));
	json_object_object_add(state, "Running", json_object_new_boolean(k->phase == TM_RUNNING));
	json_object_object_add(state, "Pid", json_object_new_int(k->st->pid));
	json_object_object_add(state, "ExitCode", json_object_new_int(k->st->exit_code));
	char ts[64];
	tm_rfc3339(k->started_ns, ts, sizeof(ts));
	json_object_object_add(state, "StartedAt", json_object_new_string(ts));
	tm_rfc3339(k->finished_ns, ts, sizeof(ts));
	json_object_object_add(state, "FinishedAt", json_object_new_string(ts));
	json_object_object_add(state, "Error", json_object_new_string(k->st->err));
	if (*k->st->health) {
		json_object *h = json_object_new_object();
		json_object_object_add(h, "Status", json_object_new_string(k->st->health));
		json_object_object_add(h, "FailingStreak", json_object_new_int(k->health_failures));
		json_object_object_add(state, "Health", h);
	}
	json_object_object_add(o, "State", state);

	json_object *c = json_object_new_object();
	json_object_object_add(c, "Hostname", tm_json_copy(cfg, "hostname"));
	json_object_object_add(c, "Env", tm_json_copy(process, "env"));
	json_object_object_add(c, "Cmd", tm_json_copy(process, "args"));
	json_object_object_add(c, "WorkingDir", tm_json_copy(process, "cwd"));
	json_object_object_add(c, "Image", json_object_new_string(tm_image(k)));
	json_object_object_add(o, "Config", c);

	json_object *nets = json_object_new_object();
	for (size_t i = 0; k->t && i < k->t->n_networks; i++) {
		const Swarm__NetworkAttachment *na = k->t->networks[i];
		json_object *n = json_object_new_object();
		char ip[64];
		snprintf(ip, sizeof(ip), "%s", na->addr);
		int plen = 0;
		char *slash = strchr(ip, '/');
		if (slash) {
			*slash = '\0';
			plen = atoi(slash + 1);
		}
		json_object_object_add(n, "NetworkID", json_object_new_string(na->network_id));
		json_object_object_add(n, "IPAddress", json_object_new_string(ip));
		json_object_object_add(n, "IPPrefixLen", json_object_new_int(plen));
		json_object_object_add(n, "MacAddress", json_object_new_string(na->mac));
		json_object *al = json_object_new_array();
		for (size_t j = 0; j < na->n_aliases; j++)
			json_object_array_add(al, json_object_new_string(na->aliases[j]));
		json_object_object_add(n, "Aliases", al);
		json_object_object_add(nets, *na->network_name ? na->network_name : na->network_id, n);
	}
	json_object *ns = json_object_new_object();
	json_object_object_add(ns, "SandboxKey", json_object_new_string(k->netns));
	json_object_object_add(ns, "Networks", nets);
	json_object_object_add(o, "NetworkSettings", ns);
	char *logp = tm_path(k, "log");
	json_object_object_add(o, "LogPath", json_object_new_string(logp));
	free(logp);

	*json = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	json_object_put(cfg);
	return 0;
}

/* ---- life cycle ---- */

struct taskmgr *taskmgr_new(const struct taskmgr_cfg *cfg, taskmgr_status_fn fn, void *arg)
{
	char *tasks_dir = xasprintf("%s/tasks", cfg->state_dir);
	char *netns_dir = xasprintf("%s/netns", cfg->run_dir);
	int err = mkdir_p(tasks_dir, 0711);
	if (!err)
		err = mkdir_p(netns_dir, 0755);
	char abs_tasks[PATH_MAX], abs_netns[PATH_MAX];
	if (!err && (!realpath(tasks_dir, abs_tasks) || !realpath(netns_dir, abs_netns)))
		err = -errno;
	free(tasks_dir);
	free(netns_dir);
	if (err) {
		log_err("taskmgr, cannot create the state dirs: %s", strerror(-err));
		return NULL;
	}
	struct taskmgr *tm = xcalloc(1, sizeof(*tm));
	tm->loop = cfg->loop;
	tm->state_dir = xstrdup(cfg->state_dir);
	tm->tasks_dir = xstrdup(abs_tasks);
	tm->netns_dir = xstrdup(abs_netns);
	tm->runc_root = xstrdup(cfg->runc_root);
	const char *cg = cfg->cgroup_parent;
	while (*cg == '/')
		cg++;
	tm->cgroup_parent = xstrdup(cg);
	tm->runc_path = xstrdup(cfg->runc_path && *cfg->runc_path ? cfg->runc_path : "runc");
	tm->shim_path = xstrdup(cfg->shim_path);
	tm->images = cfg->images;
	tm->fn = fn;
	tm->arg = arg;
	tm->sandbox_fn = cfg->sandbox_fn;
	tm->sandbox_arg = cfg->sandbox_arg;
	ev_timer_init(&tm->pump_w, tm_pump_cb, 0., 0.02);
	tm->pump_w.data = tm;
	return tm;
}

void taskmgr_free(struct taskmgr *tm)
{
	if (!tm)
		return;
	ev_timer_stop(tm->loop, &tm->pump_w);
	while (tm->tasks)
		tm_task_free(tm->tasks);
	while (tm->calls) {
		proc_detach(tm->calls->proc);
		tm_call_free(tm->calls);
	}
	free(tm->state_dir);
	free(tm->tasks_dir);
	free(tm->netns_dir);
	free(tm->runc_root);
	free(tm->cgroup_parent);
	free(tm->runc_path);
	free(tm->shim_path);
	free(tm);
}
