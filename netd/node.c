/* netd's core (netd.h): local state, persistence, tables, reconcile. */
#include "netd.h"
#include "esp.h"
#include "esp_probe.h"

#include "conn.h"
#include "log.h"
#include "pb.h"
#include "strmap.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NETD_STATE_MAX (64u << 20)
#define NETD_RECONCILE_DELAY 0.01    /* coalesces a burst of changes */
#define NETD_HEAL_PERIOD 30.0        /* re-reconcile, gc, save clocks */

struct netd_sub {
	struct conn *c;
	struct netd_sub *next;
};

static void netd_schedule(struct netd *n);
static void netd_gossip_start(struct netd *n);

/* ---- small helpers ---- */

static int parse_ip(const char *s, struct in_addr *a)
{
	return s && inet_pton(AF_INET, s, a) == 1 ? 0 : -EINVAL;
}

/* "198.18.0.0/24" -> address and prefix length. */
static int parse_cidr(const char *s, struct in_addr *a, uint8_t *plen)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	char *end;
	long l = strtol(slash + 1, &end, 10);
	if (*end || l < 0 || l > 32 || parse_ip(ip, a) < 0)
		return -EINVAL;
	*plen = (uint8_t)l;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (!s || sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

/* Docker's rule: a MAC derived from the IPv4 address, 02:42:a:b:c:d. */
static void mac_from_ip(struct in_addr ip, char *out, size_t len)
{
	const uint8_t *b = (const uint8_t *)&ip.s_addr;
	snprintf(out, len, "02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]);
}

static const char *self_name(const struct netd *n)
{
	if (n->conf && n->conf->node_id[0])
		return n->conf->node_id;
	return n->set.node_name;
}

/* The VXLAN source address: the agent's data-path address, else its
 * advertise address; without an agent the static advertise_addr, else a
 * specific bind_addr. NULL: no data path until the agent says. */
static const char *vtep_addr(const struct netd *n)
{
	if (n->conf && n->conf->data_path_addr[0])
		return n->conf->data_path_addr;
	if (n->conf && n->conf->advertise_addr[0])
		return n->conf->advertise_addr;
	if (n->set.advertise_addr && *n->set.advertise_addr)
		return n->set.advertise_addr;
	if (n->set.bind_addr && *n->set.bind_addr && strcmp(n->set.bind_addr, "0.0.0.0"))
		return n->set.bind_addr;
	return NULL;
}

/* ---- persistence ---- */

static char *state_path(const struct netd *n)
{
	return xasprintf("%s/netd.state", n->state_dir);
}

static void netd_save(struct netd *n)
{
	Swarm__NetdState st = SWARM__NETD_STATE__INIT;
	size_t na = strmap_count(n->atts), i = 0, pos = 0, ng = 0;
	const char *k;
	void *v;
	st.config = n->conf;
	st.attachments = xcalloc(na + 1, sizeof(*st.attachments));
	while (strmap_next(n->atts, &pos, &k, &v))
		st.attachments[i++] = v;
	st.n_attachments = i;
	st.network_clock = n->db ? ndb_network_clock(n->db) : 0;
	st.table_clock = n->db ? ndb_table_clock(n->db) : 0;
	size_t ngw = strmap_count(n->gw_ips);
	Swarm__NetdState__GatewayIpsEntry *ents = xcalloc(ngw + 1, sizeof(*ents));
	st.gateway_ips = xcalloc(ngw + 1, sizeof(*st.gateway_ips));
	pos = 0;
	while (strmap_next(n->gw_ips, &pos, &k, &v)) {
		swarm__netd_state__gateway_ips_entry__init(&ents[ng]);
		ents[ng].key = (char *)k;
		ents[ng].value = v;
		st.gateway_ips[ng] = &ents[ng];
		ng++;
	}
	st.n_gateway_ips = ng;
	size_t len;
	uint8_t *buf = pb_pack(&st, &len);
	char *p = state_path(n);
	int r = file_write_atomic(p, buf, len, 0600);
	if (r < 0)
		log_err("netd, cannot save %s: %s", p, strerror(-r));
	free(p);
	free(buf);
	free(st.attachments);
	free(st.gateway_ips);
	free(ents);
}

static void save_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	netd_save(w->data);
}

/* Saves shortly, once for a burst of attaches (the file holds them all).
 * What a crash loses in between, the agent sends again on reconnect. */
static void netd_save_soon(struct netd *n)
{
	if (ev_is_active(&n->save_t))
		return;
	ev_timer_set(&n->save_t, 0.2, 0);
	ev_timer_start(n->loop, &n->save_t);
}

static void netd_load(struct netd *n)
{
	char *p = state_path(n), *buf = NULL;
	size_t len;
	int r = file_read_all(p, NETD_STATE_MAX, &buf, &len);
	if (r < 0) {
		if (r != -ENOENT)
			log_warn("netd, cannot read %s: %s", p, strerror(-r));
		free(p);
		return;
	}
	Swarm__NetdState *st = swarm__netd_state__unpack(NULL, len, (uint8_t *)buf);
	if (!st) {
		log_err("netd, %s is corrupt; starting without it", p);
		goto out;
	}
	if (st->config)
		n->conf = pb_dup(st->config);
	for (size_t i = 0; i < st->n_attachments; i++)
		if (st->attachments[i]->task_id[0])
			pb_free(strmap_put(n->atts, st->attachments[i]->task_id,
					   pb_dup(st->attachments[i])));
	for (size_t i = 0; i < st->n_gateway_ips; i++)
		free(strmap_put(n->gw_ips, st->gateway_ips[i]->key,
				xstrdup(st->gateway_ips[i]->value)));
	n->saved_nclk = st->network_clock;
	n->saved_tclk = st->table_clock;
	log_info("netd, resumed %zu attachment(s) from %s", strmap_count(n->atts), p);
	swarm__netd_state__free_unpacked(st, NULL);
out:
	free(buf);
	free(p);
}

/* The agent's gossip keys as the ring gossip uses (primary first: the
 * manager keeps the newest last, and the newest is the primary), also
 * written to <state>/keyring (base64 lines, 0600) for operators and peers
 * such as serf. 0 or -errno. */
static int keyring_from_conf(struct netd *n, struct gossip_keyring *kr)
{
	char *path = xasprintf("%s/keyring", n->state_dir);
	char *text = xstrdup("");
	int r = 0;
	for (size_t i = n->conf->n_gossip_keys; i > 0 && r == 0; i--) {
		const ProtobufCBinaryData *k = &n->conf->gossip_keys[i - 1];
		char b64[64];
		r = gossip_keyring_add(kr, k->data, k->len);
		EVP_EncodeBlock((unsigned char *)b64, k->data, (int)k->len);
		char *t = xasprintf("%s%s\n", text, b64);
		free(text);
		text = t;
	}
	if (r == 0)
		r = file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		log_err("netd, gossip keys not usable (%s): %s", path, strerror(-r));
	free(text);
	free(path);
	return r;
}

/* ---- stream ---- */

static int ep_decode(const struct ndb_entry *e, Swarm__EndpointRecord **out)
{
	*out = swarm__endpoint_record__unpack(NULL, e->value_len, e->value);
	return *out ? 0 : -EBADMSG;
}

static void sub_send(struct netd *n, struct netd_sub *s, bool begin, bool end,
		     bool deleted, Swarm__EndpointRecord *rec)
{
	Swarm__NetdResponse r = SWARM__NETD_RESPONSE__INIT;
	Swarm__EndpointEvent ev = SWARM__ENDPOINT_EVENT__INIT;
	ev.epoch = n->epoch;
	ev.version = ++n->version;
	ev.snapshot_begin = begin;
	ev.snapshot_end = end;
	ev.deleted = deleted;
	ev.record = rec;
	r.event = &ev;
	conn_send_msg(s->c, &r.base);
}

/* Adds what only this node knows to a record of its own sandboxes: the
 * netns file and the gateway-leg address (lbd programs them there). */
static void ep_local(struct netd *n, const struct ndb_entry *e, Swarm__EndpointRecord *rec)
{
	const Swarm__NetdAttach *a = strmap_get(n->atts, rec->task_id);
	if (!a || !n->conf || strcmp(e->owner, n->conf->node_id) != 0)
		return;
	const char *gw = strmap_get(n->gw_ips, rec->task_id);
	rec->netns = xstrdup(a->netns);   /* freed by free_unpacked */
	rec->gateway_ip = xstrdup(gw ? gw : "");
}

static void snap_one(void *arg, const struct ndb_entry *e)
{
	void **a = arg;
	Swarm__EndpointRecord *rec;
	if (ep_decode(e, &rec) < 0)
		return;
	ep_local(a[0], e, rec);
	sub_send(a[0], a[1], false, false, false, rec);
	swarm__endpoint_record__free_unpacked(rec, NULL);
}

/* The local-only record of an attachment on no network (see NetdAttach),
 * or NULL. Its strings borrow from a until the caller frees the copy. */
static Swarm__EndpointRecord *att_local(struct netd *n, const Swarm__NetdAttach *a)
{
	if (a->n_endpoints || !a->local)
		return NULL;
	Swarm__EndpointRecord *r = pb_dup(a->local);
	const char *gw = strmap_get(n->gw_ips, a->task_id);
	char *id = xasprintf("%s-local", a->task_id);
	pb_set_str(&r->endpoint_id, id);
	free(id);
	pb_set_str(&r->task_id, a->task_id);
	pb_set_str(&r->network_id, "");
	pb_set_str(&r->netns, a->netns);
	pb_set_str(&r->gateway_ip, gw ? gw : "");
	return r;
}

/* Streams a's local-only record (if it has one) to every subscriber. */
static void att_local_send(struct netd *n, const Swarm__NetdAttach *a, bool deleted)
{
	Swarm__EndpointRecord *r = att_local(n, a);
	for (struct netd_sub *s = n->subs; r && s; s = s->next)
		sub_send(n, s, false, false, deleted, r);
	pb_free(r);
}

void netd_subscribe(struct netd *n, struct conn *c)
{
	struct netd_sub *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->next = n->subs;
	n->subs = s;
	sub_send(n, s, true, false, false, NULL);
	if (n->db) {
		void *a[2] = { n, s };
		ndb_foreach(n->db, NULL, NDB_TABLE_ENDPOINTS, snap_one, a);
	}
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(n->atts, &pos, &k, &v)) {
		Swarm__EndpointRecord *r = att_local(n, v);
		if (r)
			sub_send(n, s, false, false, false, r);
		pb_free(r);
	}
	sub_send(n, s, false, true, false, NULL);
}

void netd_unsubscribe(struct netd *n, struct conn *c)
{
	for (struct netd_sub **pp = &n->subs; *pp; pp = &(*pp)->next) {
		if ((*pp)->c == c) {
			struct netd_sub *s = *pp;
			*pp = s->next;
			free(s);
			return;
		}
	}
}

/* ---- tables ---- */

static void on_change(void *arg, enum ndb_change what, const struct ndb_entry *e)
{
	struct netd *n = arg;
	if (strcmp(e->table, NDB_TABLE_ENDPOINTS) != 0)
		return;
	Swarm__EndpointRecord *rec;
	if (ep_decode(e, &rec) < 0) {
		log_warn("netd, undecodable endpoint %s from %s", e->key, e->owner);
		return;
	}
	log_debug("netd, endpoint %s %s (%s on %s)", rec->ipv4,
		  what == NDB_DEL ? "gone" : what == NDB_ADD ? "added" : "updated",
		  rec->container_name, e->owner);
	if (what != NDB_DEL)
		ep_local(n, e, rec);
	for (struct netd_sub *s = n->subs; s; s = s->next)
		sub_send(n, s, false, false, what == NDB_DEL, rec);
	swarm__endpoint_record__free_unpacked(rec, NULL);
	netd_schedule(n);
}

static void on_broadcast(void *arg, const char *name, const uint8_t *msg, size_t len)
{
	struct netd *n = arg;
	if (n->g)
		gossip_broadcast_user(n->g, name, msg, len);
}

static int g_on_user(void *arg, const uint8_t *p, size_t len)
{
	struct netd *n = arg;
	int r = ndb_on_message(n->db, p, len, now_mono_ns());
	return r == -EBADMSG ? r : 0;
}

static int g_local_state(void *arg, bool join, uint8_t **out, size_t *len)
{
	struct netd *n = arg;
	(void)join;
	return ndb_bulk(n->db, out, len);
}

static void g_merge_state(void *arg, const uint8_t *p, size_t len, bool join)
{
	struct netd *n = arg;
	(void)join;
	if (len < 1 || p[0] != NDB_MSG_BULK)
		return; /* a serf agent's state: not ours */
	if (ndb_merge_bulk(n->db, p, len, now_mono_ns()) < 0)
		log_warn("netd, malformed bulk state dropped");
}

static void g_on_event(void *arg, const struct swim_event *ev)
{
	struct netd *n = arg;
	switch (ev->type) {
	case SWIM_EV_DEAD:
	case SWIM_EV_LEFT:
		ndb_node_dead(n->db, ev->name);
		break;
	case SWIM_EV_JOIN:
	case SWIM_EV_ALIVE:
		ndb_node_alive(n->db, ev->name);
		/* Back from a partition or a restart: exchange whole tables
		 * now rather than at the next periodic push/pull. */
		if (n->g)
			gossip_push_pull_with(n->g, ev->name);
		break;
	case SWIM_EV_REAPED:
		ndb_node_forget(n->db, ev->name);
		break;
	default:
		break;
	}
}

/* Our entries and network memberships for one attachment. */
static void netd_publish_one(struct netd *n, const Swarm__NetdAttach *a, int64_t now)
{
	for (size_t i = 0; i < a->n_endpoints; i++) {
		Swarm__EndpointRecord *e = a->endpoints[i];
		ndb_join_network(n->db, e->network_id, now);
		size_t len;
		uint8_t *buf = pb_pack(e, &len);
		ndb_put(n->db, e->network_id, NDB_TABLE_ENDPOINTS, e->endpoint_id, buf, len, now);
		free(buf);
	}
}

/* All of them (gossip (re)started). */
static void netd_publish(struct netd *n)
{
	if (!n->db)
		return;
	int64_t now = now_mono_ns();
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(n->atts, &pos, &k, &v))
		netd_publish_one(n, v, now);
}

/* Removes our entries of an attachment (and leaves networks nobody local
 * uses any more). */
static void netd_unpublish(struct netd *n, const Swarm__NetdAttach *gone)
{
	if (!n->db)
		return;
	int64_t now = now_mono_ns();
	for (size_t i = 0; i < gone->n_endpoints; i++) {
		Swarm__EndpointRecord *e = gone->endpoints[i];
		ndb_del(n->db, e->network_id, NDB_TABLE_ENDPOINTS, e->endpoint_id, now);
		bool used = false;
		size_t pos = 0;
		const char *k;
		void *v;
		while (!used && strmap_next(n->atts, &pos, &k, &v)) {
			Swarm__NetdAttach *a = v;
			for (size_t j = 0; j < a->n_endpoints; j++)
				if (!strcmp(a->endpoints[j]->network_id, e->network_id))
					used = true;
		}
		if (!used)
			ndb_leave_network(n->db, e->network_id, now);
	}
}

/* ---- data path ---- */

/* The network descriptions attachments carry, by network id. */
static const Swarm__NetdNetwork *find_net(const struct netd *n, const char *id)
{
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(n->atts, &pos, &k, &v)) {
		Swarm__NetdAttach *a = v;
		for (size_t i = 0; i < a->n_networks; i++)
			if (!strcmp(a->networks[i]->id, id))
				return a->networks[i];
	}
	return NULL;
}

/* nw as the data path holds it; an encrypted network is sealed by the
 * sealer, or with esp rides vxlan0 under kernel ESP. */
static int net_to_dp(const Swarm__NetdNetwork *nw, bool esp, struct dp_network *d)
{
	memset(d, 0, sizeof(*d));
	d->vni = nw->vni;
	d->encrypted = nw->encrypted && !esp;
	d->esp = nw->encrypted && esp;
	if (parse_cidr(nw->subnet, &d->subnet, &d->prefixlen) < 0 ||
	    parse_ip(nw->gateway, &d->gateway) < 0)
		return -EINVAL;
	return 0;
}

/* A remote endpoint of an encrypted network under kernel ESP: it goes to
 * vxlan0 only once esp_guards says its packets cannot leave in clear. */
struct esp_remote {
	uint32_t vni;
	struct in_addr ip, vtep;
	uint8_t mac[6];
};

struct remote_ctx {
	struct netd *n;
	struct dp_state *st;
	struct strmap *nets;   /* network id -> Swarm__NetdNetwork*, local ones */
	Swarm__SealerConfig *sc; /* peers of encrypted networks go here; NULL: dropped */
	struct esp_remote *esp;  /* with kernel ESP: encrypted networks' remotes */
	size_t n_esp;
};

static void add_remote(void *arg, const struct ndb_entry *e)
{
	struct remote_ctx *rc = arg;
	const char *self = self_name(rc->n);
	if (self && !strcmp(e->owner, self))
		return;
	const Swarm__NetdNetwork *nw = strmap_get(rc->nets, e->network_id);
	Swarm__EndpointRecord *rec;
	if (!nw || ep_decode(e, &rec) < 0)
		return;
	struct in_addr ip, vtep;
	uint8_t mac[6];
	bool ok = parse_ip(rec->ipv4, &ip) == 0 && parse_ip(rec->vtep, &vtep) == 0 &&
		  parse_mac(rec->mac, mac) == 0;
	if (ok && !nw->encrypted) {
		dp_state_add_remote(rc->st, nw->vni, ip, mac, vtep);
	} else if (ok && rc->n->esp) {
		rc->esp = xrealloc(rc->esp, (rc->n_esp + 1) * sizeof(*rc->esp));
		struct esp_remote *r = &rc->esp[rc->n_esp++];
		r->vni = nw->vni;
		r->ip = ip;
		r->vtep = vtep;
		memcpy(r->mac, mac, sizeof(r->mac));
	} else if (ok && rc->sc) {
		/* never on vxlan0: the sealer carries encrypted networks' frames */
		Swarm__SealerPeer *p = xmalloc(sizeof(*p));
		swarm__sealer_peer__init(p);
		p->vni = nw->vni;
		p->mac = xstrdup(rec->mac);
		p->ipv4 = xstrdup(rec->ipv4);
		p->vtep = xstrdup(rec->vtep);
		PB_PTRV_ADD(rc->sc, peers, p);
	}
	swarm__endpoint_record__free_unpacked(rec, NULL);
}

/* The gateway bridge from the settings; false when there is none. */
static bool gw_config(const struct netd *n, struct dp_gateway *gw)
{
	memset(gw, 0, sizeof(*gw));
	if (!n->set.gw_subnet || !*n->set.gw_subnet ||
	    parse_cidr(n->set.gw_subnet, &gw->subnet, &gw->prefixlen) < 0 ||
	    gw->prefixlen < 1 || gw->prefixlen > 30)
		return false;
	uint32_t mask = ~0u << (32 - gw->prefixlen);
	gw->subnet.s_addr = htonl(ntohl(gw->subnet.s_addr) & mask);
	gw->addr.s_addr = htonl(ntohl(gw->subnet.s_addr) + 1);
	snprintf(gw->bridge, sizeof(gw->bridge), "%s", n->set.gw_bridge);
	return true;
}

/* A free address on the gateway subnet for task_id (kept in gw_ips and
 * saved with the state, so a restarted netd gives the same one). */
static const char *gw_ip_for(struct netd *n, const char *task_id)
{
	struct dp_gateway gw;
	const char *have = strmap_get(n->gw_ips, task_id);
	if (have || !gw_config(n, &gw))
		return have;
	uint32_t base = ntohl(gw.subnet.s_addr), size = 1u << (32 - gw.prefixlen);
	for (uint32_t i = 2; i + 1 < size; i++) {
		struct in_addr a = { htonl(base + i) };
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		bool used = false;
		size_t pos = 0;
		const char *k;
		void *v;
		while (!used && strmap_next(n->gw_ips, &pos, &k, &v))
			used = !strcmp(v, ip);
		if (!used) {
			strmap_put(n->gw_ips, task_id, xstrdup(ip));
			return strmap_get(n->gw_ips, task_id);
		}
	}
	log_err("netd, gateway subnet %s is full", n->set.gw_subnet);
	return NULL;
}

/* What the kernel should hold: a network per network with a local
 * endpoint, our attachments, and every visible remote endpoint of them;
 * the encrypted networks' peers go to sc (the sealer's config) instead,
 * or with kernel ESP into *esp (malloc'd) for esp_guard_remotes. */
static void netd_desired(struct netd *n, struct dp_state *st, Swarm__SealerConfig *sc,
			 struct esp_remote **esp, size_t *n_esp)
{
	*esp = NULL;
	*n_esp = 0;
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(n->atts, &pos, &k, &v)) {
		Swarm__NetdAttach *a = v;
		for (size_t i = 0; i < a->n_endpoints && i < a->n_networks; i++) {
			Swarm__EndpointRecord *e = a->endpoints[i];
			struct dp_network d;
			struct dp_local_ep le = { 0 };
			if (net_to_dp(a->networks[i], n->esp != NULL, &d) < 0)
				continue;
			dp_state_add_network(st, &d);
			le.vni = d.vni;
			snprintf(le.task_id, sizeof(le.task_id), "%s", a->task_id);
			snprintf(le.netns, sizeof(le.netns), "%s", a->netns);
			snprintf(le.ifname, sizeof(le.ifname), "eth%u", (unsigned)i);
			if (parse_ip(e->ipv4, &le.ip) < 0 || parse_mac(e->mac, le.mac) < 0)
				continue;
			dp_state_add_local(st, &le);
		}
	}
	struct dp_gateway gw;
	if (gw_config(n, &gw)) {
		dp_state_set_gateway(st, &gw);
		pos = 0;
		while (strmap_next(n->atts, &pos, &k, &v)) {
			Swarm__NetdAttach *a = v;
			const char *ip = gw_ip_for(n, a->task_id);
			struct dp_gw_ep ge = { 0 };
			char mac[24];
			if (!ip || parse_ip(ip, &ge.ip) < 0)
				continue;
			snprintf(ge.task_id, sizeof(ge.task_id), "%s", a->task_id);
			snprintf(ge.netns, sizeof(ge.netns), "%s", a->netns);
			/* after the overlay legs, as Docker's eth1 on docker_gwbridge */
			snprintf(ge.ifname, sizeof(ge.ifname), "eth%u", (unsigned)a->n_endpoints);
			mac_from_ip(ge.ip, mac, sizeof(mac));
			parse_mac(mac, ge.mac);
			dp_state_add_gw_ep(st, &ge);
		}
	}
	if (n->db) {
		struct remote_ctx rc = { n, st, strmap_new(), sc, NULL, 0 };
		pos = 0;
		while (strmap_next(n->atts, &pos, &k, &v)) {
			Swarm__NetdAttach *a = v;
			for (size_t i = 0; i < a->n_networks; i++)
				strmap_put(rc.nets, a->networks[i]->id, a->networks[i]);
		}
		/* only the networks with a local endpoint: the rest is not programmed */
		size_t npos = 0;
		const char *nid;
		void *nv;
		while (strmap_next(rc.nets, &npos, &nid, &nv))
			ndb_foreach(n->db, nid, NDB_TABLE_ENDPOINTS, add_remote, &rc);
		strmap_free(rc.nets);
		*esp = rc.esp;
		*n_esp = rc.n_esp;
	}
}

#define SEALER_TAP "sealer0"     /* the sealer's TAP in each encrypted network's namespace */

/* The rest of the sealer's config: this node, the data-path key ring
 * (primary first, as the agent hands it) and the encrypted networks of
 * st, whose peers netd_desired added. */
static void sealer_config_fill(struct netd *n, const struct dp_state *st, Swarm__SealerConfig *sc)
{
	const char *self = vtep_addr(n);
	pb_set_str(&sc->self, self ? self : "");
	sc->port = n->set.sealer_port;
	sc->no_trains = !n->set.sealer_trains;
	for (size_t i = 0; n->conf && i < n->conf->n_datapath_keys; i++) {
		const Swarm__NetworkKey *k = n->conf->datapath_keys[i];
		Swarm__SealerKey *sk = xmalloc(sizeof(*sk));
		swarm__sealer_key__init(sk);
		sk->id = (uint32_t)(k->lamport_time & 0xff);
		sk->key.len = k->key.len;
		sk->key.data = xmalloc(k->key.len + 1);
		memcpy(sk->key.data, k->key.data, k->key.len);
		PB_PTRV_ADD(sc, keys, sk);
	}
	for (size_t i = 0; i < st->n_nets; i++) {
		char path[DP_PATH_MAX];
		if (!st->nets[i].encrypted || dp_netlink_ns_path(n->dp, st->nets[i].vni, path, sizeof(path)) < 0)
			continue;
		Swarm__SealerNetwork *sn = xmalloc(sizeof(*sn));
		swarm__sealer_network__init(sn);
		sn->vni = st->nets[i].vni;
		sn->netns = xstrdup(path);
		sn->tap = xstrdup(SEALER_TAP);
		PB_PTRV_ADD(sc, networks, sn);
	}
	if (sc->n_networks && !sc->n_keys)
		log_warn("netd, %zu encrypted network(s) but no data-path key yet: nothing is sent "
			 "on them until the managers' keys arrive", sc->n_networks);
}

/* Kernel ESP: syncs the states, policies and rules for the encrypted
 * networks in st and their remotes (esp.h "Never cleartext": additions
 * only before the data path changes, in full after). */
static void esp_apply(struct netd *n, const struct dp_state *st, const struct esp_remote *rem,
		      size_t nrem, bool additions_only)
{
	struct in_addr self = { 0 };
	const char *addr = vtep_addr(n);
	if (addr)
		parse_ip(addr, &self);
	size_t nkeys = n->conf ? n->conf->n_datapath_keys : 0;
	struct seal_key *ring = xcalloc(nkeys + 1, sizeof(*ring));
	for (size_t i = 0; i < nkeys; i++) {
		const Swarm__NetworkKey *k = n->conf->datapath_keys[i];
		ring[i].id = (uint8_t)(k->lamport_time & 0xff);
		ring[i].len = k->key.len <= SEAL_KEY_MAX ? k->key.len : 0;
		memcpy(ring[i].key, k->key.data, ring[i].len);
	}
	uint32_t *vnis = xcalloc(st->n_nets + 1, sizeof(*vnis));
	uint32_t *peers = xcalloc(nrem + 1, sizeof(*peers));
	size_t nvnis = 0;
	for (size_t i = 0; i < st->n_nets; i++)
		if (st->nets[i].esp)
			vnis[nvnis++] = st->nets[i].vni;
	for (size_t i = 0; i < nrem; i++)
		peers[i] = ntohl(rem[i].vtep.s_addr);
	struct esp_want w = { ntohl(self.s_addr), ring, nkeys, peers, nrem, vnis, nvnis, additions_only };
	int before = esp_last_error(n->esp), r = esp_sync(n->esp, &w);
	if (r < 0 && r != before)
		log_err("netd, kernel ESP: %s (encrypted networks carry nothing to the nodes "
			"concerned until it succeeds; retried every reconcile)", strerror(-r));
	else if (r == 0 && before < 0 && !additions_only)
		log_info("netd, kernel ESP: in sync again");
	OPENSSL_cleanse(ring, (nkeys + 1) * sizeof(*ring));
	free(ring);
	free(vnis);
	free(peers);
}

/* The remotes of esp networks whose packets esp guards go to vxlan0; the
 * others wait (their traffic is dropped, never sent in clear). */
static void esp_guard_remotes(struct netd *n, struct dp_state *st, const struct esp_remote *rem,
			      size_t nrem)
{
	size_t held = 0;
	for (size_t i = 0; i < nrem; i++) {
		if (esp_guards(n->esp, rem[i].vni, ntohl(rem[i].vtep.s_addr)))
			dp_state_add_remote(st, rem[i].vni, rem[i].ip, rem[i].mac, rem[i].vtep);
		else
			held++;
	}
	if (held)
		log_debug("netd, kernel ESP: %zu remote endpoint(s) held back until guarded", held);
}

static void reconcile_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct netd *n = w->data;
	(void)loop;
	(void)revents;
	if (!n->dp)
		return;
	struct dp_state st;
	struct dp_stats ds = { 0 };
	dp_state_init(&st);
	Swarm__SealerConfig *sc = xmalloc(sizeof(*sc));
	swarm__sealer_config__init(sc);
	struct esp_remote *rem;
	size_t nrem;
	netd_desired(n, &st, sc, &rem, &nrem);
	int64_t t0 = now_mono_ns();
	if (n->esp) {
		esp_apply(n, &st, rem, nrem, true);
		esp_guard_remotes(n, &st, rem, nrem);
	}
	int r = dp_reconcile(n->dp, &st, &ds);
	if (n->esp)
		esp_apply(n, &st, rem, nrem, false);
	free(rem);
	sealer_config_fill(n, &st, sc);
	if (n->sealer)
		sealer_ctl_set(n->sealer, sc);   /* after the reconcile: the namespaces exist */
	else
		pb_free(sc);
	n->last_reconcile_ns = now_mono_ns() - t0;
	n->reconciles++;
	n->dp_failed += ds.failed;
	if (r < 0 || ds.failed)
		log_warn("netd, reconcile: %u change(s), %u failed%s%s", ds.applied, ds.failed,
			 r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
	else if (ds.applied)
		log_debug("netd, reconcile: %u change(s)", ds.applied);
	dp_state_clear(&st);
}

static void netd_schedule(struct netd *n)
{
	if (!n->dp || ev_is_active(&n->reconcile_t))
		return;
	ev_timer_set(&n->reconcile_t, NETD_RECONCILE_DELAY, 0);
	ev_timer_start(n->loop, &n->reconcile_t);
}

/* The provider of encrypted networks, chosen once the data path runs:
 * kernel ESP where the kernel has it (or where the operator forces it),
 * else swarm-sealer. Logged, and shown by status and network inspect. */
static void encryption_start(struct netd *n, uint16_t vxlan_port)
{
	char why[128] = "";
	const char *mode = n->set.encryption ? n->set.encryption : "auto";
	bool force = !strcmp(mode, "kernel"), user = !strcmp(mode, "userspace");
	int esp = user ? 0 : esp_probe(why, sizeof(why));
	if (esp > 0 || force) {
		n->esp_ctx = esp_kernel_ctx_new();
		int r = n->esp_ctx ? esp_new(&esp_kernel_ops, n->esp_ctx, vxlan_port, &n->esp) : -ENOMEM;
		if (!n->esp_ctx)
			snprintf(why, sizeof(why), "netd cannot open NETLINK_XFRM or nftables");
		else if (r < 0)
			log_warn("netd, kernel ESP: listing an earlier run's states: %s (they are "
				 "left as they are)", strerror(-r));
	}
	if (n->esp || force) {
		/* forced: never the sealer; without a context, encrypted
		 * networks carry nothing */
		snprintf(n->dp_provider, sizeof(n->dp_provider),
			 "kernel (IPsec ESP transport, rfc4106(gcm(aes)), on vxlan0%s%s)",
			 esp > 0 && n->esp ? "" : "; forced by encryption = kernel, but: ",
			 esp > 0 && n->esp ? "" : why);
		if (n->esp)
			log_info("netd, encrypted networks: %s", n->dp_provider);
		else
			log_err("netd, encrypted networks: %s: they carry nothing", n->dp_provider);
		return;
	}
	/* not kernel ESP: an earlier run's states, policies and rules go (the
	 * rules would drop VXLAN of VNIs that may now be plain) */
	void *ctx = esp_kernel_ctx_new();
	if (ctx) {
		esp_kernel_ops.flush(ctx);
		esp_kernel_ctx_free(ctx);
	}
	snprintf(n->dp_provider, sizeof(n->dp_provider),
		 "userspace (swarm-sealer, AES-GCM on udp/%u; kernel ESP %s%s)", n->set.sealer_port,
		 user ? "not chosen: encryption = userspace" : "unavailable: ", user ? "" : why);
	log_info("netd, encrypted networks: %s", n->dp_provider);
	char *sock = xasprintf("%s/sealer.sock", n->run_dir);
	/* in the state dir: it must outlive a reboot, as a clock set back may */
	char *floor = xasprintf("%s/sealer.floor", n->state_dir);
	struct sealer_ctl_config sc = {
		.exe = n->set.sealer_exe,
		.socket = sock,
		.floor_file = floor,
		.log_level = log_enabled(LOG_LVL_DEBUG) ? "debug" : log_enabled(LOG_LVL_INFO) ? "info"
			   : log_enabled(LOG_LVL_WARN) ? "warn" : "error",
	};
	if (sealer_ctl_new(n->loop, &sc, &n->sealer) < 0)
		log_err("netd, no sealer: encrypted networks will not carry traffic");
	free(sock);
	free(floor);
}

static void netd_dp_start(struct netd *n)
{
	if (!n->set.datapath || n->dp)
		return;
	const char *addr = vtep_addr(n);
	struct dp_netlink_config c = {
		.run_dir = n->run_dir,
		.prefix = n->set.dp_prefix ? n->set.dp_prefix : "",
		.dstport = n->conf ? (uint16_t)n->conf->data_path_port : 0,
	};
	if (!addr || parse_ip(addr, &c.local_addr) < 0) {
		log_info("netd, no data path until the agent gives the node's data-path address");
		return;
	}
	int r = dp_netlink_new(&c, &n->dp);
	if (r < 0) {
		log_err("netd, data path unavailable: %s", strerror(-r));
		n->dp = NULL;
		return;
	}
	log_info("netd, data path on %s, VXLAN port %u", addr, c.dstport ? c.dstport : DP_VXLAN_PORT);
	if (!n->sealer && !n->esp)
		encryption_start(n, c.dstport ? c.dstport : DP_VXLAN_PORT);
	netd_schedule(n);
}

static void heal_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct netd *n = w->data;
	(void)loop;
	(void)revents;
	if (n->db)
		ndb_gc(n->db, now_mono_ns());
	netd_save(n);
	netd_schedule(n);
}

/* ---- gossip ---- */

static size_t meta_tags(uint8_t *out, size_t cap, const char *role)
{
	/* serf reads Meta 0xFF + msgpack map[string]string as its tags */
	size_t rl = strlen(role);
	if (rl > 31 || cap < 7 + rl)
		return 0;
	size_t k = 0;
	out[k++] = 0xff;
	out[k++] = 0x81;
	out[k++] = 0xa4;
	memcpy(out + k, "role", 4);
	k += 4;
	out[k++] = (uint8_t)(0xa0 | rl);
	memcpy(out + k, role, rl);
	return k + rl;
}

static void netd_gossip_stop(struct netd *n)
{
	gossip_free(n->g);
	n->g = NULL;
	ndb_free(n->db);
	n->db = NULL;
}

static void join_list(struct netd *n, const char *list)
{
	char *dup = xstrdup(list), *save = NULL;
	for (char *s = strtok_r(dup, ", \t", &save); s; s = strtok_r(NULL, ", \t", &save))
		if (gossip_join(n->g, s) < 0)
			log_warn("netd, bad join address %s", s);
	free(dup);
}

/* (Re)starts gossip with the current name, address and keys. */
static void netd_gossip_start(struct netd *n)
{
	const char *name = self_name(n);
	if (!name || !*name)
		return; /* not configured yet */
	uint64_t nclk = n->saved_nclk, tclk = n->saved_tclk;
	if (n->db) {
		nclk = ndb_network_clock(n->db);
		tclk = ndb_table_clock(n->db);
	}
	netd_gossip_stop(n);

	struct gossip_keyring kr = { .n = 0 };
	if (n->set.keyring_file && *n->set.keyring_file) {
		if (netd_keyring_load(n->set.keyring_file, &kr) < 0)
			return;
	} else if (n->conf && n->conf->n_gossip_keys) {
		if (keyring_from_conf(n, &kr) < 0) {
			gossip_keyring_clear(&kr);
			return;
		}
	}
	struct ndb_config dc = {
		.self = name,
		.on_change = on_change,
		.broadcast = on_broadcast,
		.arg = n,
	};
	n->db = ndb_new(&dc);
	ndb_resume_clocks(n->db, nclk, tclk);
	static struct gossip_delegate del;
	del = (struct gossip_delegate){
		.on_user = g_on_user,
		.local_state = g_local_state,
		.merge_state = g_merge_state,
		.on_event = g_on_event,
		.arg = n,
	};
	uint8_t meta[SWIM_META_MAX];
	const char *adv = n->conf && n->conf->advertise_addr[0] ? n->conf->advertise_addr
								: n->set.advertise_addr;
	struct gossip_cfg gc = {
		.node_name = name,
		.bind_addr = n->set.bind_addr,
		.bind_port = n->set.bind_port,
		.advertise_addr = adv,
		.kr = &kr,
		.meta = meta,
		.meta_len = meta_tags(meta, sizeof(meta), n->set.role ? n->set.role : "swarm-netd"),
		.del = &del,
	};
	int r = 0;
	n->g = gossip_new(n->loop, &gc, &r);
	gossip_keyring_clear(&kr);
	if (!n->g) {
		log_err("netd, gossip not started: %s", strerror(-r));
		ndb_free(n->db);
		n->db = NULL;
		return;
	}
	netd_publish(n);
	if (n->set.join && *n->set.join)
		join_list(n, n->set.join);
	if (n->conf)
		for (size_t i = 0; i < n->conf->n_peers; i++)
			join_list(n, n->conf->peers[i]);
}

/* ---- local API ---- */

static bool keys_equal(const Swarm__NetdConfig *a, const Swarm__NetdConfig *b)
{
	if (a->n_gossip_keys != b->n_gossip_keys)
		return false;
	for (size_t i = 0; i < a->n_gossip_keys; i++)
		if (a->gossip_keys[i].len != b->gossip_keys[i].len ||
		    memcmp(a->gossip_keys[i].data, b->gossip_keys[i].data, a->gossip_keys[i].len))
			return false;
	return true;
}

int netd_configure(struct netd *n, const Swarm__NetdConfig *c, const char **err)
{
	struct in_addr a;
	if (!c->node_id[0] || strlen(c->node_id) > SWIM_NAME_MAX) {
		*err = "node_id missing or too long";
		return -EINVAL;
	}
	if (parse_ip(c->advertise_addr, &a) < 0) {
		*err = "advertise_addr is not an IPv4 address";
		return -EINVAL;
	}
	if (c->data_path_addr[0] && parse_ip(c->data_path_addr, &a) < 0) {
		*err = "data_path_addr is not an IPv4 address";
		return -EINVAL;
	}
	if (c->data_path_port > 65535) {
		*err = "data_path_port out of range";
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_gossip_keys; i++)
		if (!gossip_crypto_key_len_ok(c->gossip_keys[i].len)) {
			*err = "gossip keys must be 16, 24 or 32 bytes";
			return -EINVAL;
		}
	for (size_t i = 0; i < c->n_datapath_keys; i++)
		if (!gossip_crypto_key_len_ok(c->datapath_keys[i]->key.len)) {
			*err = "data-path keys must be 16, 24 or 32 bytes";
			return -EINVAL;
		}
	Swarm__NetdConfig *old = n->conf;
	bool restart = !old || strcmp(old->node_id, c->node_id) ||
		       strcmp(old->advertise_addr, c->advertise_addr) || !n->g;
	bool rekey = !restart && !keys_equal(old, c) && !(n->set.keyring_file && *n->set.keyring_file);
	bool dp_restart = !old || strcmp(old->data_path_addr, c->data_path_addr) ||
			  old->data_path_port != c->data_path_port ||
			  (!old->data_path_addr[0] && strcmp(old->advertise_addr, c->advertise_addr));
	n->conf = pb_dup(c);
	if (restart) {
		log_info("netd, node %s advertising %s, %zu gossip key(s)", c->node_id,
			 c->advertise_addr, c->n_gossip_keys);
		netd_gossip_start(n);
	} else {
		if (rekey) {
			/* A rotation: the new ring at once, membership untouched. */
			struct gossip_keyring kr = { .n = 0 };
			if (keyring_from_conf(n, &kr) == 0) {
				gossip_set_keyring(n->g, &kr);
				log_info("netd, gossip key ring replaced: %zu key(s)", kr.n);
			}
			gossip_keyring_clear(&kr);
		}
		for (size_t i = 0; i < c->n_peers; i++) {
			bool known = false;
			for (size_t j = 0; j < old->n_peers && !known; j++)
				known = !strcmp(old->peers[j], c->peers[i]);
			if (!known)
				join_list(n, c->peers[i]);
		}
	}
	if (dp_restart && n->dp) {
		dp_provider_free(n->dp);
		n->dp = NULL;
	}
	netd_dp_start(n);
	/* a new data-path key ring (or address) reaches the sealer with the
	 * next reconcile; one that changes nothing applies nothing */
	netd_schedule(n);
	pb_free(old);
	netd_save(n);
	return 0;
}

/* Checks an attach request and fills what only netd knows. */
static int attach_check(struct netd *n, Swarm__NetdAttach *a, const char **err)
{
	if (!a->task_id[0] || strlen(a->task_id) >= DP_TASK_ID_MAX) {
		*err = "task_id missing or too long";
		return -EINVAL;
	}
	if (!a->netns[0] || a->netns[0] != '/' || strlen(a->netns) >= DP_PATH_MAX) {
		*err = "netns must be an absolute path";
		return -EINVAL;
	}
	if (a->n_endpoints != a->n_networks) {
		*err = "one network per endpoint is required";
		return -EINVAL;
	}
	if (a->n_endpoints > 8) {
		*err = "at most 8 networks per container";
		return -EINVAL;
	}
	for (size_t i = 0; i < a->n_endpoints; i++) {
		Swarm__EndpointRecord *e = a->endpoints[i];
		struct dp_network d;
		struct in_addr ip;
		uint8_t mac[6];
		if (net_to_dp(a->networks[i], false, &d) < 0 || d.vni == 0 || d.vni > 0xffffff ||
		    !a->networks[i]->id[0]) {
			*err = "bad network (id, vni, subnet, gateway)";
			return -EINVAL;
		}
		if (parse_ip(e->ipv4, &ip) < 0) {
			*err = "endpoint ipv4 is not an IPv4 address";
			return -EINVAL;
		}
		uint32_t mask = d.prefixlen ? htonl(~0u << (32 - d.prefixlen)) : 0;
		if ((ip.s_addr & mask) != (d.subnet.s_addr & mask)) {
			*err = "endpoint address outside its network's subnet";
			return -EINVAL;
		}
		if (e->mac[0] && parse_mac(e->mac, mac) < 0) {
			*err = "bad MAC address";
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(a->networks[j]->id, a->networks[i]->id)) {
				*err = "a network listed twice";
				return -EINVAL;
			}
		/* a VNI is one network here: refuse a clash with another's */
		const Swarm__NetdNetwork *known = find_net(n, a->networks[i]->id);
		if (known && known->vni != a->networks[i]->vni) {
			*err = "network VNI differs from the one in use";
			return -EINVAL;
		}
	}
	const char *self = self_name(n), *vtep = vtep_addr(n);
	for (size_t i = 0; i < a->n_endpoints; i++) {
		Swarm__EndpointRecord *e = a->endpoints[i];
		char mac[24];
		struct in_addr ip;
		parse_ip(e->ipv4, &ip);
		if (!e->mac[0]) {
			mac_from_ip(ip, mac, sizeof(mac));
			pb_set_str(&e->mac, mac);
		}
		pb_set_str(&e->network_id, a->networks[i]->id);
		if (!e->network_name[0])
			pb_set_str(&e->network_name, a->networks[i]->name);
		pb_set_str(&e->task_id, a->task_id);
		if (!e->endpoint_id[0]) {
			char *id = xasprintf("%s-%s", a->task_id, a->networks[i]->id);
			pb_set_str(&e->endpoint_id, id);
			free(id);
		}
		pb_set_str(&e->node_id, self ? self : "");
		pb_set_str(&e->vtep, vtep ? vtep : "");
	}
	return 0;
}

int netd_attach(struct netd *n, const Swarm__NetdAttach *req, const char **err)
{
	Swarm__NetdAttach *a = pb_dup(req);
	int r = attach_check(n, a, err);
	if (r < 0) {
		pb_free(a);
		return r;
	}
	Swarm__NetdAttach *old = strmap_put(n->atts, a->task_id, a);
	if (old) {
		/* endpoints that are no longer there go; the rest are replaced */
		for (size_t i = 0; i < old->n_endpoints; i++) {
			bool kept = false;
			for (size_t j = 0; j < a->n_endpoints && !kept; j++)
				kept = !strcmp(old->endpoints[i]->endpoint_id, a->endpoints[j]->endpoint_id);
			if (!kept && n->db)
				ndb_del(n->db, old->endpoints[i]->network_id, NDB_TABLE_ENDPOINTS,
					old->endpoints[i]->endpoint_id, now_mono_ns());
		}
		if (a->n_endpoints || !a->local)
			att_local_send(n, old, true);   /* no local record any more */
		pb_free(old);
	}
	gw_ip_for(n, a->task_id);
	att_local_send(n, a, false);
	if (n->db)
		netd_publish_one(n, a, now_mono_ns());
	netd_save_soon(n);
	netd_schedule(n);
	/* The veths must exist before the container starts: reconcile now. */
	if (n->dp) {
		ev_timer_stop(n->loop, &n->reconcile_t);
		reconcile_cb(n->loop, &n->reconcile_t, 0);
	}
	return 0;
}

int netd_detach(struct netd *n, const char *task_id)
{
	Swarm__NetdAttach *a = strmap_del(n->atts, task_id);
	if (!a)
		return -ENOENT;
	netd_unpublish(n, a);
	att_local_send(n, a, true);
	pb_free(a);
	free(strmap_del(n->gw_ips, task_id));
	netd_save_soon(n);
	netd_schedule(n);
	return 0;
}

/* ---- JSON views ---- */

char *netd_members_json(struct netd *n)
{
	return n->g ? gossip_members_json(n->g) : xstrdup("[]");
}

struct netjs {
	json_object *containers, *peers;
	const char *self;
};

static void net_peer(void *arg, const char *node)
{
	struct netjs *j = arg;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Name", json_object_new_string(node));
	json_object_array_add(j->peers, o);
}

char *netd_network_json(struct netd *n, const char *name)
{
	const Swarm__NetdNetwork *nw = NULL;
	size_t pos = 0;
	const char *k;
	void *v;
	while (!nw && strmap_next(n->atts, &pos, &k, &v)) {
		Swarm__NetdAttach *a = v;
		for (size_t i = 0; i < a->n_networks; i++)
			if (!strcmp(a->networks[i]->id, name) || !strcmp(a->networks[i]->name, name))
				nw = a->networks[i];
	}
	json_object *o = json_object_new_object();
	json_object *cont = json_object_new_object();
	json_object *peers = json_object_new_array();
	if (nw) {
		uint8_t plen = 0;
		struct in_addr sn;
		parse_cidr(nw->subnet, &sn, &plen);
		json_object_object_add(o, "Id", json_object_new_string(nw->id));
		json_object_object_add(o, "Name", json_object_new_string(nw->name));
		json_object_object_add(o, "Scope", json_object_new_string("swarm"));
		json_object_object_add(o, "Driver", json_object_new_string("overlay"));
		json_object_object_add(o, "VNI", json_object_new_int((int)nw->vni));
		if (nw->encrypted) {
			/* how this node carries it: the provider probed at start, and
			 * whether the sealer holds netd's config now */
			json_object *e = json_object_new_object();
			json_object_object_add(e, "Provider", json_object_new_string(n->dp_provider));
			json_object_object_add(e, "InSync", json_object_new_boolean(
				n->esp ? esp_in_sync(n->esp) : n->sealer && sealer_ctl_in_sync(n->sealer)));
			json_object_object_add(o, "Encryption", e);
		}
		pos = 0;
		while (strmap_next(n->atts, &pos, &k, &v)) {
			Swarm__NetdAttach *a = v;
			for (size_t i = 0; i < a->n_endpoints; i++) {
				Swarm__EndpointRecord *e = a->endpoints[i];
				if (strcmp(e->network_id, nw->id))
					continue;
				json_object *c = json_object_new_object();
				char *cidr = xasprintf("%s/%u", e->ipv4, plen);
				json_object_object_add(c, "Name", json_object_new_string(e->container_name));
				json_object_object_add(c, "EndpointID", json_object_new_string(e->endpoint_id));
				json_object_object_add(c, "MacAddress", json_object_new_string(e->mac));
				json_object_object_add(c, "IPv4Address", json_object_new_string(cidr));
				json_object_object_add(c, "IPv6Address", json_object_new_string(""));
				json_object_object_add(cont, a->task_id, c);
				free(cidr);
			}
		}
		if (n->db) {
			struct netjs j = { cont, peers, self_name(n) };
			ndb_network_nodes(n->db, nw->id, net_peer, &j);
		}
	}
	json_object_object_add(o, "Containers", cont);
	json_object_object_add(o, "Peers", peers);
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (!nw) {
		free(s);
		return NULL;
	}
	return s;
}

char *netd_status_json(struct netd *n)
{
	json_object *o = json_object_new_object();
	const char *self = self_name(n);
	json_object_object_add(o, "NodeID", json_object_new_string(self ? self : ""));
	json_object_object_add(o, "Gossip", json_object_new_boolean(n->g != NULL));
	json_object_object_add(o, "DataPath", json_object_new_boolean(n->dp != NULL));
	json_object_object_add(o, "Attachments", json_object_new_int((int)strmap_count(n->atts)));
	json_object_object_add(o, "Reconciles", json_object_new_int64((int64_t)n->reconciles));
	json_object_object_add(o, "Epoch", json_object_new_uint64(n->epoch));
	/* the data-path ring's Lamport times, primary first (not the keys) */
	json_object *dk = json_object_new_array();
	for (size_t i = 0; n->conf && i < n->conf->n_datapath_keys; i++)
		json_object_array_add(dk, json_object_new_uint64(n->conf->datapath_keys[i]->lamport_time));
	json_object_object_add(o, "DataPathKeys", dk);
	if (n->sealer) {
		json_object *sj = sealer_ctl_json(n->sealer);
		json_object_object_add(sj, "Provider", json_object_new_string(n->dp_provider));
		json_object_object_add(o, "Sealer", sj);
	}
	if (n->esp) {
		json_object *ej = json_object_new_object();
		json_object_object_add(ej, "Provider", json_object_new_string(n->dp_provider));
		json_object_object_add(ej, "States", json_object_new_uint64(esp_count_sas(n->esp)));
		json_object_object_add(ej, "Policies", json_object_new_uint64(esp_count_policies(n->esp)));
		json_object_object_add(ej, "Error", json_object_new_string(esp_last_error(n->esp) < 0 ? strerror(-esp_last_error(n->esp)) : ""));
		json_object_object_add(o, "Esp", ej);
	}
	if (n->db) {
		struct ndb_stats st;
		ndb_get_stats(n->db, &st);
		json_object_object_add(o, "Entries", json_object_new_int64((int64_t)st.entries));
		json_object_object_add(o, "Tombstones", json_object_new_int64((int64_t)st.tombstones));
	}
	char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

/* ---- lifecycle ---- */

int netd_init(struct netd *n, struct ev_loop *loop, const char *state_dir,
	      const char *run_dir, const struct netd_settings *set)
{
	memset(n, 0, sizeof(*n));
	n->loop = loop;
	n->state_dir = xstrdup(state_dir);
	n->run_dir = xstrdup(run_dir);
	n->set = *set;
	/* own copies: the daemon's config is replaced on reload */
	const char **strs[] = { &n->set.bind_addr, &n->set.node_name, &n->set.advertise_addr,
				&n->set.join, &n->set.keyring_file, &n->set.role,
				&n->set.dp_prefix, &n->set.gw_subnet, &n->set.gw_bridge };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		*strs[i] = *strs[i] ? xstrdup(*strs[i]) : NULL;
	n->atts = strmap_new();
	n->gw_ips = strmap_new();
	random_bytes(&n->epoch, sizeof(n->epoch));
	n->epoch &= (1ULL << 53) - 1; /* exact in JSON numbers */
	int r = mkdir_p(state_dir, 0700);
	if (r < 0)
		return r;
	ev_timer_init(&n->reconcile_t, reconcile_cb, 0, 0);
	n->reconcile_t.data = n;
	ev_timer_init(&n->save_t, save_cb, 0, 0);
	n->save_t.data = n;
	ev_timer_init(&n->heal_t, heal_cb, NETD_HEAL_PERIOD, NETD_HEAL_PERIOD);
	n->heal_t.data = n;
	ev_timer_start(loop, &n->heal_t);
	netd_load(n);
	netd_gossip_start(n);
	netd_dp_start(n);
	return 0;
}

void netd_fini(struct netd *n)
{
	if (n->loop) {
		ev_timer_stop(n->loop, &n->reconcile_t);
		ev_timer_stop(n->loop, &n->heal_t);
		ev_timer_stop(n->loop, &n->save_t);
	}
	netd_save(n);
	netd_gossip_stop(n);
	dp_provider_free(n->dp);
	n->dp = NULL;
	sealer_ctl_free(n->sealer);   /* the sealer goes on: a restarted netd adopts it */
	esp_free(n->esp);             /* the states stay: traffic goes on until the next netd */
	esp_kernel_ctx_free(n->esp_ctx);
	n->sealer = NULL;
	while (n->subs) {
		struct netd_sub *s = n->subs;
		n->subs = s->next;
		free(s);
	}
	size_t pos = 0;
	const char *k;
	void *v;
	while (strmap_next(n->atts, &pos, &k, &v))
		pb_free(v);
	strmap_free(n->atts);
	pos = 0;
	while (strmap_next(n->gw_ips, &pos, &k, &v))
		free(v);
	strmap_free(n->gw_ips);
	pb_free(n->conf);
	const char *strs[] = { n->set.bind_addr, n->set.node_name, n->set.advertise_addr,
			       n->set.join, n->set.keyring_file, n->set.role,
			       n->set.dp_prefix, n->set.gw_subnet, n->set.gw_bridge };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free((char *)strs[i]);
	free(n->state_dir);
	free(n->run_dir);
}
