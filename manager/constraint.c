/* Placement constraints, parsed as swarmkit's manager/constraint does:
 * the first operator found ("==" before "!=") splits key and value, both
 * trimmed; the key must look like an identifier and the value may only hold
 * [A-Za-z0-9:-_. *()?+[]\^$|/] and blanks. Unlike swarmkit, an unknown key
 * ("node.foo") is an error here rather than a constraint that never
 * matches, so a typo is caught at `service create`. Values compare case-
 * insensitively, as in swarmkit. */
#include "manager/constraint.h"
#include "manager/ipam.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LABEL_PREFIX "node.labels."

/* The keys we know, lower case; node.labels.* is handled apart. */
static const char *const known_keys[] = {
	"node.id", "node.hostname", "node.role", "node.ip",
};

static bool key_char_ok(char c, bool first)
{
	if (isalpha((unsigned char)c) || c == '_')
		return true;
	return !first && (isdigit((unsigned char)c) || c == '-' || c == '.');
}

static bool value_char_ok(char c)
{
	return isalnum((unsigned char)c) || isspace((unsigned char)c) ||
	       strchr(":-_.*()?+[]\\^$|/", c) != NULL;
}

/* Copies s[0..len) without surrounding blanks into out (size outlen);
 * false when it does not fit. */
static bool copy_trimmed(const char *s, size_t len, char *out, size_t outlen)
{
	while (len > 0 && isspace((unsigned char)s[0])) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len >= outlen)
		return false;
	memcpy(out, s, len);
	out[len] = '\0';
	return true;
}

int constraint_parse(const char *expr, struct constraint *out, char *err, size_t errlen)
{
	const char *op;
	bool equal;
	size_t i;

	if (errlen)
		err[0] = '\0';
	if (!expr)
		expr = "";
	/* swarmkit tries "==" first, then "!=". */
	op = strstr(expr, "==");
	equal = true;
	if (!op) {
		op = strstr(expr, "!=");
		equal = false;
	}
	if (!op) {
		snprintf(err, errlen, "invalid constraint '%.80s': expected one operator from ==, !=", expr);
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->equal = equal;
	if (!copy_trimmed(expr, (size_t)(op - expr), out->key, sizeof(out->key))) {
		snprintf(err, errlen, "invalid constraint '%.80s': key too long", expr);
		return -EINVAL;
	}
	if (!copy_trimmed(op + 2, strlen(op + 2), out->value, sizeof(out->value))) {
		snprintf(err, errlen, "invalid constraint '%.80s': value too long", expr);
		return -EINVAL;
	}

	/* Key: an identifier of two characters or more, then one we know. */
	for (i = 0; out->key[i]; i++)
		if (!key_char_ok(out->key[i], i == 0))
			break;
	if (out->key[i] || i < 2) {
		snprintf(err, errlen, "invalid constraint '%.80s': key '%s' is invalid", expr, out->key);
		return -EINVAL;
	}
	if (strncasecmp(out->key, LABEL_PREFIX, strlen(LABEL_PREFIX)) == 0) {
		if (out->key[strlen(LABEL_PREFIX)] == '\0') {
			snprintf(err, errlen, "invalid constraint '%.80s': label name missing after node.labels.", expr);
			return -EINVAL;
		}
	} else {
		for (i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
			if (strcasecmp(out->key, known_keys[i]) == 0)
				break;
		if (i == sizeof(known_keys) / sizeof(known_keys[0])) {
			snprintf(err, errlen, "invalid constraint '%.80s': unknown key '%s' "
				 "(expected node.id, node.hostname, node.role, node.ip or node.labels.NAME)",
				 expr, out->key);
			return -EINVAL;
		}
	}

	/* Value: not empty, restricted characters. */
	if (out->value[0] == '\0') {
		snprintf(err, errlen, "invalid constraint '%.80s': empty value", expr);
		return -EINVAL;
	}
	for (i = 0; out->value[i]; i++) {
		if (!value_char_ok(out->value[i])) {
			snprintf(err, errlen, "invalid constraint '%.80s': value '%s' is invalid", expr, out->value);
			return -EINVAL;
		}
	}
	return 0;
}

/* node.ip: the value is an address or a CIDR; the node's address may carry
 * a port ("192.0.2.5:2377"). */
static bool ip_matches(const char *value, const char *node_addr)
{
	char buf[64];
	const char *colon = strchr(node_addr, ':');
	size_t len = colon ? (size_t)(colon - node_addr) : strlen(node_addr);
	uint32_t addr, v;
	unsigned plen;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, node_addr, len);
	buf[len] = '\0';
	if (ipam_addr_parse(buf, &addr) < 0)
		return false;
	if (strchr(value, '/')) {
		struct ipam_prefix p;

		if (ipam_cidr_parse(value, &v, &plen) < 0)
			return false;
		p.addr = v & ipam_mask(plen);
		p.len = plen;
		return ipam_prefix_contains(&p, addr);
	}
	return ipam_addr_parse(value, &v) == 0 && v == addr;
}

bool constraint_match(const struct constraint *c, const Swarm__Node *n)
{
	const char *what = "";
	bool match;

	if (strncasecmp(c->key, LABEL_PREFIX, strlen(LABEL_PREFIX)) == 0) {
		/* Label names compare exactly, as map keys do in swarmkit; a
		 * missing label has the value "". */
		const char *name = c->key + strlen(LABEL_PREFIX);

		for (size_t i = 0; i < n->n_labels; i++) {
			if (n->labels[i] && strcmp(n->labels[i]->key, name) == 0) {
				what = n->labels[i]->value;
				break;
			}
		}
		match = strcasecmp(c->value, what) == 0;
	} else if (strcasecmp(c->key, "node.id") == 0) {
		match = strcasecmp(c->value, n->id) == 0;
	} else if (strcasecmp(c->key, "node.hostname") == 0) {
		match = strcasecmp(c->value, n->hostname) == 0;
	} else if (strcasecmp(c->key, "node.role") == 0) {
		match = strcasecmp(c->value, n->role) == 0;
	} else if (strcasecmp(c->key, "node.ip") == 0) {
		match = ip_matches(c->value, n->addr);
	} else {
		/* Unknown keys never get past constraint_parse; a hand-made
		 * struct with one matches nothing, as in swarmkit. */
		return false;
	}
	return c->equal ? match : !match;
}
