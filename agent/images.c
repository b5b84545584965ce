/* The node's image store (see images.h).
 *
 * Layout: <dir>/<name>/<tag>/rootfs/ and <dir>/<name>/<tag>/config.json, the
 * latter in our own small format:
 *   {"name","tag","created" (unix ns),"size" (bytes),"entrypoint":[],
 *    "cmd":[],"env":[],"workdir","healthcheck":{"test":[],"interval_ns",
 *    "timeout_ns","start_period_ns","retries"}}
 * A '/' in an image name is stored as "%2F" (and '%' as "%25") so that every
 * image is exactly two levels deep.
 *
 * Archives: an OCI image layout (oci-layout + index.json; also what
 * `docker save` writes since Docker 25), the older `docker save` format
 * (manifest.json naming layer tarballs), or a plain rootfs tarball; any of
 * them plain or compressed (tar detects it).
 *
 * A load runs as one forked worker process (proc_fork) that runs `tar` for
 * the archive and for each layer and waits for them; it builds the image in
 * <dir>/.load-XXXXXX and renames it into place only when complete, so a
 * failed load leaves nothing. The worker prints one result line, "OK
 * name:tag" or "ERR text", that the loop reads when it exits. A replaced
 * image moves to <dir>/.trash (running tasks' overlays may still use its
 * rootfs); images_open empties the trash when no overlay uses the store. */
#include "images.h"
#include "proc.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#define IMAGES_JSON_MAX (16 * 1024 * 1024)
#define IMAGES_LIST_MAX (256 * 1024 * 1024)
#define IMAGES_NEST_MAX 4
/* Work paths are kept well under PATH_MAX so that names built on them fit. */
#define IMAGES_WPATH 2048

struct images_load {
	struct images *im;
	struct images_load *next;
	char *path;             /* archive */
	char *name;             /* requested ref or NULL */
	struct proc *proc;      /* the worker */
	images_done_fn done;
	void *arg;
};

struct images {
	struct ev_loop *loop;
	char *dir;              /* absolute */
	struct images_load *loads; /* in flight */
};

void image_config_free(struct image_config *c)
{
	if (!c)
		return;
	free(c->rootfs);
	for (size_t i = 0; i < c->n_entrypoint; i++)
		free(c->entrypoint[i]);
	free(c->entrypoint);
	for (size_t i = 0; i < c->n_cmd; i++)
		free(c->cmd[i]);
	free(c->cmd);
	for (size_t i = 0; i < c->n_env; i++)
		free(c->env[i]);
	free(c->env);
	free(c->workdir);
	for (size_t i = 0; i < c->n_healthcheck; i++)
		free(c->healthcheck[i]);
	free(c->healthcheck);
	memset(c, 0, sizeof(*c));
}

/* ---- names ---- */

/* Splits a reference into name and tag ("latest" when absent; a ':' before
 * the last '/' is a registry port, not a tag). A digest ("@sha256:...") is
 * not supported. -EINVAL on an empty or unsafe name or tag. */
static int images_ref_split(const char *ref, char **name, char **tag)
{
	if (!ref || !*ref || strchr(ref, '@'))
		return -EINVAL;
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(ref, ':');
	size_t nlen = strlen(ref);
	const char *t = "latest";
	if (colon && (!slash || colon > slash)) {
		nlen = (size_t)(colon - ref);
		t = colon + 1;
	}
	if (nlen == 0 || !*t || strlen(t) > 128)
		return -EINVAL;
	for (const char *p = t; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
			return -EINVAL;
	if (t[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < nlen; i++) {
		char c = ref[i];
		if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' ||
		      c == '/' || c == ':'))
			return -EINVAL;
	}
	if (ref[0] == '.' || ref[0] == '/' || strstr(ref, ".."))
		return -EINVAL;
	*name = strndup(ref, nlen);
	*tag = xstrdup(t);
	return 0;
}

/* Directory name for an image name: '%' -> %25, '/' -> %2F. */
static char *images_name_enc(const char *name)
{
	size_t n = 0;
	char *out = xmalloc(strlen(name) * 3 + 1);
	for (const char *p = name; *p; p++) {
		if (*p == '/' || *p == '%') {
			snprintf(out + n, 4, "%%%02X", (unsigned char)*p);
			n += 3;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return out;
}

static char *images_name_dec(const char *enc)
{
	char *out = xmalloc(strlen(enc) + 1);
	size_t n = 0;
	for (const char *p = enc; *p; p++) {
		unsigned int v;
		if (*p == '%' && sscanf(p + 1, "%2X", &v) == 1) {
			out[n++] = (char)v;
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return out;
}

/* "<dir>/<enc name>/<tag>" */
static char *images_path(const struct images *im, const char *name, const char *tag)
{
	char *enc = images_name_enc(name);
	char *p = xasprintf("%s/%s/%s", im->dir, enc, tag);
	free(enc);
	return p;
}

/* ---- config files ---- */

static json_object *json_strv(char **v, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* Reads a JSON array of strings (missing or null: empty). */
static void json_get_strv(json_object *o, const char *key, char ***v, size_t *n)
{
	json_object *a;
	*v = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
		return;
	size_t len = json_object_array_length(a);
	if (!len)
		return;
	*v = xcalloc(len + 1, sizeof(char *));
	for (size_t i = 0; i < len; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, i));
		(*v)[(*n)++] = xstrdup(s ? s : "");
	}
}

static const char *json_get_str(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t json_get_i64(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_int64(v);
}

static json_object *json_read_file(const char *path)
{
	char *buf;
	if (file_read_all(path, IMAGES_JSON_MAX, &buf, NULL) < 0)
		return NULL;
	json_object *o = json_tokener_parse(buf);
	free(buf);
	return o;
}

int images_get(struct images *im, const char *ref, struct image_config *out)
{
	char *name = NULL, *tag = NULL;
	memset(out, 0, sizeof(*out));
	if (images_ref_split(ref, &name, &tag) < 0)
		return -ENOENT;
	char *base = images_path(im, name, tag);
	char *cfgpath = xasprintf("%s/config.json", base);
	json_object *cfg = json_read_file(cfgpath);
	int err = 0;
	if (!cfg) {
		err = -ENOENT;
		goto out;
	}
	out->rootfs = xasprintf("%s/rootfs", base);
	json_get_strv(cfg, "entrypoint", &out->entrypoint, &out->n_entrypoint);
	json_get_strv(cfg, "cmd", &out->cmd, &out->n_cmd);
	json_get_strv(cfg, "env", &out->env, &out->n_env);
	const char *wd = json_get_str(cfg, "workdir");
	out->workdir = xstrdup(wd ? wd : "");
	json_object *hc;
	if (json_object_object_get_ex(cfg, "healthcheck", &hc)) {
		json_get_strv(hc, "test", &out->healthcheck, &out->n_healthcheck);
		out->health_interval_ns = json_get_i64(hc, "interval_ns");
		out->health_timeout_ns = json_get_i64(hc, "timeout_ns");
		out->health_start_period_ns = json_get_i64(hc, "start_period_ns");
		out->health_retries = (int)json_get_i64(hc, "retries");
	}
	json_object_put(cfg);
out:
	free(cfgpath);
	free(base);
	free(name);
	free(tag);
	return err;
}

/* Calls fn(name, tag, dirpath, arg) for every stored image. */
static void images_walk(struct images *im,
			void (*fn)(const char *name, const char *tag, const char *path, void *arg),
			void *arg)
{
	DIR *d = opendir(im->dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *ndir = xasprintf("%s/%s", im->dir, de->d_name);
		DIR *td = opendir(ndir);
		if (td) {
			struct dirent *te;
			char *name = images_name_dec(de->d_name);
			while ((te = readdir(td))) {
				if (te->d_name[0] == '.')
					continue;
				char *p = xasprintf("%s/%s", ndir, te->d_name);
				char *cfg = xasprintf("%s/config.json", p);
				if (access(cfg, R_OK) == 0)
					fn(name, te->d_name, p, arg);
				free(cfg);
				free(p);
			}
			free(name);
			closedir(td);
		}
		free(ndir);
	}
	closedir(d);
}

struct images_listv {
	char **v;
	size_t n;
};

static void images_list_one(const char *name, const char *tag, const char *path, void *arg)
{
	struct images_listv *l = arg;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
	l->v[l->n++] = xasprintf("%s:%s", name, tag);
}

static int images_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t images_list(struct images *im, char ***out)
{
	struct images_listv l = { NULL, 0 };
	images_walk(im, images_list_one, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof(char *), images_strcmp);
	*out = l.v;
	return l.n;
}

static void images_json_one(const char *name, const char *tag, const char *path, void *arg)
{
	json_object *a = arg;
	char *cfgpath = xasprintf("%s/config.json", path);
	json_object *cfg = json_read_file(cfgpath);
	free(cfgpath);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Repository", json_object_new_string(name));
	json_object_object_add(o, "Tag", json_object_new_string(tag));
	json_object_object_add(o, "Size", json_object_new_int64(json_get_i64(cfg, "size")));
	time_t secs = (time_t)(json_get_i64(cfg, "created") / 1000000000LL);
	struct tm tm;
	char created[64] = "";
	if (gmtime_r(&secs, &tm))
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "Created", json_object_new_string(created));
	json_object_array_add(a, o);
	json_object_put(cfg);
}

char *images_list_json(struct images *im)
{
	json_object *a = json_object_new_array();
	images_walk(im, images_json_one, a);
	char *s = xstrdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
	return s;
}

/* ---- the load worker (runs in a forked child; plain blocking code) ---- */

struct images_work {
	const char *dir;        /* store */
	const char *path;       /* archive */
	const char *name;       /* requested ref or NULL */
	char tmp[IMAGES_WPATH];  /* <dir>/.load-XXXXXX */
	char err[1024];         /* first error */
};

static int work_fail(struct images_work *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int work_fail(struct images_work *w, const char *fmt, ...)
{
	if (w->err[0])
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Runs tar with the given arguments, stdout to out_path (or /dev/null),
 * stderr to <tmp>/tar.err; on failure records the first line of stderr. */
static int work_tar(struct images_work *w, char *const argv[], const char *out_path)
{
	char errpath[PATH_MAX];
	snprintf(errpath, sizeof(errpath), "%s/tar.err", w->tmp);
	int efd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ofd = open(out_path ? out_path : "/dev/null",
		       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (efd < 0 || ofd < 0) {
		if (efd >= 0)
			close(efd);
		if (ofd >= 0)
			close(ofd);
		return work_fail(w, "cannot create temp files: %s", strerror(errno));
	}
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(ofd, 1);
		dup2(efd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(efd);
	close(ofd);
	if (pid < 0)
		return work_fail(w, "fork: %s", strerror(errno));
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return work_fail(w, "waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char *msg = NULL;
	if (file_read_all(errpath, 4096, &msg, NULL) == 0) {
		char *nl = strchr(msg, '\n');
		if (nl)
			*nl = '\0';
	}
	work_fail(w, "tar failed: %s", msg && *msg ? msg : "unknown error");
	free(msg);
	return -1;
}

/* Removes name under dirfd, recursively, never following symlinks. */
static int work_rm_at(int parent, const char *name)
{
	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			work_rm_at(dirfd(d), de->d_name);
	closedir(d);
	return unlinkat(parent, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Opens directory rel under root without following any symlink on the way
 * (a layer must not make us delete outside the rootfs). -1 when absent. */
static int work_open_dir(int rootfd, const char *rel)
{
	int fd = dup(rootfd);
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", rel);
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			close(fd);
			return -1;
		}
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
	return fd;
}

/* Applies the whiteouts listed in a layer's member list to the rootfs built
 * from the layers below: ".wh.NAME" removes NAME, ".wh..wh..opq" empties
 * its directory. Runs before the layer itself is extracted, so an opaque
 * directory keeps what this layer puts in it. */
static int work_whiteouts(struct images_work *w, const char *rootfs, const char *list_path)
{
	char *list;
	size_t len;
	if (file_read_all(list_path, IMAGES_LIST_MAX, &list, &len) < 0)
		return work_fail(w, "cannot read layer listing");
	int rootfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		free(list);
		return work_fail(w, "cannot open rootfs: %s", strerror(errno));
	}
	char *save = NULL;
	for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		while (line[0] == '.' && line[1] == '/')
			line += 2;
		while (line[0] == '/')
			line++;
		size_t l = strlen(line);
		while (l > 0 && line[l - 1] == '/')
			line[--l] = '\0';
		char *base = strrchr(line, '/');
		const char *dir = ".";
		if (base) {
			*base++ = '\0';
			dir = line;
		} else {
			base = line;
		}
		if (strncmp(base, ".wh.", 4) != 0)
			continue;
		int dfd = work_open_dir(rootfd, dir);
		if (dfd < 0)
			continue;
		if (strcmp(base, ".wh..wh..opq") == 0) {
			DIR *d = fdopendir(dup(dfd));
			struct dirent *de;
			while (d && (de = readdir(d)))
				if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
					work_rm_at(dfd, de->d_name);
			if (d)
				closedir(d);
		} else if (base[4] && strcmp(base + 4, ".") && strcmp(base + 4, "..")) {
			work_rm_at(dfd, base + 4);
		}
		close(dfd);
	}
	close(rootfd);
	free(list);
	return 0;
}

/* "sha256:abc" -> "<x>/blobs/sha256/abc"; NULL when malformed. */
static char *work_blob_path(const char *x, const char *digest)
{
	if (!digest)
		return NULL;
	const char *colon = strchr(digest, ':');
	if (!colon || colon == digest || !colon[1])
		return NULL;
	for (const char *p = digest; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == ':' || *p == '-' || *p == '_' || *p == '+'))
			return NULL;
	return xasprintf("%s/blobs/%.*s/%s", x, (int)(colon - digest), digest, colon + 1);
}

static json_object *work_blob_json(struct images_work *w, const char *x, const char *digest)
{
	char *p = work_blob_path(x, digest);
	if (!p) {
		work_fail(w, "bad digest \"%s\"", digest ? digest : "");
		return NULL;
	}
	json_object *o = json_read_file(p);
	if (!o)
		work_fail(w, "missing or unreadable blob %s", digest);
	free(p);
	return o;
}

/* Sums regular file sizes for "Size". */
static int64_t work_size_total;
static int work_size_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	if (flag == FTW_F && S_ISREG(st->st_mode))
		work_size_total += st->st_size;
	return 0;
}

/* ocfg: the OCI image config's "config" object (may be NULL for an OCI
 * image without one); oci false: a plain rootfs tarball. */
static int work_write_config(struct images_work *w, const char *name, const char *tag,
			     bool oci, json_object *ocfg)
{
	char rootfs[PATH_MAX];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", w->tmp);
	work_size_total = 0;
	nftw(rootfs, work_size_cb, 32, FTW_PHYS);

	json_object *c = json_object_new_object();
	json_object_object_add(c, "name", json_object_new_string(name));
	json_object_object_add(c, "tag", json_object_new_string(tag));
	json_object_object_add(c, "created", json_object_new_int64(now_wall_ns()));
	json_object_object_add(c, "size", json_object_new_int64(work_size_total));
	char **v;
	size_t n;
	if (oci) {
		static const char *const keys[][2] = {
			{ "Entrypoint", "entrypoint" }, { "Cmd", "cmd" }, { "Env", "env" },
		};
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			json_get_strv(ocfg, keys[i][0], &v, &n);
			json_object_object_add(c, keys[i][1], json_strv(v, n));
			for (size_t k = 0; k < n; k++)
				free(v[k]);
			free(v);
		}
		const char *wd = json_get_str(ocfg, "WorkingDir");
		json_object_object_add(c, "workdir", json_object_new_string(wd ? wd : ""));
		json_object *hc;
		if (json_object_object_get_ex(ocfg, "Healthcheck", &hc) &&
		    json_object_is_type(hc, json_type_object)) {
			json_object *h = json_object_new_object();
			json_get_strv(hc, "Test", &v, &n);
			json_object_object_add(h, "test", json_strv(v, n));
			for (size_t k = 0; k < n; k++)
				free(v[k]);
			free(v);
			json_object_object_add(h, "interval_ns", json_object_new_int64(json_get_i64(hc, "Interval")));
			json_object_object_add(h, "timeout_ns", json_object_new_int64(json_get_i64(hc, "Timeout")));
			json_object_object_add(h, "start_period_ns",
					       json_object_new_int64(json_get_i64(hc, "StartPeriod")));
			json_object_object_add(h, "retries", json_object_new_int64(json_get_i64(hc, "Retries")));
			json_object_object_add(c, "healthcheck", h);
		}
	} else {
		/* A plain rootfs tarball: a shell. */
		char *sh[] = { "/bin/sh" };
		json_object_object_add(c, "entrypoint", json_object_new_array());
		json_object_object_add(c, "cmd", json_strv(sh, 1));
		json_object_object_add(c, "env", json_object_new_array());
		json_object_object_add(c, "workdir", json_object_new_string(""));
	}
	const char *text = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", w->tmp);
	int err = file_write_atomic(path, text, strlen(text), 0644);
	json_object_put(c);
	if (err < 0)
		return work_fail(w, "cannot write config: %s", strerror(-err));
	return 0;
}

/* File name without directories and archive extensions. */
static char *work_file_base(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	char *s = xstrdup(b);
	static const char *const ext[] = { ".tar.gz", ".tgz", ".tar", ".gz", ".oci" };
	for (int again = 1; again;) {
		again = 0;
		for (size_t i = 0; i < ARRAY_SIZE(ext); i++) {
			size_t l = strlen(s), e = strlen(ext[i]);
			if (l > e && strcmp(s + l - e, ext[i]) == 0) {
				s[l - e] = '\0';
				again = 1;
			}
		}
	}
	return s;
}

/* Picks the name:tag for the image. */
static int work_ref(struct images_work *w, const char *annot_ref, const char *annot_image,
		    char **name, char **tag)
{
	if (w->name) {
		if (images_ref_split(w->name, name, tag) < 0)
			return work_fail(w, "invalid image name \"%s\"", w->name);
		return 0;
	}
	if (annot_ref && strchr(annot_ref, ':') && images_ref_split(annot_ref, name, tag) == 0)
		return 0;
	const char *t = annot_ref && *annot_ref ? annot_ref : "latest";
	char *n = NULL;
	if (annot_image && *annot_image) {
		char *in = NULL, *it = NULL;
		if (images_ref_split(annot_image, &in, &it) == 0) {
			/* docker save: "docker.io/library/busybox:latest" */
			const char *s = in;
			if (str_has_prefix(s, "docker.io/library/"))
				s += strlen("docker.io/library/");
			else if (str_has_prefix(s, "docker.io/"))
				s += strlen("docker.io/");
			n = xstrdup(s);
			if (!annot_ref || !*annot_ref)
				t = NULL;
			free(in);
			if (!t) {
				*name = n;
				*tag = it;
				return 0;
			}
			free(it);
		}
	}
	if (!n)
		n = work_file_base(w->path);
	char *ref = xasprintf("%s:%s", n, t);
	free(n);
	int err = images_ref_split(ref, name, tag);
	free(ref);
	if (err < 0)
		return work_fail(w, "cannot tell the image name; give one");
	return 0;
}

static int work_mkrootfs(struct images_work *w)
{
	char rootfs[PATH_MAX];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", w->tmp);
	if (mkdir(rootfs, 0755) < 0)
		return work_fail(w, "mkdir rootfs: %s", strerror(errno));
	return 0;
}

/* Applies one layer tarball (plain or compressed) onto <tmp>/rootfs: its
 * whiteouts first, then its contents without the whiteout files. */
static int work_apply_layer(struct images_work *w, const char *blob)
{
	char rootfs[PATH_MAX], list[PATH_MAX];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", w->tmp);
	snprintf(list, sizeof(list), "%s/layer.list", w->tmp);
	char *tl[] = { "tar", "-tf", (char *)blob, NULL };
	char *tx[] = { "tar", "--numeric-owner", "-xf", (char *)blob, "-C", rootfs,
		       "--exclude=.wh.*", NULL };
	if (work_tar(w, tl, list) < 0 || work_whiteouts(w, rootfs, list) < 0 ||
	    work_tar(w, tx, NULL) < 0)
		return -1;
	return 0;
}

/* A path inside the archive: relative, no "..". */
static bool work_rel_ok(const char *rel)
{
	if (!rel || !*rel || rel[0] == '/')
		return false;
	for (const char *p = rel; (p = strstr(p, "..")); p += 2)
		if ((p == rel || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return false;
	return true;
}

/* `docker save` archives from before Docker 25: manifest.json names the
 * config and the layer tarballs by path, and the repository tags. */
static int work_docker(struct images_work *w, const char *x, char **name, char **tag)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/manifest.json", x);
	json_object *man = json_read_file(path), *cfgdoc = NULL, *layers, *tags, *ocfg = NULL;
	const char *repotag = NULL;
	int rc = -1;
	if (!man || !json_object_is_type(man, json_type_array) ||
	    json_object_array_length(man) == 0) {
		work_fail(w, "malformed manifest.json");
		goto out;
	}
	json_object *m0 = json_object_array_get_idx(man, 0);
	const char *cfgname = json_get_str(m0, "Config");
	if (!work_rel_ok(cfgname)) {
		work_fail(w, "manifest.json names no usable config");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", x, cfgname);
	cfgdoc = json_read_file(path);
	if (!cfgdoc) {
		work_fail(w, "missing or unreadable image config %s", cfgname);
		goto out;
	}
	if (!json_object_object_get_ex(m0, "Layers", &layers) ||
	    !json_object_is_type(layers, json_type_array)) {
		work_fail(w, "manifest.json lists no layers");
		goto out;
	}
	if (work_mkrootfs(w) < 0)
		goto out;
	for (size_t i = 0; i < json_object_array_length(layers); i++) {
		const char *rel = json_object_get_string(json_object_array_get_idx(layers, i));
		snprintf(path, sizeof(path), "%s/%s", x, rel ? rel : "");
		if (!work_rel_ok(rel) || access(path, R_OK) < 0) {
			work_fail(w, "missing layer %s", rel ? rel : "?");
			goto out;
		}
		if (work_apply_layer(w, path) < 0)
			goto out;
	}
	if (json_object_object_get_ex(m0, "RepoTags", &tags) &&
	    json_object_is_type(tags, json_type_array) && json_object_array_length(tags) > 0)
		repotag = json_object_get_string(json_object_array_get_idx(tags, 0));
	json_object_object_get_ex(cfgdoc, "config", &ocfg);
	if (work_ref(w, repotag, NULL, name, tag) < 0 ||
	    work_write_config(w, *name, *tag, true, ocfg) < 0)
		goto out;
	rc = 0;
out:
	json_object_put(man);
	json_object_put(cfgdoc);
	return rc;
}

static int work_oci(struct images_work *w, const char *x, char **name, char **tag)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/index.json", x);
	json_object *doc = json_read_file(path);
	json_object *ocfg_doc = NULL;
	int rc = -1;
	if (!doc)
		return work_fail(w, "unreadable index.json");
	const char *annot_ref = NULL, *annot_image = NULL;
	char *ref_copy = NULL, *image_copy = NULL;
	/* Follow (nested) indexes to the first manifest. */
	for (int depth = 0;; depth++) {
		json_object *mans, *m0, *ann;
		if (!json_object_object_get_ex(doc, "manifests", &mans)) {
			if (depth == 0) {
				work_fail(w, "index.json has no manifests");
				goto out;
			}
			break;  /* doc is the manifest */
		}
		if (depth >= IMAGES_NEST_MAX || !json_object_is_type(mans, json_type_array) ||
		    json_object_array_length(mans) == 0) {
			work_fail(w, "index.json has no usable manifest");
			goto out;
		}
		m0 = json_object_array_get_idx(mans, 0);
		if (json_object_object_get_ex(m0, "annotations", &ann)) {
			annot_ref = json_get_str(ann, "org.opencontainers.image.ref.name");
			annot_image = json_get_str(ann, "io.containerd.image.name");
			if (annot_ref && !ref_copy)
				ref_copy = xstrdup(annot_ref);
			if (annot_image && !image_copy)
				image_copy = xstrdup(annot_image);
		}
		json_object *next = work_blob_json(w, x, json_get_str(m0, "digest"));
		json_object_put(doc);
		doc = next;
		if (!doc)
			goto out;
	}
	json_object *cfgd, *layers;
	if (!json_object_object_get_ex(doc, "config", &cfgd) ||
	    !json_object_object_get_ex(doc, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array)) {
		work_fail(w, "malformed image manifest");
		goto out;
	}
	ocfg_doc = work_blob_json(w, x, json_get_str(cfgd, "digest"));
	if (!ocfg_doc)
		goto out;

	if (work_mkrootfs(w) < 0)
		goto out;
	for (size_t i = 0; i < json_object_array_length(layers); i++) {
		json_object *l = json_object_array_get_idx(layers, i);
		char *blob = work_blob_path(x, json_get_str(l, "digest"));
		if (!blob || access(blob, R_OK) < 0) {
			work_fail(w, "missing layer blob %s", json_get_str(l, "digest") ?: "?");
			free(blob);
			goto out;
		}
		int bad = work_apply_layer(w, blob) < 0;
		free(blob);
		if (bad)
			goto out;
	}
	json_object *ocfg = NULL;
	json_object_object_get_ex(ocfg_doc, "config", &ocfg);
	if (work_ref(w, ref_copy, image_copy, name, tag) < 0)
		goto out;
	if (work_write_config(w, *name, *tag, true, ocfg) < 0)
		goto out;
	rc = 0;
out:
	json_object_put(doc);
	json_object_put(ocfg_doc);
	free(ref_copy);
	free(image_copy);
	return rc;
}

/* Moves the finished image into place; an existing one goes to the trash. */
static int work_install(struct images_work *w, const char *name, const char *tag)
{
	char *enc = images_name_enc(name);
	char *ndir = xasprintf("%s/%s", w->dir, enc);
	char *target = xasprintf("%s/%s", ndir, tag);
	int rc = -1;
	int err = mkdir_p(ndir, 0755);
	if (err < 0) {
		work_fail(w, "mkdir %s: %s", ndir, strerror(-err));
		goto out;
	}
	if (rename(w->tmp, target) == 0) {
		rc = 0;
		goto out;
	}
	if (errno != ENOTEMPTY && errno != EEXIST) {
		work_fail(w, "rename: %s", strerror(errno));
		goto out;
	}
	/* Swap atomically, then move the old image (now at tmp) aside. */
	if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, target, RENAME_EXCHANGE) < 0) {
		work_fail(w, "rename: %s", strerror(errno));
		goto out;
	}
	char *trash = xasprintf("%s/.trash", w->dir);
	mkdir(trash, 0700);
	char *old = xasprintf("%s/%s", trash, strrchr(w->tmp, '/') + 1);
	if (rename(w->tmp, old) < 0)
		rm_rf(w->tmp);
	free(old);
	free(trash);
	rc = 0;
out:
	free(target);
	free(ndir);
	free(enc);
	return rc;
}

static int images_worker(void *arg)
{
	struct images_work *w = arg;
	char *name = NULL, *tag = NULL;
	snprintf(w->tmp, sizeof(w->tmp), "%s/.load-XXXXXX", w->dir);
	if (!mkdtemp(w->tmp)) {
		dprintf(1, "ERR cannot create temp dir: %s\n", strerror(errno));
		return 1;
	}
	char x[IMAGES_WPATH + 16], probe1[PATH_MAX], probe2[PATH_MAX], probe3[PATH_MAX];
	char rootfs[PATH_MAX];
	snprintf(x, sizeof(x), "%s/archive", w->tmp);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", w->tmp);
	snprintf(probe1, sizeof(probe1), "%s/oci-layout", x);
	snprintf(probe2, sizeof(probe2), "%s/index.json", x);
	snprintf(probe3, sizeof(probe3), "%s/manifest.json", x);
	int rc = 1;
	char *tx[] = { "tar", "--numeric-owner", "-xf", (char *)w->path, "-C", x, NULL };
	if (mkdir(x, 0755) < 0) {
		work_fail(w, "mkdir: %s", strerror(errno));
		goto out;
	}
	if (work_tar(w, tx, NULL) < 0)
		goto out;
	if (access(probe1, F_OK) == 0 && access(probe2, F_OK) == 0) {
		if (work_oci(w, x, &name, &tag) < 0)
			goto out;
		rm_rf(x);
	} else if (access(probe3, F_OK) == 0) {
		if (work_docker(w, x, &name, &tag) < 0)
			goto out;
		rm_rf(x);
	} else {
		if (rename(x, rootfs) < 0) {
			work_fail(w, "rename: %s", strerror(errno));
			goto out;
		}
		if (work_ref(w, NULL, NULL, &name, &tag) < 0 ||
		    work_write_config(w, name, tag, false, NULL) < 0)
			goto out;
	}
	char leftover[PATH_MAX];
	snprintf(leftover, sizeof(leftover), "%s/tar.err", w->tmp);
	unlink(leftover);
	snprintf(leftover, sizeof(leftover), "%s/layer.list", w->tmp);
	unlink(leftover);
	if (work_install(w, name, tag) < 0)
		goto out;
	rc = 0;
out:
	if (rc) {
		rm_rf(w->tmp);
		dprintf(1, "ERR %s\n", w->err[0] ? w->err : "image load failed");
	} else {
		dprintf(1, "OK %s:%s\n", name, tag);
	}
	free(name);
	free(tag);
	return rc;
}

/* ---- the loop side ---- */

static void images_load_free(struct images_load *l)
{
	free(l->path);
	free(l->name);
	free(l);
}

static void images_load_unlink(struct images_load *l)
{
	for (struct images_load **pp = &l->im->loads; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			return;
		}
	}
}

static void images_load_done(const struct proc_result *r, void *arg)
{
	struct images_load *l = arg;
	images_load_unlink(l);
	/* The result is the last line starting with OK or ERR. */
	const char *line = NULL;
	for (char *p = r->out; p && *p; ) {
		if (str_has_prefix(p, "OK ") || str_has_prefix(p, "ERR "))
			line = p;
		char *nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	if (line && str_has_prefix(line, "OK ") && WIFEXITED(r->status) &&
	    WEXITSTATUS(r->status) == 0) {
		log_info("images, loaded %s from %s", line + 3, l->path);
		l->done(0, line + 3, l->arg);
	} else {
		const char *msg = line ? line + 4 : "image load failed";
		log_warn("images, loading %s failed: %s", l->path, msg);
		l->done(-EINVAL, msg, l->arg);
	}
	images_load_free(l);
}

int images_load(struct images *im, const char *path, const char *name,
		images_done_fn done, void *arg)
{
	if (!path || access(path, R_OK) < 0)
		return -ENOENT;
	char *n = NULL, *t = NULL;
	if (name) {
		if (images_ref_split(name, &n, &t) < 0)
			return -EINVAL;
		free(n);
		free(t);
	}
	struct images_load *l = xcalloc(1, sizeof(*l));
	l->im = im;
	l->path = xstrdup(path);
	l->name = name ? xstrdup(name) : NULL;
	l->done = done;
	l->arg = arg;
	/* The worker gets a copy of this in its own address space. */
	struct images_work w;
	memset(&w, 0, sizeof(w));
	w.dir = im->dir;
	w.path = l->path;
	w.name = l->name;
	struct proc_opts o = {
		.fd_in = PROC_NULL, .fd_out = PROC_CAPTURE, .fd_err = PROC_NULL,
		.timeout_ns = 0, .capture_max = 8192,
	};
	int err;
	l->proc = proc_fork(im->loop, images_worker, &w, &o, images_load_done, l, &err);
	if (!l->proc) {
		images_load_free(l);
		return err;
	}
	l->next = im->loads;
	im->loads = l;
	return 0;
}

/* Leftovers of interrupted loads; replaced images once no overlay mount
 * uses the store any more. */
static void images_cleanup(struct images *im)
{
	DIR *d = opendir(im->dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (str_has_prefix(de->d_name, ".load-")) {
			char *p = xasprintf("%s/%s", im->dir, de->d_name);
			rm_rf(p);
			free(p);
		}
	}
	closedir(d);
	char *mi = NULL;
	if (file_read_all("/proc/self/mountinfo", 64 * 1024 * 1024, &mi, NULL) < 0)
		return;
	char *needle = xasprintf("lowerdir=%s/", im->dir);
	if (!strstr(mi, needle)) {
		char *trash = xasprintf("%s/.trash", im->dir);
		rm_rf(trash);
		free(trash);
	}
	free(needle);
	free(mi);
}

struct images *images_open(struct ev_loop *loop, const char *dir)
{
	int err = mkdir_p(dir, 0755);
	if (err < 0) {
		log_err("images, cannot create %s: %s", dir, strerror(-err));
		return NULL;
	}
	char abs[PATH_MAX];
	if (!realpath(dir, abs)) {
		log_err("images, %s: %s", dir, strerror(errno));
		return NULL;
	}
	struct images *im = xcalloc(1, sizeof(*im));
	im->loop = loop;
	im->dir = xstrdup(abs);
	images_cleanup(im);
	return im;
}

void images_free(struct images *im)
{
	if (!im)
		return;
	/* A load in flight is abandoned: the worker is killed, its temp dir
	 * goes at the next images_open. */
	while (im->loads) {
		struct images_load *l = im->loads;
		im->loads = l->next;
		proc_kill(l->proc, SIGKILL);
		proc_detach(l->proc);
		images_load_free(l);
	}
	free(im->dir);
	free(im);
}
