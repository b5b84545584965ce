/* The node's identity on disk: what it needs to rejoin its session after a
 * restart. Files are written atomically; the key is mode 0600. */
#include "agent.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *path_of(struct agent *a, const char *name)
{
	return xasprintf("%s/%s", a->node_dir, name);
}

static int read_pem(struct agent *a, const char *name, char **out)
{
	char *p = path_of(a, name);
	int r = file_read_all(p, 1 << 20, out, NULL);
	free(p);
	return r;
}

static int write_file(struct agent *a, const char *name, const char *data, int mode)
{
	char *p = path_of(a, name);
	int r = file_write_atomic(p, data, strlen(data), mode);
	free(p);
	return r;
}

void identity_clear(struct agent *a)
{
	struct identity *id = &a->id;
	free(id->node_id);
	free(id->role);
	free(id->cluster_id);
	free(id->cert);
	free(id->key);
	free(id->ca);
	for (size_t i = 0; i < id->n_managers; i++)
		free(id->managers[i]);
	free(id->managers);
	free(id->advertise_addr);
	free(id->data_path_addr);
	memset(id, 0, sizeof(*id));
}

int identity_load(struct agent *a)
{
	char *text = NULL;
	char *p = path_of(a, "identity.json");
	int r = file_read_all(p, 1 << 20, &text, NULL);
	free(p);
	if (r < 0)
		return r;
	struct json_object *j = json_tokener_parse(text);
	free(text);
	if (!j)
		return -EINVAL;
	struct identity *id = &a->id;
	identity_clear(a);
	struct json_object *v;
#define GETS(field, key) \
	id->field = xstrdup(json_object_object_get_ex(j, key, &v) ? json_object_get_string(v) : "")
	GETS(node_id, "NodeID");
	GETS(role, "Role");
	GETS(cluster_id, "ClusterID");
	GETS(advertise_addr, "AdvertiseAddr");
	GETS(data_path_addr, "DataPathAddr");
#undef GETS
	if (json_object_object_get_ex(j, "Managers", &v) && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		id->managers = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			id->managers[id->n_managers++] =
				xstrdup(json_object_get_string(json_object_array_get_idx(v, i)));
	}
	json_object_put(j);
	if (read_pem(a, "cert.pem", &id->cert) < 0 || read_pem(a, "key.pem", &id->key) < 0 ||
	    read_pem(a, "ca.pem", &id->ca) < 0 || !id->node_id[0] || id->n_managers == 0) {
		log_warn("agent, identity in %s is incomplete; ignoring it", a->node_dir);
		identity_clear(a);
		return -EINVAL;
	}
	return 0;
}

int identity_save(struct agent *a)
{
	struct identity *id = &a->id;
	int r = mkdir_p(a->node_dir, 0700);
	if (r < 0)
		return r;
	struct json_object *j = json_object_new_object();
	json_object_object_add(j, "NodeID", json_object_new_string(id->node_id));
	json_object_object_add(j, "Role", json_object_new_string(id->role ? id->role : ""));
	json_object_object_add(j, "ClusterID", json_object_new_string(id->cluster_id ? id->cluster_id : ""));
	json_object_object_add(j, "AdvertiseAddr", json_object_new_string(id->advertise_addr ? id->advertise_addr : ""));
	json_object_object_add(j, "DataPathAddr", json_object_new_string(id->data_path_addr ? id->data_path_addr : ""));
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < id->n_managers; i++)
		json_object_array_add(arr, json_object_new_string(id->managers[i]));
	json_object_object_add(j, "Managers", arr);
	/* Key and certificates first: identity.json is the commit point. */
	r = write_file(a, "key.pem", id->key, 0600);
	if (!r)
		r = write_file(a, "cert.pem", id->cert, 0644);
	if (!r)
		r = write_file(a, "ca.pem", id->ca, 0644);
	if (!r)
		r = write_file(a, "identity.json", json_object_to_json_string(j), 0600);
	json_object_put(j);
	return r;
}
