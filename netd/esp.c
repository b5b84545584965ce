/* The kernel ESP provider's reconcile (esp.h): desired XFRM states and
 * policies from the ring and the peers, applied as a difference. */
#include "esp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gossip_crypto.h"
#include "util.h"

struct esp {
	const struct esp_ops *ops;
	void *ctx;
	uint16_t dport;
	struct xm_sa *sas;           /* installed states */
	size_t nsas;
	struct xm_sa *pols;          /* installed policies (src, dst, dport) */
	size_t npols;
	uint32_t *vnis;              /* VNIs of the installed rules */
	size_t nvnis;
	bool rules_ok;               /* the rules match vnis */
	uint32_t self;               /* of the last sync */
	int err;                     /* of the last sync; 1 = none yet */
	/* The desired states cost two HKDFs each: they are derived again
	 * only when self, the ring or the peers change (netd syncs twice a
	 * reconcile, and most reconciles change none of them). */
	bool dvalid;
	uint32_t dself;
	struct seal_key *dring;      /* the ring they were derived from */
	size_t ndring;
	uint32_t *dpeers;            /* sorted, unique */
	size_t ndpeers;
	struct xm_sa *dsas;          /* the desired states */
	size_t ndsas;
};

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted, without duplicates or zeros (and without skip), into a new array. */
static uint32_t *uniq(const uint32_t *v, size_t n, uint32_t skip, size_t *out)
{
	uint32_t *r = xmalloc((n ? n : 1) * sizeof(*r));
	memcpy(r, v, n * sizeof(*r));
	qsort(r, n, sizeof(*r), u32_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i] && r[i] != skip && (!k || r[k - 1] != r[i]))
			r[k++] = r[i];
	*out = k;
	return r;
}

/* Same state: an SPI names one (key, src, dst), so the key need not be
 * compared. */
static bool sa_same(const struct xm_sa *a, const struct xm_sa *b)
{
	return a->src == b->src && a->dst == b->dst && a->spi == b->spi && a->in == b->in;
}

static bool pol_same(const struct xm_sa *a, const struct xm_sa *b)
{
	return a->src == b->src && a->dst == b->dst;
}

static bool has(const struct xm_sa *v, size_t n, const struct xm_sa *x,
		bool (*same)(const struct xm_sa *, const struct xm_sa *))
{
	for (size_t i = 0; i < n; i++)
		if (same(&v[i], x))
			return true;
	return false;
}

/* The state src -> dst under ring key k into sa; false when k is unusable. */
static bool sa_make(struct xm_sa *sa, const struct seal_key *k, uint32_t src, uint32_t dst,
		    uint16_t dport, bool in)
{
	memset(sa, 0, sizeof(*sa));
	sa->src = src;
	sa->dst = dst;
	sa->dport = dport;
	sa->in = in;
	sa->keylen = k->len + 4;
	sa->spi = seal_spi(k->key, k->len, src, dst);
	return sa->spi && seal_esp_key(k->key, k->len, src, dst, sa->key) == 0;
}

int esp_new(const struct esp_ops *ops, void *ctx, uint16_t dport, struct esp **out)
{
	struct esp *e = xcalloc(1, sizeof(*e));
	e->ops = ops;
	e->ctx = ctx;
	e->dport = dport;
	e->err = 1;
	*out = e;
	int r = ops->list(ctx, &e->sas, &e->nsas, &e->pols, &e->npols);
	if (r < 0) {
		free(e->sas);
		free(e->pols);
		e->sas = e->pols = NULL;
		e->nsas = e->npols = 0;
	}
	return r;
}

bool esp_guards(const struct esp *e, uint32_t vni, uint32_t peer)
{
	if (!e->rules_ok || !bsearch(&vni, e->vnis, e->nvnis, sizeof(vni), u32_cmp))
		return false;
	struct xm_sa own = { .src = e->self, .dst = peer }, any = { .src = e->self };
	return e->self && (has(e->pols, e->npols, &own, pol_same) || has(e->pols, e->npols, &any, pol_same));
}

bool esp_in_sync(const struct esp *e)
{
	return e->err == 0;
}

int esp_last_error(const struct esp *e)
{
	return e->err < 0 ? e->err : 0;
}

static void desired_clear(struct esp *e)
{
	if (e->dring)
		OPENSSL_cleanse(e->dring, e->ndring * sizeof(*e->dring));
	if (e->dsas)
		OPENSSL_cleanse(e->dsas, e->ndsas * sizeof(*e->dsas));
	free(e->dring);
	free(e->dsas);
	free(e->dpeers);
	e->dring = NULL;
	e->dsas = NULL;
	e->dpeers = NULL;
	e->dvalid = false;
}

/* e->dsas for w's self and ring and peers[npeers] (sorted, unique): per
 * peer, the outbound state under the primary and an inbound one per ring
 * key. Kept from the last call when the inputs are the same. */
static void desired_states(struct esp *e, const struct esp_want *w, const uint32_t *peers,
			   size_t npeers)
{
	bool same = e->dvalid && e->dself == w->self && e->ndring == w->nring &&
		    e->ndpeers == npeers &&
		    (!npeers || memcmp(e->dpeers, peers, npeers * sizeof(*peers)) == 0);
	for (size_t i = 0; same && i < w->nring; i++)
		same = seal_key_equal(&e->dring[i], &w->ring[i]);
	if (same)
		return;
	desired_clear(e);
	e->dsas = xcalloc(npeers * (w->nring + 1) + 1, sizeof(*e->dsas));
	e->ndsas = 0;
	for (size_t p = 0; p < npeers; p++) {
		bool primary = true;
		for (size_t i = 0; i < w->nring; i++) {
			const struct seal_key *k = &w->ring[i];
			struct xm_sa *x = &e->dsas[e->ndsas];
			if (!gossip_crypto_key_len_ok(k->len))
				continue;
			/* sealing with the primary only; opening with every key */
			if (primary && sa_make(x, k, w->self, peers[p], e->dport, false))
				x = &e->dsas[++e->ndsas];
			primary = false;
			if (sa_make(x, k, peers[p], w->self, e->dport, true) &&
			    !has(e->dsas, e->ndsas, x, sa_same))
				e->ndsas++;
		}
	}
	e->dself = w->self;
	e->dring = xcalloc(w->nring + 1, sizeof(*e->dring));
	if (w->nring)
		memcpy(e->dring, w->ring, w->nring * sizeof(*e->dring));
	e->ndring = w->nring;
	e->dpeers = xcalloc(npeers + 1, sizeof(*e->dpeers));
	if (npeers)
		memcpy(e->dpeers, peers, npeers * sizeof(*peers));
	e->ndpeers = npeers;
	e->dvalid = true;
}

void esp_free(struct esp *e)
{
	if (!e)
		return;
	desired_clear(e);
	if (e->sas)
		OPENSSL_cleanse(e->sas, e->nsas * sizeof(*e->sas));
	free(e->sas);
	free(e->pols);
	free(e->vnis);
	free(e);
}

size_t esp_count_sas(const struct esp *e)
{
	return e->nsas;
}

size_t esp_count_policies(const struct esp *e)
{
	return e->npols;
}

/* Applies the difference between the installed v[*n] and the desired
 * want[nw] with op: additions, then (with dels) removals; v keeps what
 * the kernel holds. The first error goes to *err. */
static void apply(struct esp *e, struct xm_sa **v, size_t *n, const struct xm_sa *want, size_t nw,
		  bool dels, int (*op)(void *, const struct xm_sa *, int),
		  bool (*same)(const struct xm_sa *, const struct xm_sa *), int *err)
{
	if (!dels) {
		for (size_t i = 0; i < nw; i++) {
			if (has(*v, *n, &want[i], same))
				continue;
			int r = op(e->ctx, &want[i], 0);
			if (r < 0 && r != -EEXIST) {
				if (!*err)
					*err = r;
				continue;
			}
			/* by hand: realloc would leave the keys behind, unwiped */
			struct xm_sa *g = xmalloc((*n + 1) * sizeof(*g));
			if (*n)
				memcpy(g, *v, *n * sizeof(*g));
			g[*n] = want[i];
			if (*v)
				OPENSSL_cleanse(*v, *n * sizeof(**v));
			free(*v);
			*v = g;
			(*n)++;
		}
		return;
	}
	size_t k = 0;
	for (size_t i = 0; i < *n; i++) {
		struct xm_sa *x = &(*v)[i];
		if (!has(want, nw, x, same)) {
			int r = op(e->ctx, x, 1);
			if (r == 0 || r == -ENOENT || r == -ESRCH) {
				OPENSSL_cleanse(x, sizeof(*x));
				continue;
			}
			if (!*err)
				*err = r;
		}
		(*v)[k++] = *x;
	}
	if (k < *n)   /* the tail holds copies of kept entries */
		OPENSSL_cleanse(*v + k, (*n - k) * sizeof(**v));
	*n = k;
}

int esp_sync(struct esp *e, const struct esp_want *w)
{
	size_t npeers, nvnis;
	uint32_t *peers = uniq(w->peers, w->npeers, w->self, &npeers);
	uint32_t *vnis;
	if (w->additions_only) {
		/* keep what is marked: it is unmarked after the data path let
		 * go of it, in the full sync */
		uint32_t *all = xmalloc((w->nvnis + e->nvnis + 1) * sizeof(*all));
		memcpy(all, w->vnis, w->nvnis * sizeof(*all));
		if (e->nvnis)
			memcpy(all + w->nvnis, e->vnis, e->nvnis * sizeof(*all));
		vnis = uniq(all, w->nvnis + e->nvnis, 0, &nvnis);
		free(all);
	} else {
		vnis = uniq(w->vnis, w->nvnis, 0, &nvnis);
	}
	e->self = w->self;
	desired_states(e, w, peers, npeers);
	const struct xm_sa *sas = e->dsas;
	size_t nsas = e->ndsas, npols = npeers;
	struct xm_sa *pols = xcalloc(npeers + 1, sizeof(*pols));
	for (size_t p = 0; p < npeers; p++)
		pols[p] = (struct xm_sa){ .src = w->self, .dst = peers[p], .dport = e->dport };
	if (w->self)   /* the catch-all that blocks marked packets to anyone else */
		pols[npols++] = (struct xm_sa){ .src = w->self, .dport = e->dport };
	int err = 0;

	/* Order matters for "never cleartext": states, then the policies
	 * that use them, then the rules that mark packets for the policies;
	 * removals the other way round. */
	apply(e, &e->sas, &e->nsas, sas, nsas, false, e->ops->sa, sa_same, &err);
	apply(e, &e->pols, &e->npols, pols, npols, false, e->ops->policy, pol_same, &err);
	bool same_vnis = e->rules_ok && e->nvnis == nvnis &&
			 (!nvnis || memcmp(e->vnis, vnis, nvnis * sizeof(*vnis)) == 0);
	if (!same_vnis) {
		int r = e->ops->rules(e->ctx, e->dport, vnis, nvnis);
		if (r < 0 && !err)
			err = r;
		e->rules_ok = r == 0;
		free(e->vnis);
		e->vnis = vnis;
		e->nvnis = nvnis;
		vnis = NULL;
	}
	if (!w->additions_only) {
		apply(e, &e->pols, &e->npols, pols, npols, true, e->ops->policy, pol_same, &err);
		apply(e, &e->sas, &e->nsas, sas, nsas, true, e->ops->sa, sa_same, &err);
	}
	if (!w->additions_only || err)
		e->err = err;

	free(pols);
	free(peers);
	free(vnis);
	return err;
}
