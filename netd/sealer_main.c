/* swarm-sealer: the userspace data path of encrypted overlay networks
 * (sealer.h), one process per node, started and re-adopted by netd.
 *
 *   swarm-sealer --socket <run>/sealer.sock [--floor-file <state>/sealer.floor]
 *                [--log-level L] [--foreground]
 *
 * It starts with nothing to do and waits for a SealerConfig on the
 * socket. It keeps running with its last config when the client goes
 * away: netd restarts, reconnects and sends the config again, and
 * encrypted traffic never stops. A second sealer on the same socket
 * exits at once (flock on <socket>.lock), so a netd that cannot reach a
 * live one may simply start another. Exits on SIGTERM/SIGINT, leaving
 * the TAPs (persistent) for the next one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <ev.h>

#include "log.h"
#include "sealer.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: swarm-sealer --socket PATH [--floor-file PATH] "
		   "[--log-level error|warn|info|debug] [--foreground]\n");
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "floor-file", required_argument, NULL, 'F' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *floor_file = NULL;
	enum log_level level = LOG_LVL_INFO;
	int fg = 0, c;

	while ((c = getopt_long(argc, argv, "s:F:l:fh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'F':
			floor_file = optarg;
			break;
		case 'l':
			if (log_level_parse(optarg, &level) < 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'f':
			fg = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!sock || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("swarm-sealer", level, !fg);
	signal(SIGPIPE, SIG_IGN);

	char lock[4096];
	snprintf(lock, sizeof(lock), "%s.lock", sock);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		log_err("sealer, %s: %s", lock,
			errno == EWOULDBLOCK ? "another sealer runs" : strerror(errno));
		return 1;
	}

	struct ev_loop *loop = ev_default_loop(0);
	struct sealer *s = NULL;
	int rc = 1;
	if (sealer_new(loop, &s) < 0)
		goto out;
	if (floor_file)
		sealer_set_floor_file(s, floor_file);   /* failures are logged; it runs on */
	if (sealer_listen(s, sock) < 0)
		goto out;
	ev_signal sterm, sint;
	ev_signal_init(&sterm, on_stop, SIGTERM);
	ev_signal_init(&sint, on_stop, SIGINT);
	ev_signal_start(loop, &sterm);
	ev_signal_start(loop, &sint);
	log_info("sealer, listening on %s", sock);
	ev_run(loop, 0);
	log_info("sealer, stopping (taps stay)");
	rc = 0;
out:
	sealer_free(s);
	unlink(sock);
	close(lfd);
	return rc;
}
