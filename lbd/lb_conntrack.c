/* Clearing the conntrack entries of a removed backend (see lb.h), through
 * libnetfilter_conntrack. Both handles are opened inside the target
 * namespace (their netlink sockets stay there); the thread returns to its
 * own namespace before any entry is read. */
#include "lb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include "lb_int.h"
#include "log.h"

/* One flush: what to match and the handle that deletes. */
struct lbc_walk {
	struct in_addr vip;           /* 0.0.0.0: any original destination */
	struct in_addr backend;       /* reply source to match */
	struct nfct_handle *del;      /* second handle: the dump's is busy */
	unsigned deleted;
	int err;                      /* first delete error other than "gone" */
};

static int lbc_entry(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *arg)
{
	struct lbc_walk *w = arg;
	(void)type;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != AF_INET ||
	    !(nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT) ||
	    nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) != w->backend.s_addr ||
	    (w->vip.s_addr && nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != w->vip.s_addr))
		return NFCT_CB_CONTINUE;
	if (nfct_query(w->del, NFCT_Q_DESTROY, ct) == 0)
		w->deleted++;
	else if (errno != ENOENT && !w->err)
		w->err = -errno; /* ENOENT: it timed out meanwhile */
	return NFCT_CB_CONTINUE;
}

/* Opens the two conntrack handles inside nsfd. */
static int lbc_open(int nsfd, struct nfct_handle **dump, struct nfct_handle **del)
{
	int orig;
	int r = lb_ns_enter(nsfd, &orig);
	if (r < 0)
		return r;
	*dump = nfct_open(CONNTRACK, 0);
	int err = *dump ? 0 : -errno;
	*del = err ? NULL : nfct_open(CONNTRACK, 0);
	if (!err && !*del)
		err = -errno;
	lb_ns_leave(orig);
	if (err && *dump) {
		nfct_close(*dump);
		*dump = NULL;
	}
	return err ? err : 0;
}

int lb_conntrack_flush(const char *netns, struct in_addr vip, struct in_addr backend,
		       unsigned *deleted)
{
	struct nfct_handle *dump = NULL, *del = NULL;
	struct lbc_walk w = { .vip = vip, .backend = backend };
	char vs[INET_ADDRSTRLEN], bs[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &vip, vs, sizeof(vs));
	inet_ntop(AF_INET, &backend, bs, sizeof(bs));
	int nsfd = lb_ns_open(netns);
	int r = nsfd < 0 ? nsfd : lbc_open(nsfd, &dump, &del);
	if (nsfd >= 0)
		close(nsfd);
	if (r < 0) {
		log_err("lb, conntrack: cannot open in %s: %s", netns ? netns : "(own)", strerror(-r));
		goto out;
	}
	w.del = del;
	uint32_t family = AF_INET;
	nfct_callback_register(dump, NFCT_T_ALL, lbc_entry, &w);
	if (nfct_query(dump, NFCT_Q_DUMP, &family) < 0) {
		r = -errno;
		log_err("lb, conntrack: dump failed: %s", strerror(-r));
		goto out;
	}
	r = w.err;
	if (r < 0)
		log_err("lb, conntrack: deleting entries of %s via %s: %s", bs, vs, strerror(-r));
	else
		log_info("lb, conntrack: %u entries of backend %s (vip %s) deleted", w.deleted, bs, vs);
out:
	if (dump)
		nfct_close(dump);
	if (del)
		nfct_close(del);
	if (deleted)
		*deleted = w.deleted;
	return r;
}
