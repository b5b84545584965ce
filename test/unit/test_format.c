/* swarmadm's output (swarmadm/format.c, swarmadm/progress.c): --format
 * paths on a JSON document (json vs text, unknown paths), table alignment,
 * inspect's JSON layout, Docker's human times and sizes, and the
 * convergence progress of `service create/update`. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "swarmadm/format.h"
#include "swarmadm/progress.h"

#define ERRLEN 256

/* A service as render_service prints it (trimmed). */
static const char service_json[] =
	"{\"ID\":\"etq3t5muc0lnpqr14e3sodmno\",\"Version\":{\"Index\":7},"
	"\"Spec\":{\"Name\":\"my-nginx\",\"Labels\":{\"b\":\"2\",\"a\":\"1\"},"
	"\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx\",\"Args\":[\"ping\",\"x\"]},\"ForceUpdate\":0},"
	"\"Mode\":{\"Replicated\":{\"Replicas\":5}},\"EndpointSpec\":{\"Mode\":\"vip\"}},"
	"\"Endpoint\":{\"VirtualIPs\":[{\"NetworkID\":\"2mhfiejb2g77mfxss4dtu18h9\",\"Addr\":\"198.18.0.89/24\"},"
	"{\"NetworkID\":\"mun52zjgstgxxinskkfqm4qt1\",\"Addr\":\"198.19.10.89/24\"}]},"
	"\"Ratio\":0.5,\"Ok\":true,\"Nothing\":null}";

static int setup_doc(void **state)
{
	*state = json_tokener_parse(service_json);
	return *state ? 0 : -1;
}

static int teardown_doc(void **state)
{
	json_object_put(*state);
	return 0;
}

/* Executes tmpl on the doc and compares. */
static void check_tmpl(struct json_object *doc, const char *tmpl, const char *want)
{
	char err[ERRLEN] = "", *out = NULL;

	if (format_template(tmpl, doc, &out, err, sizeof(err)) != 0)
		fail_msg("template %s: %s", tmpl, err);
	if (strcmp(out, want) != 0)
		fail_msg("template %s: got \"%s\", want \"%s\"", tmpl, out, want);
	free(out);
}

static void check_tmpl_error(struct json_object *doc, const char *tmpl, const char *msg)
{
	char err[ERRLEN] = "", *out = NULL;

	if (format_template(tmpl, doc, &out, err, sizeof(err)) != -EINVAL)
		fail_msg("template %s accepted: \"%s\"", tmpl, out ? out : "");
	if (!strstr(err, msg))
		fail_msg("template %s: error \"%s\" lacks \"%s\"", tmpl, err, msg);
	assert_true(strncmp(err, "template: ", 10) == 0);
}

static void test_template_paths(void **state)
{
	struct json_object *doc = *state;

	check_tmpl(doc, "{{json .Endpoint.VirtualIPs}}",
		   "[{\"NetworkID\":\"2mhfiejb2g77mfxss4dtu18h9\",\"Addr\":\"198.18.0.89/24\"},"
		   "{\"NetworkID\":\"mun52zjgstgxxinskkfqm4qt1\",\"Addr\":\"198.19.10.89/24\"}]");
	check_tmpl(doc, "{{.Spec.Name}}", "my-nginx");
	check_tmpl(doc, "{{.ID}}", "etq3t5muc0lnpqr14e3sodmno");
	check_tmpl(doc, "name={{.Spec.Name}} id={{ .ID }}!", "name=my-nginx id=etq3t5muc0lnpqr14e3sodmno!");
	check_tmpl(doc, "plain text", "plain text");
	check_tmpl(doc, "", "");
	check_tmpl(doc, "{{.Spec.Mode.Replicated.Replicas}}", "5");
	check_tmpl(doc, "{{.Ratio}} {{.Ok}} {{.Nothing}}", "0.5 true <nil>");
	/* json vs text of the same value */
	check_tmpl(doc, "{{.Spec.Name | json}}", "\"my-nginx\"");
	check_tmpl(doc, "{{json .Spec.Name}}", "\"my-nginx\"");
	check_tmpl(doc, "{{.Spec.TaskTemplate.ContainerSpec.Args}}", "[ping x]");
	check_tmpl(doc, "{{json .Spec.TaskTemplate.ContainerSpec.Args}}", "[\"ping\",\"x\"]");
	check_tmpl(doc, "{{.Spec.Labels}}", "map[a:1 b:2]");
	check_tmpl(doc, "{{json .Spec.Labels}}", "{\"b\":\"2\",\"a\":\"1\"}");
	check_tmpl(doc, "{{json .Version}}", "{\"Index\":7}");
	/* functions */
	check_tmpl(doc, "{{index .Spec.Labels \"a\"}}", "1");
	check_tmpl(doc, "{{len .Endpoint.VirtualIPs}}", "2");
}

static void test_template_more(void **state)
{
	struct json_object *doc = *state;

	check_tmpl(doc, "{{index .Endpoint.VirtualIPs 1 | json}}",
		   "{\"NetworkID\":\"mun52zjgstgxxinskkfqm4qt1\",\"Addr\":\"198.19.10.89/24\"}");
	check_tmpl(doc, "{{upper .Spec.Name}}", "MY-NGINX");
	check_tmpl(doc, "{{.Spec.Name | upper | lower}}", "my-nginx");
	check_tmpl(doc, "{{join .Spec.TaskTemplate.ContainerSpec.Args \",\"}}", "ping,x");
	check_tmpl(doc, "a  {{- .Spec.Name -}}  b", "amy-nginxb");
	check_tmpl(doc, "{{/* comment */}}c", "c");
	/* Docker's Go field is ID even where the JSON key is "Id" */
	check_tmpl(doc, "{{.id}}", "etq3t5muc0lnpqr14e3sodmno");
	/* optional fields the manager leaves out get Go's zero values */
	check_tmpl(doc, "{{.PreviousSpec}}", "<nil>");
	check_tmpl(doc, "{{json .UpdateStatus}}", "null");
	check_tmpl(doc, "{{json .Spec.TaskTemplate.Networks}}", "[]");
	check_tmpl(doc, "[{{.Spec.TaskTemplate.ContainerSpec.Hostname}}]", "[]");
	check_tmpl(doc, "{{.Spec.TaskTemplate.ContainerSpec.StopGracePeriod}}", "0");
	check_tmpl(doc, "{{len .Spec.TaskTemplate.ContainerSpec.Env}}", "0");
}

static void test_template_errors(void **state)
{
	struct json_object *doc = *state;

	check_tmpl_error(doc, "{{.Spec.Foo}}", "no field \"Foo\"");
	check_tmpl_error(doc, "{{.Nope}}", "no field \"Nope\"");
	check_tmpl_error(doc, "{{.Spec.Name.More}}", "non-object");
	check_tmpl_error(doc, "{{.Endpoint.VirtualIPs.Addr}}", "non-object");
	check_tmpl_error(doc, "{{.ID", "unclosed action");
	check_tmpl_error(doc, "{{}}", "missing value");
	check_tmpl_error(doc, "{{range .Endpoint.VirtualIPs}}x{{end}}", "\"range\" actions are not supported");
	check_tmpl_error(doc, "{{if .ID}}x{{end}}", "\"if\" actions");
	check_tmpl_error(doc, "{{bogus .ID}}", "not defined");
	check_tmpl_error(doc, "{{json}}", "json takes one argument");
	check_tmpl_error(doc, "{{index .Spec.Labels}}", "index takes");
	check_tmpl_error(doc, "{{index .Endpoint.VirtualIPs 5}}", "out of range");
	check_tmpl_error(doc, "{{.ID | }}", "empty command");
	check_tmpl_error(doc, "{{\"abc}}", "unterminated string");
	check_tmpl_error(doc, "{{.PreviousSpec.Name}}", "no field");
	check_tmpl_error(doc, "{{(index .Endpoint.VirtualIPs 1).Addr}}", "parentheses are not supported");
}

static void test_paths(void **state)
{
	struct json_object *doc = *state;

	assert_string_equal(format_get_str(doc, "Spec.Name"), "my-nginx");
	assert_string_equal(format_get_str(doc, ".Spec.Name"), "my-nginx");
	assert_string_equal(format_get_str(doc, "Endpoint.VirtualIPs.1.Addr"), "198.19.10.89/24");
	assert_string_equal(format_get_str(doc, "Endpoint.VirtualIPs.2.Addr"), "");
	assert_string_equal(format_get_str(doc, "Spec.Missing"), "");
	assert_string_equal(format_get_str(doc, "Version.Index"), "");  /* not a string */
	assert_int_equal(format_get_int(doc, "Version.Index"), 7);
	assert_int_equal(format_get_int(doc, "Spec.Mode.Replicated.Replicas"), 5);
	assert_null(format_get(doc, "Spec.Mode.Global"));
	assert_non_null(format_get(doc, "Spec.Mode.Replicated"));
}

/* ---- tables ---- */

static void check_table(struct table *t, const char *want)
{
	char *out = table_render(t);

	if (strcmp(out, want) != 0)
		fail_msg("table:\n%s\nwant:\n%s", out, want);
	free(out);
	table_free(t);
}

static void test_table(void **state)
{
	static const char *const hdr[] = { "NETWORK ID", "NAME", "DRIVER", "SCOPE" };
	static const char *const r1[] = { "2mhfiejb2g77", "ingress", "overlay", "swarm" };
	static const char *const r2[] = { "mun52zjgstgx", "ol_net", "overlay", "swarm" };
	struct table *t = table_new(4);

	(void)state;
	table_add(t, hdr);
	table_add(t, r1);
	table_add(t, r2);
	/* the walk-through's `network ls`: widest cell + 3 spaces */
	check_table(t,
		    "NETWORK ID     NAME      DRIVER    SCOPE\n"
		    "2mhfiejb2g77   ingress   overlay   swarm\n"
		    "mun52zjgstgx   ol_net    overlay   swarm\n");

	/* empty trailing cells leave no trailing blanks; NULL is empty */
	static const char *const h2[] = { "ID", "NAME", "ERROR", "PORTS" };
	static const char *const a2[] = { "i2skqpwsd80g", "my-centos.1", "", NULL };
	static const char *const b2[] = { "x", " \\_ my-centos.1", "\"No such image: b…\"", "*:80->80/tcp" };
	t = table_new(4);
	table_add(t, h2);
	table_add(t, a2);
	table_add(t, b2);
	check_table(t,
		    "ID             NAME              ERROR                 PORTS\n"
		    "i2skqpwsd80g   my-centos.1\n"
		    "x               \\_ my-centos.1   \"No such image: b…\"   *:80->80/tcp\n");

	/* header only */
	t = table_new(2);
	static const char *const h3[] = { "A", "B" };
	table_add(t, h3);
	check_table(t, "A   B\n");

	/* no rows at all */
	t = table_new(3);
	check_table(t, "");
	assert_int_equal(FORMAT_TABLE_GAP, 3);
}

/* ---- JSON ---- */

static void test_json_pretty(void **state)
{
	struct json_object *doc = json_tokener_parse(
		"[{\"ID\":\"a\",\"Version\":{\"Index\":1},\"Labels\":{},\"Ports\":[],"
		"\"Addr\":\"198.19.10.89/24\",\"Q\":\"say \\\"hi\\\"\\n\",\"N\":null,\"B\":false,"
		"\"L\":[1,2]}]");
	char *s;

	(void)state;
	s = format_json_pretty(doc);
	assert_string_equal(s,
			    "[\n"
			    "    {\n"
			    "        \"ID\": \"a\",\n"
			    "        \"Version\": {\n"
			    "            \"Index\": 1\n"
			    "        },\n"
			    "        \"Labels\": {},\n"
			    "        \"Ports\": [],\n"
			    "        \"Addr\": \"198.19.10.89/24\",\n"
			    "        \"Q\": \"say \\\"hi\\\"\\n\",\n"
			    "        \"N\": null,\n"
			    "        \"B\": false,\n"
			    "        \"L\": [\n"
			    "            1,\n"
			    "            2\n"
			    "        ]\n"
			    "    }\n"
			    "]");
	free(s);
	s = format_json_compact(doc);
	assert_string_equal(s, "[{\"ID\":\"a\",\"Version\":{\"Index\":1},\"Labels\":{},\"Ports\":[],"
			    "\"Addr\":\"198.19.10.89/24\",\"Q\":\"say \\\"hi\\\"\\n\",\"N\":null,\"B\":false,"
			    "\"L\":[1,2]}]");
	free(s);
	json_object_put(doc);

	doc = json_object_new_array();
	s = format_json_pretty(doc);
	assert_string_equal(s, "[]");
	free(s);
	json_object_put(doc);
}

/* ---- times and sizes ---- */

static void test_time_parse(void **state)
{
	int64_t ns;

	(void)state;
	assert_int_equal(format_time_parse("2026-11-25T17:21:43.123456789Z", &ns), 0);
	assert_int_equal(ns, 1795627303123456789LL);
	assert_int_equal(format_time_parse("2026-11-25T17:21:43.5Z", &ns), 0);
	assert_int_equal(ns, 1795627303500000000LL);
	assert_int_equal(format_time_parse("2026-11-25T17:21:43Z", &ns), 0);
	assert_int_equal(ns, 1795627303000000000LL);
	assert_int_equal(format_time_parse("2026-11-25T18:21:43+01:00", &ns), 0);
	assert_int_equal(ns, 1795627303000000000LL);
	assert_int_equal(format_time_parse("0001-01-01T00:00:00Z", &ns), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(format_time_parse("2026-11-25 17:21:43Z", &ns), -EINVAL);
	assert_int_equal(format_time_parse("2026-11-25T17:21:43", &ns), -EINVAL);
	assert_int_equal(format_time_parse("2026-11-25T17:21:43.Z", &ns), -EINVAL);
	assert_int_equal(format_time_parse("", &ns), -EINVAL);
	assert_int_equal(format_time_parse(NULL, &ns), -EINVAL);
}

static void test_human(void **state)
{
	static const struct { int64_t s; const char *want; } cases[] = {
		{ 0, "Less than a second" }, { 1, "1 second" }, { 18, "18 seconds" },
		{ 59, "59 seconds" }, { 60, "About a minute" }, { 119, "About a minute" },
		{ 120, "2 minutes" }, { 3599, "59 minutes" }, { 3600, "About an hour" },
		{ 3600 * 2, "2 hours" }, { 3600 * 47, "47 hours" }, { 3600 * 48, "2 days" },
		{ 86400 * 13, "13 days" }, { 86400 * 14, "2 weeks" }, { 86400 * 60, "2 months" },
		{ 86400 * 365 * 2, "2 years" },
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		human_duration(cases[i].s * 1000000000LL, out, sizeof(out));
		if (strcmp(out, cases[i].want))
			fail_msg("%llds: \"%s\", want \"%s\"", (long long)cases[i].s, out, cases[i].want);
	}
	human_duration(999999999, out, sizeof(out));
	assert_string_equal(out, "Less than a second");
	format_since(1000000000LL, 19000000000LL, out, sizeof(out));
	assert_string_equal(out, "18 seconds ago");
	format_since(5, 5, out, sizeof(out));
	assert_string_equal(out, "less than a second ago");
	format_since(0, 90000000000LL, out, sizeof(out));
	assert_string_equal(out, "about a minute ago");
	/* a clock behind the server's does not go negative */
	format_since(10000000000LL, 5, out, sizeof(out));
	assert_string_equal(out, "less than a second ago");

	format_human_size(0, out, sizeof(out));
	assert_string_equal(out, "0B");
	format_human_size(999, out, sizeof(out));
	assert_string_equal(out, "999B");
	format_human_size(5200, out, sizeof(out));
	assert_string_equal(out, "5.2kB");
	format_human_size(187800000, out, sizeof(out));
	assert_string_equal(out, "187.8MB");
	format_human_size(1000000000, out, sizeof(out));
	assert_string_equal(out, "1GB");

	format_capitalize("running", out, sizeof(out));
	assert_string_equal(out, "Running");
	format_capitalize("", out, sizeof(out));
	assert_string_equal(out, "");
}

/* ---- progress ---- */

/* A task JSON object as render_task prints it. */
static struct json_object *task(int slot, const char *node, int version, const char *desired,
				const char *state, const char *health, const char *err, const char *created)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "{\"ID\":\"t%d%s\",\"Slot\":%d,\"NodeID\":\"%s\",\"CreatedAt\":\"%s\","
		 "\"Spec\":{\"ContainerSpec\":{\"Image\":\"nginx:%d\"}},"
		 "\"SpecVersion\":{\"Index\":%d},\"DesiredState\":\"%s\","
		 "\"Status\":{\"State\":\"%s\",\"Health\":\"%s\",\"Err\":\"%s\"}}",
		 slot, node, slot, node, created, version, version, desired, state, health, err);
	return json_tokener_parse(buf);
}

static struct json_object *service(int replicas, int version, const char *update_state)
{
	char buf[512];

	if (replicas < 0)
		snprintf(buf, sizeof(buf),
			 "{\"ID\":\"s\",\"Version\":{\"Index\":%d},\"Spec\":{\"Mode\":{\"Global\":{}},"
			 "\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:%d\"}}}%s%s%s}",
			 version, version, *update_state ? ",\"UpdateStatus\":{\"State\":\"" : "",
			 update_state, *update_state ? "\",\"Message\":\"task t1 failed\"}" : "");
	else
		snprintf(buf, sizeof(buf),
			 "{\"ID\":\"s\",\"Version\":{\"Index\":%d},\"Spec\":{\"Mode\":{\"Replicated\":"
			 "{\"Replicas\":%d}},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx:%d\"}}}%s%s%s}",
			 version, replicas, version, *update_state ? ",\"UpdateStatus\":{\"State\":\"" : "",
			 update_state, *update_state ? "\",\"Message\":\"task t1 failed\"}" : "");
	return json_tokener_parse(buf);
}

#define T0 "2026-11-25T17:21:43Z"
#define T1 "2026-11-25T17:21:44Z"

static void test_progress_replicated(void **state)
{
	struct json_object *svc = service(3, 2, ""), *tasks = json_object_new_array();
	struct progress p;
	char **lines;
	size_t n;

	(void)state;
	json_object_array_add(tasks, task(1, "n1", 2, "running", "running", "", "", T0));
	json_object_array_add(tasks, task(2, "n2", 2, "running", "running", "", "", T0));
	json_object_array_add(tasks, task(3, "n3", 2, "running", "preparing", "", "", T0));
	progress_compute(svc, tasks, PROGRESS_CREATE, 0, &p);
	assert_int_equal(p.want, 3);
	assert_int_equal(p.running, 2);
	assert_int_equal(p.verdict, PROGRESS_WAIT);
	assert_int_equal(p.n_lines, 3);
	n = progress_lines(&p, true, &lines);
	assert_int_equal(n, 4);
	assert_string_equal(lines[0], "overall progress: 2 out of 3 tasks");
	assert_string_equal(lines[1], "1/3: running   [==================================================>]");
	assert_string_equal(lines[3], "3/3: preparing [=================================>                 ]");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	n = progress_lines(&p, false, &lines);
	assert_string_equal(lines[1], "1/3: running");
	assert_string_equal(lines[3], "3/3: preparing");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	progress_clear(&p);

	/* the third one runs: converged */
	json_object_array_put_idx(tasks, 2, task(3, "n3", 2, "running", "running", "", "", T0));
	progress_compute(svc, tasks, PROGRESS_CREATE, 0, &p);
	assert_int_equal(p.running, 3);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	progress_clear(&p);
	json_object_put(svc);
	json_object_put(tasks);
}

static void test_progress_update(void **state)
{
	struct json_object *svc = service(2, 3, "updating"), *tasks = json_object_new_array();
	struct progress p;

	(void)state;
	/* slot 1 updated; slot 2 still runs the old spec (version 2, other image) */
	json_object_array_add(tasks, task(1, "n1", 2, "shutdown", "shutdown", "", "", T0));
	json_object_array_add(tasks, task(1, "n1", 3, "running", "running", "", "", T1));
	json_object_array_add(tasks, task(2, "n2", 2, "running", "running", "", "", T0));
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.want, 2);
	assert_int_equal(p.running, 1);
	assert_int_equal(p.n_lines, 1);
	assert_int_equal(p.verdict, PROGRESS_WAIT);
	progress_clear(&p);
	json_object_put(svc);

	/* all new, but the manager still says "updating": wait */
	json_object_array_put_idx(tasks, 2, task(2, "n2", 3, "running", "running", "", "", T1));
	svc = service(2, 3, "updating");
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.running, 2);
	assert_int_equal(p.verdict, PROGRESS_WAIT);
	progress_clear(&p);
	json_object_put(svc);

	svc = service(2, 3, "completed");
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	progress_clear(&p);
	json_object_put(svc);

	/* paused update fails the wait with the manager's message */
	svc = service(2, 3, "paused");
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.verdict, PROGRESS_FAILED);
	assert_string_equal(p.message, "update paused: task t1 failed");
	progress_clear(&p);
	/* ...unless that pause is older than the change being waited for */
	json_object_object_add(json_object_object_get(svc, "UpdateStatus"), "StartedAt",
			       json_object_new_string(T0));
	progress_compute(svc, tasks, PROGRESS_UPDATE, 1795627303000000000LL + 5000000000LL, &p);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	progress_clear(&p);
	progress_compute(svc, tasks, PROGRESS_UPDATE, 1795627303000000000LL, &p);
	assert_int_equal(p.verdict, PROGRESS_FAILED);
	progress_clear(&p);
	json_object_put(svc);

	/* failure action rollback: Docker's "service rolled back" */
	svc = service(2, 3, "rollback_completed");
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.verdict, PROGRESS_FAILED);
	assert_string_equal(p.message, "service rolled back: task t1 failed");
	progress_clear(&p);
	/* the same state ends a manual rollback well */
	progress_compute(svc, tasks, PROGRESS_ROLLBACK, 0, &p);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	progress_clear(&p);
	json_object_put(svc);

	/* a scale-only change (version 4, same task template) restarts nothing:
	 * tasks of version 3 with an equal Spec count */
	svc = service(2, 4, "");
	json_object_put(tasks);
	tasks = json_object_new_array();
	json_object_array_add(tasks, task(1, "n1", 3, "running", "running", "", "", T0));
	json_object_array_add(tasks, task(2, "n2", 3, "running", "running", "", "", T0));
	/* the template says nginx:4, the tasks nginx:3: not current... */
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.running, 0);
	progress_clear(&p);
	/* ...until the template is the tasks' one */
	json_object_object_add(json_object_object_get(svc, "Spec"), "TaskTemplate",
			       json_tokener_parse("{\"ContainerSpec\":{\"Image\":\"nginx:3\"}}"));
	progress_compute(svc, tasks, PROGRESS_UPDATE, 0, &p);
	assert_int_equal(p.running, 2);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	progress_clear(&p);
	json_object_put(svc);
	json_object_put(tasks);
}

static void test_progress_health_and_errors(void **state)
{
	struct json_object *svc = service(2, 1, ""), *tasks = json_object_new_array();
	struct progress p;
	char **lines;
	size_t n;

	(void)state;
	json_object_array_add(tasks, task(1, "n1", 1, "running", "running", "starting", "", T0));
	json_object_array_add(tasks, task(2, "n2", 1, "shutdown", "rejected", "", "No such image: nginx", T0));
	progress_compute(svc, tasks, PROGRESS_CREATE, 0, &p);
	assert_int_equal(p.running, 0);
	assert_int_equal(p.n_lines, 2);
	assert_string_equal(p.lines[0].action, "starting");
	assert_string_equal(p.lines[1].action, "No such image: nginx");
	assert_int_equal(p.lines[1].step, 0);
	n = progress_lines(&p, true, &lines);
	assert_string_equal(lines[2], "2/2: No such image: nginx");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	progress_clear(&p);

	/* healthy now; the rejected slot got a replacement that runs */
	json_object_array_put_idx(tasks, 0, task(1, "n1", 1, "running", "running", "healthy", "", T0));
	json_object_array_add(tasks, task(2, "n3", 1, "running", "running", "", "", T1));
	progress_compute(svc, tasks, PROGRESS_CREATE, 0, &p);
	assert_int_equal(p.running, 2);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	assert_string_equal(p.lines[1].action, "running");
	progress_clear(&p);
	json_object_put(svc);
	json_object_put(tasks);

	/* zero replicas converge at once */
	svc = service(0, 1, "");
	tasks = json_object_new_array();
	progress_compute(svc, tasks, PROGRESS_CREATE, 0, &p);
	assert_int_equal(p.want, 0);
	assert_int_equal(p.verdict, PROGRESS_CONVERGED);
	progress_clear(&p);
	json_object_put(svc);
	json_object_put(tasks);
}

static void test_progress_global(void **state)
{
	struct json_object *svc = service(-1, 1, ""), *tasks = json_object_new_array();
	struct progress p;

	(void)state;
	json_object_array_add(tasks, task(0, "nodeaaaaaaaaaaaaaaaaaaaaa", 1, "running", "running", "", "", T0));
	json_object_array_add(tasks, task(0, "nodebbbbbbbbbbbbbbbbbbbbb", 1, "running", "assigned", "", "", T0));
	progress_compute(svc, tasks, PROGRESS_CREATE, 0, &p);
	assert_int_equal(p.want, 2);
	assert_int_equal(p.running, 1);
	assert_string_equal(p.lines[0].id, "nodeaaaaaaaa");
	assert_string_equal(p.lines[1].action, "assigned");
	assert_int_equal(p.verdict, PROGRESS_WAIT);
	progress_clear(&p);
	json_object_put(svc);
	json_object_put(tasks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_template_paths, setup_doc, teardown_doc),
		cmocka_unit_test_setup_teardown(test_template_more, setup_doc, teardown_doc),
		cmocka_unit_test_setup_teardown(test_template_errors, setup_doc, teardown_doc),
		cmocka_unit_test_setup_teardown(test_paths, setup_doc, teardown_doc),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_json_pretty),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_human),
		cmocka_unit_test(test_progress_replicated),
		cmocka_unit_test(test_progress_update),
		cmocka_unit_test(test_progress_health_and_errors),
		cmocka_unit_test(test_progress_global),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
