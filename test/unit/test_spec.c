/* swarmadm's flag grammar (swarmadm/spec.c, swarmadm/opt.c): every
 * --publish form and its errors, mounts, durations, sizes, CPUs, replicas,
 * constraints, --args splitting, network CIDR and gateway checks, and whole
 * `service create` / `service update` / `network create` command lines. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "swarmadm/opt.h"
#include "swarmadm/spec.h"
#include "pb.h"

#define ERRLEN 512

/* ---- opt ---- */

enum { O_NAME = 1, O_PUB, O_QUIET, O_DETACH, O_FORCE };
static const struct opt_def defs[] = {
	{ "name", 0, true, O_NAME },
	{ "publish", 'p', true, O_PUB },
	{ "quiet", 'q', false, O_QUIET },
	{ "detach", 'd', false, O_DETACH },
	{ "force", 0, false, O_FORCE },
	{ NULL, 0, false, 0 },
};

static void test_opt_forms(void **state)
{
	char *argv[] = { "--name", "web", "--publish=80:80", "-p8080:80", "-p", "9090:90", "-qd",
			 "--force=false", "pos", "--", "--name", NULL };
	struct opt_iter it;
	const char *val;
	char err[ERRLEN];

	(void)state;
	opt_init(&it, 11, argv, false);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_NAME);
	assert_string_equal(val, "web");
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_PUB);
	assert_string_equal(val, "80:80");
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_PUB);
	assert_string_equal(val, "8080:80");
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_PUB);
	assert_string_equal(val, "9090:90");
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_QUIET);
	assert_null(val);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_DETACH);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_FORCE);
	assert_string_equal(val, "false");
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), 0);
	assert_string_equal(val, "pos");
	/* after "--" a flag-looking word is positional */
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), 0);
	assert_string_equal(val, "--name");
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), -1);
}

static void test_opt_errors(void **state)
{
	char *a1[] = { "--foo" }, *a2[] = { "--name" }, *a3[] = { "-x" }, *a4[] = { "-p" };
	struct opt_iter it;
	const char *val;
	char err[ERRLEN];

	(void)state;
	opt_init(&it, 1, a1, false);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown flag: --foo");
	opt_init(&it, 1, a2, false);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "flag needs an argument: --name");
	opt_init(&it, 1, a3, false);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "unknown shorthand flag: 'x'");
	opt_init(&it, 1, a4, false);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "flag needs an argument: 'p' in -p");
}

static void test_opt_stop_at_positional(void **state)
{
	char *argv[] = { "-q", "IMAGE", "-c", "--name", "x" };
	struct opt_iter it;
	const char *val;
	char err[ERRLEN];
	int n = 0;

	(void)state;
	opt_init(&it, 5, argv, true);
	assert_int_equal(opt_next(&it, defs, &val, err, sizeof(err)), O_QUIET);
	while (opt_next(&it, defs, &val, err, sizeof(err)) == 0)
		n++;
	assert_int_equal(n, 4);  /* IMAGE -c --name x, all positional */
}

static void test_opt_bool(void **state)
{
	bool b = false;

	(void)state;
	assert_int_equal(opt_bool(NULL, &b), 0);
	assert_true(b);
	assert_int_equal(opt_bool("false", &b), 0);
	assert_false(b);
	assert_int_equal(opt_bool("1", &b), 0);
	assert_true(b);
	assert_int_equal(opt_bool("yes", &b), -EINVAL);
}

/* ---- publish ---- */

struct ports {
	Swarm__PortConfig **v;
	size_t n;
};

static void ports_free(struct ports *p)
{
	for (size_t i = 0; i < p->n; i++)
		pb_free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static void check_port(const Swarm__PortConfig *p, unsigned pub, unsigned tgt, const char *proto,
		       const char *mode)
{
	assert_int_equal(p->published, pub);
	assert_int_equal(p->target, tgt);
	assert_string_equal(p->protocol, proto);
	assert_string_equal(p->mode, mode);
}

static void test_publish_short(void **state)
{
	struct ports p = { 0 };
	char err[ERRLEN], s[64];

	(void)state;
	assert_int_equal(spec_publish_parse("80:80", &p.v, &p.n, err, sizeof(err)), 0);
	assert_int_equal(p.n, 1);
	check_port(p.v[0], 80, 80, "tcp", "ingress");
	spec_port_string(p.v[0], s, sizeof(s));
	assert_string_equal(s, "*:80->80/tcp");
	ports_free(&p);

	assert_int_equal(spec_publish_parse("8080:80/udp", &p.v, &p.n, err, sizeof(err)), 0);
	check_port(p.v[0], 8080, 80, "udp", "ingress");
	ports_free(&p);

	assert_int_equal(spec_publish_parse("8080:80/tcp", &p.v, &p.n, err, sizeof(err)), 0);
	check_port(p.v[0], 8080, 80, "tcp", "ingress");
	ports_free(&p);

	/* target only: the manager allocates the published port */
	assert_int_equal(spec_publish_parse("80", &p.v, &p.n, err, sizeof(err)), 0);
	check_port(p.v[0], 0, 80, "tcp", "ingress");
	ports_free(&p);

	assert_int_equal(spec_publish_parse("8080-8081:80-81", &p.v, &p.n, err, sizeof(err)), 0);
	assert_int_equal(p.n, 2);
	check_port(p.v[0], 8080, 80, "tcp", "ingress");
	check_port(p.v[1], 8081, 81, "tcp", "ingress");
	ports_free(&p);

	/* appends to what is there */
	assert_int_equal(spec_publish_parse("1:2", &p.v, &p.n, err, sizeof(err)), 0);
	assert_int_equal(spec_publish_parse("3:4/udp", &p.v, &p.n, err, sizeof(err)), 0);
	assert_int_equal(p.n, 2);
	ports_free(&p);
}

static void test_publish_long(void **state)
{
	struct ports p = { 0 };
	char err[ERRLEN];

	(void)state;
	assert_int_equal(spec_publish_parse("published=8080,target=80,protocol=tcp,mode=host",
					    &p.v, &p.n, err, sizeof(err)), 0);
	check_port(p.v[0], 8080, 80, "tcp", "host");
	ports_free(&p);

	assert_int_equal(spec_publish_parse("target=53,protocol=udp", &p.v, &p.n, err, sizeof(err)), 0);
	check_port(p.v[0], 0, 53, "udp", "ingress");
	ports_free(&p);

	assert_int_equal(spec_publish_parse("mode=ingress,target=80,published=80", &p.v, &p.n, err, sizeof(err)), 0);
	check_port(p.v[0], 80, 80, "tcp", "ingress");
	ports_free(&p);
}

static void test_publish_errors(void **state)
{
	static const struct { const char *in, *msg; } cases[] = {
		{ "", "empty" },
		{ "80:80/sctp", "invalid protocol \"sctp\"" },
		{ "abc", "invalid port" },
		{ "70000:80", "invalid published port" },
		{ "80:0", "invalid target port" },
		{ "80:70000", "invalid target port" },
		{ "192.0.2.1:80:80", "host IP is not supported" },
		{ "8080-8082:80-81", "differ in size" },
		{ "published=80", "missing mandatory field \"target\"" },
		{ "foo=1,target=80", "invalid field key \"foo\"" },
		{ "published=x,target=80", "invalid published port \"x\"" },
		{ "target=80,mode=bridge", "invalid publish mode \"bridge\"" },
		{ "target=80,protocol=icmp", "invalid protocol \"icmp\"" },
		{ "target=80,published", "must be a key=value pair" },
		{ "target=0", "invalid target port" },
		{ "-1:80", "invalid published port" },
	};
	char err[ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ports p = { 0 };
		err[0] = '\0';
		assert_int_equal(spec_publish_parse(cases[i].in, &p.v, &p.n, err, sizeof(err)), -EINVAL);
		assert_int_equal(p.n, 0);
		if (!strstr(err, cases[i].msg))
			fail_msg("--publish \"%s\": error \"%s\" lacks \"%s\"", cases[i].in, err, cases[i].msg);
	}
}

/* ---- mounts ---- */

static void test_mounts(void **state)
{
	Swarm__Mount *m = NULL;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(spec_mount_parse("type=bind,source=/a,target=/b,readonly", &m, err, sizeof(err)), 0);
	assert_string_equal(m->type, "bind");
	assert_string_equal(m->source, "/a");
	assert_string_equal(m->target, "/b");
	assert_true(m->readonly);
	pb_free(m);

	assert_int_equal(spec_mount_parse("type=bind,src=/a,dst=/b,ro=false", &m, err, sizeof(err)), 0);
	assert_false(m->readonly);
	assert_string_equal(m->target, "/b");
	pb_free(m);

	assert_int_equal(spec_mount_parse("type=tmpfs,target=/t,tmpfs-size=64M", &m, err, sizeof(err)), 0);
	assert_string_equal(m->type, "tmpfs");
	assert_int_equal(m->tmpfs_size, 64LL << 20);
	pb_free(m);

	static const struct { const char *in, *msg; } bad[] = {
		{ "source=/a,target=/b", "needs type=bind or type=tmpfs" },
		{ "type=volume,target=/b", "mount type \"volume\" is not supported" },
		{ "type=bind,source=/a,target=b", "absolute target" },
		{ "type=bind,target=/b", "absolute source" },
		{ "type=bind,source=rel,target=/b", "absolute source" },
		{ "type=tmpfs,source=/a,target=/t", "takes no source" },
		{ "type=tmpfs,target=/t,tmpfs-size=lots", "invalid tmpfs-size" },
		{ "type=bind,source=/a,target=/b,tmpfs-size=1M", "only for type=tmpfs" },
		{ "type=bind,source=/a,target=/b,colour=red", "unexpected key \"colour\"" },
		{ "type=bind,source=/a,target=/b,readonly=maybe", "invalid value \"maybe\"" },
		{ "type=bind,source=/a,target", "must be a key=value pair" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = NULL;
		assert_int_equal(spec_mount_parse(bad[i].in, &m, err, sizeof(err)), -EINVAL);
		assert_null(m);
		if (!strstr(err, bad[i].msg))
			fail_msg("--mount \"%s\": error \"%s\" lacks \"%s\"", bad[i].in, err, bad[i].msg);
	}
}

/* ---- durations, sizes, CPUs, integers ---- */

static void test_durations(void **state)
{
	static const struct { const char *in; int64_t ns; } ok[] = {
		{ "10s", 10000000000LL }, { "1m30s", 90000000000LL }, { "500ms", 500000000LL },
		{ "1.5h", 5400000000000LL }, { "2h45m", 9900000000000LL }, { "0", 0 },
		{ "1us", 1000 }, { "1\xc2\xb5s", 1000 }, { "300ns", 300 }, { ".5s", 500000000LL },
		{ "-5s", -5000000000LL }, { "+1m", 60000000000LL },
	};
	static const char *const bad[] = { "5", "", "5x", "s", "1.s5", "10 s", "1h-5m", "--1s", "." };
	int64_t ns;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ns = -42;
		if (spec_duration_parse(ok[i].in, &ns) != 0 || ns != ok[i].ns)
			fail_msg("duration \"%s\": got %lld", ok[i].in, (long long)ns);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (spec_duration_parse(bad[i], &ns) != -EINVAL)
			fail_msg("duration \"%s\" accepted", bad[i]);
}

static void test_bytes(void **state)
{
	static const struct { const char *in; int64_t v; } ok[] = {
		{ "64M", 64LL << 20 }, { "64m", 64LL << 20 }, { "1g", 1LL << 30 }, { "512mb", 512LL << 20 },
		{ "100KiB", 100LL << 10 }, { "1024", 1024 }, { "1.5g", 3LL << 29 }, { "0", 0 },
		{ "10b", 10 }, { "2 GB", 2LL << 30 }, { "1t", 1LL << 40 },
	};
	static const char *const bad[] = { "", "x", "64Q", "-1", "1.5.g", "64MM", "m", "1." };
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -42;
		if (spec_bytes_parse(ok[i].in, &v) != 0 || v != ok[i].v)
			fail_msg("size \"%s\": got %lld", ok[i].in, (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (spec_bytes_parse(bad[i], &v) != -EINVAL)
			fail_msg("size \"%s\" accepted", bad[i]);
}

static void test_cpus_and_uints(void **state)
{
	int64_t n;
	uint64_t u;

	(void)state;
	assert_int_equal(spec_cpus_parse("0.5", &n), 0);
	assert_int_equal(n, 500000000);
	assert_int_equal(spec_cpus_parse("2", &n), 0);
	assert_int_equal(n, 2000000000LL);
	assert_int_equal(spec_cpus_parse("0.000000001", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(spec_cpus_parse("1.0000000001", &n), -EINVAL);
	assert_int_equal(spec_cpus_parse("x", &n), -EINVAL);
	assert_int_equal(spec_cpus_parse("", &n), -EINVAL);
	assert_int_equal(spec_cpus_parse("-1", &n), -EINVAL);

	assert_int_equal(spec_uint_parse("0", &u), 0);
	assert_int_equal(u, 0);
	assert_int_equal(spec_uint_parse("18446744073709551615", &u), 0);
	assert_int_equal(spec_uint_parse("18446744073709551616", &u), -EINVAL);
	assert_int_equal(spec_uint_parse("-1", &u), -EINVAL);
	assert_int_equal(spec_uint_parse("+1", &u), -EINVAL);
	assert_int_equal(spec_uint_parse(" 1", &u), -EINVAL);
	assert_int_equal(spec_uint_parse("", &u), -EINVAL);
}

static void test_names(void **state)
{
	char err[ERRLEN];

	(void)state;
	assert_int_equal(spec_name_check("service", "my-nginx", err, sizeof(err)), 0);
	assert_int_equal(spec_name_check("network", "ol_net", err, sizeof(err)), 0);
	assert_int_equal(spec_name_check("service", "a", err, sizeof(err)), 0);
	assert_int_equal(spec_name_check("service", "web.1", err, sizeof(err)), -EINVAL);
	assert_int_equal(spec_name_check("network", "web.1", err, sizeof(err)), 0);
	assert_int_equal(spec_name_check("network", "web.", err, sizeof(err)), -EINVAL);
	assert_int_equal(spec_name_check("service", "-web", err, sizeof(err)), -EINVAL);
	assert_int_equal(spec_name_check("service", "web-", err, sizeof(err)), -EINVAL);
	assert_int_equal(spec_name_check("service", "", err, sizeof(err)), -EINVAL);
	assert_int_equal(spec_name_check("service",
					 "a234567890123456789012345678901234567890123456789012345678901234",
					 err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 63"));
}

/* ---- constraints ---- */

static void test_constraints(void **state)
{
	char err[ERRLEN], norm[256];

	(void)state;
	assert_int_equal(spec_constraint_check("node.role==manager", norm, sizeof(norm), err, sizeof(err)), 0);
	assert_string_equal(norm, "node.role==manager");
	assert_int_equal(spec_constraint_check(" node.labels.zone != east ", norm, sizeof(norm), err, sizeof(err)), 0);
	assert_string_equal(norm, "node.labels.zone!=east");
	assert_int_equal(spec_constraint_check("node.hostname==node1", NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(spec_constraint_check("node.id!=abc", NULL, 0, err, sizeof(err)), 0);

	static const struct { const char *in, *msg; } bad[] = {
		{ "node.role=manager", "expected KEY==VALUE or KEY!=VALUE" },
		{ "node.role", "expected KEY==VALUE" },
		{ "node.role==boss", "manager or worker" },
		{ "engine.labels.x==1", "unknown key \"engine.labels.x\"" },
		{ "node.labels.==x", "unknown key" },
		{ "==x", "expected KEY==VALUE" },
		{ "node.id==", "expected KEY==VALUE" },
		{ "node.id===x", "expected KEY==VALUE" },
		{ "node.id==a==b", "expected KEY==VALUE" },
		{ "node.labels.a b==c", "blank inside the key" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(spec_constraint_check(bad[i].in, NULL, 0, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("constraint \"%s\": error \"%s\" lacks \"%s\"", bad[i].in, err, bad[i].msg);
	}
}

/* ---- --args splitting ---- */

static void check_split(const char *in, size_t n, ...)
{
	char **v = NULL, err[ERRLEN];
	size_t got = 99;
	va_list ap;

	assert_int_equal(spec_split_args(in, &v, &got, err, sizeof(err)), 0);
	if (got != n)
		fail_msg("split \"%s\": %zu words, want %zu", in, got, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], va_arg(ap, const char *));
	va_end(ap);
	spec_strv_free(v, got);
}

static void test_split_args(void **state)
{
	char **v = NULL, err[ERRLEN];
	size_t n;

	(void)state;
	check_split("ping www.example.com", 2, "ping", "www.example.com");
	check_split("  sh  -c \"echo hi there\"  ", 3, "sh", "-c", "echo hi there");
	check_split("'a b' c\\ d", 2, "a b", "c d");
	check_split("a\"b c\"d", 1, "ab cd");
	check_split("\"say \\\"hi\\\"\" 'it''s'", 2, "say \"hi\"", "its");
	check_split("'$HOME' \"\\$x\"", 2, "$HOME", "$x");
	check_split("\"\"", 1, "");
	check_split("", 0);
	check_split("   ", 0);
	assert_int_equal(spec_split_args("echo \"abc", &v, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unterminated quote"));
	assert_int_equal(spec_split_args("echo 'abc", &v, &n, err, sizeof(err)), -EINVAL);
}

/* ---- networks ---- */

static void test_cidr(void **state)
{
	uint32_t net;
	unsigned len;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(spec_cidr_parse("198.19.10.0/24", &net, &len, err, sizeof(err)), 0);
	assert_int_equal(net, (198u << 24) | (19u << 16) | (10u << 8));
	assert_int_equal(len, 24);
	/* the default pool string parses (nothing is sent anywhere) */
	assert_int_equal(spec_cidr_parse("10.0.0.0/8", &net, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 8);
	assert_int_equal(spec_cidr_parse("198.18.0.0/15", &net, &len, err, sizeof(err)), 0);

	assert_int_equal(spec_cidr_parse("198.19.10.1/24", &net, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "did you mean 198.19.10.0/24"));
	assert_int_equal(spec_cidr_parse("198.18.1.0/15", &net, &len, err, sizeof(err)), -EINVAL);
	static const char *const bad[] = { "198.19.10.0/33", "198.19.10.0", "x/24", "198.19.10.0/2a",
					   "198.19.10/24", "198.19.10.0/", "198.19.10.0/024", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(spec_cidr_parse(bad[i], &net, &len, err, sizeof(err)), -EINVAL);
		char want[128];
		snprintf(want, sizeof(want), "invalid subnet \"%s\"", bad[i]);
		if (!strstr(err, want))
			fail_msg("subnet \"%s\": error \"%s\"", bad[i], err);
	}
	assert_int_equal(spec_cidr_parse("2001:db8::/64", &net, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "IPv6"));
}

/* Runs `network create WORDS`; returns the spec (pb_free it) or NULL with err. */
static Swarm__NetworkSpec *net_args(char *err, int argc, ...)
{
	Swarm__NetworkSpec *spec = malloc(sizeof(*spec));
	char *argv[32];
	bool help;
	va_list ap;

	swarm__network_spec__init(spec);
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	if (spec_network_args(argc, argv, spec, &help, err, ERRLEN) < 0) {
		pb_free(spec);
		return NULL;
	}
	return spec;
}

static void test_network_create(void **state)
{
	char err[ERRLEN];
	Swarm__NetworkSpec *s;

	(void)state;
	s = net_args(err, 10, "--driver", "overlay", "--opt", "encrypted", "--subnet", "198.19.10.0/24",
		     "--gateway", "198.19.10.1", "--attachable", "ol_net");
	assert_non_null(s);
	assert_string_equal(s->name, "ol_net");
	assert_string_equal(s->driver, "overlay");
	assert_true(s->encrypted);
	assert_true(s->attachable);
	assert_string_equal(s->subnet, "198.19.10.0/24");
	assert_string_equal(s->gateway, "198.19.10.1");
	pb_free(s);

	s = net_args(err, 3, "-d", "overlay", "plain");
	assert_non_null(s);
	assert_false(s->encrypted);
	assert_string_equal(s->subnet, "");
	pb_free(s);

	static const struct { const char *flag, *val, *msg; } bad[] = {
		{ "-d", "bridge", "driver \"bridge\" is not supported" },
		{ "--opt", "mtu=1400", "unsupported network option" },
		{ "--subnet", "198.19.10.1/24", "invalid subnet \"198.19.10.1/24\"" },
		{ "--subnet", "nonsense", "invalid subnet \"nonsense\"" },
		{ "--subnet", "198.19.10.0/30", "too few addresses" },
		{ "--gateway", "198.19.10.1", "--gateway needs --subnet" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = net_args(err, 3, bad[i].flag, bad[i].val, "n1");
		assert_null(s);
		if (!strstr(err, bad[i].msg))
			fail_msg("network create %s %s: error \"%s\"", bad[i].flag, bad[i].val, err);
	}
	assert_null(net_args(err, 5, "--subnet", "198.19.10.0/24", "--gateway", "198.19.11.1", "n1"));
	assert_non_null(strstr(err, "not in subnet 198.19.10.0/24"));
	assert_null(net_args(err, 5, "--subnet", "198.19.10.0/24", "--gateway", "198.19.10.255", "n1"));
	assert_non_null(strstr(err, "broadcast"));
	assert_null(net_args(err, 5, "--subnet", "198.19.10.0/24", "--gateway", "198.19.10.x", "n1"));
	assert_non_null(strstr(err, "invalid gateway"));
	assert_null(net_args(err, 1, "--attachable"));
	assert_non_null(strstr(err, "needs a NAME"));
	assert_null(net_args(err, 2, "a", "b"));
	assert_non_null(strstr(err, "exactly one NAME"));
	assert_null(net_args(err, 1, "bad/name"));
	assert_non_null(strstr(err, "invalid network name"));
	s = net_args(err, 1, "my.net");
	assert_non_null(s);
	pb_free(s);
	assert_null(net_args(err, 2, "--internal", "n1"));
	assert_string_equal(err, "unknown flag: --internal");
}

/* ---- services ---- */

static char *fake_getenv(const char *name)
{
	return strcmp(name, "FROM_ENV") == 0 ? "yes" : NULL;
}

/* Applies WORDS (NULL-terminated) to spec. */
static int svc_args(enum spec_cmd cmd, Swarm__ServiceSpec *spec, struct spec_cli *cli, char *err, ...)
{
	char *argv[64];
	int argc = 0;
	va_list ap;

	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	return spec_service_args(cmd, argc, argv, spec, cli, err, ERRLEN);
}

static void test_service_create_full(void **state)
{
	Swarm__ServiceSpec *s = spec_service_new();
	struct spec_cli cli = { .getenv_fn = fake_getenv };
	char err[ERRLEN] = "";

	(void)state;
	int rc = svc_args(SPEC_CREATE, s, &cli, err,
			  "--name", "web", "--replicas", "5", "--network", "ol_net",
			  "--network", "name=other,alias=a1,alias=a2", "-p", "80:80",
			  "-p", "published=8080,target=80,mode=host", "-e", "A=1", "-e", "FROM_ENV",
			  "--constraint", "node.role == worker", "--mount", "type=tmpfs,target=/t,tmpfs-size=1M",
			  "--restart-condition", "on-failure", "--restart-delay", "1s",
			  "--restart-max-attempts", "3", "--stop-grace-period", "2s",
			  "--update-order", "start-first", "--update-parallelism", "2", "--update-delay", "1m",
			  "--update-failure-action", "rollback", "--health-cmd", "wget -q -O- localhost",
			  "--health-interval", "5s", "--health-retries", "2", "--limit-memory", "64M",
			  "--limit-cpu", "0.5", "--reserve-memory", "32m", "--hostname", "h1", "-l", "team=x",
			  "--endpoint-mode", "vip", "-d", "nginx", "ping", "-c", "1", "www.example.com", NULL);
	if (rc)
		fail_msg("%s", err);
	assert_true(cli.detach);
	assert_string_equal(s->name, "web");
	assert_int_equal(s->replicas, 5);
	assert_string_equal(s->mode, "replicated");
	assert_int_equal(s->n_networks, 2);
	assert_string_equal(s->networks[0]->target, "ol_net");
	assert_string_equal(s->networks[1]->target, "other");
	assert_int_equal(s->networks[1]->n_aliases, 2);
	assert_int_equal(s->n_ports, 2);
	check_port(s->ports[1], 8080, 80, "tcp", "host");
	assert_int_equal(s->container->n_env, 2);
	assert_string_equal(s->container->env[1], "FROM_ENV=yes");
	assert_string_equal(s->constraints[0], "node.role==worker");
	assert_int_equal(s->container->mounts[0]->tmpfs_size, 1 << 20);
	assert_string_equal(s->restart->condition, "on-failure");
	assert_int_equal(s->restart->delay_ns, 1000000000LL);
	assert_int_equal(s->restart->max_attempts, 3);
	assert_int_equal(s->container->stop_grace_ns, 2000000000LL);
	assert_string_equal(s->update->order, "start-first");
	assert_int_equal(s->update->parallelism, 2);
	assert_string_equal(s->update->failure_action, "rollback");
	assert_int_equal(s->container->health->n_test, 2);
	assert_string_equal(s->container->health->test[0], "CMD-SHELL");
	assert_string_equal(s->container->health->test[1], "wget -q -O- localhost");
	assert_int_equal(s->container->health->retries, 2);
	assert_int_equal(s->limits->memory_bytes, 64LL << 20);
	assert_int_equal(s->limits->nano_cpus, 500000000);
	assert_int_equal(s->reservations->memory_bytes, 32LL << 20);
	assert_string_equal(s->container->hostname, "h1");
	assert_string_equal(s->labels[0]->key, "team");
	/* Docker sets Args, not Command, from IMAGE CMD ARG...; words after
	 * IMAGE are never flags */
	assert_string_equal(s->container->image, "nginx");
	assert_int_equal(s->container->n_command, 0);
	assert_int_equal(s->container->n_args, 4);
	assert_string_equal(s->container->args[0], "ping");
	assert_string_equal(s->container->args[1], "-c");
	pb_free(s);
	spec_cli_clear(&cli);
}

static void test_service_create_defaults(void **state)
{
	Swarm__ServiceSpec *s = spec_service_new();
	struct spec_cli cli = { 0 };
	char err[ERRLEN];

	(void)state;
	assert_int_equal(svc_args(SPEC_CREATE, s, &cli, err, "busybox", NULL), 0);
	assert_int_equal(s->replicas, 1);
	assert_string_equal(s->endpoint_mode, "vip");
	assert_string_equal(s->restart->condition, "any");
	assert_int_equal(s->restart->delay_ns, 5000000000LL);
	assert_int_equal(s->update->parallelism, 1);
	assert_string_equal(s->update->failure_action, "pause");
	assert_string_equal(s->update->order, "stop-first");
	assert_int_equal(s->update->monitor_ns, 5000000000LL);
	assert_int_equal(s->container->stop_grace_ns, 10000000000LL);
	assert_null(s->container->health);
	assert_false(cli.detach);
	pb_free(s);
}

/* One create command line that must fail with msg in the error. */
static void create_fails(const char *msg, ...)
{
	Swarm__ServiceSpec *s = spec_service_new();
	struct spec_cli cli = { 0 };
	char *argv[32], err[ERRLEN] = "";
	int argc = 0;
	va_list ap;

	va_start(ap, msg);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	if (spec_service_args(SPEC_CREATE, argc, argv, s, &cli, err, sizeof(err)) != -EINVAL)
		fail_msg("%s %s ...: accepted, want \"%s\"", argv[0], argc > 1 ? argv[1] : "", msg);
	if (!strstr(err, msg))
		fail_msg("%s ...: error \"%s\" lacks \"%s\"", argv[0], err, msg);
	pb_free(s);
	spec_cli_clear(&cli);
}

static void test_service_create_errors(void **state)
{
	(void)state;
	create_fails("invalid replicas value -1", "--replicas", "-1", "nginx", NULL);
	create_fails("invalid replicas value abc", "--replicas", "abc", "nginx", NULL);
	create_fails("invalid replicas value 1.5", "--replicas", "1.5", "nginx", NULL);
	create_fails("unknown flag: --foo", "--foo", "nginx", NULL);
	create_fails("unknown flag: --args", "--args", "x", "nginx", NULL);
	create_fails("needs an IMAGE", "--name", "web", NULL);
	create_fails("flag needs an argument: --name", "--name", NULL);
	create_fails("--replicas can only be used with replicated mode", "--mode", "global",
		     "--replicas", "2", "nginx", NULL);
	create_fails("--replicas can only be used with replicated mode", "--replicas", "2",
		     "--mode", "global", "nginx", NULL);
	create_fails("invalid --mode \"job\"", "--mode", "job", "nginx", NULL);
	create_fails("ingress mode can't be used with endpoint mode dnsrr", "--endpoint-mode", "dnsrr",
		     "-p", "80:80", "nginx", NULL);
	create_fails("invalid duration \"5\" for --restart-delay", "--restart-delay", "5", "nginx", NULL);
	create_fails("negative", "--stop-grace-period", "-1s", "nginx", NULL);
	create_fails("invalid --restart-condition \"always\"", "--restart-condition", "always", "nginx", NULL);
	create_fails("invalid --update-order", "--update-order", "random", "nginx", NULL);
	create_fails("invalid --rollback-failure-action \"rollback\"", "--rollback-failure-action",
		     "rollback", "nginx", NULL);
	create_fails("invalid --limit-memory \"lots\"", "--limit-memory", "lots", "nginx", NULL);
	create_fails("invalid --limit-cpu", "--limit-cpu", "half", "nginx", NULL);
	create_fails("--no-healthcheck conflicts", "--no-healthcheck", "--health-cmd", "true", "nginx", NULL);
	create_fails("invalid constraint", "--constraint", "node.role=worker", "nginx", NULL);
	create_fails("invalid service name", "--name", "my.web", "nginx", NULL);
	create_fails("published port 80/tcp is given twice", "-p", "80:80", "-p", "80:81", "nginx", NULL);
	create_fails("already attached to network ol_net", "--network", "ol_net", "--network", "ol_net",
		     "nginx", NULL);
	create_fails("invalid environment variable", "-e", "=x", "nginx", NULL);
	create_fails("invalid health-retries value", "--health-retries", "-2", "nginx", NULL);
}

static void test_service_create_dnsrr_host_port(void **state)
{
	Swarm__ServiceSpec *s = spec_service_new();
	struct spec_cli cli = { 0 };
	char err[ERRLEN];

	(void)state;
	assert_int_equal(svc_args(SPEC_CREATE, s, &cli, err, "--endpoint-mode", "dnsrr", "-p",
				  "published=8080,target=80,mode=host", "nginx", NULL), 0);
	assert_string_equal(s->endpoint_mode, "dnsrr");
	pb_free(s);

	s = spec_service_new();
	assert_int_equal(svc_args(SPEC_CREATE, s, &cli, err, "--no-healthcheck", "--mode", "global", "nginx", NULL), 0);
	assert_string_equal(s->container->health->test[0], "NONE");
	assert_string_equal(s->mode, "global");
	pb_free(s);
}

static void test_service_update(void **state)
{
	Swarm__ServiceSpec *s = spec_service_new();
	struct spec_cli cli = { 0 }, up = { 0 };
	char err[ERRLEN] = "";

	(void)state;
	assert_int_equal(svc_args(SPEC_CREATE, s, &cli, err, "--name", "web", "--network", "ol_net",
				  "--network", "n2", "-p", "80:80", "-p", "53:53/udp", "-e", "A=1", "-e", "B=2",
				  "--constraint", "node.role==worker", "--mount", "type=bind,source=/a,target=/b",
				  "-l", "k=v", "busybox", "sleep", "1", NULL), 0);
	int rc = svc_args(SPEC_UPDATE, s, &up, err, "--args", "ping www.example.com",
			  "--image", "busybox:1.36", "--replicas", "3", "--force",
			  "--publish-add", "9090:90", "--publish-add", "80:8080", "--publish-rm", "53/udp",
			  "--env-add", "A=9", "--env-rm", "B", "--constraint-add", "node.hostname!=node1",
			  "--constraint-rm", "node.role == worker", "--network-add", "name=n3,alias=x",
			  "--network-rm", "ol_net", "--network-rm", "someid", "--mount-rm", "/b",
			  "--label-add", "k=w", "web", NULL);
	if (rc)
		fail_msg("%s", err);
	assert_string_equal(up.service, "web");
	assert_int_equal(s->container->n_args, 2);
	assert_string_equal(s->container->args[0], "ping");
	assert_string_equal(s->container->args[1], "www.example.com");
	assert_string_equal(s->container->image, "busybox:1.36");
	assert_int_equal(s->replicas, 3);
	assert_int_equal(s->force_update, 1);
	assert_int_equal(s->n_ports, 2);   /* 80:80 replaced by 80:8080, 53/udp gone, 9090 added */
	check_port(s->ports[0], 80, 8080, "tcp", "ingress");
	check_port(s->ports[1], 9090, 90, "tcp", "ingress");
	assert_int_equal(s->container->n_env, 1);
	assert_string_equal(s->container->env[0], "A=9");
	assert_int_equal(s->n_constraints, 1);
	assert_string_equal(s->constraints[0], "node.hostname!=node1");
	assert_int_equal(s->n_networks, 2);
	assert_string_equal(s->networks[0]->target, "n2");
	assert_string_equal(s->networks[1]->target, "n3");
	/* a name the spec does not hold is left for the caller to resolve */
	assert_int_equal(up.n_net_rm, 1);
	assert_string_equal(up.net_rm[0], "someid");
	assert_int_equal(s->container->n_mounts, 0);
	assert_string_equal(s->labels[0]->value, "w");
	assert_true(up.changes > 10);
	spec_cli_clear(&up);

	/* --args "" clears the arguments; --force bumps again */
	struct spec_cli up2 = { 0 };
	assert_int_equal(svc_args(SPEC_UPDATE, s, &up2, err, "--args", "", "--force", "web", NULL), 0);
	assert_int_equal(s->container->n_args, 0);
	assert_int_equal(s->force_update, 2);
	pb_free(s);
}

static void test_service_update_errors(void **state)
{
	Swarm__ServiceSpec *s = spec_service_new();
	struct spec_cli cli = { 0 };
	char err[ERRLEN];

	(void)state;
	assert_int_equal(svc_args(SPEC_CREATE, s, &cli, err, "--mode", "global", "nginx", NULL), 0);
	struct { const char *a, *b, *msg; } bad[] = {
		{ "--replicas", "2", "--replicas can only be used with replicated mode" },
		{ "--publish-rm", "8080", "no published port 8080" },
		{ "--env-rm", "NOPE", "no environment variable NOPE" },
		{ "--constraint-rm", "node.id==x", "no constraint" },
		{ "--mount-rm", "/nope", "no mount at /nope" },
		{ "--label-rm", "nope", "no label nope" },
		{ "--args", "\"open", "unterminated quote" },
		{ "--publish-rm", "http", "expected PUBLISHED" },
		{ "--name", "x", "unknown flag: --name" },
		{ "--image", "", "--image needs an image name" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Swarm__ServiceSpec *c = pb_dup(s);
		struct spec_cli up = { 0 };
		assert_int_equal(svc_args(SPEC_UPDATE, c, &up, err, bad[i].a, bad[i].b, "web", NULL), -EINVAL);
		if (!strstr(err, bad[i].msg))
			fail_msg("update %s %s: error \"%s\" lacks \"%s\"", bad[i].a, bad[i].b, err, bad[i].msg);
		pb_free(c);
		spec_cli_clear(&up);
	}
	/* the probe pass (words only) does not mind removing what is absent */
	struct spec_cli probe = { .probe = true };
	assert_int_equal(svc_args(SPEC_UPDATE, s, &probe, err, "--publish-rm", "8080", "--env-rm", "X",
				  "web", NULL), 0);
	struct spec_cli two = { 0 };
	assert_int_equal(svc_args(SPEC_UPDATE, s, &two, err, "a", "b", NULL), -EINVAL);
	assert_non_null(strstr(err, "exactly one SERVICE"));
	struct spec_cli none = { 0 };
	assert_int_equal(svc_args(SPEC_UPDATE, s, &none, err, "--force", NULL), -EINVAL);
	assert_non_null(strstr(err, "needs a SERVICE"));
	struct spec_cli rb = { 0 };
	assert_int_equal(svc_args(SPEC_UPDATE, s, &rb, err, "--rollback", "--force", "web", NULL), -EINVAL);
	assert_non_null(strstr(err, "--rollback cannot be combined"));
	struct spec_cli help = { 0 };
	assert_int_equal(svc_args(SPEC_UPDATE, s, &help, err, "--help", NULL), 0);
	assert_true(help.help);
	pb_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opt_forms),
		cmocka_unit_test(test_opt_errors),
		cmocka_unit_test(test_opt_stop_at_positional),
		cmocka_unit_test(test_opt_bool),
		cmocka_unit_test(test_publish_short),
		cmocka_unit_test(test_publish_long),
		cmocka_unit_test(test_publish_errors),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_cpus_and_uints),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_constraints),
		cmocka_unit_test(test_split_args),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_network_create),
		cmocka_unit_test(test_service_create_full),
		cmocka_unit_test(test_service_create_defaults),
		cmocka_unit_test(test_service_create_errors),
		cmocka_unit_test(test_service_create_dnsrr_host_port),
		cmocka_unit_test(test_service_update),
		cmocka_unit_test(test_service_update_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
