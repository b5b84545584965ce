/* swarmadm container ls | inspect | exec | logs and image load | ls: this
 * node's containers and images, through the local agent. */
#include "swarmadm.h"
#include "format.h"
#include "opt.h"
#include "pb.h"
#include "rpc.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char container_usage[] =
	"Usage: swarmadm container COMMAND        (containers of this node)\n"
	"\n"
	"  ls [-q]                              List task containers\n"
	"  inspect [--format FMT] CONTAINER...  Show containers as JSON\n"
	"  exec CONTAINER -- CMD [ARG...]       Run a command in a container\n"
	"  logs [--tail N] CONTAINER            Show a container's output\n"
	"\n"
	"CONTAINER is a container name, a task id, or a unique prefix (my-nginx.1).\n";

static const char image_usage[] =
	"Usage: swarmadm image COMMAND            (images of this node)\n"
	"\n"
	"  load [--name NAME[:TAG]] FILE   Load an OCI image archive or a rootfs tarball\n"
	"  ls [-q]                         List images\n";

enum { C_TAIL = ARG_OWN, C_NAME, C_INPUT, C_TTY, C_INTERACTIVE };

/* args_parse hook for the flags below. */
static int local_flag(int id, const char **val, struct cmd_args *a)
{
	char *end;

	switch (id) {
	case C_NAME:
		a->name = *val;
		break;
	case C_INPUT:
		a->input = *val;
		break;
	case C_TAIL:
		if (strcmp(*val, "all") == 0)
			break;
		a->tail = strtol(*val, &end, 10);
		if (*end || a->tail < 0 || !**val)
			return fail("invalid --tail \"%s\": a number of lines or \"all\"", *val);
		break;
	}
	return -1;
}

/* -1 to go on, else the exit status. stop: flags end at the first word. */
static int local_parse(int argc, char **argv, bool stop, const char *help, struct cmd_args *a)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "quiet", 'q', false, ARG_QUIET },
		{ "format", 'f', true, ARG_FORMAT },
		{ "tail", 'n', true, C_TAIL },
		{ "name", 0, true, C_NAME },
		{ "input", 'i', true, C_INPUT },
		{ NULL, 0, false, 0 },
	};

	return args_parse(argc, argv, defs, stop, help, local_flag, a);
}

/* A list from the agent (body CONTAINER_LS or IMAGE_LS) as a JSON array;
 * NULL after printing the error. */
static struct json_object *local_list(Swarm__LocalRequest__BodyCase body)
{
	Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
	Swarm__NameRequest nr = SWARM__NAME_REQUEST__INIT;
	Swarm__LocalResponse *resp;
	struct json_object *list;

	req.body_case = body;
	switch (body) {
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_LS: req.container_ls = &nr; break;
	case SWARM__LOCAL_REQUEST__BODY_IMAGE_LS: req.image_ls = &nr; break;
	default: abort();  /* not a list body: a bug in the caller */
	}
	resp = rpc_local_call(&req);
	if (!resp)
		return NULL;
	list = json_parse_answer(resp->json, "agent", true);
	pb_free(resp);
	return list;
}

/* One LocalRequest with a ContainerRequest body. */
static Swarm__LocalResponse *local_container(Swarm__LocalRequest__BodyCase body, const char *name,
					     char **argv, size_t argc)
{
	Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
	Swarm__ContainerRequest cr = SWARM__CONTAINER_REQUEST__INIT;

	cr.name = (char *)name;
	cr.argv = argv;
	cr.n_argv = argc;
	req.body_case = body;
	switch (body) {
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_INSPECT: req.container_inspect = &cr; break;
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_EXEC: req.container_exec = &cr; break;
	case SWARM__LOCAL_REQUEST__BODY_CONTAINER_LOGS: req.container_logs = &cr; break;
	default: abort();  /* not a ContainerRequest body: a bug in the caller */
	}
	return rpc_local_call(&req);
}

/* First non-empty string among keys of o. */
static const char *first_str(struct json_object *o, const char *const *keys)
{
	for (; *keys; keys++) {
		struct json_object *v = format_get(o, *keys);
		if (v && json_object_is_type(v, json_type_string) && *json_object_get_string(v))
			return json_object_get_string(v);
		if (v && json_object_is_type(v, json_type_array) && json_object_array_length(v) &&
		    json_object_is_type(json_object_array_get_idx(v, 0), json_type_string))
			return json_object_get_string(json_object_array_get_idx(v, 0));
	}
	return "";
}

static int container_ls(int argc, char **argv)
{
	static const char *const hdr[] = { "CONTAINER ID", "IMAGE", "CREATED", "STATUS", "PID", "NAMES" };
	static const char *const id_keys[] = { "ID", "Id", "ContainerID", NULL };
	static const char *const image_keys[] = { "Image", "Config.Image", NULL };
	static const char *const status_keys[] = { "Status", "State.Status", "State", NULL };
	static const char *const name_keys[] = { "Names", "Name", NULL };
	struct json_object *list;
	struct cmd_args a;
	int rc = local_parse(argc, argv, false, "Usage: swarmadm container ls [-q]\n", &a);

	if (rc >= 0)
		goto out;
	rc = 1;
	list = local_list(SWARM__LOCAL_REQUEST__BODY_CONTAINER_LS);
	if (!list)
		goto out;
	struct table *t = table_new(ARRAY_SIZE(hdr));
	table_add(t, hdr);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *c = json_object_array_get_idx(list, i);
		char id[13], pid[24] = "", created[64] = "";
		int64_t ts = 0;
		if (a.quiet) {
			puts(first_str(c, id_keys));
			continue;
		}
		short_id(first_str(c, id_keys), id);
		int64_t p = format_get_int(c, "State.Pid");
		if (!p)
			p = format_get_int(c, "Pid");
		if (p)
			snprintf(pid, sizeof(pid), "%lld", (long long)p);
		if (format_time_parse(format_get_str(c, "Created"), &ts) == 0 && ts)
			format_since(ts, now_wall_ns(), created, sizeof(created));
		const char *row[] = { id, first_str(c, image_keys), created, first_str(c, status_keys), pid,
				      first_str(c, name_keys) };
		table_add(t, row);
	}
	print_table(t, a.quiet);
	json_object_put(list);
	rc = 0;
out:
	free(a.words);
	return rc;
}

static int container_inspect(int argc, char **argv)
{
	struct cmd_args a;
	struct json_object *all = NULL;
	int rc = local_parse(argc, argv, false, "Usage: swarmadm container inspect [--format FMT] CONTAINER...\n", &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("container inspect needs a CONTAINER");
		goto out;
	}
	rc = 0;
	all = json_object_new_array();
	for (size_t i = 0; i < a.n_words; i++) {
		Swarm__LocalResponse *resp = local_container(SWARM__LOCAL_REQUEST__BODY_CONTAINER_INSPECT,
							     a.words[i], NULL, 0);
		if (!resp) {
			rc = 1;
			continue;
		}
		struct json_object *doc = json_parse_answer(resp->json, "agent", true);
		pb_free(resp);
		if (!doc) {
			rc = 1;
			continue;
		}
		for (size_t k = 0; k < json_object_array_length(doc); k++)
			json_object_array_add(all, json_object_get(json_object_array_get_idx(doc, k)));
		json_object_put(doc);
	}
	/* As Docker: what was found is printed even when something was not. */
	if (json_object_array_length(all) || !rc)
		rc |= print_inspect(all, a.format);
out:
	json_object_put(all);
	free(a.words);
	return rc;
}

static int container_logs(int argc, char **argv)
{
	struct cmd_args a;
	Swarm__LocalResponse *resp;
	int rc = local_parse(argc, argv, false, "Usage: swarmadm container logs [--tail N] CONTAINER\n", &a);

	if (rc >= 0)
		goto out;
	if (a.n_words != 1) {
		rc = fail("container logs needs one CONTAINER");
		goto out;
	}
	resp = local_container(SWARM__LOCAL_REQUEST__BODY_CONTAINER_LOGS, a.words[0], NULL, 0);
	if (!resp) {
		rc = 1;
		goto out;
	}
	const char *p = resp->text, *end = p + strlen(p);
	if (a.tail >= 0) {
		long n = 0;
		const char *q = end;
		if (q > p && q[-1] == '\n')
			q--;
		while (q > p) {
			if (q[-1] == '\n' && ++n == a.tail)
				break;
			q--;
		}
		p = a.tail == 0 ? end : q;
	}
	fwrite(p, 1, (size_t)(end - p), stdout);
	pb_free(resp);
	rc = 0;
out:
	free(a.words);
	return rc;
}

/* Asks the agent which runc container a name means, then becomes
 * `runc --root R exec [-t] ID CMD ARG...`, so that the terminal, signals and
 * the exit status pass straight through. */
static int container_exec(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "tty", 't', false, C_TTY },
		{ "interactive", 'i', false, C_INTERACTIVE },
		{ NULL, 0, false, 0 },
	};
	const char *name = NULL, *val;
	struct opt_iter it;
	char err[256];
	int id;

	/* Flags (-i and -t are accepted for Docker's habits; a terminal is
	 * used whenever stdin is one) until the container name; everything
	 * after it, past an optional "--", is the command. */
	opt_init(&it, argc, argv, true);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == ARG_HELP)
			return usage("Usage: swarmadm container exec CONTAINER -- CMD [ARG...]\n");
		if (id == 0) {
			name = val;
			break;
		}
	}
	if (!name)
		return fail("container exec needs a CONTAINER and a command");
	int first = it.i;
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc)
		return fail("container exec needs a command after the container (exec %s -- sh)", name);

	Swarm__LocalResponse *resp = local_container(SWARM__LOCAL_REQUEST__BODY_CONTAINER_EXEC, name,
						     argv + first, (size_t)(argc - first));
	if (!resp)
		return 1;
	struct json_object *doc = json_parse_answer(resp->json, "agent", false);
	pb_free(resp);
	if (!doc)
		return 1;
	const char *cid = format_get_str(doc, "ContainerID");
	const char *root = format_get_str(doc, "RuncRoot");
	const char *runc = format_get_str(doc, "Runc");
	if (!*cid) {
		json_object_put(doc);
		return fail("the agent did not say which container %s is", name);
	}
	size_t n = 0;
	char **args = xcalloc((size_t)(argc - first) + 8, sizeof(*args));
	args[n++] = xstrdup(*runc ? runc : "runc");
	if (*root) {
		args[n++] = xstrdup("--root");
		args[n++] = xstrdup(root);
	}
	args[n++] = xstrdup("exec");
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		args[n++] = xstrdup("-t");
	args[n++] = xstrdup(cid);
	for (int i = first; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	json_object_put(doc);
	fflush(NULL);
	execvp(args[0], args);
	return fail("cannot run %s: %s", args[0], strerror(errno));
}

int cmd_container(int argc, char **argv)
{
	const char *sub = argv[0];

	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0 || strcmp(sub, "ps") == 0)
		return container_ls(argc - 1, argv + 1);
	if (strcmp(sub, "inspect") == 0)
		return container_inspect(argc - 1, argv + 1);
	if (strcmp(sub, "exec") == 0)
		return container_exec(argc - 1, argv + 1);
	if (strcmp(sub, "logs") == 0)
		return container_logs(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0)
		return usage(container_usage);
	return fail("unknown container command \"%s\" (see 'swarmadm container --help')", sub);
}

static int image_load(int argc, char **argv)
{
	Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
	Swarm__ImageLoadRequest il = SWARM__IMAGE_LOAD_REQUEST__INIT;
	Swarm__LocalResponse *resp;
	struct cmd_args a;
	char path[PATH_MAX];
	const char *file;
	int rc = local_parse(argc, argv, false, image_usage, &a);

	if (rc >= 0)
		goto out;
	rc = 1;
	file = a.input;
	if (a.n_words > 1 || (file && a.n_words)) {
		fail("image load takes one FILE");
		goto out;
	}
	if (!file && a.n_words)
		file = a.words[0];
	if (!file) {
		fail("image load needs a FILE (an OCI archive or a rootfs tarball)");
		goto out;
	}
	/* The agent reads the file itself, from its own working directory. */
	if (!realpath(file, path)) {
		fail("%s: %s", file, strerror(errno));
		goto out;
	}
	il.path = path;
	il.name = (char *)(a.name ? a.name : "");
	req.body_case = SWARM__LOCAL_REQUEST__BODY_IMAGE_LOAD;
	req.image_load = &il;
	resp = rpc_local_call(&req);
	if (!resp)
		goto out;
	const char *msg = resp->text;
	if (!*msg && *resp->json) {
		struct json_object *doc = json_tokener_parse(resp->json);
		const char *v = first_str(doc, (const char *const[]){ "Name", "Image", "Loaded", NULL });
		printf("Loaded image: %s\n", *v ? v : resp->json);
		json_object_put(doc);
	} else if (str_has_prefix(msg, "Loaded")) {
		printf("%s%s", msg, msg[strlen(msg) - 1] == '\n' ? "" : "\n");
	} else if (*msg) {
		printf("Loaded image: %s%s", msg, msg[strlen(msg) - 1] == '\n' ? "" : "\n");
	}
	pb_free(resp);
	rc = 0;
out:
	free(a.words);
	return rc;
}

static int image_cmp(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int c = strcmp(format_get_str(x, "Repository"), format_get_str(y, "Repository"));

	return c ? c : strcmp(format_get_str(x, "Tag"), format_get_str(y, "Tag"));
}

static int image_ls(int argc, char **argv)
{
	static const char *const hdr[] = { "REPOSITORY", "TAG", "CREATED", "SIZE" };
	struct json_object *list;
	struct cmd_args a;
	int64_t now = now_wall_ns();
	int rc = local_parse(argc, argv, false, image_usage, &a);

	if (rc >= 0)
		goto out;
	rc = 1;
	list = local_list(SWARM__LOCAL_REQUEST__BODY_IMAGE_LS);
	if (!list)
		goto out;
	json_object_array_sort(list, image_cmp);
	struct table *t = table_new(ARRAY_SIZE(hdr));
	table_add(t, hdr);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *im = json_object_array_get_idx(list, i);
		char created[64] = "", size[32] = "";
		struct json_object *cv = format_get(im, "Created");
		int64_t ts = 0;
		if (a.quiet) {
			printf("%s:%s\n", format_get_str(im, "Repository"), format_get_str(im, "Tag"));
			continue;
		}
		/* Created: RFC 3339 text, or unix seconds (or ns) as a number. */
		if (cv && json_object_is_type(cv, json_type_string)) {
			if (format_time_parse(json_object_get_string(cv), &ts) == 0 && ts)
				format_since(ts, now, created, sizeof(created));
		} else if (cv && (ts = json_object_get_int64(cv)) > 0) {
			format_since(ts > 100000000000LL ? ts : ts * 1000000000LL, now, created, sizeof(created));
		}
		if (format_get(im, "Size"))
			format_human_size(format_get_int(im, "Size"), size, sizeof(size));
		const char *row[] = { format_get_str(im, "Repository"), format_get_str(im, "Tag"), created, size };
		table_add(t, row);
	}
	print_table(t, a.quiet);
	json_object_put(list);
	rc = 0;
out:
	free(a.words);
	return rc;
}

int cmd_image(int argc, char **argv)
{
	const char *sub = argv[0];

	if (strcmp(sub, "load") == 0)
		return image_load(argc - 1, argv + 1);
	if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
		return image_ls(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0)
		return usage(image_usage);
	return fail("unknown image command \"%s\" (see 'swarmadm image --help')", sub);
}
