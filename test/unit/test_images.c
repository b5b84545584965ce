/* images: OCI layout and rootfs tarball loading through the real loop,
 * whiteouts, config parsing, listing, failures that leave nothing. The
 * archives are built with tar/sha256sum through system() (tests only). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ev.h>
#include <json-c/json.h>

#include "agent/images.h"
#include "util.h"

struct fixture {
	char dir[64];        /* mktemp dir */
	char store[128];     /* image store */
	struct ev_loop *loop;
	struct images *im;
};

struct load_result {
	int finished;
	int err;
	char msg[512];
};

static void load_done(int err, const char *msg, void *arg)
{
	struct load_result *r = arg;
	r->finished = 1;
	r->err = err;
	snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(int *)w->data = 1;
}

/* Runs the loop until the load finishes or 10 s pass. */
static void run_load(struct fixture *f, const char *path, const char *name,
		     struct load_result *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(images_load(f->im, path, name, load_done, r), 0);
	int expired = 0;
	ev_timer t;
	ev_timer_init(&t, timeout_cb, 10., 0.);
	t.data = &expired;
	ev_timer_start(f->loop, &t);
	while (!r->finished && !expired)
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &t);
	assert_true(r->finished);
}

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* Builds <dir>/myimg.tar: an OCI layout with two layers (the first
 * gzipped), the second with a whiteout and an opaque directory. With
 * break_layer the second layer's blob is missing. */
static void build_oci(const char *dir, const char *out, int break_layer, const char *refname)
{
	int rc = sh(
		"set -e; cd %s; rm -rf oci l1 l2; mkdir -p oci/blobs/sha256 l1/bin l1/etc l1/opq l2/etc l2/opq l2/bin;"
		"echo v1 > l1/bin/hello; echo keep > l1/etc/keep; echo other > l1/etc/other;"
		"echo a > l1/opq/a; echo b > l1/opq/b;"
		"echo v2 > l2/bin/hello; : > l2/etc/.wh.keep; : > l2/opq/.wh..wh..opq; echo c > l2/opq/c; echo n > l2/new;"
		"tar -C l1 -czf layer1 .; tar -C l2 -cf layer2 .;"
		"d1=$(sha256sum layer1 | cut -d' ' -f1); d2=$(sha256sum layer2 | cut -d' ' -f1);"
		"mv layer1 oci/blobs/sha256/$d1; mv layer2 oci/blobs/sha256/$d2;"
		"printf '%%s' '{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/bin/hello\"],"
		"\"Cmd\":[\"--flag\"],\"Env\":[\"PATH=/bin\",\"X=1\"],\"WorkingDir\":\"/srv\","
		"\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":2000000000,\"Retries\":5}},"
		"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}' > cfg;"
		"dc=$(sha256sum cfg | cut -d' ' -f1); mv cfg oci/blobs/sha256/$dc;"
		"printf '{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%%s\",\"size\":1},"
		"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:%%s\",\"size\":1},"
		"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:%%s\",\"size\":1}]}' $dc $d1 $d2 > man;"
		"dm=$(sha256sum man | cut -d' ' -f1); mv man oci/blobs/sha256/$dm;"
		"printf '{\"imageLayoutVersion\":\"1.0.0\"}' > oci/oci-layout;"
		"printf '{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"digest\":\"sha256:%%s\",\"size\":1,\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}}]}' $dm > oci/index.json;"
		"if [ %d = 1 ]; then rm oci/blobs/sha256/$d2; fi;"
		"tar -C oci -cf %s .; rm -rf oci l1 l2",
		dir, refname, break_layer, out);
	assert_int_equal(rc, 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_images.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	f->loop = EV_DEFAULT;
	f->im = images_open(f->loop, f->store);
	assert_non_null(f->im);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	images_free(f->im);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static char *slurp(const char *dir, const char *rel)
{
	char p[512], *buf = NULL;
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (file_read_all(p, 4096, &buf, NULL) < 0)
		return NULL;
	return buf;
}

static int exists(const char *dir, const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return access(p, F_OK) == 0;
}

/* Entries of the store other than images (leftovers of a load). */
static int store_leftovers(const struct fixture *f)
{
	DIR *d = opendir(f->store);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (str_has_prefix(de->d_name, ".load-"))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_oci_load(void **state)
{
	struct fixture *f = *state;
	char path[256];
	snprintf(path, sizeof(path), "%s/myimg.tar", f->dir);
	build_oci(f->dir, path, 0, "1.0");
	struct load_result r;
	run_load(f, path, NULL, &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.msg, "myimg:1.0");  /* tag from the index, name from the file */

	struct image_config c;
	assert_int_equal(images_get(f->im, "myimg:1.0", &c), 0);
	char *s = slurp(c.rootfs, "bin/hello");
	assert_non_null(s);
	assert_string_equal(s, "v2\n");            /* upper layer wins */
	free(s);
	assert_false(exists(c.rootfs, "etc/keep"));       /* whiteout applied */
	assert_false(exists(c.rootfs, "etc/.wh.keep"));
	assert_true(exists(c.rootfs, "etc/other"));
	assert_false(exists(c.rootfs, "opq/a"));          /* opaque dir emptied */
	assert_false(exists(c.rootfs, "opq/b"));
	assert_true(exists(c.rootfs, "opq/c"));           /* ...but keeps its own layer */
	assert_false(exists(c.rootfs, "opq/.wh..wh..opq"));
	assert_true(exists(c.rootfs, "new"));
	assert_int_equal(c.n_entrypoint, 1);
	assert_string_equal(c.entrypoint[0], "/bin/hello");
	assert_int_equal(c.n_cmd, 1);
	assert_string_equal(c.cmd[0], "--flag");
	assert_int_equal(c.n_env, 2);
	assert_string_equal(c.env[1], "X=1");
	assert_string_equal(c.workdir, "/srv");
	assert_int_equal(c.n_healthcheck, 2);
	assert_string_equal(c.healthcheck[0], "CMD-SHELL");
	assert_int_equal(c.health_interval_ns, 2000000000LL);
	assert_int_equal(c.health_retries, 5);
	image_config_free(&c);
	assert_int_equal(store_leftovers(f), 0);

	/* an explicit name wins, and a "name:tag" annotation is used whole */
	run_load(f, path, "other", &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.msg, "other:latest");
	build_oci(f->dir, path, 0, "registry.example:5000/team/app:2.1");
	run_load(f, path, NULL, &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.msg, "registry.example:5000/team/app:2.1");
	/* loading again replaces the image */
	run_load(f, path, NULL, &r);
	assert_int_equal(r.err, 0);
	assert_int_equal(images_get(f->im, "registry.example:5000/team/app:2.1", &c), 0);
	image_config_free(&c);

	char **names;
	size_t n = images_list(f->im, &names);
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "myimg:1.0");
	assert_string_equal(names[1], "other:latest");
	assert_string_equal(names[2], "registry.example:5000/team/app:2.1");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);

	char *json = images_list_json(f->im);
	json_object *a = json_tokener_parse(json);
	assert_non_null(a);
	assert_int_equal(json_object_array_length(a), 3);
	json_object *o = json_object_array_get_idx(a, 0), *v;
	assert_true(json_object_object_get_ex(o, "Repository", &v));
	assert_true(json_object_object_get_ex(o, "Tag", &v));
	assert_true(json_object_object_get_ex(o, "Size", &v));
	assert_true(json_object_get_int64(v) > 0);
	assert_true(json_object_object_get_ex(o, "Created", &v));
	json_object_put(a);
	free(json);
}

static void test_rootfs_tarball(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(sh("set -e; cd %s; mkdir -p fs/bin fs/etc; echo hi > fs/bin/sh;"
			    "echo x > fs/etc/motd; tar -C fs -czf plainfs.tar.gz .; rm -rf fs",
			    f->dir), 0);
	char path[256];
	snprintf(path, sizeof(path), "%s/plainfs.tar.gz", f->dir);
	struct load_result r;
	run_load(f, path, NULL, &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.msg, "plainfs:latest");
	struct image_config c;
	assert_int_equal(images_get(f->im, "plainfs", &c), 0);  /* :latest implied */
	assert_true(exists(c.rootfs, "bin/sh"));
	assert_true(exists(c.rootfs, "etc/motd"));
	assert_int_equal(c.n_entrypoint, 0);
	assert_int_equal(c.n_cmd, 1);
	assert_string_equal(c.cmd[0], "/bin/sh");
	image_config_free(&c);
}

static void test_docker_save_legacy(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(sh(
		"set -e; cd %s; mkdir -p ds/aaa ds/bbb l1/bin l2/bin;"
		"echo one > l1/bin/a; echo gone > l1/bin/b; : > l2/bin/.wh.b; echo two > l2/bin/c;"
		"tar -C l1 -cf ds/aaa/layer.tar .; tar -C l2 -cf ds/bbb/layer.tar .;"
		"printf '{\"config\":{\"Cmd\":[\"/bin/a\"],\"Env\":[\"K=V\"]}}' > ds/cfg.json;"
		"printf '[{\"Config\":\"cfg.json\",\"RepoTags\":[\"legacy:3\"],"
		"\"Layers\":[\"aaa/layer.tar\",\"bbb/layer.tar\"]}]' > ds/manifest.json;"
		"tar -C ds -cf saved.tar .; rm -rf ds l1 l2", f->dir), 0);
	char path[256];
	snprintf(path, sizeof(path), "%s/saved.tar", f->dir);
	struct load_result r;
	run_load(f, path, NULL, &r);
	assert_int_equal(r.err, 0);
	assert_string_equal(r.msg, "legacy:3");
	struct image_config c;
	assert_int_equal(images_get(f->im, "legacy:3", &c), 0);
	assert_true(exists(c.rootfs, "bin/a"));
	assert_false(exists(c.rootfs, "bin/b"));
	assert_true(exists(c.rootfs, "bin/c"));
	assert_false(exists(c.rootfs, "manifest.json"));
	assert_int_equal(c.n_cmd, 1);
	assert_string_equal(c.cmd[0], "/bin/a");
	assert_string_equal(c.env[0], "K=V");
	image_config_free(&c);
}

static void test_failures_leave_nothing(void **state)
{
	struct fixture *f = *state;
	struct image_config c;
	assert_int_equal(images_get(f->im, "nope", &c), -ENOENT);
	assert_int_equal(images_get(f->im, "nope:1", &c), -ENOENT);

	char path[256];
	snprintf(path, sizeof(path), "%s/garbage.tar", f->dir);
	assert_int_equal(sh("head -c 3000 /dev/urandom > %s", path), 0);
	struct load_result r;
	run_load(f, path, NULL, &r);
	assert_int_not_equal(r.err, 0);
	assert_true(strlen(r.msg) > 0);

	snprintf(path, sizeof(path), "%s/broken.tar", f->dir);
	build_oci(f->dir, path, 1, "1.0");
	run_load(f, path, NULL, &r);
	assert_int_not_equal(r.err, 0);
	assert_non_null(strstr(r.msg, "layer"));

	char **names;
	assert_int_equal(images_list(f->im, &names), 0);
	free(names);
	assert_int_equal(store_leftovers(f), 0);
	assert_int_equal(images_get(f->im, "broken:1.0", &c), -ENOENT);

	assert_int_equal(images_load(f->im, "/nonexistent/x.tar", NULL, load_done, &r), -ENOENT);
	snprintf(path, sizeof(path), "%s/broken.tar", f->dir);
	assert_int_equal(images_load(f->im, path, "Bad Name", load_done, &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_oci_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rootfs_tarball, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_save_legacy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
