/* swarmadm service create | update | rollback | scale | ls | ps | inspect |
 * logs | rm, and the convergence wait that create, update, rollback and
 * scale end with. */
#include "swarmadm.h"
#include "format.h"
#include "opt.h"
#include "pb.h"
#include "progress.h"
#include "rpc.h"
#include "spec.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char service_usage[] =
	"Usage: swarmadm service COMMAND\n"
	"\n"
	"  create [OPTIONS] IMAGE [COMMAND [ARG...]]   Create a service\n"
	"  update [OPTIONS] SERVICE                    Change a service\n"
	"  rollback [-d] SERVICE                       Go back to the previous spec\n"
	"  scale SERVICE=N...                          Set replica counts\n"
	"  ls [-q]                                     List services\n"
	"  ps [--no-trunc] [-q] SERVICE...             List a service's tasks\n"
	"  inspect [--format FMT] SERVICE...           Show services as JSON\n"
	"  logs [--tail N] [--raw] SERVICE             Logs of the service's tasks on this node\n"
	"  rm SERVICE...                               Remove services\n"
	"\n"
	"Run 'swarmadm service create --help' or 'swarmadm service update --help' for their flags.\n";

static const char service_create_usage[] =
	"Usage: swarmadm service create [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
	"\n"
	"  --name NAME                       Service name\n"
	"  --mode replicated|global          Service mode (default replicated)\n"
	"  --replicas N                      Number of tasks (default 1)\n"
	"  --network NET | name=NET,alias=A  Attach to an overlay network (repeatable)\n"
	"  -p, --publish SPEC                PUBLISHED:TARGET[/udp] or\n"
	"                                    published=P,target=T[,protocol=udp][,mode=host]\n"
	"  --endpoint-mode vip|dnsrr         How the service's name resolves (default vip)\n"
	"  -e, --env K=V                     Environment variable (repeatable)\n"
	"  -l, --label K=V                   Service label (repeatable)\n"
	"  --constraint EXPR                 node.id|node.hostname|node.role|node.labels.K ==|!= V\n"
	"  --hostname NAME                   Container hostname\n"
	"  --entrypoint \"CMD ARG\"            Replace the image's entrypoint\n"
	"  --mount type=bind,source=/a,target=/b[,readonly] | type=tmpfs,target=/t[,tmpfs-size=64M]\n"
	"  --restart-condition none|on-failure|any   --restart-delay D   --restart-max-attempts N\n"
	"  --stop-grace-period D\n"
	"  --update-parallelism N   --update-delay D   --update-order stop-first|start-first\n"
	"  --update-failure-action pause|continue|rollback   --update-monitor D\n"
	"  --rollback-parallelism N   --rollback-delay D   --rollback-order O\n"
	"  --rollback-failure-action pause|continue   --rollback-monitor D\n"
	"  --health-cmd CMD   --health-interval D   --health-timeout D   --health-retries N\n"
	"  --health-start-period D   --no-healthcheck\n"
	"  --limit-cpu N   --limit-memory BYTES   --reserve-cpu N   --reserve-memory BYTES\n"
	"  -d, --detach                      Do not wait for the service to converge\n"
	"  -q, --quiet                       Do not show progress while waiting\n"
	"\n"
	"Durations are Go-style (10s, 1m30s, 500ms); sizes take k, m, g (64M).\n";

static const char service_update_usage[] =
	"Usage: swarmadm service update [OPTIONS] SERVICE\n"
	"\n"
	"  --image IMAGE                  Run another image\n"
	"  --args \"CMD ARG...\"            Replace the command's arguments\n"
	"  --replicas N                   Number of tasks\n"
	"  --force                        Restart every task even if nothing changed\n"
	"  --rollback                     Go back to the previous spec\n"
	"  --publish-add SPEC             --publish-rm PUBLISHED[/udp]\n"
	"  --network-add NET              --network-rm NET\n"
	"  --env-add K=V                  --env-rm K\n"
	"  --constraint-add EXPR          --constraint-rm EXPR\n"
	"  --mount-add SPEC               --mount-rm TARGET\n"
	"  --label-add K=V                --label-rm K\n"
	"  and the create flags that apply to a running service: --endpoint-mode,\n"
	"  --hostname, --entrypoint, --restart-*, --stop-grace-period, --update-*,\n"
	"  --rollback-*, --health-*, --no-healthcheck, --limit-*, --reserve-*, -d, -q\n";

/* How long create/update wait for convergence before giving up (the
 * service is left as it is), and how often they look. */
#define SERVICE_WAIT_NS (120LL * 1000000000LL)
#define SERVICE_POLL_NS (500LL * 1000000LL)
/* Docker's default stability window when the spec has no update monitor. */
#define SERVICE_MONITOR_NS (5LL * 1000000000LL)

static void service_sleep(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- progress display ---- */

struct display {
	bool tty;        /* redraw in place with ANSI */
	bool quiet;      /* print nothing */
	size_t drawn;    /* tty: lines on screen from the last draw */
	char **prev;     /* plain: the last lines printed, by position */
	size_t n_prev;
};

static void display_show(struct display *d, char **lines, size_t n)
{
	if (d->quiet)
		goto out;
	if (d->tty) {
		if (d->drawn)
			printf("\033[%zuA", d->drawn);
		for (size_t i = 0; i < n; i++)
			printf("\r\033[2K%s\n", lines[i]);
		for (size_t i = n; i < d->drawn; i++)
			printf("\r\033[2K\n");
		if (d->drawn > n)
			printf("\033[%zuA", d->drawn - n);
		d->drawn = n;
	} else {
		for (size_t i = 0; i < n; i++)
			if (i >= d->n_prev || strcmp(d->prev[i], lines[i]) != 0)
				printf("%s\n", lines[i]);
	}
	fflush(stdout);
out:
	spec_strv_free(d->prev, d->n_prev);
	d->prev = lines;
	d->n_prev = n;
}

static void display_free(struct display *d)
{
	spec_strv_free(d->prev, d->n_prev);
	d->prev = NULL;
	d->n_prev = 0;
}

/* Fetches the service object and its tasks; 0, or 1 after printing. */
static int service_fetch(const char *svc, struct json_object **service, struct json_object **tasks)
{
	char *name = (char *)svc;
	struct json_object *arr = admin_json(SWARM__ADMIN_REQUEST__BODY_SERVICE_INSPECT, &name, 1);

	if (!arr)
		return 1;
	if (json_object_array_length(arr) == 0) {
		json_object_put(arr);
		return fail("service %s not found", svc);
	}
	*service = json_object_get(json_object_array_get_idx(arr, 0));
	json_object_put(arr);
	name = (char *)format_get_str(*service, "ID");
	if (!*name)
		name = (char *)svc;
	*tasks = admin_json(SWARM__ADMIN_REQUEST__BODY_SERVICE_PS, &name, 1);
	if (!*tasks) {
		json_object_put(*service);
		return 1;
	}
	return 0;
}

/* Waits until svc converges (see progress.h), showing progress as Docker
 * does, then holds for the update monitor period (Docker's "verify"
 * step) so that a task that dies at once is not taken for converged.
 * since: wall-clock time the change was sent (see progress_compute). Gives
 * up after SERVICE_WAIT_NS. Returns the exit status. */
static int service_converge(const char *svc, enum progress_kind kind, int64_t since, bool quiet)
{
	struct display d = { .tty = stdout_is_tty(), .quiet = quiet };
	int64_t start = now_mono_ns(), converged_at = 0;
	int rc = 1;

	for (;;) {
		struct json_object *service = NULL, *tasks = NULL;
		struct progress p;
		char **lines;
		size_t n;

		if (service_fetch(svc, &service, &tasks))
			break;
		progress_compute(service, tasks, kind, since, &p);
		int64_t monitor = format_get_int(service, "Spec.UpdateConfig.Monitor");
		json_object_put(service);
		json_object_put(tasks);
		if (monitor <= 0)
			monitor = SERVICE_MONITOR_NS;
		n = progress_lines(&p, d.tty, &lines);

		int64_t now = now_mono_ns();
		if (p.verdict == PROGRESS_CONVERGED) {
			if (!converged_at)
				converged_at = now;
		} else {
			converged_at = 0;
		}
		bool done = converged_at && now - converged_at >= monitor;
		if (done || (converged_at && d.tty)) {
			lines = xrealloc(lines, (n + 1) * sizeof(*lines));
			if (done)
				lines[n++] = xstrdup("verify: Service converged");
			else
				lines[n++] = xasprintf("verify: Waiting %lld seconds to verify that tasks are stable...",
						       (long long)((monitor - (now - converged_at) + 999999999LL) / 1000000000LL));
		}
		display_show(&d, lines, n);
		if (p.verdict == PROGRESS_FAILED) {
			fail("%s", p.message);
			progress_clear(&p);
			break;
		}
		progress_clear(&p);
		if (done) {
			rc = 0;
			break;
		}
		if (now - start >= SERVICE_WAIT_NS) {
			fail("service %s did not converge within %lld s; it is left as it is "
			     "(see 'swarmadm service ps %s')", svc, SERVICE_WAIT_NS / 1000000000LL, svc);
			break;
		}
		service_sleep(SERVICE_POLL_NS);
	}
	display_free(&d);
	return rc;
}

/* ---- create / update / rollback / scale ---- */

/* Docker names a service created without --name "adjective_scientist";
 * so do we (the manager requires a name). */
static void service_random_name(Swarm__ServiceSpec *spec)
{
	static const char *const left[] = {
		"brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen",
		"lucid", "modest", "nifty", "quirky", "serene", "tender", "vibrant", "zealous",
	};
	static const char *const right[] = {
		"babbage", "curie", "darwin", "euler", "fermi", "galileo", "hopper", "kepler",
		"lovelace", "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
	};
	uint8_t r[2] = { 0, 0 };
	char name[64];

	if (random_bytes(r, sizeof(r)) < 0) {
		r[0] = (uint8_t)getpid();
		r[1] = (uint8_t)time(NULL);
	}
	snprintf(name, sizeof(name), "%s_%s", left[r[0] % ARRAY_SIZE(left)], right[r[1] % ARRAY_SIZE(right)]);
	pb_set_str(&spec->name, name);
}

static int service_create(int argc, char **argv)
{
	Swarm__ServiceSpec *spec = spec_service_new();
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__AdminResponse *resp = NULL;
	struct spec_cli cli = { .getenv_fn = getenv };
	char err[512], *id = NULL;
	int rc = 1;

	if (spec_service_args(SPEC_CREATE, argc, argv, spec, &cli, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	if (cli.help) {
		rc = usage(service_create_usage);
		goto out;
	}
	if (!*spec->name)
		service_random_name(spec);
	req.body_case = SWARM__ADMIN_REQUEST__BODY_SERVICE_CREATE;
	req.service_create = spec;
	resp = rpc_admin_call(&req);
	if (!resp)
		goto out;
	id = xstrdup(*resp->created_id ? resp->created_id : spec->name);
	puts(id);
	fflush(stdout);
	rc = cli.detach ? 0 : service_converge(id, PROGRESS_CREATE, 0, cli.quiet);
out:
	free(id);
	pb_free(resp);
	pb_free(spec);
	spec_cli_clear(&cli);
	return rc;
}

/* Sends a ServiceUpdateRequest; 0 or 1 after printing. */
static int service_send_update(const char *svc, Swarm__ServiceSpec *spec, bool rollback)
{
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__ServiceUpdateRequest su = SWARM__SERVICE_UPDATE_REQUEST__INIT;
	Swarm__AdminResponse *resp;

	su.service = (char *)svc;
	su.spec = spec;
	su.rollback = rollback;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_SERVICE_UPDATE;
	req.service_update = &su;
	resp = rpc_admin_call(&req);
	if (!resp)
		return 1;
	pb_free(resp);
	return 0;
}

/* The current spec of svc (malloc-owned), or NULL after printing. */
static Swarm__ServiceSpec *service_get_spec(const char *svc)
{
	char *name = (char *)svc;
	Swarm__AdminResponse *resp = admin_names(SWARM__ADMIN_REQUEST__BODY_SERVICE_GET_SPEC, &name, 1, false);
	Swarm__ServiceSpec *spec;

	if (!resp)
		return NULL;
	if (!resp->spec) {
		pb_free(resp);
		fail("the manager sent no spec for service %s", svc);
		return NULL;
	}
	spec = resp->spec;
	resp->spec = NULL;
	pb_free(resp);
	return spec;
}

/* --network-rm NAME when the spec holds the network's id (or the other way
 * round): ask the manager which network the name means. 0 or 1. */
static int service_network_rm_resolve(Swarm__ServiceSpec *spec, const struct spec_cli *cli)
{
	for (size_t i = 0; i < cli->n_net_rm; i++) {
		char *name = cli->net_rm[i];
		struct json_object *nets = admin_json(SWARM__ADMIN_REQUEST__BODY_NETWORK_INSPECT, &name, 1);
		size_t removed = 0;
		if (!nets)
			return 1;
		for (size_t k = 0; k < json_object_array_length(nets); k++) {
			struct json_object *n = json_object_array_get_idx(nets, k);
			removed += spec_network_remove(spec, format_get_str(n, "Id"));
			removed += spec_network_remove(spec, format_get_str(n, "Name"));
		}
		json_object_put(nets);
		if (!removed)
			return fail("service is not attached to network %s", name);
	}
	return 0;
}

static int service_update(int argc, char **argv)
{
	Swarm__ServiceSpec *probe = spec_service_new(), *spec = NULL;
	struct spec_cli cli = { .getenv_fn = getenv, .probe = true }, cli2 = { .getenv_fn = getenv };
	int64_t sent = 0;
	char err[512];
	int rc = 1;

	/* Every word is checked (against a stand-in spec) before anything is
	 * asked or sent; the words are applied to the real spec after. */
	pb_set_str(&probe->container->image, "probe");
	if (spec_service_args(SPEC_UPDATE, argc, argv, probe, &cli, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	if (cli.help) {
		rc = usage(service_update_usage);
		goto out;
	}
	if (cli.rollback) {
		sent = now_wall_ns();
		if (service_send_update(cli.service, NULL, true))
			goto out;
		puts(cli.service);
		fflush(stdout);
		rc = cli.detach ? 0 : service_converge(cli.service, PROGRESS_ROLLBACK, sent, cli.quiet);
		goto out;
	}
	spec = service_get_spec(cli.service);
	if (!spec)
		goto out;
	if (spec_service_args(SPEC_UPDATE, argc, argv, spec, &cli2, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	if (service_network_rm_resolve(spec, &cli2))
		goto out;
	if (spec_service_validate(spec, err, sizeof(err)) < 0) {
		fail("%s", err);
		goto out;
	}
	sent = now_wall_ns();
	if (service_send_update(cli.service, spec, false))
		goto out;
	puts(cli.service);
	fflush(stdout);
	rc = cli.detach ? 0 : service_converge(cli.service, PROGRESS_UPDATE, sent, cli.quiet);
out:
	pb_free(probe);
	pb_free(spec);
	spec_cli_clear(&cli);
	spec_cli_clear(&cli2);
	return rc;
}

enum { S_DETACH = ARG_OWN, S_TAIL, S_RAW, S_FOLLOW };

static int service_rollback(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "detach", 'd', false, S_DETACH },
		{ "quiet", 'q', false, ARG_QUIET },
		{ NULL, 0, false, 0 },
	};
	const char *svc = NULL, *val;
	bool detach = false, quiet = false;
	struct opt_iter it;
	char err[256];
	int id;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == ARG_HELP)
			return usage("Usage: swarmadm service rollback [-d] [-q] SERVICE\n");
		if (id == S_DETACH && opt_bool(val, &detach) < 0)
			return fail("invalid value \"%s\" for --detach", val);
		if (id == ARG_QUIET && opt_bool(val, &quiet) < 0)
			return fail("invalid value \"%s\" for --quiet", val);
		if (id == 0) {
			if (svc)
				return fail("service rollback takes one SERVICE");
			svc = val;
		}
	}
	if (!svc)
		return fail("service rollback needs a SERVICE");
	int64_t sent = now_wall_ns();
	if (service_send_update(svc, NULL, true))
		return 1;
	puts(svc);
	fflush(stdout);
	return detach ? 0 : service_converge(svc, PROGRESS_ROLLBACK, sent, quiet);
}

static int service_scale(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "detach", 'd', false, S_DETACH },
		{ "quiet", 'q', false, ARG_QUIET },
		{ NULL, 0, false, 0 },
	};
	char **names = xcalloc((size_t)argc + 1, sizeof(*names));
	uint64_t *counts = xcalloc((size_t)argc + 1, sizeof(*counts));
	bool *scaled = xcalloc((size_t)argc + 1, sizeof(*scaled));
	size_t n = 0;
	bool detach = false, quiet = false;
	struct opt_iter it;
	const char *val;
	char err[256];
	int id, rc = 1;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0) {
			fail("%s", err);
			goto out;
		}
		if (id == ARG_HELP) {
			rc = usage("Usage: swarmadm service scale [-d] [-q] SERVICE=REPLICAS...\n");
			goto out;
		}
		if (id == S_DETACH)
			detach = true;
		if (id == ARG_QUIET)
			quiet = true;
		if (id != 0)
			continue;
		const char *eq = strchr(val, '=');
		if (!eq || eq == val) {
			fail("invalid scale specifier \"%s\": expected SERVICE=REPLICAS", val);
			goto out;
		}
		if (spec_uint_parse(eq + 1, &counts[n]) < 0) {
			fail("invalid replicas value %s: must be a non-negative integer", eq + 1);
			goto out;
		}
		names[n++] = strndup(val, (size_t)(eq - val));
	}
	if (!n) {
		fail("service scale needs SERVICE=REPLICAS");
		goto out;
	}
	rc = 0;
	int64_t sent = now_wall_ns();
	for (size_t i = 0; i < n; i++) {
		Swarm__ServiceSpec *spec = service_get_spec(names[i]);
		if (!spec) {
			rc = 1;
			continue;
		}
		if (strcmp(spec->mode, "global") == 0) {
			rc = fail("scale can only be used with replicated mode (service %s is global)", names[i]);
		} else {
			spec->replicas = counts[i];
			if (service_send_update(names[i], spec, false) == 0) {
				printf("%s scaled to %llu\n", names[i], (unsigned long long)counts[i]);
				fflush(stdout);
				scaled[i] = true;
			} else {
				rc = 1;
			}
		}
		pb_free(spec);
	}
	for (size_t i = 0; i < n && !detach; i++)
		if (scaled[i] && service_converge(names[i], PROGRESS_UPDATE, sent, quiet))
			rc = 1;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(counts);
	free(scaled);
	return rc;
}

/* ---- ls / ps / inspect / logs / rm ---- */

/* args_parse hook for the flags of logs. */
static int svc_flag(int id, const char **val, struct cmd_args *a)
{
	uint64_t u;

	switch (id) {
	case S_RAW:
		a->raw = true;
		break;
	case S_TAIL:
		if (strcmp(*val, "all") == 0)
			break;
		if (spec_uint_parse(*val, &u) < 0)
			return fail("invalid --tail \"%s\": a number of lines or \"all\"", *val);
		a->tail = (long)u;
		break;
	case S_FOLLOW:
		return fail("--follow is not supported yet");
	}
	return -1;
}

/* -1 to go on, else the exit status. */
static int svc_parse(int argc, char **argv, const char *help, struct cmd_args *a)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, ARG_HELP },
		{ "quiet", 'q', false, ARG_QUIET },
		{ "no-trunc", 0, false, ARG_NO_TRUNC },
		{ "format", 'f', true, ARG_FORMAT },
		{ "tail", 'n', true, S_TAIL },
		{ "raw", 0, false, S_RAW },
		{ "follow", 0, false, S_FOLLOW },
		{ NULL, 0, false, 0 },
	};

	return args_parse(argc, argv, defs, false, help, svc_flag, a);
}

static int service_cmp_name(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;

	return strcmp(format_get_str(x, "Spec.Name"), format_get_str(y, "Spec.Name"));
}

/* Ports as Docker's PORTS column: "*:80->80/tcp, *:8080->8080/udp". Only
 * ports of the given publish mode ("ingress" for services, "host" for
 * tasks). */
static void ports_column(struct json_object *ports, const char *mode, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);
		const char *pm = format_get_str(p, "PublishMode");
		const char *proto = format_get_str(p, "Protocol");
		if (strcmp(*pm ? pm : "ingress", mode) != 0)
			continue;
		int n = snprintf(out + len, outlen - len, "%s*:%lld->%lld/%s", len ? ", " : "",
				 (long long)format_get_int(p, "PublishedPort"),
				 (long long)format_get_int(p, "TargetPort"), *proto ? proto : "tcp");
		if (n < 0 || (size_t)n >= outlen - len)
			break;
		len += (size_t)n;
	}
}

static int service_ls(int argc, char **argv)
{
	static const char *const hdr[] = { "ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS" };
	struct cmd_args a;
	struct json_object *svcs;
	int rc = svc_parse(argc, argv, "Usage: swarmadm service ls [-q]\n", &a);

	if (rc >= 0)
		goto out;
	svcs = admin_json(SWARM__ADMIN_REQUEST__BODY_SERVICE_LS, a.words, a.n_words);
	if (!svcs) {
		rc = 1;
		goto out;
	}
	json_object_array_sort(svcs, service_cmp_name);
	struct table *t = table_new(ARRAY_SIZE(hdr));
	table_add(t, hdr);
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		struct json_object *s = json_object_array_get_idx(svcs, i);
		char id[13], replicas[64], ports[512];
		bool global = format_get(s, "Spec.Mode.Global") != NULL;
		if (a.quiet) {
			puts(format_get_str(s, "ID"));
			continue;
		}
		short_id(format_get_str(s, "ID"), id);
		if (format_get(s, "ServiceStatus"))
			snprintf(replicas, sizeof(replicas), "%lld/%lld",
				 (long long)format_get_int(s, "ServiceStatus.RunningTasks"),
				 (long long)format_get_int(s, "ServiceStatus.DesiredTasks"));
		else if (global)
			snprintf(replicas, sizeof(replicas), "?");
		else
			snprintf(replicas, sizeof(replicas), "?/%lld",
				 (long long)format_get_int(s, "Spec.Mode.Replicated.Replicas"));
		ports_column(format_get(s, "Endpoint.Ports"), "ingress", ports, sizeof(ports));
		if (!ports[0])
			ports_column(format_get(s, "Spec.EndpointSpec.Ports"), "ingress", ports, sizeof(ports));
		const char *row[] = { id, format_get_str(s, "Spec.Name"), global ? "global" : "replicated",
				      replicas, format_get_str(s, "Spec.TaskTemplate.ContainerSpec.Image"), ports };
		table_add(t, row);
	}
	print_table(t, a.quiet);
	json_object_put(svcs);
	rc = 0;
out:
	free(a.words);
	return rc;
}

/* The slot name `service ps` shows: "web.3", or "web.<node id>" in global
 * mode. */
static void task_display_name(struct json_object *t, char *out, size_t outlen)
{
	int64_t slot = format_get_int(t, "Slot");
	const char *svc = format_get_str(t, "ServiceName");

	if (!*svc)
		svc = format_get_str(t, "ServiceID");
	if (slot)
		snprintf(out, outlen, "%s.%lld", svc, (long long)slot);
	else
		snprintf(out, outlen, "%s.%s", svc, format_get_str(t, "NodeID"));
}

/* Same slot together (natural order of the slot number), newest first. */
static int task_cmp(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int c = strcmp(format_get_str(x, "ServiceName"), format_get_str(y, "ServiceName"));
	int64_t sx, sy, cx = 0, cy = 0;

	if (c)
		return c;
	sx = format_get_int(x, "Slot");
	sy = format_get_int(y, "Slot");
	if (sx != sy)
		return sx < sy ? -1 : 1;
	if (!sx && (c = strcmp(format_get_str(x, "NodeID"), format_get_str(y, "NodeID"))))
		return c;
	format_time_parse(format_get_str(x, "CreatedAt"), &cx);
	format_time_parse(format_get_str(y, "CreatedAt"), &cy);
	if (cx != cy)
		return cx > cy ? -1 : 1;
	return strcmp(format_get_str(x, "ID"), format_get_str(y, "ID"));
}

/* The tasks of several services or nodes (body SERVICE_PS or NODE_PS), one
 * request each, as one array. NULL after printing the error. */
static struct json_object *tasks_of(Swarm__AdminRequest__BodyCase body, char **names, size_t n)
{
	struct json_object *all = json_object_new_array();

	/* One request per name: the manager answers one service or node. */
	for (size_t i = 0; i < n; i++) {
		struct json_object *part = admin_json(body, &names[i], 1);
		if (!part) {
			json_object_put(all);
			return NULL;
		}
		for (size_t k = 0; k < json_object_array_length(part); k++)
			json_object_array_add(all, json_object_get(json_object_array_get_idx(part, k)));
		json_object_put(part);
	}
	return all;
}

/* The `service ps` / `node ps` table for an array of tasks (render_task
 * objects); quiet prints task ids only. */
static void print_tasks(struct json_object *tasks, bool no_trunc, bool quiet)
{
	static const char *const hdr[] = { "ID", "NAME", "IMAGE", "NODE", "DESIRED STATE",
					   "CURRENT STATE", "ERROR", "PORTS" };
	struct table *t = table_new(ARRAY_SIZE(hdr));
	int64_t now = now_wall_ns();
	char prev[256] = "";

	json_object_array_sort(tasks, task_cmp);
	table_add(t, hdr);
	for (size_t i = 0; i < json_object_array_length(tasks); i++) {
		struct json_object *task = json_object_array_get_idx(tasks, i);
		const char *tid = format_get_str(task, "ID");
		char id[64], name[256], shown[300], image[256], desired[32], state[32], current[160];
		char errcol[512], ports[256], since[64];
		int64_t ts = 0;

		snprintf(id, sizeof(id), "%s", tid);
		if (!no_trunc)
			id[strlen(id) > 12 ? 12 : strlen(id)] = '\0';
		if (quiet) {
			puts(id);
			continue;
		}
		task_display_name(task, name, sizeof(name));
		if (strcmp(name, prev) == 0)
			snprintf(shown, sizeof(shown), " \\_ %s", name);
		else if (no_trunc)
			snprintf(shown, sizeof(shown), "%s.%s", name, tid);
		else
			snprintf(shown, sizeof(shown), "%s", name);
		snprintf(prev, sizeof(prev), "%s", name);

		snprintf(image, sizeof(image), "%s", format_get_str(task, "Spec.ContainerSpec.Image"));
		if (!no_trunc) {
			char *at = strchr(image, '@');
			if (at)
				*at = '\0';
		}
		format_capitalize(format_get_str(task, "DesiredState"), desired, sizeof(desired));
		format_capitalize(format_get_str(task, "Status.State"), state, sizeof(state));
		format_time_parse(format_get_str(task, "Status.Timestamp"), &ts);
		format_since(ts, now, since, sizeof(since));
		const char *health = format_get_str(task, "Status.Health");
		if (strcmp(health, "healthy") == 0 || strcmp(health, "unhealthy") == 0)
			snprintf(current, sizeof(current), "%s (%s) %s", state, health, since);
		else if (*health)
			snprintf(current, sizeof(current), "%s (health: %s) %s", state, health, since);
		else
			snprintf(current, sizeof(current), "%s %s", state, since);

		const char *e = format_get_str(task, "Status.Err");
		if (!*e)
			e = format_get_str(task, "AllocError");
		if (!*e)
			errcol[0] = '\0';
		else if (!no_trunc && strlen(e) > 30)
			snprintf(errcol, sizeof(errcol), "\"%.29s…\"", e);
		else
			snprintf(errcol, sizeof(errcol), "\"%s\"", e);
		ports_column(format_get(task, "Status.PortStatus.Ports"), "host", ports, sizeof(ports));
		const char *node = format_get_str(task, "NodeName");
		if (!*node)
			node = format_get_str(task, "NodeID");
		const char *row[] = { id, shown, image, node, desired, current, errcol, ports };
		table_add(t, row);
	}
	print_table(t, quiet);
}

int print_tasks_of(Swarm__AdminRequest__BodyCase body, char **names, size_t n, bool no_trunc,
		   bool quiet)
{
	struct json_object *tasks = tasks_of(body, names, n);

	if (!tasks)
		return 1;
	print_tasks(tasks, no_trunc, quiet);
	json_object_put(tasks);
	return 0;
}

static int service_ps(int argc, char **argv)
{
	struct cmd_args a;
	int rc = svc_parse(argc, argv, "Usage: swarmadm service ps [--no-trunc] [-q] SERVICE...\n", &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("service ps needs at least one SERVICE");
		goto out;
	}
	rc = print_tasks_of(SWARM__ADMIN_REQUEST__BODY_SERVICE_PS, a.words, a.n_words, a.no_trunc, a.quiet);
out:
	free(a.words);
	return rc;
}

static int service_inspect(int argc, char **argv)
{
	struct cmd_args a;
	int rc = svc_parse(argc, argv, "Usage: swarmadm service inspect [--format FMT] SERVICE...\n", &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("service inspect needs at least one SERVICE");
		goto out;
	}
	rc = inspect_names(SWARM__ADMIN_REQUEST__BODY_SERVICE_INSPECT, a.words, a.n_words, a.format);
out:
	free(a.words);
	return rc;
}

/* Prints the last `tail` lines (all when < 0) of text, each behind prefix. */
static void logs_print(const char *text, const char *prefix, long tail)
{
	const char *p = text, *end = text + strlen(text);
	long lines = 0;

	if (end > text && end[-1] != '\n')
		lines++;
	for (const char *q = text; q < end; q++)
		if (*q == '\n')
			lines++;
	for (long skip = tail >= 0 && lines > tail ? lines - tail : 0; skip > 0 && p < end; skip--) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		printf("%s%.*s\n", prefix, (int)len, p);
		p += len + (nl ? 1 : 0);
	}
}

/* First version: the logs of the service's tasks whose containers run on
 * this node, read through the local agent; other nodes' tasks are named on
 * stderr but not read. */
static int service_logs(int argc, char **argv)
{
	struct cmd_args a;
	struct json_object *tasks = NULL;
	const char *self;
	size_t elsewhere = 0, shown = 0;
	int rc = svc_parse(argc, argv, "Usage: swarmadm service logs [--tail N] [--raw] SERVICE\n\n"
			   "Shows the logs of the service's tasks on this node (other nodes: not yet).\n", &a);

	if (rc >= 0)
		goto out;
	if (a.n_words != 1) {
		rc = fail("service logs needs one SERVICE");
		goto out;
	}
	tasks = admin_json(SWARM__ADMIN_REQUEST__BODY_SERVICE_PS, a.words, 1);
	if (!tasks) {
		rc = 1;
		goto out;
	}
	json_object_array_sort(tasks, task_cmp);
	self = self_node_id();
	rc = 0;
	for (size_t i = 0; i < json_object_array_length(tasks); i++) {
		struct json_object *t = json_object_array_get_idx(tasks, i);
		const char *tid = format_get_str(t, "ID");
		Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
		Swarm__ContainerRequest cr = SWARM__CONTAINER_REQUEST__INIT;
		Swarm__LocalResponse *resp = NULL;
		char err[256], name[256], prefix[512];

		if (self && strcmp(format_get_str(t, "NodeID"), self) != 0) {
			elsewhere++;
			continue;
		}
		cr.name = (char *)tid;
		req.body_case = SWARM__LOCAL_REQUEST__BODY_CONTAINER_LOGS;
		req.container_logs = &cr;
		if (rpc_local(&req, RPC_TIMEOUT_MS, &resp, err, sizeof(err)) < 0) {
			rc = fail("%s", err);
			break;
		}
		if (*resp->error) {
			/* Without our node id every task is tried: a miss is
			 * a task elsewhere, or one whose container is gone. */
			if (!self)
				elsewhere++;
			pb_free(resp);
			continue;
		}
		task_display_name(t, name, sizeof(name));
		if (a.raw)
			prefix[0] = '\0';
		else
			snprintf(prefix, sizeof(prefix), "%s.%.12s@%s    | ", name, tid,
				 *format_get_str(t, "NodeName") ? format_get_str(t, "NodeName")
								: format_get_str(t, "NodeID"));
		logs_print(resp->text, prefix, a.tail);
		shown++;
		pb_free(resp);
	}
	if (elsewhere)
		fprintf(stderr, "swarmadm: note: %zu task(s) of %s are not on this node; their logs are "
			"not shown (run 'swarmadm service logs' on their nodes)\n", elsewhere, a.words[0]);
out:
	json_object_put(tasks);
	free(a.words);
	return rc;
}

static int service_rm(int argc, char **argv)
{
	struct cmd_args a;
	int rc = svc_parse(argc, argv, "Usage: swarmadm service rm SERVICE...\n", &a);

	if (rc >= 0)
		goto out;
	if (!a.n_words) {
		rc = fail("service rm needs at least one SERVICE");
		goto out;
	}
	rc = remove_names(SWARM__ADMIN_REQUEST__BODY_SERVICE_RM, a.words, a.n_words, false);
out:
	free(a.words);
	return rc;
}

int cmd_service(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(int, char **); } subs[] = {
		{ "create", service_create }, { "update", service_update },
		{ "rollback", service_rollback }, { "scale", service_scale },
		{ "ls", service_ls }, { "list", service_ls }, { "ps", service_ps },
		{ "inspect", service_inspect }, { "logs", service_logs },
		{ "rm", service_rm }, { "remove", service_rm },
	};
	const char *sub = argv[0];

	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (strcmp(sub, subs[i].name) == 0)
			return subs[i].fn(argc - 1, argv + 1);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0)
		return usage(service_usage);
	return fail("unknown service command \"%s\" (see 'swarmadm service --help')", sub);
}
