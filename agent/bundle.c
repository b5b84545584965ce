/* Task spec + image config -> OCI config.json (see bundle.h). */
#include "bundle.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#define BUNDLE_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define BUNDLE_HOSTNAME_MAX 64
#define BUNDLE_HEALTH_INTERVAL_NS (30LL * 1000000000LL)
#define BUNDLE_HEALTH_TIMEOUT_NS (30LL * 1000000000LL)
#define BUNDLE_HEALTH_RETRIES 3
#define BUNDLE_CPU_PERIOD 100000LL

/* Docker's default capability set. */
static const char *const bundle_caps[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
	"CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
	"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
};

/* As `runc spec` makes them. */
static const char *const bundle_masked[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/sys/firmware", "/proc/scsi",
};
static const char *const bundle_readonly[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

void bundle_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char *bundle_hostname(const Swarm__Task *t)
{
	const char *h = NULL;
	if (t->spec && t->spec->container && t->spec->container->hostname &&
	    *t->spec->container->hostname)
		h = t->spec->container->hostname;
	else if (t->name && *t->name)
		h = t->name;
	else
		h = t->id;
	size_t len = strlen(h);
	if (len > BUNDLE_HOSTNAME_MAX)
		len = BUNDLE_HOSTNAME_MAX;
	char *out = xmalloc(len + 1);
	memcpy(out, h, len);
	out[len] = '\0';
	return out;
}

int bundle_process_args(const Swarm__ContainerSpec *c, const struct image_config *img,
			char ***argv, size_t *n)
{
	char **v = NULL;
	size_t k = 0;
	if (c && c->n_command > 0) {
		/* Command replaces the whole invocation (swarmkit's adapter):
		 * the image entrypoint and cmd are not used. */
		for (size_t i = 0; i < c->n_command; i++)
			strv_push(&v, &k, xstrdup(c->command[i]));
		for (size_t i = 0; i < c->n_args; i++)
			strv_push(&v, &k, xstrdup(c->args[i]));
	} else {
		for (size_t i = 0; img && i < img->n_entrypoint; i++)
			strv_push(&v, &k, xstrdup(img->entrypoint[i]));
		if (c && c->n_args > 0) {
			for (size_t i = 0; i < c->n_args; i++)
				strv_push(&v, &k, xstrdup(c->args[i]));
		} else {
			for (size_t i = 0; img && i < img->n_cmd; i++)
				strv_push(&v, &k, xstrdup(img->cmd[i]));
		}
	}
	if (k == 0) {
		free(v);
		return -EINVAL;
	}
	*argv = v;
	*n = k;
	return 0;
}

static size_t env_key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Index of the entry with kv's key, or -1. */
static long env_find(char **v, size_t n, const char *kv)
{
	size_t kl = env_key_len(kv);
	for (size_t i = 0; i < n; i++)
		if (env_key_len(v[i]) == kl && strncmp(v[i], kv, kl) == 0)
			return (long)i;
	return -1;
}

static void env_set(char ***v, size_t *n, const char *kv)
{
	long i = env_find(*v, *n, kv);
	if (i >= 0) {
		free((*v)[i]);
		(*v)[i] = xstrdup(kv);
	} else {
		strv_push(v, n, xstrdup(kv));
	}
}

void bundle_process_env(const Swarm__ContainerSpec *c, const struct image_config *img,
			const char *hostname, char ***env, size_t *n)
{
	char **v = xcalloc(1, sizeof(*v));
	size_t k = 0;
	bool has_path = (img && env_find(img->env, img->n_env, "PATH") >= 0) ||
		(c && env_find(c->env, c->n_env, "PATH") >= 0);
	if (!has_path)
		strv_push(&v, &k, xstrdup(BUNDLE_DEFAULT_PATH));
	char *h = xasprintf("HOSTNAME=%s", hostname ? hostname : "");
	env_set(&v, &k, h);
	free(h);
	for (size_t i = 0; img && i < img->n_env; i++)
		env_set(&v, &k, img->env[i]);
	for (size_t i = 0; c && i < c->n_env; i++)
		env_set(&v, &k, c->env[i]);
	*env = v;
	*n = k;
}

void bundle_health(const Swarm__ContainerSpec *c, const struct image_config *img,
		   struct bundle_health *out)
{
	memset(out, 0, sizeof(*out));
	const Swarm__HealthConfig *h = c ? c->health : NULL;
	char **test = NULL;
	size_t n_test = 0;
	if (h && h->n_test > 0) {
		test = h->test;
		n_test = h->n_test;
	} else if (img && img->n_healthcheck > 0) {
		test = img->healthcheck;
		n_test = img->n_healthcheck;
	}
	out->interval_ns = h && h->interval_ns > 0 ? h->interval_ns :
		img && img->health_interval_ns > 0 ? img->health_interval_ns :
		BUNDLE_HEALTH_INTERVAL_NS;
	out->timeout_ns = h && h->timeout_ns > 0 ? h->timeout_ns :
		img && img->health_timeout_ns > 0 ? img->health_timeout_ns :
		BUNDLE_HEALTH_TIMEOUT_NS;
	out->start_period_ns = h && h->start_period_ns > 0 ? h->start_period_ns :
		img && img->health_start_period_ns > 0 ? img->health_start_period_ns : 0;
	out->retries = h && h->retries > 0 ? h->retries :
		img && img->health_retries > 0 ? img->health_retries :
		BUNDLE_HEALTH_RETRIES;
	if (n_test == 0)
		return;
	if (strcmp(test[0], "CMD-SHELL") == 0 && n_test >= 2) {
		strv_push(&out->argv, &out->argc, xstrdup("/bin/sh"));
		strv_push(&out->argv, &out->argc, xstrdup("-c"));
		strv_push(&out->argv, &out->argc, xstrdup(test[1]));
	} else if (strcmp(test[0], "CMD") == 0 && n_test >= 2) {
		for (size_t i = 1; i < n_test; i++)
			strv_push(&out->argv, &out->argc, xstrdup(test[i]));
	}
	/* "NONE", or a malformed test: no check. */
}

void bundle_health_free(struct bundle_health *h)
{
	if (!h)
		return;
	bundle_strv_free(h->argv, h->argc);
	h->argv = NULL;
	h->argc = 0;
}

/* "search ." : a task's hostname is its container name, which has dots
 * (my-nginx.1.<id>), and resolvers without a search line take the
 * hostname's domain as one, turning `nslookup web` into web.1.<id>. */
char *bundle_resolv_conf(void)
{
	return xstrdup("search .\nnameserver 127.0.0.11\noptions ndots:0\n");
}

/* "198.18.0.5/24" -> "198.18.0.5" into out. */
static void addr_strip_prefix(const char *cidr, char *out, size_t len)
{
	snprintf(out, len, "%s", cidr);
	char *slash = strchr(out, '/');
	if (slash)
		*slash = '\0';
}

char *bundle_hosts(const Swarm__Task *t, const char *hostname)
{
	char *s = xstrdup("127.0.0.1\tlocalhost\n"
			  "::1\tlocalhost ip6-localhost ip6-loopback\n"
			  "fe00::0\tip6-localnet\n"
			  "ff00::0\tip6-mcastprefix\n"
			  "ff02::1\tip6-allnodes\n"
			  "ff02::2\tip6-allrouters\n");
	for (size_t i = 0; i < t->n_networks; i++) {
		const Swarm__NetworkAttachment *na = t->networks[i];
		if (!na->addr || !*na->addr)
			continue;
		char ip[64];
		addr_strip_prefix(na->addr, ip, sizeof(ip));
		char *next = xasprintf("%s%s\t%s\n", s, ip, hostname);
		free(s);
		s = next;
	}
	return s;
}

static json_object *jstrv(char *const *v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *jconst_strv(const char *const *v, size_t n)
{
	return jstrv((char *const *)v, n);
}

static json_object *jmount(const char *dst, const char *type, const char *src,
			   const char *const *opts, size_t n_opts)
{
	json_object *m = json_object_new_object();
	json_object_object_add(m, "destination", json_object_new_string(dst));
	json_object_object_add(m, "type", json_object_new_string(type));
	json_object_object_add(m, "source", json_object_new_string(src));
	if (n_opts)
		json_object_object_add(m, "options", jconst_strv(opts, n_opts));
	return m;
}

#define JMOUNT(dst, type, src, ...) \
	jmount(dst, type, src, (const char *const[]){ __VA_ARGS__ }, \
	       sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

static json_object *bundle_mounts(const Swarm__ContainerSpec *c, const struct bundle_paths *p)
{
	json_object *a = json_object_new_array();
	json_object_array_add(a, JMOUNT("/proc", "proc", "proc", "nosuid", "noexec", "nodev"));
	json_object_array_add(a, JMOUNT("/dev", "tmpfs", "tmpfs",
					"nosuid", "strictatime", "mode=755", "size=65536k"));
	json_object_array_add(a, JMOUNT("/dev/pts", "devpts", "devpts",
					"nosuid", "noexec", "newinstance", "ptmxmode=0666",
					"mode=0620", "gid=5"));
	json_object_array_add(a, JMOUNT("/dev/shm", "tmpfs", "shm",
					"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"));
	json_object_array_add(a, JMOUNT("/dev/mqueue", "mqueue", "mqueue",
					"nosuid", "noexec", "nodev"));
	json_object_array_add(a, JMOUNT("/sys", "sysfs", "sysfs",
					"nosuid", "noexec", "nodev", "ro"));
	json_object_array_add(a, JMOUNT("/sys/fs/cgroup", "cgroup", "cgroup",
					"nosuid", "noexec", "nodev", "relatime", "ro"));
	json_object_array_add(a, JMOUNT("/etc/resolv.conf", "bind", p->resolv_conf,
					"rbind", "rprivate"));
	json_object_array_add(a, JMOUNT("/etc/hosts", "bind", p->hosts, "rbind", "rprivate"));
	json_object_array_add(a, JMOUNT("/etc/hostname", "bind", p->hostname,
					"rbind", "rprivate"));
	for (size_t i = 0; c && i < c->n_mounts; i++) {
		const Swarm__Mount *m = c->mounts[i];
		if (!m->target || !*m->target)
			continue;
		json_object *o;
		if (strcmp(m->type, "tmpfs") == 0) {
			char size[64];
			const char *opts[6] = { "nosuid", "nodev", "mode=1777" };
			size_t n = 3;
			if (m->tmpfs_size > 0) {
				snprintf(size, sizeof(size), "size=%lld", (long long)m->tmpfs_size);
				opts[n++] = size;
			}
			if (m->readonly)
				opts[n++] = "ro";
			o = jmount(m->target, "tmpfs", "tmpfs", opts, n);
		} else {
			const char *opts[3] = { "rbind", "rprivate" };
			size_t n = 2;
			if (m->readonly)
				opts[n++] = "ro";
			o = jmount(m->target, "bind", m->source, opts, n);
		}
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *bundle_namespaces(const struct bundle_paths *p)
{
	static const char *const plain[] = { "pid", "ipc", "uts", "mount" };
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		json_object *ns = json_object_new_object();
		json_object_object_add(ns, "type", json_object_new_string(plain[i]));
		json_object_array_add(a, ns);
	}
	json_object *net = json_object_new_object();
	json_object_object_add(net, "type", json_object_new_string("network"));
	json_object_object_add(net, "path", json_object_new_string(p->netns));
	json_object_array_add(a, net);
	return a;
}

static json_object *bundle_resources(const Swarm__Resources *lim)
{
	json_object *r = json_object_new_object();
	json_object *devs = json_object_new_array();
	json_object *deny = json_object_new_object();
	json_object_object_add(deny, "allow", json_object_new_boolean(0));
	json_object_object_add(deny, "access", json_object_new_string("rwm"));
	json_object_array_add(devs, deny);
	json_object_object_add(r, "devices", devs);
	if (lim && lim->memory_bytes > 0) {
		json_object *mem = json_object_new_object();
		json_object_object_add(mem, "limit", json_object_new_int64(lim->memory_bytes));
		json_object_object_add(r, "memory", mem);
	}
	if (lim && lim->nano_cpus > 0) {
		long long quota = (long long)((double)lim->nano_cpus / 1e9 * BUNDLE_CPU_PERIOD);
		if (quota < 1000)
			quota = 1000;  /* the kernel's minimum is 1 ms */
		json_object *cpu = json_object_new_object();
		json_object_object_add(cpu, "quota", json_object_new_int64(quota));
		json_object_object_add(cpu, "period", json_object_new_int64(BUNDLE_CPU_PERIOD));
		json_object_object_add(r, "cpu", cpu);
	}
	return r;
}

int bundle_config_json(const Swarm__Task *t, const struct image_config *img,
		       const struct bundle_paths *paths, char **out)
{
	if (!t->spec || !t->spec->container)
		return -EINVAL;
	const Swarm__ContainerSpec *c = t->spec->container;
	char **argv = NULL, **env = NULL;
	size_t argc = 0, envc = 0;
	int err = bundle_process_args(c, img, &argv, &argc);
	if (err)
		return err;
	char *hostname = bundle_hostname(t);
	bundle_process_env(c, img, hostname, &env, &envc);

	json_object *root = json_object_new_object();
	json_object_object_add(root, "ociVersion", json_object_new_string("1.0.2-dev"));

	json_object *proc = json_object_new_object();
	json_object_object_add(proc, "terminal", json_object_new_boolean(0));
	json_object *user = json_object_new_object();
	json_object_object_add(user, "uid", json_object_new_int(0));
	json_object_object_add(user, "gid", json_object_new_int(0));
	json_object_object_add(proc, "user", user);
	json_object_object_add(proc, "args", jstrv(argv, argc));
	json_object_object_add(proc, "env", jstrv(env, envc));
	const char *cwd = img && img->workdir && *img->workdir ? img->workdir : "/";
	json_object_object_add(proc, "cwd", json_object_new_string(cwd));
	json_object *caps = json_object_new_object();
	json_object_object_add(caps, "bounding", jconst_strv(bundle_caps, ARRAY_SIZE(bundle_caps)));
	json_object_object_add(caps, "effective", jconst_strv(bundle_caps, ARRAY_SIZE(bundle_caps)));
	json_object_object_add(caps, "permitted", jconst_strv(bundle_caps, ARRAY_SIZE(bundle_caps)));
	json_object_object_add(proc, "capabilities", caps);
	/* No rlimits: the container inherits the agent's, as with Docker
	 * when no ulimits are given (raising them needs CAP_SYS_RESOURCE). */
	json_object_object_add(proc, "noNewPrivileges", json_object_new_boolean(0));
	json_object_object_add(root, "process", proc);

	json_object *rootfs = json_object_new_object();
	json_object_object_add(rootfs, "path", json_object_new_string(paths->rootfs));
	json_object_object_add(rootfs, "readonly", json_object_new_boolean(0));
	json_object_object_add(root, "root", rootfs);
	json_object_object_add(root, "hostname", json_object_new_string(hostname));
	json_object_object_add(root, "mounts", bundle_mounts(c, paths));

	json_object *lnx = json_object_new_object();
	json_object_object_add(lnx, "cgroupsPath", json_object_new_string(paths->cgroups_path));
	json_object_object_add(lnx, "resources", bundle_resources(t->spec->limits));
	json_object_object_add(lnx, "namespaces", bundle_namespaces(paths));
	json_object_object_add(lnx, "maskedPaths",
			       jconst_strv(bundle_masked, ARRAY_SIZE(bundle_masked)));
	json_object_object_add(lnx, "readonlyPaths",
			       jconst_strv(bundle_readonly, ARRAY_SIZE(bundle_readonly)));
	json_object_object_add(root, "linux", lnx);

	*out = xstrdup(json_object_to_json_string_ext(root,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	bundle_strv_free(argv, argc);
	bundle_strv_free(env, envc);
	free(hostname);
	return 0;
}
