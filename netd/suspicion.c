/* Lifeguard suspicion timer; see suspicion.h. Formulas and rounding follow
 * hashicorp/memberlist suspicion.go / state.go exactly, so timeouts match
 * a Go node's to the millisecond. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "suspicion.h"

#define NS_PER_MS 1000000LL

int64_t suspicion_timeout_min(int suspicion_mult, int n, int64_t interval)
{
	double nodes = n < 1 ? 1.0 : (double)n;
	double scale = fmax(1.0, log10(nodes));
	/* Go: Duration(mult) * Duration(scale*1000) * interval / 1000, in
	 * integer arithmetic after truncating scale*1000. */
	int64_t scale_milli = (int64_t)(scale * 1000.0);
	return (int64_t)suspicion_mult * scale_milli * interval / 1000;
}

int suspicion_k(int suspicion_mult, int n)
{
	int k = suspicion_mult - 2;
	if (n - 2 < k)
		k = 0;
	return k;
}

int64_t suspicion_remaining(int c, int k, int64_t elapsed, int64_t min,
			    int64_t max)
{
	double frac = log((double)c + 1.0) / log((double)k + 1.0);
	double max_s = (double)max / 1e9, min_s = (double)min / 1e9;
	double raw = max_s - frac * (max_s - min_s);
	int64_t timeout = (int64_t)floor(1000.0 * raw) * NS_PER_MS;
	if (timeout < min)
		timeout = min;
	return timeout - elapsed;
}

int suspicion_start(struct suspicion *sp, const char *from, int k,
		    int64_t min, int64_t max, int64_t now)
{
	memset(sp, 0, sizeof(*sp));
	sp->k = k;
	sp->min = min;
	sp->max = max;
	sp->start = now;
	sp->deadline = now + (k < 1 ? min : max);
	/* Room for the accuser plus k confirmations. */
	sp->confirmed = calloc((size_t)(k < 0 ? 0 : k) + 1, sizeof(char *));
	if (!sp->confirmed)
		return -ENOMEM;
	sp->confirmed[0] = strdup(from ? from : "");
	if (!sp->confirmed[0]) {
		free(sp->confirmed);
		sp->confirmed = NULL;
		return -ENOMEM;
	}
	sp->n_confirmed = 1;
	return 0;
}

int suspicion_confirm(struct suspicion *sp, const char *from, int64_t now)
{
	if (sp->n >= sp->k)
		return 0;
	for (size_t i = 0; i < sp->n_confirmed; i++)
		if (strcmp(sp->confirmed[i], from) == 0)
			return 0;
	char *dup = strdup(from);
	if (!dup)
		return -ENOMEM;
	sp->confirmed[sp->n_confirmed++] = dup;
	sp->n++;
	/* A Go timer that already fired is not reset; here "fired" means the
	 * deadline passed, and the owner's next tick handles it either way. */
	if (now >= sp->deadline)
		return 1;
	int64_t remaining = suspicion_remaining(sp->n, sp->k, now - sp->start,
						sp->min, sp->max);
	sp->deadline = remaining > 0 ? now + remaining : now;
	return 1;
}

bool suspicion_expired(const struct suspicion *sp, int64_t now)
{
	return now >= sp->deadline;
}

void suspicion_clear(struct suspicion *sp)
{
	if (!sp)
		return;
	for (size_t i = 0; i < sp->n_confirmed; i++)
		free(sp->confirmed[i]);
	free(sp->confirmed);
	sp->confirmed = NULL;
	sp->n_confirmed = 0;
}
