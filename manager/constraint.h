/* Placement constraints: "node.id==X", "node.hostname!=Y", "node.role==manager",
 * "node.labels.KEY==VALUE". Pure functions. */
#ifndef SWARM_CONSTRAINT_H
#define SWARM_CONSTRAINT_H

#include <stdbool.h>
#include <stddef.h>
#include "objects.pb-c.h"

struct constraint {
	char key[128];      /* "node.id", "node.hostname", "node.role", "node.labels.zone" */
	char value[256];
	bool equal;         /* == vs != */
};

/* Parses one expression; -EINVAL with a reason in err on anything else. */
int constraint_parse(const char *expr, struct constraint *out, char *err, size_t errlen);
/* True when the node satisfies the constraint. */
bool constraint_match(const struct constraint *c, const Swarm__Node *n);

#endif
