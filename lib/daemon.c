/* The shared daemon skeleton. */
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

struct config_entry {
	char *key;
	char *value;
};

struct config {
	struct config_entry *e;
	size_t n;
};

const char *config_get_or(const struct config *cfg, const char *key, const char *def)
{
	const char *v = config_get(cfg, key);
	return v && *v ? v : def;
}

const char *config_get(const struct config *cfg, const char *key)
{
	if (!cfg)
		return NULL;
	for (size_t i = cfg->n; i-- > 0;)
		if (strcmp(cfg->e[i].key, key) == 0)
			return cfg->e[i].value;
	return NULL;
}

int config_get_int(const struct config *cfg, const char *key, long def, long *out)
{
	const char *v = config_get(cfg, key);
	if (!v) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v)
		return -EINVAL;
	*out = n;
	return 0;
}

static void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++) {
		free(cfg->e[i].key);
		free(cfg->e[i].value);
	}
	free(cfg->e);
	free(cfg);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Parses "key = value" lines. A missing file is an empty config; a line
 * without '=' is an error that names the line. */
static int config_load(const char *path, struct config **out)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	char *text = NULL;
	int r = file_read_all(path, 1 << 20, &text, NULL);
	if (r == -ENOENT) {
		*out = cfg;
		return 0;
	}
	if (r < 0) {
		log_err("config, cannot read %s: %s", path, strerror(-r));
		config_free(cfg);
		return r;
	}
	int lineno = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *t = trim(line);
		if (*t == '#' || *t == '\0')
			continue;
		char *eq = strchr(t, '=');
		if (!eq) {
			log_err("config, %s:%d: expected key = value", path, lineno);
			free(text);
			config_free(cfg);
			return -EINVAL;
		}
		*eq = '\0';
		cfg->e = xrealloc(cfg->e, (cfg->n + 1) * sizeof(*cfg->e));
		cfg->e[cfg->n].key = xstrdup(trim(t));
		cfg->e[cfg->n].value = xstrdup(trim(eq + 1));
		cfg->n++;
	}
	free(text);
	*out = cfg;
	return 0;
}

static struct {
	const struct daemon_def *def;
	struct daemon_opts opts;
	struct config *cfg;
	struct ev_loop *loop;
	ev_signal sigterm, sigint, sighup;
	int metrics_fd;
	ev_io metrics_io;
} d;

void daemon_notify(const char *state)
{
	sd_notify(0, state);
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("daemon, %s stopping", d.def->name);
	daemon_notify("STOPPING=1");
	if (d.def->stop)
		d.def->stop();
	ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct config *cfg;
	daemon_notify("RELOADING=1");
	if (config_load(d.opts.config, &cfg) < 0 ||
	    (d.def->check_config && d.def->check_config(cfg) < 0)) {
		log_err("daemon, reload of %s refused; keeping the running config", d.opts.config);
		config_free(cfg);
		daemon_notify("READY=1");
		return;
	}
	config_free(d.cfg);
	d.cfg = cfg;
	const char *lvl = config_get(cfg, "log_level");
	enum log_level l;
	if (lvl && log_level_parse(lvl, &l) == 0)
		log_set_level(l);
	if (d.def->reload)
		d.def->reload(cfg);
	log_info("daemon, configuration reloaded");
	daemon_notify("READY=1");
}

/* A minimal HTTP/1.0 responder for GET /metrics: one request per
 * connection, answered from the loop without blocking (the reply is small
 * and written once; a peer that does not read it loses it). */
static void metrics_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	int fd = accept4(d.metrics_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char req[1024];
	ssize_t n = recv(fd, req, sizeof(req) - 1, 0);
	if (n <= 0) {
		close(fd);
		return;
	}
	req[n] = '\0';
	char hdr[256];
	if (strncmp(req, "GET /metrics", 12) == 0) {
		size_t len;
		char *body = metrics_render(&len);
		int hl = snprintf(hdr, sizeof(hdr),
				  "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n", len);
		send(fd, hdr, (size_t)hl, MSG_NOSIGNAL);
		send(fd, body, len, MSG_NOSIGNAL);
		free(body);
	} else {
		int hl = snprintf(hdr, sizeof(hdr),
				  "HTTP/1.0 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n");
		send(fd, hdr, (size_t)hl, MSG_NOSIGNAL);
	}
	close(fd);
}

static int metrics_listen(const char *addr)
{
	char ip[16];
	uint16_t port = 0;
	if (hostport_parse(addr, ip, &port) < 0 || !port) {
		log_err("daemon, bad --metrics-addr %s (want IP:PORT)", addr);
		return -EINVAL;
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, ip, &sin.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 16) < 0) {
		log_err("daemon, cannot listen on %s for metrics: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	d.metrics_fd = fd;
	ev_io_init(&d.metrics_io, metrics_accept, fd, EV_READ);
	ev_io_start(d.loop, &d.metrics_io);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [--config FILE] [--state-dir DIR] [--run-dir DIR] [--foreground]\n"
		   "       [--log-level error|warn|info|debug] [--metrics-addr IP:PORT]",
		d.def->name);
	for (const char *const *x = d.def->extra_flags; x && *x; x++)
		fprintf(f, " [--%s VALUE]", *x);
	fprintf(f, "\n");
}

int daemon_main(const struct daemon_def *def, int argc, char **argv)
{
	enum { O_CONFIG = 1000, O_STATE, O_RUN, O_FG, O_LOG, O_METRICS, O_HELP, O_EXTRA };
	struct option opts[64] = {
		{ "config", required_argument, NULL, O_CONFIG },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "foreground", no_argument, NULL, O_FG },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "metrics-addr", required_argument, NULL, O_METRICS },
		{ "help", no_argument, NULL, O_HELP },
	};
	size_t nopt = 7;
	for (const char *const *x = def->extra_flags; x && *x && nopt < 62; x++, nopt++)
		opts[nopt] = (struct option){ *x, required_argument, NULL, (int)(O_EXTRA + (x - def->extra_flags)) };

	d.def = def;
	d.opts.name = def->name;
	d.opts.log_level = "info";
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: d.opts.config = optarg; break;
		case O_STATE: d.opts.state_dir = optarg; break;
		case O_RUN: d.opts.run_dir = optarg; break;
		case O_FG: d.opts.foreground = true; break;
		case O_LOG: d.opts.log_level = optarg; break;
		case O_METRICS: d.opts.metrics_addr = optarg; break;
		case O_HELP: usage(stdout); return 0;
		default:
			if (c >= O_EXTRA && def->on_flag &&
			    def->on_flag(def->extra_flags[c - O_EXTRA], optarg) == 0)
				break;
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument %s\n", def->name, argv[optind]);
		return 2;
	}
	enum log_level lvl;
	if (log_level_parse(d.opts.log_level, &lvl) < 0) {
		fprintf(stderr, "%s: bad --log-level %s\n", def->name, d.opts.log_level);
		return 2;
	}
	log_init(def->name, lvl, !d.opts.foreground);
	if (!d.opts.config)
		d.opts.config = xasprintf("/etc/swarm/%s.conf", def->short_name);
	if (!d.opts.state_dir)
		d.opts.state_dir = xasprintf("/var/lib/swarm/%s", def->short_name);
	if (!d.opts.run_dir)
		d.opts.run_dir = "/run/swarm";
	if (config_load(d.opts.config, &d.cfg) < 0)
		return 1;
	if (def->check_config && def->check_config(d.cfg) < 0)
		return 1;
	int r = mkdir_p(d.opts.state_dir, 0700);
	if (!r)
		r = mkdir_p(d.opts.run_dir, 0755);
	if (r) {
		log_err("daemon, cannot create directories: %s", strerror(-r));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	d.loop = EV_DEFAULT;
	d.metrics_fd = -1;
	ev_signal_init(&d.sigterm, on_stop, SIGTERM);
	ev_signal_init(&d.sigint, on_stop, SIGINT);
	ev_signal_init(&d.sighup, on_hup, SIGHUP);
	ev_signal_start(d.loop, &d.sigterm);
	ev_signal_start(d.loop, &d.sigint);
	ev_signal_start(d.loop, &d.sighup);
	if (d.opts.metrics_addr && metrics_listen(d.opts.metrics_addr) < 0)
		return 1;
	r = def->start(d.loop, &d.opts, d.cfg);
	if (r < 0) {
		log_err("daemon, %s failed to start: %s", def->name, strerror(-r));
		return 1;
	}
	log_info("daemon, %s ready (state %s, run %s)", def->name, d.opts.state_dir, d.opts.run_dir);
	daemon_notify("READY=1");
	ev_run(d.loop, 0);
	if (d.metrics_fd >= 0)
		close(d.metrics_fd);
	config_free(d.cfg);
	return 0;
}
