/* Asynchronous child processes on libev: spawn an argv (or run a function in
 * a forked child) with chosen stdio, get one callback from the loop when it
 * has exited, optionally kill it when a timeout passes, optionally capture
 * its stdout+stderr. Never system(), never a blocking wait.
 *
 * ev_child only works on libev's default loop, so the loop passed here must
 * be the default loop (EV_DEFAULT); libev then reaps every child of the
 * process, so a child whose proc was detached never lingers as a zombie. */
#ifndef SWARM_PROC_H
#define SWARM_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <ev.h>

struct proc;

/* What a finished child left. out is NULL unless capture was asked for;
 * then it holds up to capture_max bytes of stdout+stderr, NUL-terminated.
 * Valid only during the callback. */
struct proc_result {
	int status;          /* waitpid() status */
	bool timed_out;      /* it was SIGKILLed because the timeout passed */
	char *out;           /* captured output or NULL */
	size_t out_len;      /* bytes in out */
};

/* Runs once, from the loop, when the child has exited. The proc is freed
 * right after it returns: do not use the handle afterwards. */
typedef void (*proc_done_fn)(const struct proc_result *r, void *arg);

#define PROC_NULL (-1)      /* the child gets /dev/null */
#define PROC_CAPTURE (-2)   /* stdout/stderr: into proc_result.out */

struct proc_opts {
	int fd_in;           /* fd for the child's stdin, or PROC_NULL */
	int fd_out;          /* fd for stdout, PROC_NULL or PROC_CAPTURE */
	int fd_err;          /* fd for stderr, PROC_NULL or PROC_CAPTURE */
	int64_t timeout_ns;  /* > 0: SIGKILL the child after this long */
	size_t capture_max;  /* bytes kept when capturing; 0 means 64 KiB */
};

/* Starts argv[0] (looked up in PATH when it has no '/') with the given
 * stdio (o NULL: all /dev/null) and every other fd closed, signals reset.
 * The caller's fds are not closed. Returns the handle, or NULL with *err
 * set to -errno (fork/pipe failure; an exec failure shows as exit 127). */
struct proc *proc_spawn(struct ev_loop *loop, char *const argv[],
			const struct proc_opts *o, proc_done_fn done, void *arg,
			int *err);

/* Forks a child that runs fn(fnarg) and _exits with its return value; it
 * must not touch the event loop. stdio as for proc_spawn; fds >= 3 closed. */
struct proc *proc_fork(struct ev_loop *loop, int (*fn)(void *), void *fnarg,
		       const struct proc_opts *o, proc_done_fn done, void *arg,
		       int *err);

pid_t proc_pid(const struct proc *p);
/* Sends a signal to the child (ignored once it has exited). */
void proc_kill(struct proc *p, int sig);
/* Forgets the child: no callback, the handle is freed now. The child keeps
 * running and is reaped by libev. NULL is a no-op. */
void proc_detach(struct proc *p);

/* Exit code of a waitpid status the way shells show it: the code, or
 * 128 + signal. */
int proc_exit_code(int status);

#endif
