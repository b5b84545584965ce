/* dns_load: feeds a running swarm-netd and swarm-dnsd for the DNS benchmark
 * (test/bench/dnsd_perf.sh), the way the agent would, over their local
 * sockets RUN/netd.sock and RUN/dnsd.sock.
 *
 * Usage: dns_load RUN_DIR < commands
 * One command per line (fields separated by blanks):
 *   net ID NAME VNI SUBNET GATEWAY     the network of the lines that follow
 *   ep TASK SVC_ID SVC_NAME VIP SLOT IP
 *                                      NetdAttach of one endpoint record
 *                                      (vip mode, serving) for task TASK,
 *                                      with a made-up netns path: netd runs
 *                                      with datapath = off, so nothing is
 *                                      built for it. Stands in for a task of
 *                                      a service (on this or another node).
 *   detach TASK                        NetdDetach
 *   sb TASK NETNS                      DnsdRequest.add: dnsd serves
 *                                      127.0.0.11:53 inside NETNS with the
 *                                      current network's names. Stands in
 *                                      for a container's sandbox.
 *   rm TASK                            DnsdRequest.remove
 * Requests are pipelined (up to WINDOW unanswered per socket); every answer
 * is checked. Prints "dns_load: N attaches, M sandboxes ..." and exits 1 at
 * the first refused request or I/O error (with the daemon's reason). */
#include "client.h"
#include "dnsd.pb-c.h"
#include "netd.pb-c.h"
#include "pb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW 16
#define ANSWER_MAX (1u << 20)
#define ANSWER_TIMEOUT_MS 120000

struct peer {
	const char *what;      /* "swarm-netd" */
	char path[512];
	int fd;
	unsigned inflight;
	int dnsd;              /* answers are DnsdResponse */
};

static int peer_open(struct peer *p)
{
	if (p->fd >= 0)
		return 0;
	p->fd = client_connect_unix(p->path);
	if (p->fd < 0) {
		fprintf(stderr, "dns_load: cannot connect to %s: %s\n", p->path, strerror(-p->fd));
		return p->fd;
	}
	return 0;
}

/* Reads one answer; 0, or -1 (printed) when refused or on I/O error. */
static int peer_recv_one(struct peer *p)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = client_recv(p->fd, ANSWER_MAX, ANSWER_TIMEOUT_MS, &buf, &len);
	if (r < 0) {
		fprintf(stderr, "dns_load: no answer from %s: %s\n", p->what, strerror(-r));
		return -1;
	}
	p->inflight--;
	const char *err = NULL;
	char errbuf[256];
	if (p->dnsd) {
		Swarm__DnsdResponse *a = swarm__dnsd_response__unpack(NULL, len, buf);
		if (!a)
			err = "undecodable answer";
		else if (a->error[0]) {
			snprintf(errbuf, sizeof(errbuf), "%s", a->error);
			err = errbuf;
		}
		swarm__dnsd_response__free_unpacked(a, NULL);
	} else {
		Swarm__NetdResponse *a = swarm__netd_response__unpack(NULL, len, buf);
		if (!a)
			err = "undecodable answer";
		else if (a->error[0]) {
			snprintf(errbuf, sizeof(errbuf), "%s", a->error);
			err = errbuf;
		}
		swarm__netd_response__free_unpacked(a, NULL);
	}
	free(buf);
	if (err) {
		fprintf(stderr, "dns_load: %s refused a request: %s\n", p->what, err);
		return -1;
	}
	return 0;
}

static int peer_send(struct peer *p, const void *msg)
{
	if (peer_open(p) < 0)
		return -1;
	while (p->inflight >= WINDOW)
		if (peer_recv_one(p) < 0)
			return -1;
	size_t len;
	uint8_t *buf = pb_pack(msg, &len);
	int r = client_send(p->fd, buf, len);
	free(buf);
	if (r < 0) {
		fprintf(stderr, "dns_load: cannot send to %s: %s\n", p->what, strerror(-r));
		return -1;
	}
	p->inflight++;
	return 0;
}

static int peer_drain(struct peer *p)
{
	while (p->fd >= 0 && p->inflight > 0)
		if (peer_recv_one(p) < 0)
			return -1;
	return 0;
}

struct net {
	char id[128], name[128], subnet[64], gateway[64];
	unsigned vni;
	int set;
};

static int do_attach(struct peer *nd, const struct net *nw, char **f, uint64_t id)
{
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdAttach a = SWARM__NETD_ATTACH__INIT;
	Swarm__EndpointRecord e = SWARM__ENDPOINT_RECORD__INIT;
	Swarm__NetdNetwork n = SWARM__NETD_NETWORK__INIT;
	Swarm__EndpointRecord *eps[1] = { &e };
	Swarm__NetdNetwork *nets[1] = { &n };
	char netns[256], cname[512];
	/* f: TASK SVC_ID SVC_NAME VIP SLOT IP */
	snprintf(netns, sizeof(netns), "/run/netns/dnb-none-%s", f[0]);
	snprintf(cname, sizeof(cname), "%s.%s.%s", f[2], f[4], f[0]);
	e.service_id = f[1];
	e.service_name = f[2];
	e.endpoint_mode = "vip";
	e.vip = f[3];
	e.slot = strtoull(f[4], NULL, 10);
	e.container_name = cname;
	e.ipv4 = f[5];
	e.serving = 1;
	e.network_name = (char *)nw->name;
	n.id = (char *)nw->id;
	n.name = (char *)nw->name;
	n.vni = nw->vni;
	n.subnet = (char *)nw->subnet;
	n.gateway = (char *)nw->gateway;
	a.task_id = f[0];
	a.netns = netns;
	a.n_endpoints = 1;
	a.endpoints = eps;
	a.n_networks = 1;
	a.networks = nets;
	q.id = id;
	q.body_case = SWARM__NETD_REQUEST__BODY_ATTACH;
	q.attach = &a;
	return peer_send(nd, &q);
}

static int do_detach(struct peer *nd, const char *task, uint64_t id)
{
	Swarm__NetdRequest q = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdDetach d = SWARM__NETD_DETACH__INIT;
	d.task_id = (char *)task;
	q.id = id;
	q.body_case = SWARM__NETD_REQUEST__BODY_DETACH;
	q.detach = &d;
	return peer_send(nd, &q);
}

static int do_sandbox(struct peer *dd, const struct net *nw, const char *task, const char *netns,
		      uint64_t id)
{
	Swarm__DnsdRequest q = SWARM__DNSD_REQUEST__INIT;
	Swarm__DnsdSandbox s = SWARM__DNSD_SANDBOX__INIT;
	char *ids[1] = { (char *)nw->id }, *names[1] = { (char *)nw->name };
	s.task_id = (char *)task;
	s.netns = (char *)netns;
	s.n_network_ids = 1;
	s.network_ids = ids;
	s.n_network_names = 1;
	s.network_names = names;
	q.id = id;
	q.body_case = SWARM__DNSD_REQUEST__BODY_ADD;
	q.add = &s;
	return peer_send(dd, &q);
}

static int do_remove(struct peer *dd, const char *task, uint64_t id)
{
	Swarm__DnsdRequest q = SWARM__DNSD_REQUEST__INIT;
	q.id = id;
	q.body_case = SWARM__DNSD_REQUEST__BODY_REMOVE;
	q.remove = (char *)task;
	return peer_send(dd, &q);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: dns_load RUN_DIR < commands (see the source)\n");
		return 2;
	}
	struct peer nd = { .what = "swarm-netd", .fd = -1 };
	struct peer dd = { .what = "swarm-dnsd", .fd = -1, .dnsd = 1 };
	snprintf(nd.path, sizeof(nd.path), "%s/netd.sock", argv[1]);
	snprintf(dd.path, sizeof(dd.path), "%s/dnsd.sock", argv[1]);
	struct net nw = { .set = 0 };
	char line[2048];
	unsigned long lineno = 0, n_att = 0, n_det = 0, n_sb = 0, n_rm = 0;
	uint64_t id = 1;
	int rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), stdin)) {
		char *f[8], *save = NULL;
		int nf = 0;
		lineno++;
		for (char *t = strtok_r(line, " \t\r\n", &save); t && nf < 8;
		     t = strtok_r(NULL, " \t\r\n", &save))
			f[nf++] = t;
		if (nf == 0 || f[0][0] == '#')
			continue;
		if (!strcmp(f[0], "net") && nf == 6) {
			snprintf(nw.id, sizeof(nw.id), "%s", f[1]);
			snprintf(nw.name, sizeof(nw.name), "%s", f[2]);
			nw.vni = (unsigned)strtoul(f[3], NULL, 10);
			snprintf(nw.subnet, sizeof(nw.subnet), "%s", f[4]);
			snprintf(nw.gateway, sizeof(nw.gateway), "%s", f[5]);
			nw.set = 1;
		} else if (!strcmp(f[0], "ep") && nf == 7 && nw.set) {
			rc = do_attach(&nd, &nw, f + 1, id++);
			n_att++;
		} else if (!strcmp(f[0], "detach") && nf == 2) {
			rc = do_detach(&nd, f[1], id++);
			n_det++;
		} else if (!strcmp(f[0], "sb") && nf == 3 && nw.set) {
			rc = do_sandbox(&dd, &nw, f[1], f[2], id++);
			n_sb++;
		} else if (!strcmp(f[0], "rm") && nf == 2) {
			rc = do_remove(&dd, f[1], id++);
			n_rm++;
		} else {
			fprintf(stderr, "dns_load: line %lu: bad command (or no net line before it)\n",
				lineno);
			rc = -1;
		}
	}
	if (rc == 0 && (peer_drain(&nd) < 0 || peer_drain(&dd) < 0))
		rc = -1;
	if (nd.fd >= 0)
		close(nd.fd);
	if (dd.fd >= 0)
		close(dd.fd);
	if (rc == 0)
		printf("dns_load: %lu attaches, %lu detaches, %lu sandboxes added, %lu removed\n",
		       n_att, n_det, n_sb, n_rm);
	return rc == 0 ? 0 : 1;
}
