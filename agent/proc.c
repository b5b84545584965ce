/* Asynchronous child processes on libev (see proc.h). */
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_CAPTURE_DEFAULT (64 * 1024)

struct proc {
	struct ev_loop *loop;
	pid_t pid;
	ev_child child_w;      /* completion */
	ev_timer timeout_w;    /* optional kill timer */
	ev_io out_w;           /* capture pipe */
	int out_fd;            /* read end of the capture pipe, -1 without */
	char *buf;             /* captured bytes */
	size_t len, cap, max;  /* used, allocated, kept at most */
	bool timed_out;        /* killed by the timer */
	bool exited;           /* child reaped */
	proc_done_fn done;
	void *arg;
};

int proc_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

pid_t proc_pid(const struct proc *p)
{
	return p->pid;
}

/* Reads what the pipe has now; returns false at EOF or error. */
static bool proc_read_out(struct proc *p)
{
	for (;;) {
		char tmp[4096];
		ssize_t r = read(p->out_fd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN;
		if (r == 0)
			return false;
		size_t keep = (size_t)r;
		if (p->len + keep > p->max)
			keep = p->max - p->len;  /* drop the rest, keep reading */
		if (keep) {
			if (p->len + keep + 1 > p->cap) {
				p->cap = (p->len + keep + 1) * 2;
				if (p->cap > p->max + 1)
					p->cap = p->max + 1;
				p->buf = xrealloc(p->buf, p->cap);
			}
			memcpy(p->buf + p->len, tmp, keep);
			p->len += keep;
		}
	}
}

static void proc_close_out(struct proc *p)
{
	if (p->out_fd < 0)
		return;
	ev_io_stop(p->loop, &p->out_w);
	close(p->out_fd);
	p->out_fd = -1;
}

static void proc_release(struct proc *p)
{
	ev_child_stop(p->loop, &p->child_w);
	ev_timer_stop(p->loop, &p->timeout_w);
	proc_close_out(p);
	free(p->buf);
	free(p);
}

static void proc_out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct proc *p = w->data;
	if (!proc_read_out(p))
		proc_close_out(p);
}

static void proc_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct proc *p = w->data;
	p->timed_out = true;
	kill(p->pid, SIGKILL);
}

static void proc_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct proc *p = w->data;
	p->exited = true;
	ev_child_stop(loop, w);
	ev_timer_stop(loop, &p->timeout_w);
	/* Whatever the child wrote before exiting is in the pipe now; a
	 * grandchild still holding the pipe open is not waited for. */
	if (p->out_fd >= 0)
		proc_read_out(p);
	proc_close_out(p);
	struct proc_result r = {
		.status = w->rstatus,
		.timed_out = p->timed_out,
		.out = NULL,
		.out_len = 0,
	};
	if (p->max) {
		if (!p->buf)
			p->buf = xmalloc(1);
		p->buf[p->len] = '\0';
		r.out = p->buf;
		r.out_len = p->len;
	}
	p->done(&r, p->arg);
	proc_release(p);
}

/* In the child: stdio from src[0..2] (already real fds), everything else
 * closed, signal state back to defaults. */
static void proc_child_setup(const int src[3])
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	/* Move the sources out of the 0-2 range first so that dup2 order
	 * cannot clobber one with another. */
	int hi[3];
	for (int i = 0; i < 3; i++) {
		hi[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10);
		if (hi[i] < 0)
			_exit(126);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(hi[i], i) < 0)
			_exit(126);
	syscall(SYS_close_range, 3U, ~0U, 0U);
}

static struct proc *proc_start(struct ev_loop *loop, char *const argv[],
			       int (*fn)(void *), void *fnarg,
			       const struct proc_opts *o, proc_done_fn done,
			       void *arg, int *err)
{
	struct proc_opts none = { PROC_NULL, PROC_NULL, PROC_NULL, 0, 0 };
	if (!o)
		o = &none;
	int pipefd[2] = { -1, -1 };
	bool capture = o->fd_out == PROC_CAPTURE || o->fd_err == PROC_CAPTURE;
	if (capture && pipe2(pipefd, O_CLOEXEC) < 0) {
		*err = -errno;
		return NULL;
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		*err = -errno;
		if (capture) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return NULL;
	}
	int want[3] = { o->fd_in, o->fd_out, o->fd_err };
	int src[3];
	for (int i = 0; i < 3; i++) {
		if (want[i] == PROC_CAPTURE && i > 0)
			src[i] = pipefd[1];
		else if (want[i] < 0)
			src[i] = devnull;
		else
			src[i] = want[i];
	}

	pid_t pid = fork();
	if (pid < 0) {
		*err = -errno;
		close(devnull);
		if (capture) {
			close(pipefd[0]);
			close(pipefd[1]);
		}
		return NULL;
	}
	if (pid == 0) {
		proc_child_setup(src);
		if (fn)
			_exit(fn(fnarg) & 0xff);
		execvp(argv[0], argv);
		_exit(127);
	}

	close(devnull);
	struct proc *p = xcalloc(1, sizeof(*p));
	p->loop = loop;
	p->pid = pid;
	p->done = done;
	p->arg = arg;
	p->out_fd = -1;
	ev_child_init(&p->child_w, proc_child_cb, pid, 0);
	p->child_w.data = p;
	ev_child_start(loop, &p->child_w);
	ev_timer_init(&p->timeout_w, proc_timeout_cb, 0., 0.);
	p->timeout_w.data = p;
	if (o->timeout_ns > 0) {
		ev_timer_set(&p->timeout_w, (double)o->timeout_ns / 1e9, 0.);
		ev_timer_start(loop, &p->timeout_w);
	}
	if (capture) {
		close(pipefd[1]);
		p->out_fd = pipefd[0];
		fcntl(p->out_fd, F_SETFL, fcntl(p->out_fd, F_GETFL) | O_NONBLOCK);
		p->max = o->capture_max ? o->capture_max : PROC_CAPTURE_DEFAULT;
		ev_io_init(&p->out_w, proc_out_cb, p->out_fd, EV_READ);
		p->out_w.data = p;
		ev_io_start(loop, &p->out_w);
	}
	*err = 0;
	return p;
}

struct proc *proc_spawn(struct ev_loop *loop, char *const argv[],
			const struct proc_opts *o, proc_done_fn done, void *arg,
			int *err)
{
	return proc_start(loop, argv, NULL, NULL, o, done, arg, err);
}

struct proc *proc_fork(struct ev_loop *loop, int (*fn)(void *), void *fnarg,
		       const struct proc_opts *o, proc_done_fn done, void *arg,
		       int *err)
{
	return proc_start(loop, NULL, fn, fnarg, o, done, arg, err);
}

void proc_kill(struct proc *p, int sig)
{
	if (p && !p->exited)
		kill(p->pid, sig);
}

void proc_detach(struct proc *p)
{
	if (p)
		proc_release(p);
}
