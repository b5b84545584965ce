/* bundle: task spec + image config -> OCI config.json, parsed back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "agent/bundle.h"
#include "pb.h"
#include "util.h"

static Swarm__Task *make_task(void)
{
	Swarm__Task *t = xmalloc(sizeof(*t));
	swarm__task__init(t);
	pb_set_str(&t->id, "t0123456789abcdefghijklmn");
	pb_set_str(&t->name, "web.1.t0123456789abcdefghijklmn");
	t->spec = xmalloc(sizeof(*t->spec));
	swarm__service_spec__init(t->spec);
	t->spec->container = xmalloc(sizeof(*t->spec->container));
	swarm__container_spec__init(t->spec->container);
	pb_set_str(&t->spec->container->image, "busybox");
	return t;
}

static Swarm__Task *make_full_task(void)
{
	Swarm__Task *t = make_task();
	Swarm__ContainerSpec *c = t->spec->container;
	PB_STRV_ADD(c, command, "/bin/app");
	PB_STRV_ADD(c, args, "-x");
	PB_STRV_ADD(c, env, "A=2");
	PB_STRV_ADD(c, env, "NEW=1");
	pb_set_str(&c->hostname, "h1");
	Swarm__Mount *m = xmalloc(sizeof(*m));
	swarm__mount__init(m);
	pb_set_str(&m->type, "bind");
	pb_set_str(&m->source, "/srv/data");
	pb_set_str(&m->target, "/data");
	m->readonly = 1;
	PB_PTRV_ADD(c, mounts, m);
	m = xmalloc(sizeof(*m));
	swarm__mount__init(m);
	pb_set_str(&m->type, "tmpfs");
	pb_set_str(&m->target, "/scratch");
	m->tmpfs_size = 1048576;
	PB_PTRV_ADD(c, mounts, m);
	t->spec->limits = xmalloc(sizeof(*t->spec->limits));
	swarm__resources__init(t->spec->limits);
	t->spec->limits->memory_bytes = 64LL << 20;
	t->spec->limits->nano_cpus = 500000000LL;
	Swarm__NetworkAttachment *na = xmalloc(sizeof(*na));
	swarm__network_attachment__init(na);
	pb_set_str(&na->network_name, "ol_net");
	pb_set_str(&na->addr, "198.18.0.5/24");
	PB_PTRV_ADD(t, networks, na);
	return t;
}

static void image_init(struct image_config *img)
{
	static char *ep[] = { "/ep" }, *cmd[] = { "c1" };
	static char *env[] = { "A=1", "PATH=/x" };
	memset(img, 0, sizeof(*img));
	img->rootfs = "/images/busybox/latest/rootfs";
	img->entrypoint = ep;
	img->n_entrypoint = 1;
	img->cmd = cmd;
	img->n_cmd = 1;
	img->env = env;
	img->n_env = 2;
	img->workdir = "/w";
}

static const struct bundle_paths paths = {
	.rootfs = "/state/tasks/t/rootfs",
	.netns = "/run/netns/t",
	.cgroups_path = "/lab-node1/t",
	.resolv_conf = "/state/tasks/t/resolv.conf",
	.hosts = "/state/tasks/t/hosts",
	.hostname = "/state/tasks/t/hostname",
};

static json_object *jget(json_object *o, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
		json_object *next = NULL;
		if (!json_object_object_get_ex(o, k, &next))
			return NULL;
		o = next;
	}
	return o;
}

static int jstrv_has(json_object *a, const char *s)
{
	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)), s) == 0)
			return (int)i + 1;
	return 0;
}

static json_object *find_mount(json_object *root, const char *dst)
{
	json_object *mounts = jget(root, "mounts");
	for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
		json_object *m = json_object_array_get_idx(mounts, i);
		if (strcmp(json_object_get_string(jget(m, "destination")), dst) == 0)
			return m;
	}
	return NULL;
}

static void test_config_full(void **state)
{
	Swarm__Task *t = make_full_task();
	struct image_config img;
	image_init(&img);
	char *json = NULL;
	assert_int_equal(bundle_config_json(t, &img, &paths, &json), 0);
	json_object *root = json_tokener_parse(json);
	assert_non_null(root);

	json_object *args = jget(root, "process.args");
	assert_int_equal(json_object_array_length(args), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(args, 0)), "/bin/app");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(args, 1)), "-x");

	json_object *env = jget(root, "process.env");
	assert_true(jstrv_has(env, "A=2"));
	assert_false(jstrv_has(env, "A=1"));
	assert_true(jstrv_has(env, "NEW=1"));
	assert_true(jstrv_has(env, "PATH=/x"));
	assert_true(jstrv_has(env, "HOSTNAME=h1"));
	/* the spec's value sits where the image had the key */
	assert_true(jstrv_has(env, "A=2") < jstrv_has(env, "PATH=/x"));

	assert_string_equal(json_object_get_string(jget(root, "process.cwd")), "/w");
	assert_false(json_object_get_boolean(jget(root, "process.terminal")));
	json_object *caps = jget(root, "process.capabilities.bounding");
	assert_int_equal(json_object_array_length(caps), 14);
	assert_true(jstrv_has(caps, "CAP_NET_BIND_SERVICE"));
	assert_false(jstrv_has(caps, "CAP_SYS_ADMIN"));
	assert_string_equal(json_object_get_string(jget(root, "hostname")), "h1");
	assert_string_equal(json_object_get_string(jget(root, "root.path")), paths.rootfs);

	json_object *m = find_mount(root, "/data");
	assert_non_null(m);
	assert_string_equal(json_object_get_string(jget(m, "type")), "bind");
	assert_string_equal(json_object_get_string(jget(m, "source")), "/srv/data");
	assert_true(jstrv_has(jget(m, "options"), "rbind"));
	assert_true(jstrv_has(jget(m, "options"), "ro"));
	m = find_mount(root, "/scratch");
	assert_non_null(m);
	assert_string_equal(json_object_get_string(jget(m, "type")), "tmpfs");
	assert_true(jstrv_has(jget(m, "options"), "size=1048576"));
	assert_false(jstrv_has(jget(m, "options"), "ro"));
	m = find_mount(root, "/etc/resolv.conf");
	assert_non_null(m);
	assert_string_equal(json_object_get_string(jget(m, "source")), paths.resolv_conf);
	assert_non_null(find_mount(root, "/etc/hosts"));
	assert_non_null(find_mount(root, "/etc/hostname"));
	assert_non_null(find_mount(root, "/proc"));
	assert_non_null(find_mount(root, "/dev/pts"));
	assert_non_null(find_mount(root, "/sys/fs/cgroup"));

	assert_string_equal(json_object_get_string(jget(root, "linux.cgroupsPath")), "/lab-node1/t");
	assert_int_equal(json_object_get_int64(jget(root, "linux.resources.memory.limit")), 64LL << 20);
	assert_int_equal(json_object_get_int64(jget(root, "linux.resources.cpu.quota")), 50000);
	assert_int_equal(json_object_get_int64(jget(root, "linux.resources.cpu.period")), 100000);
	json_object *ns = jget(root, "linux.namespaces");
	int found_net = 0, n_ns = (int)json_object_array_length(ns);
	for (int i = 0; i < n_ns; i++) {
		json_object *o = json_object_array_get_idx(ns, i);
		if (strcmp(json_object_get_string(jget(o, "type")), "network") == 0) {
			assert_string_equal(json_object_get_string(jget(o, "path")), paths.netns);
			found_net = 1;
		}
		assert_string_not_equal(json_object_get_string(jget(o, "type")), "user");
	}
	assert_true(found_net);
	assert_int_equal(n_ns, 5);
	assert_true(jstrv_has(jget(root, "linux.maskedPaths"), "/proc/kcore"));
	assert_true(jstrv_has(jget(root, "linux.readonlyPaths"), "/proc/sys"));

	json_object_put(root);
	free(json);
	pb_free(t);
}

static void expect_args(Swarm__Task *t, const struct image_config *img,
			const char *const *want, size_t n)
{
	char **argv;
	size_t argc;
	assert_int_equal(bundle_process_args(t->spec->container, img, &argv, &argc), 0);
	assert_int_equal(argc, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[argc]);
	bundle_strv_free(argv, argc);
}

static void test_entrypoint_cmd_rules(void **state)
{
	struct image_config img;
	image_init(&img);
	Swarm__Task *t = make_task();
	Swarm__ContainerSpec *c = t->spec->container;

	/* nothing set: image entrypoint + image cmd */
	expect_args(t, &img, (const char *[]){ "/ep", "c1" }, 2);
	/* args replace the image cmd, keep the entrypoint */
	PB_STRV_ADD(c, args, "a1");
	PB_STRV_ADD(c, args, "a2");
	expect_args(t, &img, (const char *[]){ "/ep", "a1", "a2" }, 3);
	/* command replaces the entrypoint; args follow it */
	PB_STRV_ADD(c, command, "/bin/sh");
	expect_args(t, &img, (const char *[]){ "/bin/sh", "a1", "a2" }, 3);
	/* command alone: the image cmd is not used */
	pb_strv_clear(&c->args, &c->n_args);
	expect_args(t, &img, (const char *[]){ "/bin/sh" }, 1);
	/* nothing anywhere: refused */
	pb_strv_clear(&c->command, &c->n_command);
	struct image_config empty;
	memset(&empty, 0, sizeof(empty));
	char **argv;
	size_t argc;
	assert_int_equal(bundle_process_args(c, &empty, &argv, &argc), -EINVAL);
	char *json = NULL;
	assert_int_equal(bundle_config_json(t, &empty, &paths, &json), -EINVAL);
	assert_null(json);
	pb_free(t);
}

static void test_env_defaults(void **state)
{
	Swarm__Task *t = make_task();
	char **env;
	size_t n;
	bundle_process_env(t->spec->container, NULL, "h", &env, &n);
	assert_int_equal(n, 2);
	assert_true(str_has_prefix(env[0], "PATH=/usr/local/sbin"));
	assert_string_equal(env[1], "HOSTNAME=h");
	assert_null(env[n]);
	bundle_strv_free(env, n);
	pb_free(t);
}

static void test_hostname_and_files(void **state)
{
	Swarm__Task *t = make_full_task();
	char *h = bundle_hostname(t);
	assert_string_equal(h, "h1");
	free(h);
	pb_set_str(&t->spec->container->hostname, "");
	h = bundle_hostname(t);
	assert_string_equal(h, "web.1.t0123456789abcdefghijklmn");
	char *hosts = bundle_hosts(t, h);
	assert_non_null(strstr(hosts, "127.0.0.1\tlocalhost\n"));
	assert_non_null(strstr(hosts, "198.18.0.5\tweb.1.t0123456789abcdefghijklmn\n"));
	free(hosts);
	free(h);
	char longname[200];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	pb_set_str(&t->name, longname);
	h = bundle_hostname(t);
	assert_int_equal(strlen(h), 64);
	free(h);
	char *r = bundle_resolv_conf();
	assert_string_equal(r, "search .\nnameserver 127.0.0.11\noptions ndots:0\n");
	free(r);
	pb_free(t);
}

static void test_health(void **state)
{
	static char *hc[] = { "CMD-SHELL", "wget -q localhost" };
	struct image_config img;
	image_init(&img);
	Swarm__Task *t = make_task();
	Swarm__ContainerSpec *c = t->spec->container;
	struct bundle_health h;

	bundle_health(c, &img, &h);
	assert_int_equal(h.argc, 0);  /* none anywhere */
	bundle_health_free(&h);

	img.healthcheck = hc;
	img.n_healthcheck = 2;
	img.health_interval_ns = 5000000000LL;
	bundle_health(c, &img, &h);
	assert_int_equal(h.argc, 3);
	assert_string_equal(h.argv[0], "/bin/sh");
	assert_string_equal(h.argv[1], "-c");
	assert_string_equal(h.argv[2], "wget -q localhost");
	assert_int_equal(h.interval_ns, 5000000000LL);
	assert_int_equal(h.timeout_ns, 30000000000LL);
	assert_int_equal(h.retries, 3);
	bundle_health_free(&h);

	c->health = xmalloc(sizeof(*c->health));
	swarm__health_config__init(c->health);
	PB_STRV_ADD(c->health, test, "CMD");
	PB_STRV_ADD(c->health, test, "false");
	c->health->interval_ns = 200000000LL;
	c->health->retries = 2;
	bundle_health(c, &img, &h);
	assert_int_equal(h.argc, 1);
	assert_string_equal(h.argv[0], "false");
	assert_int_equal(h.interval_ns, 200000000LL);
	assert_int_equal(h.retries, 2);
	bundle_health_free(&h);

	pb_strv_clear(&c->health->test, &c->health->n_test);
	PB_STRV_ADD(c->health, test, "NONE");
	bundle_health(c, &img, &h);
	assert_int_equal(h.argc, 0);  /* disabled, image's ignored */
	bundle_health_free(&h);
	pb_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_entrypoint_cmd_rules),
		cmocka_unit_test(test_env_defaults),
		cmocka_unit_test(test_hostname_and_files),
		cmocka_unit_test(test_health),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
