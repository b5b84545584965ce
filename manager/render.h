/* JSON views of store objects, in the shapes `docker ... inspect` prints
 * (ID, Version, CreatedAt, Spec{...}, Endpoint{...}, Status{...}), built with
 * json-c. swarmadm formats its tables and --format output from these.
 * Pure: reads the store, changes nothing. Each returns a new json_object the
 * caller puts. */
#ifndef SWARM_RENDER_H
#define SWARM_RENDER_H

#include <json-c/json.h>
#include "store.h"

struct json_object *render_node(const struct store *s, const Swarm__Node *n);
struct json_object *render_service(const struct store *s, const Swarm__Service *svc);
/* Task, with "ServiceName", "NodeName" (hostname) and "Name" added for `service ps`. */
struct json_object *render_task(const struct store *s, const Swarm__Task *t);
struct json_object *render_network(const struct store *s, const Swarm__Network *n);
/* Spec only, as JSON (for `service inspect` "Spec" and "PreviousSpec"). */
struct json_object *render_service_spec(const Swarm__ServiceSpec *spec);

#endif
