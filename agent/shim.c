/* swarm-shim: one small process per container, so that containers outlive
 * the agent and their exit status is never lost.
 *
 *   swarm-shim TASK_DIR RUNC RUNC_ROOT CONTAINER_ID BUNDLE_DIR
 *
 * It detaches (double fork, setsid, stdio to /dev/null) so the agent never
 * reaps it, writes TASK_DIR/shim.pid, becomes a child subreaper, and runs
 *   RUNC --root RUNC_ROOT --log TASK_DIR/runc.log run -d
 *        --pid-file TASK_DIR/pid -b BUNDLE_DIR CONTAINER_ID
 * with stdin /dev/null and stdout+stderr appended to TASK_DIR/log (with a
 * non-terminal process and -d, runc hands these fds to the container). When
 * runc has returned, the container's init is the shim's child; the shim
 * waits for it and writes TASK_DIR/exit atomically: the exit code (or 128 +
 * signal) on the first line, an error text on the second when runc failed
 * (code 128 then). Then it reaps whatever else was reparented to it and
 * exits.
 *
 * The process the agent started exits once the container is running (0) or
 * runc has failed (1, with the exit file written), so the agent learns the
 * start result from its own child and watches the detached shim with a
 * pidfd afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIM_REAPED_MAX 64

struct shim {
	const char *dir;       /* task dir */
	const char *runc;
	const char *root;      /* runc --root */
	const char *id;        /* container id */
	const char *bundle;
	pid_t reaped[SHIM_REAPED_MAX];   /* children reaped while waiting for */
	int reaped_status[SHIM_REAPED_MAX]; /* something else */
	int n_reaped;
};

/* tmp + rename, so a reader sees all or nothing. */
static int shim_write_file(const struct shim *s, const char *name, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", s->dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	fsync(fd);
	close(fd);
	if (w != (ssize_t)len || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int shim_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* The message of the last error runc logged (text log format:
 * level=error msg="..."), unescaped, into out. */
static void shim_runc_error(const struct shim *s, char *out, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/runc.log", s->dir);
	snprintf(out, len, "runc failed");
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		char *m = strstr(line, "msg=\"");
		if (!m || !strstr(line, "level=error"))
			continue;
		m += 5;
		size_t n = 0;
		for (; *m && *m != '"' && n + 1 < len; m++) {
			if (*m == '\\' && m[1])
				m++;
			out[n++] = *m;
		}
		out[n] = '\0';
	}
	fclose(f);
}

static void shim_remember(struct shim *s, pid_t pid, int status)
{
	if (s->n_reaped < SHIM_REAPED_MAX) {
		s->reaped[s->n_reaped] = pid;
		s->reaped_status[s->n_reaped++] = status;
	}
}

/* Waits for pid, remembering any other child reaped meanwhile. */
static int shim_wait(struct shim *s, pid_t pid, int *status)
{
	for (int i = 0; i < s->n_reaped; i++) {
		if (s->reaped[i] == pid) {
			*status = s->reaped_status[i];
			return 0;
		}
	}
	for (;;) {
		int st;
		pid_t r = waitpid(-1, &st, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == pid) {
			*status = st;
			return 0;
		}
		shim_remember(s, r, st);
	}
}

static void shim_report(int fd, char c)
{
	if (fd >= 0) {
		ssize_t w = write(fd, &c, 1);
		(void)w;
		close(fd);
	}
}

/* The detached shim proper. notify: pipe to the process the agent waits
 * for; gets '0' (running) or '1' (failed). */
static int shim_run(struct shim *s, int notify)
{
	char buf[256], path[PATH_MAX];
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (shim_write_file(s, "shim.pid", buf) < 0) {
		shim_report(notify, '1');
		return 1;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	snprintf(path, sizeof(path), "%s/log", s->dir);
	int logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0) {
		snprintf(buf, sizeof(buf), "128\ncannot open log: %s\n", strerror(errno));
		shim_write_file(s, "exit", buf);
		shim_report(notify, '1');
		return 1;
	}
	char pidfile[PATH_MAX], runclog[PATH_MAX];
	snprintf(pidfile, sizeof(pidfile), "%s/pid", s->dir);
	snprintf(runclog, sizeof(runclog), "%s/runc.log", s->dir);
	char *argv[] = {
		(char *)s->runc, "--root", (char *)s->root, "--log", runclog,
		"run", "-d", "--pid-file", pidfile, "-b", (char *)s->bundle,
		(char *)s->id, NULL,
	};
	pid_t runc = fork();
	if (runc == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	int status = 0;
	if (runc < 0 || shim_wait(s, runc, &status) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		char msg[2048];
		shim_runc_error(s, msg, sizeof(msg));
		if (runc < 0)
			snprintf(msg, sizeof(msg), "fork: %s", strerror(errno));
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			snprintf(msg, sizeof(msg), "cannot run %s", s->runc);
		char text[2200];
		snprintf(text, sizeof(text), "128\n%s\n", msg);
		shim_write_file(s, "exit", text);
		shim_report(notify, '1');
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		return 1;
	}

	char *end = NULL;
	long cpid = 0;
	FILE *f = fopen(pidfile, "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			cpid = strtol(buf, &end, 10);
		fclose(f);
	}
	if (cpid <= 0) {
		shim_write_file(s, "exit", "128\ncannot read the container's pid file\n");
		shim_report(notify, '1');
		return 1;
	}
	shim_report(notify, '0');

	if (shim_wait(s, (pid_t)cpid, &status) < 0) {
		/* Not our child after all (it died before runc returned and
		 * was reaped by someone else): nothing to tell. */
		shim_write_file(s, "exit", "128\ncontainer process lost\n");
		return 1;
	}
	snprintf(buf, sizeof(buf), "%d\n", shim_exit_code(status));
	shim_write_file(s, "exit", buf);
	/* The rest of the container's processes, killed with its init. */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: swarm-shim TASK_DIR RUNC RUNC_ROOT CONTAINER_ID BUNDLE_DIR\n");
		return 2;
	}
	struct shim s = {
		.dir = argv[1], .runc = argv[2], .root = argv[3], .id = argv[4],
		.bundle = argv[5],
	};
	signal(SIGPIPE, SIG_IGN);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return 1;
	pid_t p1 = fork();
	if (p1 < 0)
		return 1;
	if (p1 > 0) {
		/* The agent's child: reports the start result. */
		close(p[1]);
		int st;
		while (waitpid(p1, &st, 0) < 0 && errno == EINTR)
			;
		char c = '1';
		ssize_t r;
		while ((r = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		return r == 1 && c == '0' ? 0 : 1;
	}
	/* Middle child: new session, then leave so the shim is orphaned. */
	close(p[0]);
	setsid();
	pid_t p2 = fork();
	if (p2 != 0)
		_exit(p2 < 0 ? 1 : 0);
	if (chdir("/") < 0)
		_exit(1);
	umask(022);
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		if (nul > 2)
			close(nul);
	}
	return shim_run(&s, p[1]);
}
