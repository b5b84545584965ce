/* Admin requests from swarmadm: validation, then one store transaction.
 * A refused request changes nothing: every check runs before the first
 * write, and allocations taken for a request are given back if it fails. */
#include "manager.h"
#include "ca.h"
#include "constraint.h"
#include "keymgr.h"
#include "log.h"
#include "pb.h"
#include "render.h"
#include "strmap.h"
#include "token.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

static void fail(Swarm__AdminResponse *resp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(Swarm__AdminResponse *resp, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pb_set_str(&resp->error, buf);
}

static void set_json(Swarm__AdminResponse *resp, struct json_object *j)
{
	pb_set_str(&resp->json, json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

static int commit_one(struct store_tx *tx, Swarm__AdminResponse *resp)
{
	int r = store_tx_commit(tx);
	if (r < 0)
		fail(resp, "store error: %s", strerror(-r));
	return r;
}

static bool need_cluster(struct mgr *m, Swarm__AdminResponse *resp)
{
	if (store_cluster(m->store))
		return true;
	fail(resp, "this node is not a swarm manager. Use \"swarmadm init\" first");
	return false;
}

/* `swarm update`: key rotation now, and the rotation interval. */
static void admin_cluster_update(struct mgr *m, const Swarm__ClusterUpdateRequest *req,
				 Swarm__AdminResponse *resp)
{
	if (!need_cluster(m, resp))
		return;
	if (req->key_rotation_interval_ns < 0 ||
	    (req->key_rotation_interval_ns > 0 && req->key_rotation_interval_ns < 60 * 1000000000LL)) {
		fail(resp, "the key rotation interval must be at least 1 minute");
		return;
	}
	if (mgr_keys_update(m, now_wall_ns(), req->rotate_network_keys, req->key_rotation_interval_ns) < 0)
		fail(resp, "store error: the keys were not changed");
}

/* ---- init and tokens ---- */

static int first_ipv4(char *out, size_t len)
{
	struct ifaddrs *ifa, *p;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	int r = -EADDRNOTAVAIL;
	for (p = ifa; p; p = p->ifa_next) {
		if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET)
			continue;
		struct in_addr a = ((struct sockaddr_in *)p->ifa_addr)->sin_addr;
		if ((ntohl(a.s_addr) >> 24) == 127)
			continue;
		inet_ntop(AF_INET, &a, out, (socklen_t)len);
		r = 0;
		break;
	}
	freeifaddrs(ifa);
	return r;
}

static Swarm__Network *make_network(const Swarm__NetworkSpec *spec, int64_t now)
{
	Swarm__Network *n = xmalloc(sizeof(*n));
	swarm__network__init(n);
	char id[26];
	id_random(id);
	pb_set_str(&n->id, id);
	n->spec = pb_dup(spec);
	n->created_at = now;
	return n;
}

static void admin_init(struct mgr *m, const Swarm__InitRequest *req, Swarm__AdminResponse *resp)
{
	if (store_cluster(m->store)) {
		fail(resp, "this node is already part of a swarm");
		return;
	}
	char adv[64] = "";
	char ip[16];
	uint16_t port = 2377;
	if (req->advertise_addr[0]) {
		if (hostport_parse(req->advertise_addr, ip, &port) < 0) {
			fail(resp, "invalid advertise address \"%s\"", req->advertise_addr);
			return;
		}
		snprintf(adv, sizeof(adv), "%s", ip);
	} else if (first_ipv4(adv, sizeof(adv)) < 0) {
		fail(resp, "could not choose an IP address to advertise; use --advertise-addr");
		return;
	}
	char listen[64];
	if (req->listen_addr[0]) {
		uint16_t lport = 2377;
		if (hostport_parse(req->listen_addr, ip, &lport) < 0) {
			fail(resp, "invalid listen address \"%s\"", req->listen_addr);
			return;
		}
		snprintf(listen, sizeof(listen), "%s:%u", ip, lport);
	} else {
		snprintf(listen, sizeof(listen), "%s:%u", adv, port);
	}
	if (req->data_path_addr[0] && hostport_parse(req->data_path_addr, ip, &port) < 0) {
		fail(resp, "invalid data path address \"%s\"", req->data_path_addr);
		return;
	}
	if (req->data_path_port && (req->data_path_port < 1024 || req->data_path_port > 49151)) {
		fail(resp, "data path port must be within 1024-49151");
		return;
	}
	unsigned mask = req->pool_mask_len ? req->pool_mask_len : 24;
	struct allocator *probe = allocator_new((const char *const *)req->default_addr_pool,
						req->n_default_addr_pool, mask);
	if (!probe) {
		fail(resp, "invalid default address pool or mask length");
		return;
	}
	allocator_free(probe);

	int64_t now = now_wall_ns();
	Swarm__Cluster *cl = xmalloc(sizeof(*cl));
	swarm__cluster__init(cl);
	char id[26];
	id_random(id);
	pb_set_str(&cl->id, id);
	char *cert = NULL, *key = NULL;
	if (ca_create_root(now, &cert, &key) < 0) {
		pb_free(cl);
		fail(resp, "cannot create the cluster CA");
		return;
	}
	cl->ca_cert.data = (uint8_t *)cert;
	cl->ca_cert.len = strlen(cert) + 1;
	cl->ca_key.data = (uint8_t *)key;
	cl->ca_key.len = strlen(key) + 1;
	char secret[TOKEN_SECRET_LEN + 1];
	token_new_secret(secret);
	pb_set_str(&cl->worker_secret, secret);
	token_new_secret(secret);
	pb_set_str(&cl->manager_secret, secret);
	uint8_t *gk = xmalloc(16);
	random_bytes(gk, 16);
	cl->gossip_keys = xmalloc(sizeof(*cl->gossip_keys));
	cl->gossip_keys[0].data = gk;
	cl->gossip_keys[0].len = 16;
	cl->n_gossip_keys = 1;
	keymgr_ensure(cl, now);
	for (size_t i = 0; i < req->n_default_addr_pool; i++)
		PB_STRV_ADD(cl, default_addr_pool, req->default_addr_pool[i]);
	cl->pool_mask_len = mask;
	pb_set_str(&cl->listen_addr, listen);
	pb_set_str(&cl->advertise_addr, adv);
	cl->data_path_port = req->data_path_port ? req->data_path_port : 4789;
	cl->created_at = now;

	/* The allocator follows the cluster's pools; ingress comes first. */
	struct allocator *a = allocator_new((const char *const *)cl->default_addr_pool,
					    cl->n_default_addr_pool, cl->pool_mask_len);
	Swarm__NetworkSpec ispec = SWARM__NETWORK_SPEC__INIT;
	ispec.name = "ingress";
	ispec.driver = "overlay";
	ispec.ingress = true;
	Swarm__Network *ing = make_network(&ispec, now);
	char err[256];
	if (allocator_network(a, ing, err, sizeof(err)) < 0) {
		allocator_free(a);
		pb_free(ing);
		pb_free(cl);
		fail(resp, "cannot allocate the ingress network: %s", err);
		return;
	}
	allocator_free(a);
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_cluster(tx, cl);
	store_tx_put_network(tx, ing);
	if (commit_one(tx, resp) < 0)
		return;
	mgr_reset_allocator(m);
	cl = (Swarm__Cluster *)store_cluster(m->store);
	log_info("admin, swarm %s initialized; listening on %s", cl->id, cl->listen_addr);
	if (m->on_cluster_ready && m->on_cluster_ready(m) < 0) {
		fail(resp, "swarm created but the manager cannot listen on %s", cl->listen_addr);
		return;
	}
	resp->init = xmalloc(sizeof(*resp->init));
	swarm__init_response__init(resp->init);
	char tok[TOKEN_MAX];
	pb_set_str(&resp->init->cluster_id, cl->id);
	token_make((const char *)cl->ca_cert.data, cl->ca_cert.len, cl->worker_secret, tok);
	pb_set_str(&resp->init->worker_token, tok);
	token_make((const char *)cl->ca_cert.data, cl->ca_cert.len, cl->manager_secret, tok);
	pb_set_str(&resp->init->manager_token, tok);
	char maddr[80];
	snprintf(maddr, sizeof(maddr), "%s:%s", cl->advertise_addr, strchr(cl->listen_addr, ':') + 1);
	pb_set_str(&resp->init->manager_addr, maddr);
}

static void admin_join_token(struct mgr *m, const Swarm__JoinTokenRequest *req,
			     Swarm__AdminResponse *resp)
{
	if (!need_cluster(m, resp))
		return;
	bool worker = !strcmp(req->role, "worker");
	if (!worker && strcmp(req->role, "manager")) {
		fail(resp, "unknown role %s (worker or manager)", req->role);
		return;
	}
	const Swarm__Cluster *cl = store_cluster(m->store);
	if (req->rotate) {
		Swarm__Cluster *c = pb_dup(cl);
		char secret[TOKEN_SECRET_LEN + 1];
		token_new_secret(secret);
		pb_set_str(worker ? &c->worker_secret : &c->manager_secret, secret);
		struct store_tx *tx = store_tx_begin(m->store);
		store_tx_put_cluster(tx, c);
		if (commit_one(tx, resp) < 0)
			return;
		cl = store_cluster(m->store);
		log_info("admin, %s join token rotated", req->role);
	}
	char tok[TOKEN_MAX];
	token_make((const char *)cl->ca_cert.data, cl->ca_cert.len,
		   worker ? cl->worker_secret : cl->manager_secret, tok);
	pb_set_str(&resp->token, tok);
	char maddr[80];
	snprintf(maddr, sizeof(maddr), "%s:%s", cl->advertise_addr, strchr(cl->listen_addr, ':') + 1);
	pb_set_str(&resp->json, maddr);
}

/* ---- nodes ---- */

static void admin_node_ls(struct mgr *m, const Swarm__NameRequest *req, Swarm__AdminResponse *resp,
			  bool inspect)
{
	struct json_object *arr = json_object_new_array();
	char err[256];
	if (inspect || req->n_names) {
		for (size_t i = 0; i < req->n_names; i++) {
			const Swarm__Node *n = mgr_find_node(m, req->names[i], err, sizeof(err));
			if (!n) {
				json_object_put(arr);
				fail(resp, "%s", err);
				return;
			}
			json_object_array_add(arr, render_node(m->store, n));
		}
	} else {
		const Swarm__Node *const *v;
		size_t n = store_nodes(m->store, &v);
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, render_node(m->store, v[i]));
	}
	set_json(resp, arr);
}

static void admin_node_update(struct mgr *m, const Swarm__NodeUpdateRequest *req,
			      Swarm__AdminResponse *resp)
{
	char err[256];
	const Swarm__Node *n = mgr_find_node(m, req->node, err, sizeof(err));
	if (!n) {
		fail(resp, "%s", err);
		return;
	}
	if (req->availability[0] && strcmp(req->availability, "active") &&
	    strcmp(req->availability, "pause") && strcmp(req->availability, "drain")) {
		fail(resp, "invalid availability \"%s\" (active, pause or drain)", req->availability);
		return;
	}
	if (req->role[0] && strcmp(req->role, "worker") && strcmp(req->role, "manager")) {
		fail(resp, "invalid role \"%s\"", req->role);
		return;
	}
	for (size_t i = 0; i < req->n_label_add; i++)
		if (!req->label_add[i]->key[0]) {
			fail(resp, "invalid label: empty key");
			return;
		}
	Swarm__Node *c = pb_dup(n);
	if (req->availability[0])
		pb_set_str(&c->availability, req->availability);
	if (req->role[0])
		pb_set_str(&c->role, req->role);
	for (size_t i = 0; i < req->n_label_rm; i++)
		for (size_t j = 0; j < c->n_labels; j++)
			if (!strcmp(c->labels[j]->key, req->label_rm[i])) {
				pb_free(c->labels[j]);
				c->labels[j] = c->labels[--c->n_labels];
				break;
			}
	for (size_t i = 0; i < req->n_label_add; i++) {
		bool found = false;
		for (size_t j = 0; j < c->n_labels; j++)
			if (!strcmp(c->labels[j]->key, req->label_add[i]->key)) {
				pb_set_str(&c->labels[j]->value, req->label_add[i]->value);
				found = true;
			}
		if (!found)
			PB_PTRV_ADD(c, labels, pb_dup(req->label_add[i]));
	}
	c->updated_at = now_wall_ns();
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_node(tx, c);
	if (commit_one(tx, resp) < 0)
		return;
	pb_set_str(&resp->created_id, n->id);
	mgr_schedule_tick(m);
}

static void admin_node_rm(struct mgr *m, const Swarm__NameRequest *req, Swarm__AdminResponse *resp)
{
	char err[256];
	const Swarm__Node **v = xcalloc(req->n_names + 1, sizeof(*v));
	for (size_t i = 0; i < req->n_names; i++) {
		v[i] = mgr_find_node(m, req->names[i], err, sizeof(err));
		if (!v[i]) {
			fail(resp, "%s", err);
			goto out;
		}
		if (v[i]->state == SWARM__NODE_STATE__NODE_READY && !req->force) {
			fail(resp, "node %s is not down and can't be removed (use --force)", req->names[i]);
			goto out;
		}
	}
	struct store_tx *tx = store_tx_begin(m->store);
	for (size_t i = 0; i < req->n_names; i++) {
		allocator_release_node(m->alloc, v[i]);
		store_tx_delete(tx, "node", v[i]->id);
	}
	if (commit_one(tx, resp) == 0)
		mgr_schedule_tick(m);
out:
	free(v);
}

/* Tasks as JSON, sorted for `ps`: by service, slot/node, newest first. */
static int cmp_ps(const void *a, const void *b)
{
	const Swarm__Task *x = *(const Swarm__Task *const *)a, *y = *(const Swarm__Task *const *)b;
	int c = strcmp(x->service_name, y->service_name);
	if (c)
		return c;
	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	c = strcmp(x->node_id, y->node_id);
	if (c)
		return c;
	return x->created_at > y->created_at ? -1 : x->created_at < y->created_at;
}

static void tasks_json(struct mgr *m, const char *service_id, const char *node_id,
		       Swarm__AdminResponse *resp)
{
	const Swarm__Task *const *all;
	size_t n = store_tasks(m->store, &all), k = 0;
	const Swarm__Task **v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		if ((!service_id || !strcmp(all[i]->service_id, service_id)) &&
		    (!node_id || !strcmp(all[i]->node_id, node_id)))
			v[k++] = all[i];
	qsort(v, k, sizeof(*v), cmp_ps);
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < k; i++)
		json_object_array_add(arr, render_task(m->store, v[i]));
	free(v);
	set_json(resp, arr);
}

/* ---- networks ---- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static void admin_network_create(struct mgr *m, const Swarm__NetworkSpec *spec,
				 Swarm__AdminResponse *resp)
{
	if (!need_cluster(m, resp))
		return;
	if (!valid_name(spec->name)) {
		fail(resp, "invalid network name \"%s\"", spec->name);
		return;
	}
	char err[256];
	const Swarm__Network *const *v;
	size_t n = store_networks(m->store, &v);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i]->spec->name, spec->name)) {
			fail(resp, "network with name %s already exists", spec->name);
			return;
		}
	if (spec->driver[0] && strcmp(spec->driver, "overlay")) {
		fail(resp, "driver \"%s\" is not supported in swarm scope (use overlay)", spec->driver);
		return;
	}
	if (spec->ingress) {
		fail(resp, "only one ingress network can exist");
		return;
	}
	Swarm__Network *net = make_network(spec, now_wall_ns());
	pb_set_str(&net->spec->driver, "overlay");
	if (allocator_network(m->alloc, net, err, sizeof(err)) < 0) {
		pb_free(net);
		fail(resp, "%s", err);
		return;
	}
	char *id = xstrdup(net->id);
	struct store_tx *tx = store_tx_begin(m->store);
	Swarm__Network *copy = pb_dup(net);
	store_tx_put_network(tx, net);
	if (commit_one(tx, resp) < 0)
		allocator_release_network(m->alloc, copy);
	else
		pb_set_str(&resp->created_id, id);
	pb_free(copy);
	free(id);
}

static void admin_network_ls(struct mgr *m, const Swarm__NameRequest *req,
			     Swarm__AdminResponse *resp, bool inspect)
{
	struct json_object *arr = json_object_new_array();
	char err[256];
	if (inspect || req->n_names) {
		for (size_t i = 0; i < req->n_names; i++) {
			const Swarm__Network *n = mgr_find_network(m, req->names[i], err, sizeof(err));
			if (!n) {
				json_object_put(arr);
				fail(resp, "%s", err);
				return;
			}
			json_object_array_add(arr, render_network(m->store, n));
		}
	} else {
		const Swarm__Network *const *v;
		size_t n = store_networks(m->store, &v);
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, render_network(m->store, v[i]));
	}
	set_json(resp, arr);
}

static bool service_uses_network(const Swarm__Service *svc, const char *net_id)
{
	for (size_t i = 0; i < svc->spec->n_networks; i++)
		if (!strcmp(svc->spec->networks[i]->target, net_id))
			return true;
	return false;
}

static void admin_network_rm(struct mgr *m, const Swarm__NameRequest *req, Swarm__AdminResponse *resp)
{
	char err[256];
	const Swarm__Network **v = xcalloc(req->n_names + 1, sizeof(*v));
	const Swarm__Service *const *svcs;
	size_t ns = store_services(m->store, &svcs);
	for (size_t i = 0; i < req->n_names; i++) {
		v[i] = mgr_find_network(m, req->names[i], err, sizeof(err));
		if (!v[i]) {
			fail(resp, "%s", err);
			goto out;
		}
		if (v[i]->spec->ingress) {
			fail(resp, "the ingress network cannot be removed while the routing mesh needs it");
			goto out;
		}
		for (size_t j = 0; j < ns; j++)
			if (service_uses_network(svcs[j], v[i]->id)) {
				fail(resp, "network %s is in use by service %s", v[i]->spec->name,
				     svcs[j]->spec->name);
				goto out;
			}
	}
	struct store_tx *tx = store_tx_begin(m->store);
	Swarm__Network **copies = xcalloc(req->n_names + 1, sizeof(*copies));
	for (size_t i = 0; i < req->n_names; i++) {
		copies[i] = pb_dup(v[i]);
		store_tx_delete(tx, "network", v[i]->id);
	}
	if (commit_one(tx, resp) == 0)
		for (size_t i = 0; i < req->n_names; i++)
			allocator_release_network(m->alloc, copies[i]);
	for (size_t i = 0; i < req->n_names; i++)
		pb_free(copies[i]);
	free(copies);
out:
	free(v);
}

/* ---- services ---- */

static Swarm__UpdateConfig *update_defaults(Swarm__UpdateConfig *u)
{
	if (!u) {
		u = xmalloc(sizeof(*u));
		swarm__update_config__init(u);
		u->parallelism = 1;
	}
	if (!u->failure_action[0])
		pb_set_str(&u->failure_action, "pause");
	if (!u->order[0])
		pb_set_str(&u->order, "stop-first");
	if (!u->monitor_ns)
		u->monitor_ns = 5 * NS_PER_S;
	return u;
}

/* Checks a spec and fills defaults; network targets become network ids.
 * self: the service being updated (NULL on create). */
/* The service other than self whose ingress-mode ports hold p's
 * published port (the routing mesh serves it on every node), or NULL. */
static const Swarm__Service *port_holder(struct mgr *m, const Swarm__PortConfig *p,
					 const Swarm__Service *self)
{
	const Swarm__Service *const *v;
	size_t n = store_services(m->store, &v);
	for (size_t i = 0; i < n; i++) {
		if (self && !strcmp(v[i]->id, self->id))
			continue;
		for (size_t j = 0; j < v[i]->n_ports; j++) {
			const Swarm__PortConfig *q = v[i]->ports[j];
			if (q->published == p->published && !strcmp(q->protocol, p->protocol) &&
			    (!q->mode[0] || !strcmp(q->mode, "ingress")))
				return v[i];
		}
	}
	return NULL;
}

static int check_spec(struct mgr *m, Swarm__ServiceSpec *spec, const Swarm__Service *self,
		      char *err, size_t errlen)
{
	if (!valid_name(spec->name)) {
		snprintf(err, errlen, "invalid service name \"%s\"", spec->name);
		return -EINVAL;
	}
	const Swarm__Service *const *v;
	size_t n = store_services(m->store, &v);
	for (size_t i = 0; i < n; i++)
		if (v[i] != self && !strcmp(v[i]->spec->name, spec->name)) {
			snprintf(err, errlen, "service %s already exists", spec->name);
			return -EEXIST;
		}
	if (!spec->container || !spec->container->image[0]) {
		snprintf(err, errlen, "an image is required");
		return -EINVAL;
	}
	if (!spec->mode[0])
		pb_set_str(&spec->mode, "replicated");
	if (strcmp(spec->mode, "replicated") && strcmp(spec->mode, "global")) {
		snprintf(err, errlen, "invalid mode \"%s\" (replicated or global)", spec->mode);
		return -EINVAL;
	}
	if (!strcmp(spec->mode, "global"))
		spec->replicas = 0;
	if (spec->replicas > 100000000) {
		snprintf(err, errlen, "invalid replicas value %llu", (unsigned long long)spec->replicas);
		return -EINVAL;
	}
	if (!spec->endpoint_mode[0])
		pb_set_str(&spec->endpoint_mode, "vip");
	if (strcmp(spec->endpoint_mode, "vip") && strcmp(spec->endpoint_mode, "dnsrr")) {
		snprintf(err, errlen, "invalid endpoint mode \"%s\" (vip or dnsrr)", spec->endpoint_mode);
		return -EINVAL;
	}
	for (size_t i = 0; i < spec->n_ports; i++) {
		Swarm__PortConfig *p = spec->ports[i];
		if (!p->protocol[0])
			pb_set_str(&p->protocol, "tcp");
		if (!p->mode[0])
			pb_set_str(&p->mode, "ingress");
		if (strcmp(p->protocol, "tcp") && strcmp(p->protocol, "udp")) {
			snprintf(err, errlen, "invalid protocol \"%s\" (tcp or udp)", p->protocol);
			return -EINVAL;
		}
		if (strcmp(p->mode, "ingress") && strcmp(p->mode, "host")) {
			snprintf(err, errlen, "invalid publish mode \"%s\" (ingress or host)", p->mode);
			return -EINVAL;
		}
		if (p->target < 1 || p->target > 65535 || p->published > 65535) {
			snprintf(err, errlen, "invalid port %u:%u", p->published, p->target);
			return -EINVAL;
		}
		if (!strcmp(p->mode, "ingress") && !strcmp(spec->endpoint_mode, "dnsrr")) {
			snprintf(err, errlen, "port published with ingress mode can't be used with dnsrr mode");
			return -EINVAL;
		}
		if (!strcmp(p->mode, "host") && !p->published)
			p->published = p->target;
		for (size_t j = 0; j < i; j++)
			if (p->published && spec->ports[j]->published == p->published &&
			    !strcmp(spec->ports[j]->protocol, p->protocol)) {
				snprintf(err, errlen, "duplicate published port %u/%s", p->published, p->protocol);
				return -EINVAL;
			}
		const Swarm__Service *holder;
		if (!strcmp(p->mode, "ingress") && p->published &&
		    (holder = port_holder(m, p, self))) {
			snprintf(err, errlen, "port %u/%s is already published by service %s (%s)",
				 p->published, p->protocol, holder->spec->name, holder->id);
			return -EADDRINUSE;
		}
	}
	for (size_t i = 0; i < spec->n_networks; i++) {
		char nerr[256];
		const Swarm__Network *net = mgr_find_network(m, spec->networks[i]->target, nerr, sizeof(nerr));
		if (!net) {
			snprintf(err, errlen, "%s", nerr);
			return -ENOENT;
		}
		if (net->spec->ingress) {
			snprintf(err, errlen, "service cannot be explicitly attached to the ingress network \"%s\"",
				 net->spec->name);
			return -EINVAL;
		}
		pb_set_str(&spec->networks[i]->target, net->id);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(spec->networks[j]->target, net->id)) {
				snprintf(err, errlen, "network %s is attached twice", net->spec->name);
				return -EINVAL;
			}
	}
	for (size_t i = 0; i < spec->n_constraints; i++) {
		struct constraint c;
		char cerr[200];
		if (constraint_parse(spec->constraints[i], &c, cerr, sizeof(cerr)) < 0) {
			snprintf(err, errlen, "invalid constraint \"%s\": %s", spec->constraints[i], cerr);
			return -EINVAL;
		}
	}
	if (!spec->restart) {
		spec->restart = xmalloc(sizeof(*spec->restart));
		swarm__restart_policy__init(spec->restart);
		spec->restart->delay_ns = 5 * NS_PER_S;
	}
	if (!spec->restart->condition[0])
		pb_set_str(&spec->restart->condition, "any");
	if (strcmp(spec->restart->condition, "any") && strcmp(spec->restart->condition, "none") &&
	    strcmp(spec->restart->condition, "on-failure")) {
		snprintf(err, errlen, "invalid restart condition \"%s\"", spec->restart->condition);
		return -EINVAL;
	}
	spec->update = update_defaults(spec->update);
	spec->rollback = update_defaults(spec->rollback);
	const Swarm__UpdateConfig *ucs[2] = { spec->update, spec->rollback };
	for (int i = 0; i < 2; i++) {
		if (strcmp(ucs[i]->order, "stop-first") && strcmp(ucs[i]->order, "start-first")) {
			snprintf(err, errlen, "invalid update order \"%s\"", ucs[i]->order);
			return -EINVAL;
		}
		if (strcmp(ucs[i]->failure_action, "pause") && strcmp(ucs[i]->failure_action, "continue") &&
		    strcmp(ucs[i]->failure_action, "rollback")) {
			snprintf(err, errlen, "invalid failure action \"%s\"", ucs[i]->failure_action);
			return -EINVAL;
		}
	}
	if (!spec->container->stop_grace_ns)
		spec->container->stop_grace_ns = 10 * NS_PER_S;
	if (spec->limits && (spec->limits->nano_cpus < 0 || spec->limits->memory_bytes < 0)) {
		snprintf(err, errlen, "limits must not be negative");
		return -EINVAL;
	}
	for (size_t i = 0; i < spec->container->n_mounts; i++) {
		Swarm__Mount *mt = spec->container->mounts[i];
		if (strcmp(mt->type, "bind") && strcmp(mt->type, "tmpfs")) {
			snprintf(err, errlen, "invalid mount type \"%s\" (bind or tmpfs)", mt->type);
			return -EINVAL;
		}
		if (mt->target[0] != '/' || (!strcmp(mt->type, "bind") && mt->source[0] != '/')) {
			snprintf(err, errlen, "mount paths must be absolute");
			return -EINVAL;
		}
	}
	return 0;
}

/* Resolves the networks of a checked spec (targets are ids). */
static size_t spec_networks(struct mgr *m, const Swarm__ServiceSpec *spec,
			    const Swarm__Network **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < spec->n_networks && n < max; i++) {
		const Swarm__Network *net = store_network(m->store, spec->networks[i]->target);
		if (net)
			out[n++] = net;
	}
	return n;
}

static void admin_service_create(struct mgr *m, const Swarm__ServiceSpec *in,
				 Swarm__AdminResponse *resp)
{
	if (!need_cluster(m, resp))
		return;
	char err[512];
	Swarm__ServiceSpec *spec = pb_dup(in);
	if (check_spec(m, spec, NULL, err, sizeof(err)) < 0) {
		pb_free(spec);
		fail(resp, "%s", err);
		return;
	}
	int64_t now = now_wall_ns();
	Swarm__Service *svc = xmalloc(sizeof(*svc));
	swarm__service__init(svc);
	char id[26];
	id_random(id);
	pb_set_str(&svc->id, id);
	svc->spec = spec;
	svc->spec_version = 1;
	svc->created_at = svc->updated_at = now;
	const Swarm__Network *nets[32];
	size_t nn = spec_networks(m, spec, nets, 32);
	if (allocator_service(m->alloc, svc, nets, nn, mgr_ingress(m), err, sizeof(err)) < 0) {
		pb_free(svc);
		fail(resp, "%s", err);
		return;
	}
	Swarm__Service *copy = pb_dup(svc);
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_service(tx, svc);
	if (commit_one(tx, resp) < 0) {
		allocator_release_service(m->alloc, copy);
	} else {
		pb_set_str(&resp->created_id, id);
		log_info("admin, service %s (%s) created", copy->spec->name, id);
		mgr_schedule_tick(m);
	}
	pb_free(copy);
}

/* True when the change needs new tasks (Docker's "task dirty"): anything in
 * the task template or the endpoint, not replicas or update settings. */
static bool spec_changes_tasks(const Swarm__ServiceSpec *a, const Swarm__ServiceSpec *b)
{
	Swarm__ServiceSpec x = *a, y = *b;
	x.replicas = y.replicas = 0;
	x.update = y.update = NULL;
	x.rollback = y.rollback = NULL;
	x.labels = y.labels = NULL;
	x.n_labels = y.n_labels = 0;
	x.name = y.name = "";
	return !pb_equal(&x, &y);
}

static void admin_service_update(struct mgr *m, const Swarm__ServiceUpdateRequest *req,
				 Swarm__AdminResponse *resp)
{
	char err[512];
	const Swarm__Service *cur = mgr_find_service(m, req->service, err, sizeof(err));
	if (!cur) {
		fail(resp, "%s", err);
		return;
	}
	Swarm__ServiceSpec *spec;
	if (req->rollback) {
		if (!cur->previous_spec) {
			fail(resp, "service %s has no previous spec to roll back to", cur->spec->name);
			return;
		}
		spec = pb_dup(cur->previous_spec);
	} else {
		if (!req->spec) {
			fail(resp, "no spec given");
			return;
		}
		spec = pb_dup(req->spec);
		if (strcmp(spec->name, cur->spec->name)) {
			pb_free(spec);
			fail(resp, "a service cannot be renamed");
			return;
		}
		if (strcmp(spec->mode[0] ? spec->mode : "replicated", cur->spec->mode)) {
			pb_free(spec);
			fail(resp, "the mode of a service cannot be changed");
			return;
		}
	}
	if (check_spec(m, spec, cur, err, sizeof(err)) < 0) {
		pb_free(spec);
		fail(resp, "%s", err);
		return;
	}
	Swarm__Service *svc = pb_dup(cur);
	bool dirty = spec_changes_tasks(cur->spec, spec);
	pb_free(svc->previous_spec);
	svc->previous_spec = svc->spec;
	svc->spec = spec;
	int64_t now = now_wall_ns();
	svc->updated_at = now;
	if (dirty) {
		svc->spec_version++;
		pb_set_str(&svc->update_state, req->rollback ? "rollback_started" : "updating");
		pb_set_str(&svc->update_message, req->rollback ? "manually requested rollback" : "update in progress");
		svc->update_started_at = now;
	}
	const Swarm__Network *nets[32];
	size_t nn = spec_networks(m, spec, nets, 32);
	/* allocator_service keeps what the new spec still uses and frees the
	 * rest; on failure nothing changed. */
	Swarm__Service *before = pb_dup(cur);
	if (allocator_service(m->alloc, svc, nets, nn, mgr_ingress(m), err, sizeof(err)) < 0) {
		pb_free(svc);
		pb_free(before);
		fail(resp, "%s", err);
		return;
	}
	Swarm__Service *after = pb_dup(svc);
	struct store_tx *tx = store_tx_begin(m->store);
	store_tx_put_service(tx, svc);
	if (commit_one(tx, resp) < 0) {
		/* Put the allocator back the way the store has it. */
		mgr_reset_allocator(m);
	} else {
		pb_set_str(&resp->created_id, after->id);
		log_info("admin, service %s updated%s", after->spec->name, dirty ? " (new tasks)" : "");
		mgr_schedule_tick(m);
	}
	pb_free(before);
	pb_free(after);
}

static struct json_object *service_with_status(struct mgr *m, const Swarm__Service *svc,
					       const Swarm__Task *const *tasks, size_t nt)
{
	struct json_object *j = render_service(m->store, svc);
	int64_t running = 0, desired = 0;
	for (size_t i = 0; i < nt; i++) {
		const Swarm__Task *t = tasks[i];
		if (strcmp(t->service_id, svc->id))
			continue;
		if (t->desired_state == SWARM__TASK_STATE__TASK_RUNNING)
			desired++;
		if (t->status && t->status->state == SWARM__TASK_STATE__TASK_RUNNING)
			running++;
	}
	if (!strcmp(svc->spec->mode, "replicated"))
		desired = (int64_t)svc->spec->replicas;
	struct json_object *st = json_object_new_object();
	json_object_object_add(st, "RunningTasks", json_object_new_int64(running));
	json_object_object_add(st, "DesiredTasks", json_object_new_int64(desired));
	json_object_object_add(j, "ServiceStatus", st);
	return j;
}

static void admin_service_ls(struct mgr *m, const Swarm__NameRequest *req,
			     Swarm__AdminResponse *resp, bool inspect)
{
	struct json_object *arr = json_object_new_array();
	const Swarm__Task *const *tasks;
	size_t nt = store_tasks(m->store, &tasks);
	char err[256];
	if (inspect || req->n_names) {
		for (size_t i = 0; i < req->n_names; i++) {
			const Swarm__Service *s = mgr_find_service(m, req->names[i], err, sizeof(err));
			if (!s) {
				json_object_put(arr);
				fail(resp, "%s", err);
				return;
			}
			json_object_array_add(arr, inspect ? render_service(m->store, s)
							   : service_with_status(m, s, tasks, nt));
		}
	} else {
		const Swarm__Service *const *v;
		size_t n = store_services(m->store, &v);
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, service_with_status(m, v[i], tasks, nt));
	}
	set_json(resp, arr);
}

static void admin_service_rm(struct mgr *m, const Swarm__NameRequest *req, Swarm__AdminResponse *resp)
{
	char err[256];
	const Swarm__Service **v = xcalloc(req->n_names + 1, sizeof(*v));
	for (size_t i = 0; i < req->n_names; i++) {
		v[i] = mgr_find_service(m, req->names[i], err, sizeof(err));
		if (!v[i]) {
			fail(resp, "%s", err);
			free(v);
			return;
		}
	}
	Swarm__Service **copies = xcalloc(req->n_names + 1, sizeof(*copies));
	struct store_tx *tx = store_tx_begin(m->store);
	for (size_t i = 0; i < req->n_names; i++) {
		copies[i] = pb_dup(v[i]);
		store_tx_delete(tx, "service", v[i]->id);
	}
	if (commit_one(tx, resp) == 0) {
		for (size_t i = 0; i < req->n_names; i++)
			allocator_release_service(m->alloc, copies[i]);
		mgr_schedule_tick(m);
	}
	for (size_t i = 0; i < req->n_names; i++)
		pb_free(copies[i]);
	free(copies);
	free(v);
}

static void admin_info(struct mgr *m, Swarm__AdminResponse *resp)
{
	struct json_object *j = json_object_new_object();
	const Swarm__Cluster *cl = store_cluster(m->store);
	json_object_object_add(j, "ClusterID", json_object_new_string(cl ? cl->id : ""));
	json_object_object_add(j, "StoreVersion", json_object_new_int64((int64_t)store_version(m->store)));
	const Swarm__Node *const *n;
	const Swarm__Service *const *s;
	const Swarm__Task *const *t;
	json_object_object_add(j, "Nodes", json_object_new_int64((int64_t)store_nodes(m->store, &n)));
	json_object_object_add(j, "Services", json_object_new_int64((int64_t)store_services(m->store, &s)));
	json_object_object_add(j, "Tasks", json_object_new_int64((int64_t)store_tasks(m->store, &t)));
	if (cl) {
		json_object_object_add(j, "ListenAddr", json_object_new_string(cl->listen_addr));
		json_object_object_add(j, "AdvertiseAddr", json_object_new_string(cl->advertise_addr));
	}
	set_json(resp, j);
}

void admin_handle(struct mgr *m, const Swarm__AdminRequest *req, Swarm__AdminResponse *resp)
{
	resp->id = req->id;
	if (req->body_case != SWARM__ADMIN_REQUEST__BODY_INIT &&
	    req->body_case != SWARM__ADMIN_REQUEST__BODY_INFO && !need_cluster(m, resp))
		return;
	switch (req->body_case) {
	case SWARM__ADMIN_REQUEST__BODY_INIT: admin_init(m, req->init, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_JOIN_TOKEN: admin_join_token(m, req->join_token, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_LS: admin_node_ls(m, req->node_ls, resp, false); break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_INSPECT: admin_node_ls(m, req->node_inspect, resp, true); break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_UPDATE: admin_node_update(m, req->node_update, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_RM: admin_node_rm(m, req->node_rm, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_PS: {
		char err[256];
		const Swarm__Node *n = req->node_ps->n_names
			? mgr_find_node(m, req->node_ps->names[0], err, sizeof(err)) : NULL;
		if (!n) {
			fail(resp, "%s", req->node_ps->n_names ? err : "a node is required");
			break;
		}
		tasks_json(m, NULL, n->id, resp);
		break;
	}
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_CREATE: admin_network_create(m, req->network_create, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_LS: admin_network_ls(m, req->network_ls, resp, false); break;
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_INSPECT: admin_network_ls(m, req->network_inspect, resp, true); break;
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_RM: admin_network_rm(m, req->network_rm, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_CREATE: admin_service_create(m, req->service_create, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_UPDATE: admin_service_update(m, req->service_update, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_LS: admin_service_ls(m, req->service_ls, resp, false); break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_INSPECT: admin_service_ls(m, req->service_inspect, resp, true); break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_PS: {
		char err[256];
		const Swarm__Service *s = req->service_ps->n_names
			? mgr_find_service(m, req->service_ps->names[0], err, sizeof(err)) : NULL;
		if (!s) {
			fail(resp, "%s", req->service_ps->n_names ? err : "a service is required");
			break;
		}
		tasks_json(m, s->id, NULL, resp);
		break;
	}
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_RM: admin_service_rm(m, req->service_rm, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_GET_SPEC: {
		char err[256];
		const Swarm__Service *s = req->service_get_spec->n_names
			? mgr_find_service(m, req->service_get_spec->names[0], err, sizeof(err)) : NULL;
		if (!s) {
			fail(resp, "%s", req->service_get_spec->n_names ? err : "a service is required");
			break;
		}
		resp->spec = pb_dup(s->spec);
		/* Network targets back to names, as the user typed them. */
		for (size_t i = 0; i < resp->spec->n_networks; i++) {
			const Swarm__Network *net = store_network(m->store, resp->spec->networks[i]->target);
			if (net)
				pb_set_str(&resp->spec->networks[i]->target, net->spec->name);
		}
		break;
	}
	case SWARM__ADMIN_REQUEST__BODY_INFO: admin_info(m, resp); break;
	case SWARM__ADMIN_REQUEST__BODY_CLUSTER_UPDATE: admin_cluster_update(m, req->cluster_update, resp); break;
	default:
		fail(resp, "unknown request");
	}
}
