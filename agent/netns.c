/* Sandbox netns files (see netns.h). */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETNS_NSFS_MAGIC 0x6e736673

int netns_is_mounted(const char *path)
{
	struct statfs sf;
	if (statfs(path, &sf) < 0)
		return 0;
	return sf.f_type == NETNS_NSFS_MAGIC;
}

/* The child's whole job; its exit code is 0 or an errno. */
static int netns_child(const char *path)
{
	if (unshare(CLONE_NEWNET) < 0)
		return errno;
	/* runc brings lo up only in namespaces it creates itself, and the
	 * resolver at 127.0.0.11 lives on lo. */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return errno;
	close(s);
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
		return errno;
	return 0;
}

int netns_create(const char *path)
{
	if (netns_is_mounted(path))
		return 0;
	int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	close(fd);

	pid_t pid = fork();
	if (pid < 0) {
		int err = -errno;
		unlink(path);
		return err;
	}
	if (pid == 0)
		_exit(netns_child(path));

	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			unlink(path);
			return -ECHILD;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(path);
		return WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
	}
	return 0;
}

int netns_remove(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
