/* The daemon skeleton every swarm daemon shares: standard flags, config
 * file, logging, sd_notify, SIGHUP reload, SIGTERM clean stop, and the
 * metrics endpoint. A daemon's main() fills a daemon_def and calls
 * daemon_main(). */
#ifndef SWARM_DAEMON_H
#define SWARM_DAEMON_H

#include <ev.h>
#include <stdbool.h>

struct daemon_opts {
	const char *name;          /* "swarm-manager" */
	char *config;              /* --config, default /etc/swarm/<short>.conf */
	char *state_dir;           /* --state-dir, default /var/lib/swarm/<short> */
	char *run_dir;             /* --run-dir, default /run/swarm */
	char *metrics_addr;        /* --metrics-addr IP:PORT, NULL = off */
	char *log_level;           /* --log-level */
	bool foreground;           /* --foreground */
};

/* Config file: "key = value" lines, '#' comments. */
struct config;
const char *config_get(const struct config *cfg, const char *key);
/* The value of key, or def when it is unset or empty. */
const char *config_get_or(const struct config *cfg, const char *key, const char *def);
int config_get_int(const struct config *cfg, const char *key, long def, long *out);

struct daemon_def {
	const char *name;          /* full program name */
	const char *short_name;    /* "manager": default paths use it */
	/* Extra long options: the daemon's own flags, NULL-terminated arrays
	 * of names taking an argument; their values go to on_flag. */
	const char *const *extra_flags;
	int (*on_flag)(const char *flag, const char *value);
	/* Validates a freshly parsed config. Returns 0 or -EINVAL with a
	 * logged reason; on reload a bad file keeps the old config. */
	int (*check_config)(const struct config *cfg);
	/* Starts the daemon's work on loop; 0 or -errno (exit 1). */
	int (*start)(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg);
	/* SIGHUP with a config that passed check_config. */
	void (*reload)(const struct config *cfg);
	/* SIGTERM/SIGINT: release everything; the loop is broken after. */
	void (*stop)(void);
};

int daemon_main(const struct daemon_def *def, int argc, char **argv);

/* Tells systemd (if NOTIFY_SOCKET is set) a status line, e.g. "READY=1". */
void daemon_notify(const char *state);

#endif
