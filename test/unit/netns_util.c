/* Namespaces for kernel tests (netns_util.h). */
#include "netns_util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

int make_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int err = 0;
	if (unshare(CLONE_NEWNET) < 0)
		err = -errno;
	else if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
		err = -errno;
	if (setns(orig, CLONE_NEWNET) < 0)
		abort(); /* a test thread left in the wrong namespace */
	close(orig);
	if (err)
		unlink(path);
	return err;
}

void drop_netns(const char *path)
{
	if (!path[0])
		return;
	umount2(path, MNT_DETACH);
	unlink(path);
}

/* One request on a fresh NETLINK_ROUTE socket of the calling thread's
 * namespace; the reply (an error/ack or the answer) into reply[cap].
 * Its length or -errno. */
static ssize_t rtnl_ask(const void *req, size_t len, void *reply, size_t cap)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	ssize_t n = send(fd, req, len, 0) == (ssize_t)len ? recv(fd, reply, cap, 0) : -1;
	int err = n < 0 ? -errno : 0;
	close(fd);
	return err ? err : n;
}

/* Enters path's namespace for the calling thread; the fd to come back
 * with (or -errno). */
static int ns_enter(const char *path)
{
	int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = orig < 0 || fd < 0 ? -errno : setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (err && orig >= 0)
		close(orig);
	return err ? err : orig;
}

static void ns_leave(int orig)
{
	if (setns(orig, CLONE_NEWNET) < 0)
		abort(); /* a test thread left in the wrong namespace */
	close(orig);
}

/* RTM_NEWLINK (set: attr = v, acknowledged) or RTM_GETLINK for ifname in
 * path's namespace; the reply into reply[cap]: its length or -errno. */
static ssize_t link_ask(const char *path, const char *ifname, bool set, unsigned short attr,
			uint32_t v, void *reply, size_t cap)
{
	int orig = ns_enter(path);
	if (orig < 0)
		return orig;
	struct {
		struct nlmsghdr n;
		struct ifinfomsg i;
		struct rtattr a;
		uint32_t v;
	} req = {
		.n = { .nlmsg_len = set ? sizeof(req) : NLMSG_LENGTH(sizeof(struct ifinfomsg)),
		       .nlmsg_type = set ? RTM_NEWLINK : RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST | (set ? NLM_F_ACK : 0) },
		.i = { .ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex(ifname) },
		.a = { .rta_len = RTA_LENGTH(sizeof(uint32_t)), .rta_type = attr },
		.v = v,
	};
	ssize_t n = req.i.ifi_index ? rtnl_ask(&req, req.n.nlmsg_len, reply, cap) : -ENODEV;
	ns_leave(orig);
	return n;
}

int netns_link_set_u32(const char *path, const char *ifname, unsigned short attr, uint32_t v)
{
	uint8_t reply[1024];
	ssize_t n = link_ask(path, ifname, true, attr, v, reply, sizeof(reply));
	if (n < 0)
		return (int)n;
	struct nlmsgerr e;
	if ((size_t)n < NLMSG_HDRLEN + sizeof(e))
		return -EIO;
	memcpy(&e, reply + NLMSG_HDRLEN, sizeof(e));
	return e.error;
}

ssize_t netns_link_get(const char *path, const char *ifname, void *reply, size_t cap)
{
	return link_ask(path, ifname, false, 0, 0, reply, cap);
}
