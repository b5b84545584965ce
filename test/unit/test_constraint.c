/* Placement constraint parser and matcher. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "manager/constraint.h"

static void parse_ok(const char *expr, const char *key, const char *value, bool equal)
{
	struct constraint c;
	char err[256];

	assert_int_equal(constraint_parse(expr, &c, err, sizeof(err)), 0);
	assert_string_equal(c.key, key);
	assert_string_equal(c.value, value);
	assert_int_equal(c.equal, equal);
}

static void parse_bad(const char *expr, const char *errpart)
{
	struct constraint c;
	char err[256];

	assert_int_equal(constraint_parse(expr, &c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, errpart))
		fail_msg("'%s': error '%s' lacks '%s'", expr, err, errpart);
}

static void test_parse_valid(void **state)
{
	parse_ok("node.role==manager", "node.role", "manager", true);
	parse_ok("node.role!=worker", "node.role", "worker", false);
	parse_ok("node.id==abc123", "node.id", "abc123", true);
	parse_ok("node.hostname==node-1", "node.hostname", "node-1", true);
	parse_ok("node.labels.zone==eu-west", "node.labels.zone", "eu-west", true);
	parse_ok("node.labels.disk_type!=ssd", "node.labels.disk_type", "ssd", false);
	parse_ok("node.ip==192.0.2.0/24", "node.ip", "192.0.2.0/24", true);
	/* Blanks around the operator and at the ends. */
	parse_ok("  node.role ==  manager ", "node.role", "manager", true);
	parse_ok("node.hostname != node-2", "node.hostname", "node-2", false);
	/* Keys are case-insensitive, as in swarmkit. */
	parse_ok("Node.Role==Manager", "Node.Role", "Manager", true);
}

static void test_parse_errors(void **state)
{
	parse_bad("node.foo==x", "unknown key 'node.foo'");
	parse_bad("node.role=manager", "expected one operator from ==, !=");
	parse_bad("node.role", "expected one operator");
	parse_bad("", "expected one operator");
	parse_bad("node.role==", "empty value");
	parse_bad("node.role==   ", "empty value");
	parse_bad("==manager", "key '' is invalid");
	parse_bad("node.labels.==x", "label name missing");
	parse_bad("node role==x", "key 'node role' is invalid");
	parse_bad("node.role==a=b", "value 'a=b' is invalid");
	parse_bad("node.role==a==b", "value 'a==b' is invalid");
	parse_bad("1node.role==x", "is invalid");
}

static void test_parse_long(void **state)
{
	char expr[600];
	struct constraint c;
	char err[128];

	memset(expr, 'a', sizeof(expr));
	memcpy(expr, "node.role==", 11);
	expr[sizeof(expr) - 1] = '\0';
	assert_int_equal(constraint_parse(expr, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
	/* A tiny error buffer is not overrun. */
	assert_int_equal(constraint_parse("node.foo==x", &c, err, 8), -EINVAL);
	assert_true(strlen(err) < 8);
}

static bool matches(const char *expr, const Swarm__Node *n)
{
	struct constraint c;
	char err[256];

	assert_int_equal(constraint_parse(expr, &c, err, sizeof(err)), 0);
	return constraint_match(&c, n);
}

static void test_match(void **state)
{
	Swarm__Node n = SWARM__NODE__INIT;
	Swarm__KeyValue zone = SWARM__KEY_VALUE__INIT, disk = SWARM__KEY_VALUE__INIT;
	Swarm__KeyValue *labels[] = { &zone, &disk };

	n.id = "n1abc";
	n.hostname = "Worker-1";
	n.role = "worker";
	n.addr = "192.0.2.11";
	zone.key = "zone";
	zone.value = "eu";
	disk.key = "Disk";
	disk.value = "ssd";
	n.labels = labels;
	n.n_labels = 2;

	assert_true(matches("node.id==n1abc", &n));
	assert_false(matches("node.id==n1", &n));        /* whole id only */
	assert_true(matches("node.id!=n2", &n));
	assert_true(matches("node.hostname==worker-1", &n)); /* case-insensitive */
	assert_false(matches("node.hostname!=WORKER-1", &n));
	assert_true(matches("node.role==worker", &n));
	assert_false(matches("node.role==manager", &n));
	assert_true(matches("node.role!=manager", &n));
	assert_true(matches("node.labels.zone==eu", &n));
	assert_true(matches("node.labels.zone==EU", &n));
	assert_false(matches("node.labels.zone!=eu", &n));
	assert_true(matches("node.labels.zone!=us", &n));
	/* Label names compare exactly; a missing label is "". */
	assert_true(matches("node.labels.Disk==ssd", &n));
	assert_false(matches("node.labels.disk==ssd", &n));
	assert_true(matches("node.labels.rack!=r1", &n));
	assert_false(matches("node.labels.rack==r1", &n));
	assert_true(matches("node.ip==192.0.2.11", &n));
	assert_true(matches("node.ip==192.0.2.0/24", &n));
	assert_false(matches("node.ip==198.51.100.0/24", &n));
	assert_true(matches("node.ip!=198.51.100.0/24", &n));
	n.addr = "192.0.2.11:2377";
	assert_true(matches("node.ip==192.0.2.11", &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
