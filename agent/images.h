/* The node's image store: <state>/images/<name>/<tag>/{rootfs/,config.json}.
 * Loads OCI image layout archives (index.json -> manifest -> layers, applied
 * in order with whiteouts), older `docker save` archives (manifest.json), or
 * plain rootfs tarballs. Extraction runs in a
 * child process; the event loop never waits on it. */
#ifndef SWARM_IMAGES_H
#define SWARM_IMAGES_H

#include <stddef.h>
#include <ev.h>

struct images;

/* What a task needs from its image. Strings and vectors are owned by the
 * struct; image_config_free releases them. */
struct image_config {
	char *rootfs;        /* absolute path of the unpacked rootfs */
	char **entrypoint; size_t n_entrypoint;
	char **cmd; size_t n_cmd;
	char **env; size_t n_env;
	char *workdir;
	char **healthcheck; size_t n_healthcheck; /* ["CMD-SHELL", "..."] or empty */
	long long health_interval_ns, health_timeout_ns, health_start_period_ns;
	int health_retries;
};
void image_config_free(struct image_config *c);

struct images *images_open(struct ev_loop *loop, const char *dir);
void images_free(struct images *im);

/* "busybox" means "busybox:latest". 0 with *out filled, -ENOENT when the
 * image is not here. */
int images_get(struct images *im, const char *ref, struct image_config *out);
/* Names "name:tag" of every image, into a malloc'd vector of malloc'd
 * strings. */
size_t images_list(struct images *im, char ***out);
/* JSON array for `image ls`: [{"Repository","Tag","Size","Created"}...] */
char *images_list_json(struct images *im);

/* Loads an archive. name may be NULL (taken from the OCI index annotation
 * org.opencontainers.image.ref.name, or the file name for a rootfs tarball).
 * done(err, "name:tag" or error text, arg) runs from the loop when finished.
 * 0 when started, -errno on immediate refusal. */
typedef void (*images_done_fn)(int err, const char *msg, void *arg);
int images_load(struct images *im, const char *path, const char *name,
		images_done_fn done, void *arg);

#endif
