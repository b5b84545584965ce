/* Namespaces for kernel tests (netns_util.h). */
#include "netns_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
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
