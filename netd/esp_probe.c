/* The kernel ESP probe (esp_probe.h). */
#include "esp_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_KEY_LEN 20   /* rfc4106: AES-128 key + 4-byte salt */

/* In the child, in its own namespace: 0 when the state was added, else
 * the errno the kernel (or the socket) answered. */
static int probe_child(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return errno;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
	if (fd < 0)
		return errno;
	struct {
		struct nlmsghdr nh;
		struct xfrm_usersa_info sa;
		struct nlattr at;
		struct xfrm_algo_aead aead;
		char key[PROBE_KEY_LEN];
	} __attribute__((packed)) req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = XFRM_MSG_NEWSA;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.nh.nlmsg_seq = 1;
	req.sa.family = AF_INET;
	req.sa.sel.family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &req.sa.id.daddr.a4);
	inet_pton(AF_INET, "192.0.2.2", &req.sa.saddr.a4);
	req.sa.id.spi = htonl(0x5eed);
	req.sa.id.proto = IPPROTO_ESP;
	req.sa.mode = XFRM_MODE_TRANSPORT;
	req.sa.reqid = 1;
	req.sa.lft.soft_byte_limit = req.sa.lft.hard_byte_limit = XFRM_INF;
	req.sa.lft.soft_packet_limit = req.sa.lft.hard_packet_limit = XFRM_INF;
	req.at.nla_len = sizeof(req.at) + sizeof(req.aead) + PROBE_KEY_LEN;
	req.at.nla_type = XFRMA_ALG_AEAD;
	snprintf(req.aead.alg_name, sizeof(req.aead.alg_name), "rfc4106(gcm(aes))");
	req.aead.alg_key_len = PROBE_KEY_LEN * 8;
	req.aead.alg_icv_len = 128;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno;
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < (ssize_t)(NLMSG_HDRLEN + sizeof(struct nlmsgerr)))
		return n < 0 ? errno : EPROTO;
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
