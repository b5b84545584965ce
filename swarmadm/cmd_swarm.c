/* swarmadm init, join, join-token, leave, info. */
#include "swarmadm.h"
#include "format.h"
#include "opt.h"
#include "pb.h"
#include "rpc.h"
#include "spec.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char init_usage[] =
	"Usage: swarmadm init [OPTIONS]\n"
	"\n"
	"Creates a swarm with this node as its manager, and joins this node's agent.\n"
	"\n"
	"  --advertise-addr IP                 Address other nodes reach this manager at\n"
	"  --listen-addr IP[:PORT]             Address the manager listens on (default advertise:2377)\n"
	"  --data-path-addr IP                 Address for overlay (VXLAN) traffic\n"
	"  --data-path-port PORT               UDP port for VXLAN (default 4789)\n"
	"  --default-addr-pool CIDR            Pool overlay subnets come from (repeatable)\n"
	"  --default-addr-pool-mask-length N   Prefix length of each overlay subnet (default 24)\n";

static const char join_usage[] =
	"Usage: swarmadm join --token TOKEN [OPTIONS] MANAGER[:2377]\n"
	"\n"
	"Joins this node to a swarm as a worker or a manager (the token decides).\n"
	"\n"
	"  --token TOKEN          Join token from 'swarmadm join-token'\n"
	"  --advertise-addr IP    Address other nodes reach this node at\n"
	"  --data-path-addr IP    Address for overlay (VXLAN) traffic\n";

static const char join_token_usage[] =
	"Usage: swarmadm join-token [-q] [--rotate] worker|manager\n"
	"\n"
	"  -q, --quiet   Print only the token\n"
	"  --rotate      Replace the token (the old one stops working)\n";

static const char update_usage[] =
	"Usage: swarmadm swarm update [--rotate-network-keys] [--key-rotation-interval DURATION]\n"
	"\n"
	"  --rotate-network-keys          A new key in the gossip and data-path key rings now\n"
	"                                 (sent with one rotation later; nothing restarts)\n"
	"  --key-rotation-interval DUR    How often the rings rotate by themselves (default 12h,\n"
	"                                 at least 1m)\n";

static const char leave_usage[] =
	"Usage: swarmadm leave [--force]\n"
	"\n"
	"  -f, --force   Leave even if this node is a manager\n";

/* "IP" or "IP:PORT". */
static bool addr_ok(const char *s, bool port_allowed)
{
	char ip[16];
	const char *colon = strchr(s, ':');
	struct in_addr a;

	if (!colon)
		return inet_pton(AF_INET, s, &a) == 1;
	if (!port_allowed || (size_t)(colon - s) >= sizeof(ip))
		return false;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	uint64_t port;
	return inet_pton(AF_INET, ip, &a) == 1 && spec_uint_parse(colon + 1, &port) == 0 &&
	       port >= 1 && port <= 65535;
}

/* "HOST" or "HOST:PORT" where HOST is an IPv4 address or a host name. */
static bool manager_ok(const char *s)
{
	size_t hlen = strcspn(s, ":");
	uint64_t port;

	if (hlen == 0 || hlen > 253)
		return false;
	for (size_t i = 0; i < hlen; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return !s[hlen] || (spec_uint_parse(s + hlen + 1, &port) == 0 && port >= 1 && port <= 65535);
}

/* Asks the local agent to join; prints nothing. 0 and the answer, or 1
 * after printing the error. */
static int agent_join(const char *token, const char *manager, const char *advertise,
		      const char *data_path, struct json_object **answer)
{
	Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
	Swarm__AgentJoinRequest jr = SWARM__AGENT_JOIN_REQUEST__INIT;
	Swarm__LocalResponse *resp;

	jr.token = (char *)token;
	jr.manager = (char *)manager;
	jr.advertise_addr = (char *)(advertise ? advertise : "");
	jr.data_path_addr = (char *)(data_path ? data_path : "");
	req.body_case = SWARM__LOCAL_REQUEST__BODY_JOIN;
	req.join = &jr;
	resp = rpc_local_call(&req);
	if (!resp)
		return 1;
	*answer = json_parse_answer(resp->json, "agent", false);
	pb_free(resp);
	return *answer ? 0 : 1;
}

enum { I_HELP = 1, I_ADVERTISE, I_LISTEN, I_DATA_ADDR, I_DATA_PORT, I_POOL, I_POOL_LEN };

int cmd_init(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, I_HELP },
		{ "advertise-addr", 0, true, I_ADVERTISE },
		{ "listen-addr", 0, true, I_LISTEN },
		{ "data-path-addr", 0, true, I_DATA_ADDR },
		{ "data-path-port", 0, true, I_DATA_PORT },
		{ "default-addr-pool", 0, true, I_POOL },
		{ "default-addr-pool-mask-length", 0, true, I_POOL_LEN },
		{ NULL, 0, false, 0 },
	};
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__InitRequest ir = SWARM__INIT_REQUEST__INIT;
	Swarm__AdminResponse *resp = NULL;
	struct json_object *joined = NULL;
	char **pools = NULL;
	size_t n_pools = 0;
	unsigned min_prefix = 32;
	struct opt_iter it;
	const char *val;
	char err[256];
	int id, rc = 1;
	uint64_t u;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		switch (id) {
		case I_HELP:
			rc = usage(init_usage);
			goto out;
		case I_ADVERTISE:
			if (!addr_ok(val, true)) {
				fail("invalid --advertise-addr \"%s\": expected an IPv4 address", val);
				goto out;
			}
			ir.advertise_addr = (char *)val;
			break;
		case I_LISTEN:
			if (!addr_ok(val, true)) {
				fail("invalid --listen-addr \"%s\": expected IP or IP:PORT", val);
				goto out;
			}
			ir.listen_addr = (char *)val;
			break;
		case I_DATA_ADDR:
			if (!addr_ok(val, false)) {
				fail("invalid --data-path-addr \"%s\": expected an IPv4 address", val);
				goto out;
			}
			ir.data_path_addr = (char *)val;
			break;
		case I_DATA_PORT:
			if (spec_uint_parse(val, &u) < 0 || u < 1024 || u > 49151) {
				fail("invalid --data-path-port \"%s\": a UDP port in 1024-49151", val);
				goto out;
			}
			ir.data_path_port = (uint32_t)u;
			break;
		case I_POOL: {
			uint32_t net;
			unsigned prefix;
			if (spec_cidr_parse(val, &net, &prefix, err, sizeof(err)) < 0) {
				fail("invalid --default-addr-pool: %s", err);
				goto out;
			}
			if (prefix < min_prefix)
				min_prefix = prefix;
			pb_strv_add(&pools, &n_pools, val);
			break;
		}
		case I_POOL_LEN:
			if (spec_uint_parse(val, &u) < 0 || u < 1 || u > 29) {
				fail("invalid --default-addr-pool-mask-length \"%s\": 1-29", val);
				goto out;
			}
			ir.pool_mask_len = (uint32_t)u;
			break;
		case 0:
			fail("init takes no arguments (got \"%s\")", val);
			goto out;
		default:
			fail("%s", err);
			goto out;
		}
	}
	if (ir.pool_mask_len && n_pools && ir.pool_mask_len < min_prefix) {
		fail("--default-addr-pool-mask-length %u is shorter than the pool's /%u",
		     ir.pool_mask_len, min_prefix);
		goto out;
	}
	ir.default_addr_pool = pools;
	ir.n_default_addr_pool = n_pools;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_INIT;
	req.init = &ir;
	resp = rpc_admin_call(&req);
	if (!resp)
		goto out;
	if (!resp->init || !*resp->init->manager_token || !*resp->init->manager_addr) {
		fail("the manager's answer to init carries no token or address");
		goto out;
	}
	if (agent_join(resp->init->manager_token, resp->init->manager_addr, ir.advertise_addr,
		       ir.data_path_addr, &joined)) {
		fprintf(stderr, "swarmadm: the swarm was created, but this node's agent did not join it; "
			"run 'swarmadm join-token manager' and 'swarmadm join' here\n");
		goto out;
	}
	printf("Swarm initialized: current node (%s) is now a manager.\n\n"
	       "To add a worker to this swarm, run the following command:\n\n"
	       "    swarmadm join --token %s %s\n\n"
	       "To add a manager to this swarm, run 'swarmadm join-token manager' and follow the instructions.\n\n",
	       format_get_str(joined, "NodeID"), resp->init->worker_token, resp->init->manager_addr);
	rc = 0;
out:
	json_object_put(joined);
	pb_free(resp);
	pb_strv_clear(&pools, &n_pools);
	return rc;
}

enum { J_HELP = 1, J_TOKEN, J_ADVERTISE, J_DATA_ADDR };

int cmd_join(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, J_HELP },
		{ "token", 0, true, J_TOKEN },
		{ "advertise-addr", 0, true, J_ADVERTISE },
		{ "data-path-addr", 0, true, J_DATA_ADDR },
		{ NULL, 0, false, 0 },
	};
	const char *token = NULL, *advertise = NULL, *data_path = NULL, *manager = NULL, *val;
	struct json_object *joined = NULL;
	struct opt_iter it;
	char err[256], mgr[64];
	int id;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		switch (id) {
		case J_HELP:
			return usage(join_usage);
		case J_TOKEN:
			token = val;
			break;
		case J_ADVERTISE:
			if (!addr_ok(val, true))
				return fail("invalid --advertise-addr \"%s\": expected an IPv4 address", val);
			advertise = val;
			break;
		case J_DATA_ADDR:
			if (!addr_ok(val, false))
				return fail("invalid --data-path-addr \"%s\": expected an IPv4 address", val);
			data_path = val;
			break;
		case 0:
			if (manager)
				return fail("join takes one MANAGER address (got \"%s\" and \"%s\")", manager, val);
			manager = val;
			break;
		default:
			return fail("%s", err);
		}
	}
	if (!token || !*token)
		return fail("join needs --token TOKEN (from 'swarmadm join-token worker' on a manager)");
	if (!manager)
		return fail("join needs the MANAGER address, such as 192.0.2.11:2377");
	if (!manager_ok(manager))
		return fail("invalid manager address \"%s\": expected HOST[:PORT]", manager);
	snprintf(mgr, sizeof(mgr), "%s%s", manager, strchr(manager, ':') ? "" : ":2377");
	if (agent_join(token, mgr, advertise, data_path, &joined))
		return 1;
	const char *role = format_get_str(joined, "Role");
	printf("This node joined a swarm as a %s.\n", strcmp(role, "manager") == 0 ? "manager" : "worker");
	json_object_put(joined);
	return 0;
}

/* The manager's address for the join command line: the join-token answer
 * carries it as plain text in json (or in init.manager_addr); else it comes
 * from `info`. */
static void manager_addr(const Swarm__AdminResponse *resp, char *out, size_t outlen)
{
	static const char *const paths[] = {
		"ManagerAddr", "Swarm.RemoteManagers.0.Addr", "Cluster.AdvertiseAddr", "AdvertiseAddr",
	};
	struct json_object *info;

	snprintf(out, outlen, "MANAGER-IP:2377");
	if (*resp->json && resp->json[0] != '{' && resp->json[0] != '[') {
		snprintf(out, outlen, "%s", resp->json);
		return;
	}
	if (resp->init && *resp->init->manager_addr) {
		snprintf(out, outlen, "%s", resp->init->manager_addr);
		return;
	}
	info = admin_json(SWARM__ADMIN_REQUEST__BODY_INFO, NULL, 0);
	if (!info)
		return;
	struct json_object *doc = json_object_array_get_idx(info, 0);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		const char *v = format_get_str(doc, paths[i]);
		if (*v) {
			snprintf(out, outlen, "%s%s", v, strchr(v, ':') ? "" : ":2377");
			break;
		}
	}
	json_object_put(info);
}

enum { T_HELP = 1, T_QUIET, T_ROTATE };

int cmd_join_token(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, T_HELP },
		{ "quiet", 'q', false, T_QUIET },
		{ "rotate", 0, false, T_ROTATE },
		{ NULL, 0, false, 0 },
	};
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__JoinTokenRequest jt = SWARM__JOIN_TOKEN_REQUEST__INIT;
	Swarm__AdminResponse *resp;
	const char *role = NULL, *val;
	bool quiet = false, rotate = false;
	struct opt_iter it;
	char err[256], addr[128];
	int id;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == T_HELP)
			return usage(join_token_usage);
		if ((id == T_QUIET || id == T_ROTATE) && opt_bool(val, id == T_QUIET ? &quiet : &rotate) < 0)
			return fail("invalid value \"%s\" for a boolean flag", val);
		if (id == 0) {
			if (role)
				return fail("join-token takes one role");
			role = val;
		}
	}
	if (!role || (strcmp(role, "worker") && strcmp(role, "manager")))
		return fail("join-token needs a role: worker or manager");
	jt.role = (char *)role;
	jt.rotate = rotate;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_JOIN_TOKEN;
	req.join_token = &jt;
	resp = rpc_admin_call(&req);
	if (!resp)
		return 1;
	if (!*resp->token) {
		pb_free(resp);
		return fail("the manager sent no token");
	}
	if (quiet) {
		puts(resp->token);
		pb_free(resp);
		return 0;
	}
	manager_addr(resp, addr, sizeof(addr));
	if (rotate)
		printf("Successfully rotated %s join token.\n\n", role);
	printf("To add a %s to this swarm, run the following command:\n\n"
	       "    swarmadm join --token %s %s\n\n", role, resp->token, addr);
	pb_free(resp);
	return 0;
}

enum { L_HELP = 1, L_FORCE };

int cmd_leave(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, L_HELP },
		{ "force", 'f', false, L_FORCE },
		{ NULL, 0, false, 0 },
	};
	Swarm__LocalRequest req = SWARM__LOCAL_REQUEST__INIT;
	Swarm__NameRequest nr = SWARM__NAME_REQUEST__INIT;
	Swarm__LocalResponse *resp;
	struct opt_iter it;
	const char *val;
	bool force = false;
	char err[256];
	int id;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == L_HELP)
			return usage(leave_usage);
		if (id == 0)
			return fail("leave takes no arguments (got \"%s\")", val);
		if (opt_bool(val, &force) < 0)
			return fail("invalid value \"%s\" for --force", val);
	}
	nr.force = force;
	req.body_case = SWARM__LOCAL_REQUEST__BODY_LEAVE;
	req.leave = &nr;
	resp = rpc_local_call(&req);
	if (!resp)
		return 1;
	pb_free(resp);
	puts("Node left the swarm.");
	return 0;
}

int cmd_info(int argc, char **argv)
{
	Swarm__AdminResponse *resp;
	struct json_object *doc;

	if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
		return usage("Usage: swarmadm info\n\nPrints the manager's view of the swarm as JSON.\n");
	if (argc > 0)
		return fail("info takes no arguments");
	resp = admin_names(SWARM__ADMIN_REQUEST__BODY_INFO, NULL, 0, false);
	if (!resp)
		return 1;
	doc = json_parse_answer(resp->json, "manager", false);
	pb_free(resp);
	if (!doc)
		return 1;
	char *s = format_json_pretty(doc);
	puts(s);
	free(s);
	json_object_put(doc);
	return 0;
}

enum { U_HELP = 1, U_ROTATE, U_INTERVAL };

int cmd_update(int argc, char **argv)
{
	static const struct opt_def defs[] = {
		{ "help", 'h', false, U_HELP },
		{ "rotate-network-keys", 0, false, U_ROTATE },
		{ "key-rotation-interval", 0, true, U_INTERVAL },
		{ NULL, 0, false, 0 },
	};
	Swarm__AdminRequest req = SWARM__ADMIN_REQUEST__INIT;
	Swarm__ClusterUpdateRequest cu = SWARM__CLUSTER_UPDATE_REQUEST__INIT;
	const char *val;
	struct opt_iter it;
	char err[256];
	int id;
	bool any = false, rotate = false;

	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, defs, &val, err, sizeof(err))) != -1) {
		if (id < 0)
			return fail("%s", err);
		if (id == U_HELP)
			return usage(update_usage);
		if (id == U_ROTATE && opt_bool(val, &rotate) < 0)
			return fail("invalid value \"%s\" for a boolean flag", val);
		if (id == U_INTERVAL && (duration_parse(val, &cu.key_rotation_interval_ns) < 0 ||
					 cu.key_rotation_interval_ns <= 0))
			return fail("invalid duration \"%s\" for --key-rotation-interval", val);
		if (id == 0)
			return fail("swarm update takes no arguments");
		any = true;
	}
	if (!any)
		return fail("swarm update needs a flag (see 'swarmadm swarm update --help')");
	cu.rotate_network_keys = rotate;
	req.body_case = SWARM__ADMIN_REQUEST__BODY_CLUSTER_UPDATE;
	req.cluster_update = &cu;
	Swarm__AdminResponse *resp = rpc_admin_call(&req);
	if (!resp)
		return 1;
	pb_free(resp);
	puts("Swarm updated.");
	return 0;
}
