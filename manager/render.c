/* JSON views of store objects in `docker inspect` shapes (see render.h).
 * Field order and omissions follow Docker's API types: optional fields
 * (omitempty in Go) are left out when unset, so that `--format` paths and
 * scripts written for Docker find the same things. Times are RFC 3339 in
 * UTC with nanoseconds, trailing zeros trimmed as Go's RFC3339Nano does.
 * A NULL store is allowed: lookups (host names, service names, task
 * counts) are then skipped. */
#include "render.h"
#include "manager.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- small builders ---- */

static void put(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static void put_str(struct json_object *o, const char *key, const char *v)
{
	put(o, key, json_object_new_string(v ? v : ""));
}

static void put_int(struct json_object *o, const char *key, int64_t v)
{
	put(o, key, json_object_new_int64(v));
}

static void put_bool(struct json_object *o, const char *key, bool v)
{
	put(o, key, json_object_new_boolean(v));
}

/* Adds key only when v is a non-empty string (Go's omitempty). */
static void put_str_opt(struct json_object *o, const char *key, const char *v)
{
	if (v && *v)
		put_str(o, key, v);
}

static void put_int_opt(struct json_object *o, const char *key, int64_t v)
{
	if (v)
		put_int(o, key, v);
}

static struct json_object *render_strv(char **v, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static void put_strv_opt(struct json_object *o, const char *key, char **v, size_t n)
{
	if (n)
		put(o, key, render_strv(v, n));
}

static struct json_object *render_labels(Swarm__KeyValue **kv, size_t n)
{
	struct json_object *o = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		put_str(o, kv[i]->key, kv[i]->value);
	return o;
}

/* Timestamps as Go's RFC3339Nano (time_rfc3339). */
static struct json_object *render_time(int64_t ns)
{
	char buf[64];

	time_rfc3339(ns, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static struct json_object *render_version(uint64_t index)
{
	struct json_object *o = json_object_new_object();

	put_int(o, "Index", (int64_t)index);
	return o;
}

static const char *render_node_state(Swarm__NodeState st)
{
	switch (st) {
	case SWARM__NODE_STATE__NODE_DOWN: return "down";
	case SWARM__NODE_STATE__NODE_READY: return "ready";
	case SWARM__NODE_STATE__NODE_DISCONNECTED: return "disconnected";
	default: return "unknown";
	}
}

/* ---- specs ---- */

static struct json_object *render_port(const Swarm__PortConfig *p)
{
	struct json_object *o = json_object_new_object();

	put_str(o, "Protocol", *p->protocol ? p->protocol : "tcp");
	put_int(o, "TargetPort", p->target);
	put_int(o, "PublishedPort", p->published);
	put_str(o, "PublishMode", *p->mode ? p->mode : "ingress");
	return o;
}

static struct json_object *render_ports(Swarm__PortConfig **ports, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, render_port(ports[i]));
	return a;
}

static struct json_object *render_resources(const Swarm__Resources *r)
{
	struct json_object *o = json_object_new_object();

	if (r) {
		put_int_opt(o, "NanoCPUs", r->nano_cpus);
		put_int_opt(o, "MemoryBytes", r->memory_bytes);
	}
	return o;
}

static struct json_object *render_container_spec(const Swarm__ContainerSpec *c)
{
	struct json_object *o = json_object_new_object();

	if (!c)
		return o;
	put_str(o, "Image", c->image);
	put_strv_opt(o, "Command", c->command, c->n_command);
	put_strv_opt(o, "Args", c->args, c->n_args);
	put_str_opt(o, "Hostname", c->hostname);
	put_strv_opt(o, "Env", c->env, c->n_env);
	if (c->n_mounts) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < c->n_mounts; i++) {
			const Swarm__Mount *m = c->mounts[i];
			struct json_object *mo = json_object_new_object();
			put_str(mo, "Type", m->type);
			put_str_opt(mo, "Source", m->source);
			put_str(mo, "Target", m->target);
			if (m->readonly)
				put_bool(mo, "ReadOnly", true);
			if (m->tmpfs_size) {
				struct json_object *t = json_object_new_object();
				put_int(t, "SizeBytes", m->tmpfs_size);
				put(mo, "TmpfsOptions", t);
			}
			json_object_array_add(a, mo);
		}
		put(o, "Mounts", a);
	}
	put_int_opt(o, "StopGracePeriod", c->stop_grace_ns);
	if (c->health) {
		const Swarm__HealthConfig *h = c->health;
		struct json_object *ho = json_object_new_object();
		put_strv_opt(ho, "Test", h->test, h->n_test);
		put_int_opt(ho, "Interval", h->interval_ns);
		put_int_opt(ho, "Timeout", h->timeout_ns);
		put_int_opt(ho, "StartPeriod", h->start_period_ns);
		put_int_opt(ho, "Retries", h->retries);
		put(o, "Healthcheck", ho);
	}
	return o;
}

/* Docker's TaskTemplate: what a task runs (shared by service and task). */
static struct json_object *render_task_template(const Swarm__ServiceSpec *spec)
{
	struct json_object *o = json_object_new_object();
	struct json_object *res = json_object_new_object();
	struct json_object *placement = json_object_new_object();

	if (!spec)
		return o;
	put(o, "ContainerSpec", render_container_spec(spec->container));
	put(res, "Limits", render_resources(spec->limits));
	put(res, "Reservations", render_resources(spec->reservations));
	put(o, "Resources", res);
	if (spec->restart) {
		struct json_object *r = json_object_new_object();
		put_str(r, "Condition", *spec->restart->condition ? spec->restart->condition : "any");
		put_int(r, "Delay", spec->restart->delay_ns);
		put_int(r, "MaxAttempts", (int64_t)spec->restart->max_attempts);
		put(o, "RestartPolicy", r);
	}
	put_strv_opt(placement, "Constraints", spec->constraints, spec->n_constraints);
	put(o, "Placement", placement);
	if (spec->n_networks) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < spec->n_networks; i++) {
			struct json_object *n = json_object_new_object();
			put_str(n, "Target", spec->networks[i]->target);
			put_strv_opt(n, "Aliases", spec->networks[i]->aliases, spec->networks[i]->n_aliases);
			json_object_array_add(a, n);
		}
		put(o, "Networks", a);
	}
	put_int(o, "ForceUpdate", (int64_t)spec->force_update);
	put_str(o, "Runtime", "container");
	return o;
}

static struct json_object *render_update_config(const Swarm__UpdateConfig *u)
{
	struct json_object *o = json_object_new_object();

	put_int(o, "Parallelism", (int64_t)u->parallelism);
	put_int_opt(o, "Delay", u->delay_ns);
	put_str_opt(o, "FailureAction", u->failure_action);
	put_int_opt(o, "Monitor", u->monitor_ns);
	put(o, "MaxFailureRatio", json_object_new_int(0));
	put_str_opt(o, "Order", u->order);
	return o;
}

static struct json_object *render_endpoint_spec(const Swarm__ServiceSpec *spec)
{
	struct json_object *o = json_object_new_object();

	put_str(o, "Mode", *spec->endpoint_mode ? spec->endpoint_mode : "vip");
	if (spec->n_ports)
		put(o, "Ports", render_ports(spec->ports, spec->n_ports));
	return o;
}

struct json_object *render_service_spec(const Swarm__ServiceSpec *spec)
{
	struct json_object *o = json_object_new_object();
	struct json_object *mode = json_object_new_object();

	if (!spec) {
		json_object_put(mode);
		return o;
	}
	put_str(o, "Name", spec->name);
	put(o, "Labels", render_labels(spec->labels, spec->n_labels));
	put(o, "TaskTemplate", render_task_template(spec));
	if (strcmp(spec->mode, "global") == 0) {
		put(mode, "Global", json_object_new_object());
	} else {
		struct json_object *r = json_object_new_object();
		put_int(r, "Replicas", (int64_t)spec->replicas);
		put(mode, "Replicated", r);
	}
	put(o, "Mode", mode);
	if (spec->update)
		put(o, "UpdateConfig", render_update_config(spec->update));
	if (spec->rollback)
		put(o, "RollbackConfig", render_update_config(spec->rollback));
	put(o, "EndpointSpec", render_endpoint_spec(spec));
	return o;
}

/* ---- services ---- */

/* Docker's ServiceStatus: running tasks, and tasks that should run
 * (replicas, or in global mode the nodes given a task to run). */
static struct json_object *render_service_status(const struct store *s, const Swarm__Service *svc)
{
	struct json_object *o = json_object_new_object();
	const Swarm__Task *const *tasks;
	size_t n = store_tasks(s, &tasks);
	int64_t running = 0, desired = 0;
	bool global = svc->spec && strcmp(svc->spec->mode, "global") == 0;

	for (size_t i = 0; i < n; i++) {
		const Swarm__Task *t = tasks[i];
		if (strcmp(t->service_id, svc->id) != 0 ||
		    t->desired_state != SWARM__TASK_STATE__TASK_RUNNING)
			continue;
		if (t->status && t->status->state == SWARM__TASK_STATE__TASK_RUNNING)
			running++;
		if (global)
			desired++;
	}
	if (!global && svc->spec)
		desired = (int64_t)svc->spec->replicas;
	put_int(o, "RunningTasks", running);
	put_int(o, "DesiredTasks", desired);
	put_int(o, "CompletedTasks", 0);
	return o;
}

struct json_object *render_service(const struct store *s, const Swarm__Service *svc)
{
	struct json_object *o = json_object_new_object();
	struct json_object *ep = json_object_new_object();

	put_str(o, "ID", svc->id);
	put(o, "Version", render_version(svc->spec_version));
	put(o, "CreatedAt", render_time(svc->created_at));
	put(o, "UpdatedAt", render_time(svc->updated_at));
	put(o, "Spec", render_service_spec(svc->spec));
	if (svc->previous_spec)
		put(o, "PreviousSpec", render_service_spec(svc->previous_spec));
	if (svc->spec)
		put(ep, "Spec", render_endpoint_spec(svc->spec));
	else
		put(ep, "Spec", json_object_new_object());
	if (svc->n_ports)
		put(ep, "Ports", render_ports(svc->ports, svc->n_ports));
	if (svc->n_vips) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < svc->n_vips; i++) {
			struct json_object *v = json_object_new_object();
			put_str(v, "NetworkID", svc->vips[i]->network_id);
			put_str(v, "Addr", svc->vips[i]->addr);
			json_object_array_add(a, v);
		}
		put(ep, "VirtualIPs", a);
	}
	put(o, "Endpoint", ep);
	if (*svc->update_state) {
		struct json_object *u = json_object_new_object();
		put_str(u, "State", svc->update_state);
		if (svc->update_started_at)
			put(u, "StartedAt", render_time(svc->update_started_at));
		put_str(u, "Message", svc->update_message);
		put(o, "UpdateStatus", u);
	}
	if (s)
		put(o, "ServiceStatus", render_service_status(s, svc));
	return o;
}

/* ---- tasks ---- */

static struct json_object *render_attachment(const struct store *s, const Swarm__NetworkAttachment *a)
{
	const Swarm__Network *net = s ? store_network(s, a->network_id) : NULL;
	struct json_object *o = json_object_new_object();
	struct json_object *n = json_object_new_object();
	struct json_object *spec = json_object_new_object();
	struct json_object *drv = json_object_new_object();
	struct json_object *addrs = json_object_new_array();
	const char *name = *a->network_name ? a->network_name : net && net->spec ? net->spec->name : "";

	put_str(n, "ID", a->network_id);
	put_str(spec, "Name", name);
	put(spec, "Labels", net && net->spec ? render_labels(net->spec->labels, net->spec->n_labels)
					     : json_object_new_object());
	put_str(drv, "Name", "overlay");
	put(spec, "DriverConfiguration", drv);
	if (net && net->spec && net->spec->ingress)
		put_bool(spec, "Ingress", true);
	if (net && net->spec && net->spec->attachable)
		put_bool(spec, "Attachable", true);
	put_str(spec, "Scope", "swarm");
	put(n, "Spec", spec);
	put(o, "Network", n);
	if (*a->addr)
		json_object_array_add(addrs, json_object_new_string(a->addr));
	put(o, "Addresses", addrs);
	put_strv_opt(o, "Aliases", a->aliases, a->n_aliases);
	return o;
}

struct json_object *render_task(const struct store *s, const Swarm__Task *t)
{
	struct json_object *o = json_object_new_object();
	struct json_object *st = json_object_new_object();
	struct json_object *ps = json_object_new_object();
	const Swarm__Node *node = s && *t->node_id ? store_node(s, t->node_id) : NULL;
	const Swarm__Service *svc = s ? store_service(s, t->service_id) : NULL;
	const char *svc_name = *t->service_name ? t->service_name
						: svc && svc->spec ? svc->spec->name : "";
	char name[256];

	put_str(o, "ID", t->id);
	put(o, "Version", render_version(s ? store_version(s) : t->spec_version));
	put(o, "CreatedAt", render_time(t->created_at));
	put(o, "UpdatedAt", render_time(t->updated_at));
	put(o, "Labels", json_object_new_object());
	put(o, "Spec", render_task_template(t->spec));
	put_str(o, "ServiceID", t->service_id);
	put_int_opt(o, "Slot", (int64_t)t->slot);
	put_str_opt(o, "NodeID", t->node_id);

	if (t->status) {
		const Swarm__TaskStatus *ts = t->status;
		put(st, "Timestamp", render_time(ts->timestamp));
		put_str(st, "State", task_state_name(ts->state));
		put_str(st, "Message", ts->message);
		put_str_opt(st, "Err", ts->err);
		if (*ts->container_id || ts->pid) {
			struct json_object *cs = json_object_new_object();
			put_str(cs, "ContainerID", ts->container_id);
			put_int(cs, "PID", ts->pid);
			put_int(cs, "ExitCode", ts->exit_code);
			put(st, "ContainerStatus", cs);
		}
		put_str_opt(st, "Health", ts->health);
	} else {
		put(st, "Timestamp", render_time(t->created_at));
		put_str(st, "State", "new");
		put_str(st, "Message", "");
	}
	/* Host-mode ports bind on the task's node: Docker lists them here. */
	struct json_object *hp = json_object_new_array();
	for (size_t i = 0; i < t->n_ports; i++)
		if (strcmp(t->ports[i]->mode, "host") == 0)
			json_object_array_add(hp, render_port(t->ports[i]));
	if (json_object_array_length(hp))
		put(ps, "Ports", hp);
	else
		json_object_put(hp);
	put(st, "PortStatus", ps);
	put(o, "Status", st);
	put_str(o, "DesiredState", task_state_name(t->desired_state));
	if (t->n_networks) {
		struct json_object *a = json_object_new_array();
		for (size_t i = 0; i < t->n_networks; i++)
			json_object_array_add(a, render_attachment(s, t->networks[i]));
		put(o, "NetworksAttachments", a);
	}
	if (*t->name)
		snprintf(name, sizeof(name), "%s", t->name);
	else if (t->slot)
		snprintf(name, sizeof(name), "%s.%llu.%s", svc_name, (unsigned long long)t->slot, t->id);
	else
		snprintf(name, sizeof(name), "%s.%s.%s", svc_name, t->node_id, t->id);
	put_str(o, "Name", name);
	put_str(o, "ServiceName", svc_name);
	put_str(o, "NodeName", node ? node->hostname : "");
	put(o, "SpecVersion", render_version(t->spec_version));
	put_str_opt(o, "AllocError", t->alloc_error);
	return o;
}

/* ---- nodes ---- */

/* "IP:PORT" of a manager: its address with the cluster's listen port. */
static void render_manager_addr(const Swarm__Cluster *c, const Swarm__Node *n, char *out, size_t outlen)
{
	const char *port = "2377";
	const char *colon;

	if (c && (colon = strrchr(c->listen_addr, ':')) && colon[1])
		port = colon + 1;
	if (strchr(n->addr, ':'))
		snprintf(out, outlen, "%s", n->addr);
	else
		snprintf(out, outlen, "%s:%s", n->addr, port);
}

static bool render_is_leader(const struct store *s, const Swarm__Node *n)
{
	const Swarm__Cluster *c = store_cluster(s);
	const Swarm__Node *const *nodes;
	size_t count = store_nodes(s, &nodes), managers = 0;

	for (size_t i = 0; i < count; i++)
		if (strcmp(nodes[i]->role, "manager") == 0)
			managers++;
	/* One manager (no Raft yet): it leads. Otherwise the one whose address
	 * the cluster advertises. */
	if (managers <= 1 || !c || !*c->advertise_addr)
		return true;
	size_t len = strcspn(c->advertise_addr, ":");
	return strncmp(c->advertise_addr, n->addr, len) == 0 &&
	       (n->addr[len] == '\0' || n->addr[len] == ':');
}

struct json_object *render_node(const struct store *s, const Swarm__Node *n)
{
	struct json_object *o = json_object_new_object();
	struct json_object *spec = json_object_new_object();
	struct json_object *desc = json_object_new_object();
	struct json_object *st = json_object_new_object();

	put_str(o, "ID", n->id);
	put(o, "Version", render_version(s ? store_version(s) : 0));
	put(o, "CreatedAt", render_time(n->created_at));
	put(o, "UpdatedAt", render_time(n->updated_at));
	put(spec, "Labels", render_labels(n->labels, n->n_labels));
	put_str(spec, "Role", *n->role ? n->role : "worker");
	put_str(spec, "Availability", *n->availability ? n->availability : "active");
	put(o, "Spec", spec);
	put_str(desc, "Hostname", n->hostname);
	put(desc, "Resources", render_resources(n->resources));
	put(o, "Description", desc);
	put_str(st, "State", render_node_state(n->state));
	put_str_opt(st, "Message", n->state_message);
	put_str(st, "Addr", n->addr);
	put(o, "Status", st);
	if (strcmp(n->role, "manager") == 0) {
		struct json_object *ms = json_object_new_object();
		char addr[96];
		render_manager_addr(s ? store_cluster(s) : NULL, n, addr, sizeof(addr));
		put_bool(ms, "Leader", s ? render_is_leader(s, n) : true);
		put_str(ms, "Reachability", n->state == SWARM__NODE_STATE__NODE_DOWN ? "unreachable" : "reachable");
		put_str(ms, "Addr", addr);
		put(o, "ManagerStatus", ms);
	}
	return o;
}

/* ---- networks ---- */

struct json_object *render_network(const struct store *s, const Swarm__Network *n)
{
	const Swarm__NetworkSpec *spec = n->spec;
	struct json_object *o = json_object_new_object();
	struct json_object *ipam = json_object_new_object();
	struct json_object *cfgs = json_object_new_array();
	struct json_object *opts = json_object_new_object();
	struct json_object *from = json_object_new_object();
	const char *subnet = *n->subnet ? n->subnet : spec ? spec->subnet : "";
	const char *gateway = *n->gateway ? n->gateway : spec ? spec->gateway : "";
	char vni[16];

	put_str(o, "Name", spec ? spec->name : "");
	put_str(o, "Id", n->id);
	put(o, "Created", render_time(n->created_at));
	put_str(o, "Scope", "swarm");
	put_str(o, "Driver", spec && *spec->driver ? spec->driver : "overlay");
	put_bool(o, "EnableIPv6", false);
	put_str(ipam, "Driver", "default");
	put(ipam, "Options", NULL);
	if (*subnet) {
		struct json_object *c = json_object_new_object();
		put_str(c, "Subnet", subnet);
		put_str_opt(c, "Gateway", gateway);
		json_object_array_add(cfgs, c);
	}
	put(ipam, "Config", cfgs);
	put(o, "IPAM", ipam);
	put_bool(o, "Internal", false);
	put_bool(o, "Attachable", spec && spec->attachable);
	put_bool(o, "Ingress", spec && spec->ingress);
	put_str(from, "Network", "");
	put(o, "ConfigFrom", from);
	put_bool(o, "ConfigOnly", false);
	/* This node's containers are filled in by the node's netd. */
	put(o, "Containers", json_object_new_object());
	snprintf(vni, sizeof(vni), "%u", n->vni);
	put_str(opts, "com.docker.network.driver.overlay.vxlanid_list", vni);
	if (spec && spec->encrypted)
		put_str(opts, "encrypted", "");
	put(o, "Options", opts);
	put(o, "Labels", spec ? render_labels(spec->labels, spec->n_labels) : json_object_new_object());
	put(o, "Peers", json_object_new_array());
	(void)s;
	return o;
}
