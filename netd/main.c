/* swarm-netd: the node's overlay network daemon. This first version does
 * membership only: memberlist-compatible gossip on 7946 (gossip.h), so that
 * serf agents and other netds see each other, and a local socket
 * <run>/netd.sock answering "members" with the member table as JSON.
 *
 * Also a tiny client: `swarm-netd members [--run-dir DIR]` prints that
 * JSON (used by tests). */
#include "conn.h"
#include "daemon.h"
#include "frame.h"
#include "gossip.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NETD_LOCAL_MAX_FRAME 4096

static struct {
	struct ev_loop *loop;
	struct gossip *g;
	struct listener *local;
	ev_timer stats;
	struct metric *m_members, *m_alive, *m_udp_in, *m_udp_bad, *m_tcp_in, *m_tcp_out, *m_tcp_bad;
} N;

/* Gossip numbers into the metrics registry every few seconds. */
static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	const struct gossip_stats *st = gossip_stats(N.g);
	metric_set(N.m_members, swim_num_nodes(gossip_swim(N.g)));
	metric_set(N.m_alive, swim_num_alive(gossip_swim(N.g)));
	metric_set(N.m_udp_in, (double)st->udp_in);
	metric_set(N.m_udp_bad, (double)st->udp_bad);
	metric_set(N.m_tcp_in, (double)st->tcp_in);
	metric_set(N.m_tcp_out, (double)st->tcp_out);
	metric_set(N.m_tcp_bad, (double)st->tcp_bad);
}

static void stats_init(struct ev_loop *loop)
{
	N.m_members = metric_gauge("swarm_netd_gossip_members", "Nodes in the member table, self included", NULL);
	N.m_alive = metric_gauge("swarm_netd_gossip_alive", "Alive or suspect members, self included", NULL);
	N.m_udp_in = metric_counter("swarm_netd_gossip_udp_packets_total", "UDP packets received", NULL);
	N.m_udp_bad = metric_counter("swarm_netd_gossip_udp_dropped_total", "UDP packets or messages dropped as malformed", NULL);
	N.m_tcp_in = metric_counter("swarm_netd_gossip_tcp_exchanges_total", "TCP exchanges", "dir=\"in\"");
	N.m_tcp_out = metric_counter("swarm_netd_gossip_tcp_exchanges_total", "TCP exchanges", "dir=\"out\"");
	N.m_tcp_bad = metric_counter("swarm_netd_gossip_tcp_failed_total", "TCP exchanges failed, refused or timed out", NULL);
	ev_timer_init(&N.stats, stats_cb, 0, 5.0);
	ev_timer_start(loop, &N.stats);
}

static const char *cfg_or(const struct config *cfg, const char *key, const char *def)
{
	const char *v = config_get(cfg, key);
	return v && *v ? v : def;
}

/* keyring_file: base64 keys one per line, the first is the primary. */
static int keyring_load(const char *path, struct gossip_keyring *kr)
{
	char *buf = NULL;
	size_t len;
	int r = file_read_all(path, 64 * 1024, &buf, &len);
	if (r < 0) {
		log_err("netd, cannot read keyring %s: %s", path, strerror(-r));
		return r;
	}
	gossip_keyring_clear(kr);
	char *save = NULL;
	for (char *line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		size_t n = strlen(line);
		while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		if (!n || line[0] == '#')
			continue;
		uint8_t key[64];
		if (n % 4 || n / 4 * 3 > sizeof(key)) {
			r = -EINVAL;
			break;
		}
		int kl = EVP_DecodeBlock(key, (const unsigned char *)line, (int)n);
		if (kl < 0) {
			r = -EINVAL;
			break;
		}
		for (size_t i = n; i > 0 && line[i - 1] == '='; i--)
			kl--;
		r = gossip_keyring_add(kr, key, (size_t)kl);
		if (r < 0)
			break;
	}
	free(buf);
	if (r < 0)
		log_err("netd, bad key in %s (base64 of 16, 24 or 32 bytes)", path);
	else if (kr->n == 0)
		log_warn("netd, keyring %s is empty: gossip is plaintext", path);
	return r < 0 ? r : 0;
}

/* Serf reads Meta 0xFF + msgpack map[string]string as its tags. */
static size_t meta_tags(uint8_t *out, size_t cap, const char *role)
{
	size_t rl = strlen(role);
	if (rl > 31 || cap < 7 + rl)
		return 0;
	size_t n = 0;
	out[n++] = 0xff;
	out[n++] = 0x81;
	out[n++] = 0xa4;
	memcpy(out + n, "role", 4);
	n += 4;
	out[n++] = (uint8_t)(0xa0 | rl);
	memcpy(out + n, role, rl);
	return n + rl;
}

static int local_frame(struct conn *c, const uint8_t *p, size_t len)
{
	if (len == 7 && memcmp(p, "members", 7) == 0) {
		char *js = gossip_members_json(N.g);
		conn_send(c, js, strlen(js));
		free(js);
	} else {
		static const char err[] = "{\"error\":\"unknown request\"}";
		conn_send(c, err, sizeof(err) - 1);
	}
	return 0;
}

static const struct conn_ops local_ops = { .on_frame = local_frame };

static int netd_check(const struct config *cfg)
{
	long port;
	if (config_get_int(cfg, "bind_port", 7946, &port) < 0 || port < 1 || port > 65535) {
		log_err("netd, bad bind_port");
		return -EINVAL;
	}
	return 0;
}

static int netd_start(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg)
{
	char host[HOST_NAME_MAX + 1] = "netd";
	struct gossip_keyring kr = { .n = 0 };
	uint8_t meta[SWIM_META_MAX];
	long port = 7946;
	int r = 0;

	N.loop = loop;
	gethostname(host, sizeof(host) - 1);
	config_get_int(cfg, "bind_port", 7946, &port);
	const char *kf = config_get(cfg, "keyring_file");
	if (kf && *kf && (r = keyring_load(kf, &kr)) < 0)
		return r;
	struct gossip_cfg gc = {
		.node_name = cfg_or(cfg, "node_name", host),
		.bind_addr = cfg_or(cfg, "bind_addr", "0.0.0.0"),
		.bind_port = (uint16_t)port,
		.advertise_addr = cfg_or(cfg, "advertise_addr", NULL),
		.kr = &kr,
		.meta = meta,
		.meta_len = meta_tags(meta, sizeof(meta), cfg_or(cfg, "role", "swarm-netd")),
	};
	N.g = gossip_new(loop, &gc, &r);
	gossip_keyring_clear(&kr);
	if (!N.g)
		return r;
	stats_init(loop);

	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/netd.sock", o->run_dir);
	N.local = listener_unix(loop, path, NETD_LOCAL_MAX_FRAME, &local_ops, NULL, NULL);
	if (!N.local) {
		log_err("netd, cannot listen on %s", path);
		return -EADDRINUSE;
	}

	const char *join = config_get(cfg, "join");
	if (join && *join) {
		char *list = xstrdup(join), *save = NULL;
		for (char *s = strtok_r(list, ", \t", &save); s; s = strtok_r(NULL, ", \t", &save))
			if (gossip_join(N.g, s) < 0)
				log_warn("netd, bad join address %s", s);
		free(list);
	}
	return 0;
}

static void netd_stop(void)
{
	if (N.loop)
		ev_timer_stop(N.loop, &N.stats);
	listener_free(N.local);
	N.local = NULL;
	gossip_free(N.g);
	N.g = NULL;
}

/* `swarm-netd members [--run-dir DIR]`: one request, prints the reply. */
static int members_client(int argc, char **argv)
{
	const char *run = "/run/swarm";
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--run-dir") && i + 1 < argc)
			run = argv[++i];
		else if (str_has_prefix(argv[i], "--run-dir="))
			run = argv[i] + 10;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/netd.sock", run);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "swarm-netd: cannot connect to %s: %s\n", sa.sun_path, strerror(errno));
		return 1;
	}
	uint8_t req[FRAME_HDR + 7];
	frame_put_header(req, 7);
	memcpy(req + FRAME_HDR, "members", 7);
	if (write(fd, req, sizeof(req)) != (ssize_t)sizeof(req))
		goto fail;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, plen = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n <= 0)
			goto fail;
		len += (size_t)n;
		int r = frame_parse(buf, len, FRAME_MAX_DEFAULT, &plen);
		if (r < 0)
			goto fail;
		if (r == 1)
			break;
	}
	fwrite(buf + FRAME_HDR, 1, plen, stdout);
	fputc('\n', stdout);
	free(buf);
	close(fd);
	return 0;
fail:
	fprintf(stderr, "swarm-netd: no reply from %s\n", sa.sun_path);
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
		.name = "swarm-netd",
		.short_name = "netd",
		.check_config = netd_check,
		.start = netd_start,
		.stop = netd_stop,
	};
	if (argc > 1 && !strcmp(argv[1], "members"))
		return members_client(argc, argv);
	return daemon_main(&def, argc, argv);
}
