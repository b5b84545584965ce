/* swarmadm's flag grammar: command-line words into ServiceSpec and
 * NetworkSpec objects, with every check that can be made without the
 * manager, so that a bad command is refused before anything is sent.
 * Pure: no I/O (the one environment lookup is injected), no global state.
 * Values follow Docker's CLI: Go durations ("1m30s"), Docker sizes ("64M" =
 * 64 MiB), decimal CPUs ("0.5"), both --publish forms, --mount and
 * --network key=value lists.
 *
 * Errors: 0 or -EINVAL with a one-line reason in err (no "swarmadm: "
 * prefix, no trailing newline). Objects built here are malloc-owned per
 * lib/pb.h; free them with pb_free. */
#ifndef SWARMADM_SPEC_H
#define SWARMADM_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "objects.pb-c.h"

/* ---- values ---- */

/* Go's time.ParseDuration: "300ms", "1.5h", "2h45m", "0"; a number needs a
 * unit (ns us µs ms s m h). Negative values parse (callers refuse them). */
int spec_duration_parse(const char *s, int64_t *ns);
/* Docker's RAMInBytes: "64M", "1.5g", "512mb", "100KiB", "1024" (binary
 * multiples). */
int spec_bytes_parse(const char *s, int64_t *out);
/* Decimal CPUs into nano-CPUs: "0.5" -> 500000000; at most 9 decimals. */
int spec_cpus_parse(const char *s, int64_t *nano);
/* Non-negative decimal integer (no sign, no spaces). */
int spec_uint_parse(const char *s, uint64_t *out);

/* Service and network names: letters and digits, '-' and '_' inside (and
 * '.' for networks), at most 63 chars, so that "<service>.<slot>.<task>"
 * and DNS names built from service names stay unambiguous.
 * what: "service" | "network". */
int spec_name_check(const char *what, const char *name, char *err, size_t errlen);

/* --publish in both of Docker's forms:
 *   short: [PUBLISHED:]TARGET[/tcp|/udp], each side a port or a range
 *          ("8080-8081:80-81"); no PUBLISHED = allocated by the manager;
 *   long:  published=P,target=T[,protocol=tcp|udp][,mode=ingress|host].
 * Appends one PortConfig per port to *ports / *n (protocol and mode always
 * filled in). On error nothing is appended. */
int spec_publish_parse(const char *s, Swarm__PortConfig ***ports, size_t *n,
		       char *err, size_t errlen);
/* PortConfig as Docker's PORTS column shows it: "*:8080->80/tcp". */
void spec_port_string(const Swarm__PortConfig *p, char *out, size_t outlen);

/* --mount type=bind,source=/a,target=/b[,readonly] |
 *         type=tmpfs,target=/t[,tmpfs-size=64M]. */
int spec_mount_parse(const char *s, Swarm__Mount **out, char *err, size_t errlen);

/* --network NET | name=NET[,alias=A]... */
int spec_network_attach_parse(const char *s, Swarm__NetworkAttachmentConfig **out,
			      char *err, size_t errlen);

/* --constraint syntax: KEY==VALUE or KEY!=VALUE with KEY one of node.id,
 * node.hostname, node.role (manager|worker), node.labels.NAME. On success
 * norm (may be NULL) receives "KEY==VALUE" without spaces. */
int spec_constraint_check(const char *expr, char *norm, size_t normlen,
			  char *err, size_t errlen);

/* Shell-like word splitting for --args/--entrypoint: blanks separate words,
 * '...' is literal, "..." honours \" \\ \$ \`, a backslash outside quotes
 * escapes the next character. *argv is a malloc'd vector of malloc'd words
 * (free with spec_strv_free); "" gives zero words. */
int spec_split_args(const char *s, char ***argv, size_t *argc, char *err, size_t errlen);
void spec_strv_free(char **v, size_t n);

/* "a.b.c.d/len" (IPv4). *net in host byte order. -EINVAL on anything else,
 * including host bits set (err says which network was meant). */
int spec_cidr_parse(const char *s, uint32_t *net, unsigned *prefix, char *err, size_t errlen);

/* ---- services ---- */

enum spec_cmd { SPEC_CREATE, SPEC_UPDATE };

/* What the words said besides the spec itself. */
struct spec_cli {
	/* in */
	char *(*getenv_fn)(const char *name); /* "-e K" takes K's value from here; NULL = keep "K" */
	bool probe;              /* update: check the words only (against a stand-in
				    spec), so removing what is not there is no error */
	/* out */
	bool help;               /* --help: print usage, do nothing else */
	bool detach;             /* -d: do not wait for convergence */
	bool quiet;              /* -q: no progress output */
	bool rollback;           /* update --rollback */
	const char *service;     /* update: the SERVICE argument (borrowed from argv) */
	size_t changes;          /* number of flags that changed the spec */
	char **net_rm;           /* update: --network-rm values that matched no target */
	size_t n_net_rm;
};
void spec_cli_clear(struct spec_cli *cli);

/* A new spec holding what Docker's CLI sends when a flag is absent: mode
 * replicated, 1 replica, endpoint vip, restart any/5s/unlimited, update and
 * rollback parallelism 1 / pause / monitor 5s / stop-first, stop grace 10s. */
Swarm__ServiceSpec *spec_service_new(void);

/* Applies `service create` (argv after "create") or `service update` (argv
 * after "update") words to spec: for create, a spec from spec_service_new;
 * for update, the current spec. Create reads IMAGE [ARG...] (flags stop at
 * IMAGE, later words go to Args); update needs exactly one SERVICE. Ends
 * with spec_service_validate. On error spec may be partly changed. */
int spec_service_args(enum spec_cmd cmd, int argc, char **argv, Swarm__ServiceSpec *spec,
		      struct spec_cli *cli, char *err, size_t errlen);

/* Checks a whole spec: name, image, ports (no ingress-mode port on a dnsrr
 * service, no duplicate published port), networks not repeated. */
int spec_service_validate(const Swarm__ServiceSpec *spec, char *err, size_t errlen);

/* Removes the attachments whose target equals target; returns how many. */
size_t spec_network_remove(Swarm__ServiceSpec *spec, const char *target);

/* ---- networks ---- */

/* `network create` words (argv after "create") into spec: -d/--driver
 * overlay, --opt encrypted, --subnet, --gateway, --attachable, --label,
 * --ingress, NAME. Ends with spec_network_validate. *help set on --help. */
int spec_network_args(int argc, char **argv, Swarm__NetworkSpec *spec, bool *help,
		      char *err, size_t errlen);
/* Name, driver, subnet ("invalid subnet \"x\""), gateway inside the subnet. */
int spec_network_validate(const Swarm__NetworkSpec *spec, char *err, size_t errlen);

#endif
