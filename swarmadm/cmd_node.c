/* swarmadm node ls | inspect | ps | update | rm | promote | demote. */
#include "swarmadm.h"
#include "format.h"
#include "opt.h"
#include "pb.h"
#include "rpc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char node_usage[] =
	"Usage: swarmadm node COMMAND\n"
	"\n"
	"  ls [-q]                          List nodes\n"
	"  inspect [--format FMT] NODE...   Show nodes as JSON (\"self\" = this node)\n"
	"  ps [--no-trunc] [-q] [NODE...]   List the tasks on nodes (default: this node)\n"
	"  update [--availability active|pause|drain] [--label-add K=V]... [--label-rm K]...\n"
	"         [--role worker|manager] NODE\n"
	"  promote NODE... | demote NODE... Change a node's role\n"
	"  rm [--force] NODE...             Remove nodes from the swarm\n";

enum { N_FORCE = ARG_OWN, N_AVAIL, N_LABEL_ADD, N_LABEL_RM, N_ROLE };

static const struct opt_def node_flags[] = {
	{ "help", 'h', false, ARG_HELP },
	{ "quiet", 'q', false, ARG_QUIET },
	{ "format", 'f', true, ARG_FORMAT },
	{ "no-trunc", 0, false, ARG_NO_TRUNC },
	{ NULL, 0, false, 0 },
};

/* args_parse hook: "self" is Docker's name for this node. */
static int node_word(int id, const char **val, struct cmd_args *a)
{
	if (id == 0 && strcmp(*val, "self") == 0) {
		const char *self = self_node_id();
		if (!self)
			return fail("this node's id is unknown (is its agent running and joined?)");
		*val = self;
	}
	return -1;
}

/* Scans node_flags; positional words ("self" resolved) go to a->words.
 * Returns -1 to go on, or the exit status to return now. */
static int node_parse(int argc, char **argv, struct cmd_args *a)
{
	return args_parse(argc, argv, node_flags, false, node_usage, node_word, a);
}

static int node_cmp_hostname(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int c = strcmp(format_get_str(x, "Description.Hostname"), format_get_str(y, "Description.Hostname"));

	return c ? c : strcmp(format_get_str(x, "ID"), format_get_str(y, "ID"));
}

static int node_ls(int argc, char **argv)
{
	static const char *const hdr[] = { "ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS" };
	struct cmd_args a;
	struct json_object *nodes;
	struct table *t;
	const char *self;
	int rc = node_parse(argc, argv, &a);

	if (rc >= 0)
		goto out_args;
	if (a.n_words) {
		rc = fail("node ls takes no arguments");
		goto out_args;
	}
	nodes = admin_json(SWARM__ADMIN_REQUEST__BODY_NODE_LS, NULL, 0);
	if (!nodes) {
		rc = 1;
		goto out_args;
	}
	json_object_array_sort(nodes, node_cmp_hostname);
	self = a.quiet ? NULL : self_node_id();
	t = table_new(ARRAY_SIZE(hdr));
	table_add(t, hdr);
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		struct json_object *n = json_object_array_get_idx(nodes, i);
		const char *nid = format_get_str(n, "ID");
		char idcol[80], status[32], avail[32], mgr[32] = "";
		if (a.quiet) {
			puts(nid);
			continue;
		}
		snprintf(idcol, sizeof(idcol), "%s%s", nid, self && strcmp(self, nid) == 0 ? " *" : "");
		format_capitalize(format_get_str(n, "Status.State"), status, sizeof(status));
		format_capitalize(format_get_str(n, "Spec.Availability"), avail, sizeof(avail));
		if (format_get(n, "ManagerStatus")) {
			struct json_object *leader = format_get(n, "ManagerStatus.Leader");
			if (leader && json_object_get_boolean(leader))
				snprintf(mgr, sizeof(mgr), "Leader");
			else
				format_capitalize(format_get_str(n, "ManagerStatus.Reachability"), mgr, sizeof(mgr));
		} else if (strcmp(format_get_str(n, "Spec.Role"), "manager") == 0) {
			snprintf(mgr, sizeof(mgr), "Leader");
		}
		const char *row[] = { idcol, format_get_str(n, "Description.Hostname"), status, avail, mgr };
		table_add(t, row);
	}
	print_table(t, a.quiet);
	json_object_put(nodes);
	rc = 0;
out_args:
	free(a.words);
	return rc;
}

static int node_inspect(int argc, char **argv)
{
	struct cmd_args a;
	int rc = node_parse(argc, argv, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("node inspect needs at least one NODE");
		goto out;
	}
	rc = inspect_names(SWARM__ADMIN_REQUEST__BODY_NODE_INSPECT, a.words, a.n_words, a.format);
out:
	free(a.words);
	return rc;
}

static int node_ps(int argc, char **argv)
{
	struct cmd_args a;
	int rc = node_parse(argc, argv, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		const char *self = self_node_id();
		if (!self) {
			rc = fail("node ps needs a NODE (this node's id is unknown)");
			goto out;
		}
		a.words[a.n_words++] = (char *)self;
	}
	rc = print_tasks_of(SWARM__ADMIN_REQUEST__BODY_NODE_PS, a.words, a.n_words, a.no_trunc, a.quiet);
out:
	free(a.words);
	return rc;
}

/* Sends one NodeUpdateRequest; prints the node's name on success. */
static int node_send_update(Swarm__NodeUpdateRequest *nu, const char *name)
{
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__AdminResponse *resp;

	nu->node = (char *)name;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_NODE_UPDATE;
	req.node_update = nu;
	resp = rpc_admin_call(&req);
	if (!resp)
		return 1;
	pb_free(resp);
	puts(name);
	return 0;
}

static int node_update(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "availability", 0, true, N_AVAIL },
		{ "label-add", 0, true, N_LABEL_ADD },
		{ "label-rm", 0, true, N_LABEL_RM },
		{ "role", 0, true, N_ROLE },
		{ NULL, 0, false, 0 },
	};
	Swarm__NodeUpdateRequest nu = SWARM__NODE_UPDATE_REQUEST__INIT;
	Swarm__KeyValue *labels = xcalloc((size_t)argc + 1, sizeof(*labels));
	Swarm__KeyValue **label_ptrs = xcalloc((size_t)argc + 1, sizeof(*label_ptrs));
	char **rm = xcalloc((size_t)argc + 1, sizeof(*rm));
	char **keys = xcalloc((size_t)argc + 1, sizeof(*keys));
	const char *node = NULL, *val;
	struct opt_iter it;
	char err[256];
	int id, rc = 1;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		switch (id) {
		case ARG_HELP:
			rc = usage(node_usage);
			goto out;
		case N_AVAIL:
			if (strcmp(val, "active") && strcmp(val, "pause") && strcmp(val, "drain")) {
				fail("invalid --availability \"%s\" (active, pause, drain)", val);
				goto out;
			}
			nu.availability = (char *)val;
			break;
		case N_ROLE:
			if (strcmp(val, "worker") && strcmp(val, "manager")) {
				fail("invalid --role \"%s\" (worker, manager)", val);
				goto out;
			}
			nu.role = (char *)val;
			break;
		case N_LABEL_ADD: {
			const char *eq = strchr(val, '=');
			if (!*val || val[0] == '=') {
				fail("invalid --label-add \"%s\": expected KEY=VALUE", val);
				goto out;
			}
			Swarm__KeyValue *kv = &labels[nu.n_label_add];
			swarm__key_value__init(kv);
			keys[nu.n_label_add] = eq ? strndup(val, (size_t)(eq - val)) : xstrdup(val);
			kv->key = keys[nu.n_label_add];
			kv->value = (char *)(eq ? eq + 1 : "");
			label_ptrs[nu.n_label_add++] = kv;
			break;
		}
		case N_LABEL_RM:
			rm[nu.n_label_rm++] = (char *)val;
			break;
		case 0:
			if (node) {
				fail("node update takes one NODE");
				goto out;
			}
			if (strcmp(val, "self") == 0 && !(val = self_node_id())) {
				fail("this node's id is unknown (is its agent running and joined?)");
				goto out;
			}
			node = val;
			break;
		default:
			fail("%s", err);
			goto out;
		}
	}
	if (!node) {
		fail("node update needs a NODE");
		goto out;
	}
	nu.label_add = label_ptrs;
	nu.label_rm = rm;
	rc = node_send_update(&nu, node);
out:
	for (size_t i = 0; i < (size_t)argc; i++)
		free(keys[i]);
	free(keys);
	free(labels);
	free(label_ptrs);
	free(rm);
	return rc;
}

static int node_role(int argc, char **argv, const char *role)
{
	struct cmd_args a;
	int rc = node_parse(argc, argv, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("node %s needs at least one NODE", strcmp(role, "manager") == 0 ? "promote" : "demote");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < a.n_words; i++) {
		Swarm__NodeUpdateRequest nu = SWARM__NODE_UPDATE_REQUEST__INIT;
		nu.role = (char *)role;
		rc |= node_send_update(&nu, a.words[i]);
	}
out:
	free(a.words);
	return rc;
}

static int node_rm(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "force", 'f', false, N_FORCE },
		{ NULL, 0, false, 0 },
	};
	bool force = false;
	struct opt_iter it;
	const char *val;
	char err[256];
	int id, rc = 0, n = 0;

	/* Flags first, so that --force after the names still applies. */
	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == ARG_HELP)
			return usage(node_usage);
		if (id == N_FORCE && opt_bool(val, &force) < 0)
			return fail("invalid value \"%s\" for --force", val);
		if (id == 0)
			n++;
	}
	if (!n)
		return fail("node rm needs at least one NODE");
	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		char *name = (char *)val;
		if (id == 0)
			rc |= remove_names(SWARM__ADMIN_REQUEST__BODY_NODE_RM, &name, 1, force);
	}
	return rc;
}

int cmd_node(int argc, char **argv)
{
	const char *sub = argv[0];

	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return node_ls(argc - 1, argv + 1);
	if (strcmp(sub, "inspect") == 0)
		return node_inspect(argc - 1, argv + 1);
	if (strcmp(sub, "ps") == 0)
		return node_ps(argc - 1, argv + 1);
	if (strcmp(sub, "update") == 0)
		return node_update(argc - 1, argv + 1);
	if (strcmp(sub, "promote") == 0)
		return node_role(argc - 1, argv + 1, "manager");
	if (strcmp(sub, "demote") == 0)
		return node_role(argc - 1, argv + 1, "worker");
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return node_rm(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0)
		return usage(node_usage);
	return fail("unknown node command \"%s\" (see 'swarmadm node --help')", sub);
}
