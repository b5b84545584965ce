/* The kernel ESP probe (esp_probe.h). */
#include "esp_probe.h"
#include "xfrm_msg.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_KEY_LEN 20   /* rfc4106: AES-128 key + 4-byte salt */

/* In the child, in its own namespace: 0 when the state was added, else
 * the errno the kernel (or the socket) answered. The state is the one
 * the ESP path would add (xfrm_msg.h), with a throw-away key. */
static int probe_child(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return errno;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
	if (fd < 0)
		return errno;
	struct xm_sa sa = { .src = 0xC0000202u, .dst = 0xC0000201u, .spi = 0x5eed,
			    .keylen = PROBE_KEY_LEN, .dport = 4789 };
	uint8_t req[512];
	int n = xm_sa_msg(req, sizeof(req), &sa, 0, 1);
	if (n < 0)
		return -n;
	struct sockaddr_nl sn = { .nl_family = AF_NETLINK };
	if (sendto(fd, req, (size_t)n, 0, (struct sockaddr *)&sn, sizeof(sn)) < 0)
		return errno;
	char buf[512];
	ssize_t got = recv(fd, buf, sizeof(buf), 0);
	if (got < (ssize_t)(NLMSG_HDRLEN + sizeof(struct nlmsgerr)))
		return got < 0 ? errno : EPROTO;
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	if (nh->nlmsg_type != NLMSG_ERROR)
		return EPROTO;
	struct nlmsgerr *e = NLMSG_DATA(nh);
	return -e->error;
}

int esp_probe(char *why, size_t len)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(probe_child() & 0xff);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(st))
		return -ECHILD;
	int err = WEXITSTATUS(st);
	if (err == 0)
		return 1;
	snprintf(why, len, "adding an ESP state: %s", strerror(err));
	return 0;
}
