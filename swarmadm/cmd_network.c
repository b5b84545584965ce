/* swarmadm network create | ls | inspect | rm. */
#include "swarmadm.h"
#include "format.h"
#include "opt.h"
#include "pb.h"
#include "rpc.h"
#include "spec.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char network_usage[] =
	"Usage: swarmadm network COMMAND\n"
	"\n"
	"  create [-d|--driver overlay] [--opt encrypted] [--subnet CIDR] [--gateway IP]\n"
	"         [--attachable] [--label K=V]... NAME      Create an overlay network\n"
	"  ls [-q]                                         List networks\n"
	"  inspect [--format FMT] NAME...                  Show networks as JSON\n"
	"  rm NAME...                                      Remove networks\n";

static int network_create(int argc, char **argv)
{
	Swarm__NetworkSpec *spec = xmalloc(sizeof(*spec));
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__AdminResponse *resp;
	char err[512];
	bool help;
	int rc = 1;

	swarm__network_spec__init(spec);
	if (spec_network_args(argc, argv, spec, &help, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	if (help) {
		rc = usage(network_usage);
		goto out;
	}
	req.body_case = SWARM__ADMIN_REQUEST__BODY_NETWORK_CREATE;
	req.network_create = spec;
	resp = rpc_admin_call(&req);
	if (!resp)
		goto out;
	puts(*resp->created_id ? resp->created_id : spec->name);
	pb_free(resp);
	rc = 0;
out:
	pb_free(spec);
	return rc;
}

static const struct opt_def network_flags[] = {
	{ "help", 'h', false, ARG_HELP },
	{ "quiet", 'q', false, ARG_QUIET },
	{ "format", 'f', true, ARG_FORMAT },
	{ NULL, 0, false, 0 },
};

static int network_cmp_name(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;

	return strcmp(format_get_str(x, "Name"), format_get_str(y, "Name"));
}

static int network_ls(int argc, char **argv)
{
	static const char *const hdr[] = { "NETWORK ID", "NAME", "DRIVER", "SCOPE" };
	struct cmd_args a;
	struct json_object *nets;
	int rc = args_parse(argc, argv, network_flags, false, network_usage, NULL, &a);

	if (rc >= 0)
		goto out;
	if (a.n_words) {
		rc = fail("network ls takes no arguments");
		goto out;
	}
	nets = admin_json(SWARM__ADMIN_REQUEST__BODY_NETWORK_LS, NULL, 0);
	if (!nets) {
		rc = 1;
		goto out;
	}
	json_object_array_sort(nets, network_cmp_name);
	struct table *t = table_new(ARRAY_SIZE(hdr));
	table_add(t, hdr);
	for (size_t i = 0; i < json_object_array_length(nets); i++) {
		struct json_object *n = json_object_array_get_idx(nets, i);
		char id[13];
		if (a.quiet) {
			puts(format_get_str(n, "Id"));
			continue;
		}
		short_id(format_get_str(n, "Id"), id);
		const char *scope = format_get_str(n, "Scope");
		const char *row[] = { id, format_get_str(n, "Name"), format_get_str(n, "Driver"),
				      *scope ? scope : "swarm" };
		table_add(t, row);
	}
	print_table(t, a.quiet);
	json_object_put(nets);
	rc = 0;
out:
	free(a.words);
	return rc;
}

/* Docker shows the containers of this node on the network and the nodes
 * that share it: that is the local netd's view, put over the manager's
 * (which has neither). Without a netd here the manager's stays. */
static void network_local_view(struct json_object *net)
{
	struct json_object *id;
	if (!json_object_object_get_ex(net, "Id", &id))
		return;
	Swarm__NetdRequest req = SWARM__NETD_REQUEST__INIT;
	Swarm__NetdResponse *resp = NULL;
	char err[256];
	req.body_case = SWARM__NETD_REQUEST__BODY_NETWORK;
	req.network = (char *)json_object_get_string(id);
	if (rpc_netd(&req, 5000, &resp, err, sizeof(err)) < 0)
		return;
	struct json_object *view = resp->error[0] ? NULL : json_tokener_parse(resp->json);
	pb_free(resp);
	if (!view)
		return;
	static const char *const keys[] = { "Containers", "Peers", "Encryption" };
	for (size_t i = 0; i < 3; i++) {
		struct json_object *v;
		if (json_object_object_get_ex(view, keys[i], &v))
			json_object_object_add(net, keys[i], json_object_get(v));
	}
	json_object_put(view);
}

/* A worker has no manager to ask: netd's view of each name, or an error
 * (NULL) for one this node has no containers on. */
static struct json_object *network_local_only(char **names, size_t n)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		Swarm__NetdRequest req = SWARM__NETD_REQUEST__INIT;
		Swarm__NetdResponse *resp = NULL;
		char err[256];
		req.body_case = SWARM__NETD_REQUEST__BODY_NETWORK;
		req.network = names[i];
		if (rpc_netd(&req, 5000, &resp, err, sizeof(err)) < 0) {
			fail("%s", err);
			goto bad;
		}
		struct json_object *view = resp->error[0] ? NULL : json_tokener_parse(resp->json);
		pb_free(resp);
		if (!view) {
			fail("network %s not found on this node (a worker knows the networks of its containers)", names[i]);
			goto bad;
		}
		json_object_array_add(arr, view);
	}
	return arr;
bad:
	json_object_put(arr);
	return NULL;
}

static int network_inspect(int argc, char **argv)
{
	struct cmd_args a;
	int rc = args_parse(argc, argv, network_flags, false, network_usage, NULL, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("network inspect needs at least one NAME");
		goto out;
	}
	struct json_object *arr;
	if (!rpc_socket_exists("manager.sock") && rpc_socket_exists("netd.sock")) {
		/* a worker: its netd knows the networks it has containers on */
		arr = network_local_only(a.words, a.n_words);
	} else {
		arr = admin_json(SWARM__ADMIN_REQUEST__BODY_NETWORK_INSPECT, a.words, a.n_words);
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
			network_local_view(json_object_array_get_idx(arr, i));
	}
	if (!arr) {
		rc = 1;
		goto out;
	}
	rc = print_inspect(arr, a.format);
	json_object_put(arr);
out:
	free(a.words);
	return rc;
}

static int network_rm(int argc, char **argv)
{
	struct cmd_args a;
	int rc = args_parse(argc, argv, network_flags, false, network_usage, NULL, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("network rm needs at least one NAME");
		goto out;
	}
	rc = remove_names(SWARM__ADMIN_REQUEST__BODY_NETWORK_RM, a.words, a.n_words, false);
out:
	free(a.words);
	return rc;
}

int cmd_network(int argc, char **argv)
{
	const char *sub = argv[0];

	if (strcmp(sub, "create") == 0)
		return network_create(argc - 1, argv + 1);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return network_ls(argc - 1, argv + 1);
	if (strcmp(sub, "inspect") == 0)
		return network_inspect(argc - 1, argv + 1);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "remove") == 0)
		return network_rm(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0)
		return usage(network_usage);
	return fail("unknown network command \"%s\" (see 'swarmadm network --help')", sub);
}
