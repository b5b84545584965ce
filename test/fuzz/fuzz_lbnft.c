/* Fuzz target for lbd's read-back of its nftables table (lb_nft_parse):
 * the JSON listing of a table anyone with root may have edited by hand.
 * The input is the listing; each input is parsed as a masquerading and as
 * a keep-source provider would, under our table's name. Every outcome
 * must be clean: a result, or -EINVAL, never a crash or a leak. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lb.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	for (int masq = 0; masq < 2; masq++) {
		struct lb_state a;
		bool sk;
		char *strays = NULL;
		lb_state_init(&a);
		if (lb_nft_parse(s, "swarm_lb", masq, &a, &sk, &strays) == 0)
			for (size_t i = 0; i < a.n_svcs; i++)
				(void)lb_service_same(&a.svcs[i], &a.svcs[i]);
		lb_state_clear(&a);
		free(strays);
	}
	free(s);
	return 0;
}
