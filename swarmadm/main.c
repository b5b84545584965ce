/* swarmadm: the admin CLI. Finds the command group, and holds the helpers
 * the groups share (swarmadm.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "swarmadm.h"
#include "format.h"
#include "opt.h"
#include "pb.h"
#include "rpc.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Builds outside autoconf (the unit tests' scratch builds) have no config.h. */
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

static const char swarmadm_usage[] =
	"Usage: swarmadm [-H HOST:2377] COMMAND [ARG...]\n"
	"\n"
	"Administers a swarm through the local manager and agent\n"
	"($SWARM_RUN_DIR/manager.sock and agent.sock, default /run/swarm).\n"
	"\n"
	"Swarm commands:\n"
	"  init         Create a swarm with this node as its manager\n"
	"  join         Join this node to a swarm\n"
	"  join-token   Show or rotate the join tokens\n"
	"  update       Rotate the network keys, set their rotation interval\n"
	"  leave        Take this node out of its swarm\n"
	"  info         Show the manager's view of the swarm (JSON)\n"
	"\n"
	"Object commands:\n"
	"  node         Manage nodes\n"
	"  network      Manage overlay networks\n"
	"  service      Manage services\n"
	"  container    Look into this node's task containers\n"
	"  image        Manage this node's images\n"
	"\n"
	"Run 'swarmadm COMMAND --help' for a command's flags.\n";

int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("swarmadm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int usage(const char *text)
{
	fputs(text, stdout);
	return 0;
}

bool stdout_is_tty(void)
{
	return isatty(STDOUT_FILENO) == 1;
}

void short_id(const char *id, char out[13])
{
	snprintf(out, 13, "%s", id);
}

static void admin_set_names(Swarm__AdminRequest *r, Swarm__AdminRequest__BodyCase body,
			    Swarm__NameRequest *nr)
{
	r->body_case = body;
	switch (body) {
	case SWARM__ADMIN_REQUEST__BODY_NODE_LS: r->node_ls = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_INSPECT: r->node_inspect = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_RM: r->node_rm = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_NODE_PS: r->node_ps = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_LS: r->network_ls = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_INSPECT: r->network_inspect = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_NETWORK_RM: r->network_rm = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_LS: r->service_ls = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_INSPECT: r->service_inspect = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_PS: r->service_ps = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_RM: r->service_rm = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_SERVICE_GET_SPEC: r->service_get_spec = nr; break;
	case SWARM__ADMIN_REQUEST__BODY_INFO: r->info = nr; break;
	default:
		abort();  /* not a NameRequest body: a bug in the caller */
	}
}

Swarm__AdminResponse *admin_names(Swarm__AdminRequest__BodyCase body, char **names,
				  size_t n, bool force)
{
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__NameRequest nr = SWARM__NAME_REQUEST__INIT;

	nr.names = names;
	nr.n_names = n;
	nr.force = force;
	admin_set_names(&req, body, &nr);
	return rpc_admin_call(&req);
}

struct json_object *json_parse_answer(const char *text, const char *who, bool as_array)
{
	struct json_object *doc;

	if (!text || !*text) {
		doc = json_object_new_array();
	} else {
		doc = json_tokener_parse(text);
		if (!doc) {
			fail("the %s sent invalid JSON", who);
			return NULL;
		}
	}
	if (as_array && !json_object_is_type(doc, json_type_array)) {
		struct json_object *arr = json_object_new_array();
		json_object_array_add(arr, doc);
		doc = arr;
	}
	return doc;
}

struct json_object *admin_json(Swarm__AdminRequest__BodyCase body, char **names, size_t n)
{
	Swarm__AdminResponse *resp = admin_names(body, names, n, false);
	struct json_object *doc;

	if (!resp)
		return NULL;
	doc = json_parse_answer(resp->json, "manager", true);
	pb_free(resp);
	return doc;
}

int args_parse(int argc, char **argv, const struct opt_def *defs, bool stop, const char *help,
	       args_hook hook, struct cmd_args *a)
{
	struct opt_iter it;
	const char *val;
	char err[256];
	int id;

	memset(a, 0, sizeof(*a));
	a->tail = -1;
	a->words = xcalloc((size_t)argc + 1, sizeof(*a->words));
	opt_init(&it, argc, argv, stop);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		int rc = -1;
		if (id < 0)
			return fail("%s", err);
		if (id == ARG_HELP)
			return usage(help);
		if (id == ARG_QUIET)
			a->quiet = true;
		else if (id == ARG_NO_TRUNC)
			a->no_trunc = true;
		else if (id == ARG_FORMAT)
			a->format = val;
		else if (hook)
			rc = hook(id, &val, a);
		if (rc >= 0)
			return rc;
		if (id == 0)
			a->words[a->n_words++] = (char *)val;
	}
	return -1;
}

void print_table(struct table *t, bool quiet)
{
	if (!quiet) {
		char *s = table_render(t);
		fputs(s, stdout);
		free(s);
	}
	table_free(t);
}

int inspect_names(Swarm__AdminRequest__BodyCase body, char **names, size_t n, const char *format)
{
	struct json_object *arr = admin_json(body, names, n);
	int rc = arr ? print_inspect(arr, format) : 1;

	json_object_put(arr);
	return rc;
}

int remove_names(Swarm__AdminRequest__BodyCase body, char **names, size_t n, bool force)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		Swarm__AdminResponse *resp = admin_names(body, &names[i], 1, force);
		if (!resp) {
			rc = 1;
			continue;
		}
		pb_free(resp);
		puts(names[i]);
	}
	return rc;
}

int print_inspect(struct json_object *arr, const char *format)
{
	if (!format) {
		char *s = format_json_pretty(arr);
		puts(s);
		free(s);
		return 0;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		char err[256], *out;
		if (format_template(format, json_object_array_get_idx(arr, i), &out, err, sizeof(err)) < 0)
			return fail("%s", err);
		puts(out);
		free(out);
	}
	return 0;
}

const char *self_node_id(void)
{
	static char id[64];
	static bool asked;
	Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
	Swarm__NameRequest nr = SWARM__NAME_REQUEST__INIT;
	Swarm__LocalResponse *resp = NULL;
	char err[256];

	if (asked)
		return id[0] ? id : NULL;
	asked = true;
	req.body_case = SWARM__LOCAL_REQUEST__BODY_STATUS;
	req.status = &nr;
	if (rpc_local(&req, 3000, &resp, err, sizeof(err)) < 0)
		return NULL;
	if (!*resp->error && *resp->json) {
		struct json_object *doc = json_tokener_parse(resp->json);
		const char *v = format_get_str(doc, "NodeID");
		snprintf(id, sizeof(id), "%s", v);
		json_object_put(doc);
	}
	pb_free(resp);
	return id[0] ? id : NULL;
}

struct swarmadm_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	bool group;        /* takes a subcommand */
};

static const struct swarmadm_cmd swarmadm_cmds[] = {
	{ "init", cmd_init, false },
	{ "join", cmd_join, false },
	{ "join-token", cmd_join_token, false },
	{ "update", cmd_update, false },
	{ "leave", cmd_leave, false },
	{ "info", cmd_info, false },
	{ "node", cmd_node, true },
	{ "network", cmd_network, true },
	{ "service", cmd_service, true },
	{ "container", cmd_container, true },
	{ "image", cmd_image, true },
	{ NULL, NULL, false },
};

enum { G_HOST = 1, G_HELP, G_VERSION };

static const struct opt_def swarmadm_global_flags[] = {
	{ "host", 'H', true, G_HOST },
	{ "help", 'h', false, G_HELP },
	{ "version", 'v', false, G_VERSION },
	{ NULL, 0, false, 0 },
};

int main(int argc, char **argv)
{
	struct opt_iter it;
	const char *val, *cmd = NULL;
	char err[256];
	int id;

	/* Global flags stop at the command word; the rest is the command's. */
	opt_init(&it, argc - 1, argv + 1, true);
	while ((id = opt_next(&it, swarmadm_global_flags, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == 0) {
			cmd = val;
			break;
		}
		if (id == G_HELP)
			return usage(swarmadm_usage);
		if (id == G_VERSION) {
			printf("swarmadm %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (id == G_HOST)
			return fail("-H %s: remote managers need an admin certificate (not supported yet); "
				    "run swarmadm on a manager node", val);
	}
	if (!cmd) {
		fputs(swarmadm_usage, stderr);
		return 1;
	}
	if (strcmp(cmd, "help") == 0)
		return usage(swarmadm_usage);
	/* `swarmadm swarm init` as Docker's users type it. */
	if (strcmp(cmd, "swarm") == 0) {
		if (it.i >= argc - 1)
			return fail("swarm needs a subcommand: init, join, join-token, update, leave");
		cmd = argv[1 + it.i++];
	}
	for (const struct swarmadm_cmd *c = swarmadm_cmds; c->name; c++) {
		if (strcmp(c->name, cmd) != 0)
			continue;
		int rest = argc - 1 - it.i;
		char **rv = argv + 1 + it.i;
		if (c->group && rest == 0)
			return c->fn(1, (char *[]){ "--help", NULL });
		return c->fn(rest, rv);
	}
	return fail("unknown command \"%s\" (see 'swarmadm --help')", cmd);
}
