/* Namespace switching and the nftables runner shared by the lbd providers
 * (see lb_int.h). */
#include "lb_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "log.h"
#include "util.h"

int lb_ns_open(const char *path)
{
	int fd = open(path ? path : "/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int lb_ns_enter(int nsfd, int *orig)
{
	int o = lb_ns_open(NULL);
	if (o < 0)
		return o;
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		int err = -errno;
		close(o);
		return err;
	}
	*orig = o;
	return 0;
}

void lb_ns_leave(int orig)
{
	if (setns(orig, CLONE_NEWNET) < 0)
		fatal("lb, cannot return to own netns: %s", strerror(errno));
	close(orig);
}

int lb_nft_ctx_new(int nsfd, struct nft_ctx **out)
{
	int orig;
	int r = lb_ns_enter(nsfd, &orig);
	if (r < 0)
		return r;
	/* The context opens its netlink socket here, in nsfd's namespace. */
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	lb_ns_leave(orig);
	if (!nft)
		return -ENOMEM;
	if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0) {
		nft_ctx_free(nft);
		return -ENOMEM;
	}
	*out = nft;
	return 0;
}

/* -errno from nft's error text (libnftables only says "failed"). */
static int lb_nft_errno(const char *msg)
{
	if (!msg)
		return -EIO;
	if (strstr(msg, "No such file or directory"))
		return -ENOENT;
	if (strstr(msg, "File exists"))
		return -EEXIST;
	if (strstr(msg, "Device or resource busy"))
		return -EBUSY;
	if (strstr(msg, "Operation not permitted"))
		return -EPERM;
	if (strstr(msg, "Operation not supported") || strstr(msg, "Protocol not supported"))
		return -EOPNOTSUPP;
	return -EIO;
}

int lb_nft_run(struct nft_ctx *nft, const char *cmd, bool json, bool quiet, char **out)
{
	unsigned flags = nft_ctx_output_get_flags(nft);
	nft_ctx_output_set_flags(nft, json ? flags | NFT_CTX_OUTPUT_JSON : flags & ~NFT_CTX_OUTPUT_JSON);
	int r = nft_run_cmd_from_buffer(nft, cmd) == 0 ? 0 : -EIO;
	/* Reading the buffers also empties them for the next command. */
	const char *msg = nft_ctx_get_error_buffer(nft);
	const char *o = nft_ctx_get_output_buffer(nft);
	if (r < 0) {
		r = lb_nft_errno(msg);
		if (!quiet)
			log_err("lb, nft: %s", msg && *msg ? msg : "(no message)");
	} else if (out) {
		*out = xstrdup(o ? o : "");
	}
	return r;
}

bool lb_nft_word(const char *s)
{
	if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

int lb_nft_probe(struct nft_ctx *nft, const char *scratch, char *why, size_t whylen)
{
	struct lb_buf b = { 0 };
	/* A NAT chain with the expressions the providers use: a kernel
	 * without nft_nat, numgen or fib fails here rather than on the first
	 * service. */
	lb_buf_printf(&b,
		      "add table ip %s\n"
		      "add chain ip %s c { type nat hook output priority -100; }\n"
		      "add rule ip %s c ip daddr 127.0.0.2 dnat to numgen inc mod 1 map { 0 : 127.0.0.3 }\n"
		      "add rule ip %s c fib saddr type local meta mark set 1\n",
		      scratch, scratch, scratch, scratch);
	char *cmd = lb_buf_take(&b);
	int r = lb_nft_run(nft, cmd, false, true, NULL);
	free(cmd);
	if (r < 0) {
		snprintf(why, whylen, "nftables cannot make a NAT table (%s)", strerror(-r));
		return r;
	}
	lb_buf_printf(&b, "delete table ip %s", scratch);
	cmd = lb_buf_take(&b);
	r = lb_nft_run(nft, cmd, false, true, NULL);
	free(cmd);
	if (r < 0) {
		snprintf(why, whylen, "nftables cannot delete its scratch table %s (%s)", scratch,
			 strerror(-r));
		return r;
	}
	if (whylen)
		why[0] = '\0';
	return 0;
}
