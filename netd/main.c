/* swarm-netd: the node's overlay network daemon (netd.h): gossip on 7946,
 * the endpoint tables, the VXLAN data path, and the local socket
 * <run>/netd.sock. Also a small client for that socket (client_main). */
#include "client.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "esp.h"
#include "netd.h"
#include "pb.h"
#include "strmap.h"
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


static struct {
	struct ev_loop *loop;
	struct netd n;
	ev_timer stats;
	struct metric *m_members, *m_alive, *m_udp_in, *m_udp_bad, *m_tcp_in, *m_tcp_out, *m_tcp_bad;
	struct metric *m_user_in, *m_user_foreign, *m_atts, *m_entries, *m_reconciles, *m_dp_failed;
	struct metric *m_sealer_up, *m_sealer_spawns, *m_sealer_tx, *m_sealer_rx, *m_sealer_auth,
		*m_sealer_replay;
	struct metric *m_esp_sync, *m_esp_states, *m_esp_policies;
} N;

/* Gossip, table and data-path numbers into the registry every few seconds. */
static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	metric_set(N.m_atts, (double)strmap_count(N.n.atts));
	metric_set(N.m_reconciles, (double)N.n.reconciles);
	metric_set(N.m_dp_failed, (double)N.n.dp_failed);
	if (N.n.sealer) {
		const Swarm__SealerStatus *ss = sealer_ctl_status(N.n.sealer);
		metric_set(N.m_sealer_up, sealer_ctl_in_sync(N.n.sealer) ? 1 : 0);
		metric_set(N.m_sealer_spawns, sealer_ctl_spawns(N.n.sealer));
		if (ss) {
			metric_set(N.m_sealer_tx, (double)ss->tx_frames);
			metric_set(N.m_sealer_rx, (double)ss->rx_frames);
			metric_set(N.m_sealer_auth, (double)ss->drop_auth);
			metric_set(N.m_sealer_replay, (double)ss->drop_replay);
		}
	}
	if (N.n.esp) {
		metric_set(N.m_esp_sync, esp_in_sync(N.n.esp) ? 1 : 0);
		metric_set(N.m_esp_states, (double)esp_count_sas(N.n.esp));
		metric_set(N.m_esp_policies, (double)esp_count_policies(N.n.esp));
	}
	if (N.n.db) {
		struct ndb_stats ds;
		ndb_get_stats(N.n.db, &ds);
		metric_set(N.m_entries, (double)ds.entries);
	}
	if (!N.n.g)
		return;
	const struct gossip_stats *st = gossip_stats(N.n.g);
	metric_set(N.m_members, swim_num_nodes(gossip_swim(N.n.g)));
	metric_set(N.m_alive, swim_num_alive(gossip_swim(N.n.g)));
	metric_set(N.m_udp_in, (double)st->udp_in);
	metric_set(N.m_udp_bad, (double)st->udp_bad);
	metric_set(N.m_tcp_in, (double)st->tcp_in);
	metric_set(N.m_tcp_out, (double)st->tcp_out);
	metric_set(N.m_tcp_bad, (double)st->tcp_bad);
	metric_set(N.m_user_in, (double)st->user_in);
	metric_set(N.m_user_foreign, (double)st->user_foreign);
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
	N.m_user_in = metric_counter("swarm_netd_gossip_user_messages_total", "User messages received", "kind=\"netd\"");
	N.m_user_foreign = metric_counter("swarm_netd_gossip_user_messages_total", "User messages received", "kind=\"foreign\"");
	N.m_atts = metric_gauge("swarm_netd_attachments", "Sandboxes attached on this node", NULL);
	N.m_entries = metric_gauge("swarm_netd_table_entries", "Live table entries, all networks", NULL);
	N.m_reconciles = metric_counter("swarm_netd_reconciles_total", "Data-path reconciles run", NULL);
	N.m_dp_failed = metric_counter("swarm_netd_datapath_failures_total", "Kernel operations that failed", NULL);
	N.m_sealer_up = metric_gauge("swarm_netd_sealer_in_sync", "1 when swarm-sealer answers and holds netd's config", NULL);
	N.m_sealer_spawns = metric_counter("swarm_netd_sealer_starts_total", "swarm-sealer processes started by this netd", NULL);
	N.m_sealer_tx = metric_counter("swarm_netd_sealer_frames_total", "Encrypted-network frames sealed and sent, or opened and delivered", "dir=\"tx\"");
	N.m_sealer_rx = metric_counter("swarm_netd_sealer_frames_total", "Encrypted-network frames sealed and sent, or opened and delivered", "dir=\"rx\"");
	N.m_sealer_auth = metric_counter("swarm_netd_sealer_dropped_total", "Sealed frames dropped", "reason=\"auth\"");
	N.m_sealer_replay = metric_counter("swarm_netd_sealer_dropped_total", "Sealed frames dropped", "reason=\"replay\"");
	N.m_esp_sync = metric_gauge("swarm_netd_esp_in_sync", "1 when the kernel holds every ESP state and policy netd wants", NULL);
	N.m_esp_states = metric_gauge("swarm_netd_esp_states", "Kernel ESP states (SAs) netd installed", NULL);
	N.m_esp_policies = metric_gauge("swarm_netd_esp_policies", "Kernel XFRM policies netd installed", NULL);
	ev_timer_init(&N.stats, stats_cb, 0, 5.0);
	ev_timer_start(loop, &N.stats);
}

/* keyring_file: base64 keys one per line, the first is the primary. */
int netd_keyring_load(const char *path, struct gossip_keyring *kr)
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

static int netd_check(const struct config *cfg)
{
	long port;
	if (config_get_int(cfg, "bind_port", 7946, &port) < 0 || port < 1 || port > 65535) {
		log_err("netd, bad bind_port");
		return -EINVAL;
	}
	const char *dp = config_get(cfg, "datapath");
	if (dp && *dp && strcmp(dp, "on") && strcmp(dp, "off")) {
		log_err("netd, datapath must be on or off");
		return -EINVAL;
	}
	long sp;
	if (config_get_int(cfg, "sealer_port", 4793, &sp) < 0 || sp < 1 || sp > 65535 || sp == 4789) {
		log_err("netd, sealer_port must be 1-65535 and not the VXLAN port 4789");
		return -EINVAL;
	}
	const char *tr = config_get_or(cfg, "sealer_trains", "on");
	if (strcmp(tr, "on") && strcmp(tr, "off")) {
		log_err("netd, sealer_trains must be on or off");
		return -EINVAL;
	}
	const char *enc = config_get_or(cfg, "encryption", "auto");
	if (strcmp(enc, "auto") && strcmp(enc, "userspace") && strcmp(enc, "kernel")) {
		log_err("netd, encryption must be auto, userspace or kernel");
		return -EINVAL;
	}
	const char *pfx = config_get(cfg, "dp_prefix");
	if (pfx && strlen(pfx) > 6) {
		log_err("netd, dp_prefix is at most 6 characters");
		return -EINVAL;
	}
	return 0;
}

static int netd_start(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg)
{
	long port = 7946, sport = 4793;
	config_get_int(cfg, "bind_port", 7946, &port);
	config_get_int(cfg, "sealer_port", 4793, &sport);
	/* Settings are borrowed from cfg: the daemon skeleton keeps the
	 * config alive until stop (a reload with changes restarts netd). */
	struct netd_settings set = {
		.bind_addr = config_get_or(cfg, "bind_addr", "0.0.0.0"),
		.bind_port = (uint16_t)port,
		.node_name = config_get_or(cfg, "node_name", NULL),
		.advertise_addr = config_get_or(cfg, "advertise_addr", NULL),
		.join = config_get_or(cfg, "join", NULL),
		.keyring_file = config_get_or(cfg, "keyring_file", NULL),
		.role = config_get_or(cfg, "role", "swarm-netd"),
		.dp_prefix = config_get_or(cfg, "dp_prefix", ""),
		.gw_subnet = config_get_or(cfg, "gateway_subnet", NULL),
		.gw_bridge = config_get_or(cfg, "gateway_bridge", "gwbridge"),
		.datapath = strcmp(config_get_or(cfg, "datapath", "on"), "off") != 0,
		.sealer_exe = config_get_or(cfg, "sealer", SWARM_LIBEXECDIR "/swarm-sealer"),
		.sealer_port = (uint16_t)sport,
		.sealer_trains = strcmp(config_get_or(cfg, "sealer_trains", "on"), "off") != 0,
		.encryption = config_get_or(cfg, "encryption", "auto"),
	};
	N.loop = loop;
	int r = netd_init(&N.n, loop, o->state_dir, o->run_dir, &set);
	if (r < 0)
		return r;
	stats_init(loop);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/netd.sock", o->run_dir);
	return netd_local_listen(&N.n, path);
}

static void netd_stop(void)
{
	if (N.loop)
		ev_timer_stop(N.loop, &N.stats);
	netd_local_stop();
	netd_fini(&N.n);
}

/* `swarm-netd members|status|network NAME|watch [--run-dir DIR]`: asks the
 * local netd and prints the JSON answer (watch: one JSON line per stream
 * event, until interrupted). For tests and operators. */
static int client_main(int argc, char **argv)
{
	const char *run = getenv("SWARM_RUN_DIR") ? getenv("SWARM_RUN_DIR") : "/run/swarm";
	const char *cmd = argv[1], *arg = "", *pos[8] = { 0 };
	size_t npos = 0;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--run-dir") && i + 1 < argc)
			run = argv[++i];
		else if (str_has_prefix(argv[i], "--run-dir="))
			run = argv[i] + 10;
		else if (npos < 8)
			pos[npos++] = argv[i];
	}
	if (npos)
		arg = pos[0];
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdSubscribe sub = SWARM__NETD_SUBSCRIBE__INIT;
	Swarm__NetdAttach att = SWARM__NETD_ATTACH__INIT;
	Swarm__NetdDetach det = SWARM__NETD_DETACH__INIT;
	Swarm__NetdNetwork nw = SWARM__NETD_NETWORK__INIT, *nwp = &nw;
	Swarm__EndpointRecord ep = SWARM__ENDPOINT_RECORD__INIT, *epp = &ep;
	char vni_s[16] = "";
	q.id = 1;
	if (!strcmp(cmd, "members")) {
		q.body_case = SWARM__NETD_REQUEST__BODY_MEMBERS;
		q.members = "";
	} else if (!strcmp(cmd, "status")) {
		q.body_case = SWARM__NETD_REQUEST__BODY_STATUS;
		q.status = "";
	} else if (!strcmp(cmd, "network") && *arg) {
		q.body_case = SWARM__NETD_REQUEST__BODY_NETWORK;
		q.network = (char *)arg;
	} else if (!strcmp(cmd, "watch")) {
		q.body_case = SWARM__NETD_REQUEST__BODY_SUBSCRIBE;
		q.subscribe = &sub;
	} else if (!strcmp(cmd, "attach") && npos == 7 &&
		   sscanf(pos[3], "%15[0-9]", vni_s) == 1) {
		/* attach TASK NETNS NETWORK VNI SUBNET GATEWAY IP: a namespace
		 * made by hand on an overlay (debugging, benchmarks) */
		att.task_id = (char *)pos[0];
		att.netns = (char *)pos[1];
		nw.id = nw.name = (char *)pos[2];
		nw.vni = (uint32_t)strtoul(vni_s, NULL, 10);
		nw.subnet = (char *)pos[4];
		nw.gateway = (char *)pos[5];
		ep.ipv4 = (char *)pos[6];
		ep.container_name = (char *)pos[0];
		ep.serving = true;
		att.networks = &nwp;
		att.n_networks = 1;
		att.endpoints = &epp;
		att.n_endpoints = 1;
		q.body_case = SWARM__NETD_REQUEST__BODY_ATTACH;
		q.attach = &att;
	} else if (!strcmp(cmd, "detach") && npos == 1) {
		det.task_id = (char *)pos[0];
		q.body_case = SWARM__NETD_REQUEST__BODY_DETACH;
		q.detach = &det;
	} else {
		fprintf(stderr, "usage: swarm-netd members|status|network NAME|watch [--run-dir DIR]\n"
				"       swarm-netd attach TASK NETNS NETWORK VNI SUBNET GATEWAY IP [--run-dir DIR]\n"
				"       swarm-netd detach TASK [--run-dir DIR]\n");
		return 2;
	}
	char *path = xasprintf("%s/netd.sock", run);
	int fd = client_connect_unix(path);
	if (fd < 0) {
		fprintf(stderr, "swarm-netd: cannot connect to %s: %s\n", path, strerror(-fd));
		free(path);
		return 1;
	}
	size_t len;
	uint8_t *buf = pb_pack(&q, &len);
	int r = client_send(fd, buf, len), rc = 1;
	free(buf);
	for (bool first = true; r == 0; first = false) {
		uint8_t *p;
		size_t plen;
		r = client_recv(fd, 16u << 20, first ? 10000 : -1, &p, &plen);
		if (r < 0)
			break;
		Swarm__NetdResponse *a = swarm__netd_response__unpack(NULL, plen, p);
		free(p);
		if (!a) {
			r = -EBADMSG;
			break;
		}
		if (a->error[0]) {
			fprintf(stderr, "Error: %s\n", a->error);
			swarm__netd_response__free_unpacked(a, NULL);
			break;
		}
		if (a->event) {
			Swarm__EndpointEvent *e = a->event;
			Swarm__EndpointRecord *x = e->record;
			printf("{\"epoch\":%llu,\"version\":%llu,\"kind\":\"%s\"",
			       (unsigned long long)e->epoch, (unsigned long long)e->version,
			       e->snapshot_begin ? "begin" : e->snapshot_end ? "end" : e->deleted ? "del" : "put");
			if (x)
				printf(",\"network\":\"%s\",\"name\":\"%s\",\"ip\":\"%s\",\"node\":\"%s\",\"serving\":%s",
				       x->network_name, x->container_name, x->ipv4, x->node_id,
				       x->serving ? "true" : "false");
			printf("}\n");
			fflush(stdout);
		} else if (a->json[0]) {
			printf("%s\n", a->json);
		}
		swarm__netd_response__free_unpacked(a, NULL);
		if (q.body_case != SWARM__NETD_REQUEST__BODY_SUBSCRIBE) {
			rc = 0;
			break;
		}
	}
	if (r < 0)
		fprintf(stderr, "swarm-netd: no reply from %s: %s\n", path, strerror(-r));
	close(fd);
	free(path);
	return rc;
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
	if (argc > 1 && argv[1][0] != '-')
		return client_main(argc, argv);
	return daemon_main(&def, argc, argv);
}
