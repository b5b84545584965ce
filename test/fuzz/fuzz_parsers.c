/* Fuzz target for the text parsers that take user or peer input: join
 * tokens, constraints, durations, sizes, addresses, and swarmadm's
 * --publish, --mount, --network, --args and CIDR parsers. Each gets the
 * input as a NUL-terminated string and must return cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "constraint.h"
#include "pb.h"
#include "spec.h"
#include "token.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	char err[256], d[TOKEN_DIGEST_LEN + 1], sec[TOKEN_SECRET_LEN + 1];
	token_parse(s, d, sec);
	struct constraint c;
	constraint_parse(s, &c, err, sizeof(err));
	int64_t v;
	duration_parse(s, &v);
	bytes_parse(s, &v);
	char ip[16];
	uint16_t port;
	hostport_parse(s, ip, &port);
	Swarm__PortConfig **ports = NULL;
	size_t n = 0;
	if (spec_publish_parse(s, &ports, &n, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++)
			pb_free(ports[i]);
	}
	free(ports);
	Swarm__Mount *m = NULL;
	if (spec_mount_parse(s, &m, err, sizeof(err)) == 0)
		pb_free(m);
	Swarm__NetworkAttachmentConfig *na = NULL;
	if (spec_network_attach_parse(s, &na, err, sizeof(err)) == 0)
		pb_free(na);
	char **argv = NULL;
	size_t argc = 0;
	if (spec_split_args(s, &argv, &argc, err, sizeof(err)) == 0)
		spec_strv_free(argv, argc);
	uint32_t net;
	unsigned prefix;
	spec_cidr_parse(s, &net, &prefix, err, sizeof(err));
	free(s);
	return 0;
}
