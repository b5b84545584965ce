/* Order of use of a network key ring (see netkeys.h). */
#include "netkeys.h"

#include <stdlib.h>
#include <string.h>

static int netkeys_by_time(const void *a, const void *b)
{
	const Swarm__NetworkKey *x = *(const Swarm__NetworkKey *const *)a;
	const Swarm__NetworkKey *y = *(const Swarm__NetworkKey *const *)b;
	return x->lamport_time < y->lamport_time ? -1 : x->lamport_time > y->lamport_time;
}

size_t netkeys_order(Swarm__NetworkKey *const *keys, size_t n, const char *subsystem,
		     const Swarm__NetworkKey **out, size_t max)
{
	const Swarm__NetworkKey *all[64];
	size_t k = 0;
	for (size_t i = 0; i < n && k < 64; i++)
		if (strcmp(keys[i]->subsystem, subsystem) == 0)
			all[k++] = keys[i];
	qsort(all, k, sizeof(*all), netkeys_by_time);
	if (k >= 2) {
		const Swarm__NetworkKey *t = all[0];
		all[0] = all[1];
		all[1] = t;
	}
	if (k > max)
		k = max;
	memcpy(out, all, k * sizeof(*out));
	return k;
}
