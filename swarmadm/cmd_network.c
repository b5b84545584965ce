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

enum { W_HELP = 1, W_QUIET, W_FORMAT };

static const struct opt_def network_flags[] = {
	{ "help", 'h', false, W_HELP },
	{ "quiet", 'q', false, W_QUIET },
	{ "format", 'f', true, W_FORMAT },
	{ NULL, 0, false, 0 },
};

struct network_args {
	bool quiet;
	const char *format;
	char **names;
	size_t n_names;
};

/* -1 to go on, else the exit status. */
static int network_parse(int argc, char **argv, struct network_args *a)
{
	struct opt_iter it;
	const char *val;
	char err[256];
	int id;

	memset(a, 0, sizeof(*a));
	a->names = xcalloc((size_t)argc + 1, sizeof(*a->names));
	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, network_flags, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == W_HELP)
			return usage(network_usage);
		if (id == W_QUIET)
			a->quiet = true;
		if (id == W_FORMAT)
			a->format = val;
		if (id == 0)
			a->names[a->n_names++] = (char *)val;
	}
	return -1;
}

static int network_cmp_name(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;

	return strcmp(format_get_str(x, "Name"), format_get_str(y, "Name"));
}

static int network_ls(int argc, char **argv)
{
	static const char *const hdr[] = { "NETWORK ID", "NAME", "DRIVER", "SCOPE" };
	struct network_args a;
	struct json_object *nets;
	int rc = network_parse(argc, argv, &a);

	if (rc >= 0)
		goto out;
	if (a.n_names) {
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
	if (!a.quiet) {
		char *s = table_render(t);
		fputs(s, stdout);
		free(s);
	}
	table_free(t);
	json_object_put(nets);
	rc = 0;
out:
	free(a.names);
	return rc;
}

static int network_inspect(int argc, char **argv)
{
	struct network_args a;
	struct json_object *nets;
	int rc = network_parse(argc, argv, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_names) {
		rc = fail("network inspect needs at least one NAME");
		goto out;
	}
	nets = admin_json(SWARM__ADMIN_REQUEST__BODY_NETWORK_INSPECT, a.names, a.n_names);
	rc = nets ? print_inspect(nets, a.format) : 1;
	json_object_put(nets);
out:
	free(a.names);
	return rc;
}

static int network_rm(int argc, char **argv)
{
	struct network_args a;
	int rc = network_parse(argc, argv, &a);

	if (rc >= 0)
		goto out;
	if (!a.n_names) {
		rc = fail("network rm needs at least one NAME");
		goto out;
	}
	/* One request per name: a missing one does not stop the others, as in
	 * Docker, and the exit status says whether all went. */
	rc = 0;
	for (size_t i = 0; i < a.n_names; i++) {
		Swarm__AdminResponse *resp = admin_names(SWARM__ADMIN_REQUEST__BODY_NETWORK_RM,
							 &a.names[i], 1, false);
		if (!resp) {
			rc = 1;
			continue;
		}
		pb_free(resp);
		puts(a.names[i]);
	}
out:
	free(a.names);
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
