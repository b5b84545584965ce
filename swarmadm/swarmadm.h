/* swarmadm's command groups and the helpers they share (main.c). Every
 * command takes the words after its name and returns the exit status: 0 on
 * success, 1 after printing one "swarmadm: ..." line on stderr. */
#ifndef SWARMADM_H
#define SWARMADM_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>
#include "admin.pb-c.h"

struct opt_def;
struct table;

/* cmd_swarm.c */
int cmd_init(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_join_token(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_leave(int argc, char **argv);
int cmd_info(int argc, char **argv);
/* cmd_node.c, cmd_network.c, cmd_service.c, cmd_local.c: argv[0] is the
 * subcommand ("ls", "inspect", ...). */
int cmd_node(int argc, char **argv);
int cmd_network(int argc, char **argv);
int cmd_service(int argc, char **argv);
int cmd_container(int argc, char **argv);
int cmd_image(int argc, char **argv);

/* Prints "swarmadm: <message>" on stderr; returns 1 (the exit status). */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints text (a usage block) on stdout; returns 0. */
int usage(const char *text);

/* Sends a NameRequest body of the given kind to the manager. NULL after
 * printing the error. */
Swarm__AdminResponse *admin_names(Swarm__AdminRequest__BodyCase body, char **names,
				  size_t n, bool force);
/* Same, then parses the answer's JSON; an object is wrapped in a one-element
 * array so callers always get an array. NULL after printing the error. */
struct json_object *admin_json(Swarm__AdminRequest__BodyCase body, char **names, size_t n);
/* Parses a JSON answer text; NULL after printing "swarmadm: <who> sent
 * invalid JSON". Objects are wrapped in an array when as_array. */
struct json_object *json_parse_answer(const char *text, const char *who, bool as_array);

/* The flags the object subcommands share (ls, inspect, ps, rm, logs...):
 * each command's opt_def table picks the ones it accepts, with these ids;
 * its own flags take ids from ARG_OWN up. */
enum { ARG_HELP = 1, ARG_QUIET, ARG_FORMAT, ARG_NO_TRUNC, ARG_OWN };

struct cmd_args {
	bool quiet, no_trunc, raw;
	const char *format, *name, *input;
	long tail;               /* lines; -1 = all */
	char **words;            /* the positional words (array malloc'd) */
	size_t n_words;
};

/* A command's part of args_parse: called with id 0 for each positional
 * word (which it may replace in *val before it is stored) and with the
 * ids of the command's own flags. -1 to go on, else the exit status to
 * return now (after printing). */
typedef int (*args_hook)(int id, const char **val, struct cmd_args *a);

/* Scans argv with defs (stop: flags end at the first word, as opt_init):
 * --help prints help, ARG_QUIET/ARG_FORMAT/ARG_NO_TRUNC fill a, hook (may be
 * NULL) sees the rest, positional words go to a->words in order. Returns -1
 * to go on, or the exit status to return now (after printing the first
 * error). a->words is allocated either way: free it. */
int args_parse(int argc, char **argv, const struct opt_def *defs, bool stop, const char *help,
	       args_hook hook, struct cmd_args *a);

/* Prints t (unless quiet, which printed ids as it went) and frees it. */
void print_table(struct table *t, bool quiet);

/* `inspect`: one request for all names, then print_inspect. Returns the
 * exit status. */
int inspect_names(Swarm__AdminRequest__BodyCase body, char **names, size_t n, const char *format);

/* `rm`: one request per name, so that a missing one does not stop the
 * others (as in Docker); prints each name removed. Returns the exit status:
 * 1 when any failed. */
int remove_names(Swarm__AdminRequest__BodyCase body, char **names, size_t n, bool force);

/* `inspect` output for an array of objects: the pretty array, or with a
 * format the template executed once per element, each followed by a newline.
 * Returns the exit status. */
int print_inspect(struct json_object *arr, const char *format);

/* This node's id from the agent's status (cached), or NULL when the agent
 * does not say. */
const char *self_node_id(void);

/* Whether stdout is a terminal. */
bool stdout_is_tty(void);

/* cmd_service.c: the `service ps` / `node ps` table of the tasks of several
 * services or nodes (body SERVICE_PS or NODE_PS, one request each); quiet
 * prints task ids only. Returns the exit status. */
int print_tasks_of(Swarm__AdminRequest__BodyCase body, char **names, size_t n, bool no_trunc,
		   bool quiet);

/* The first 12 characters of an id, Docker's short form. */
void short_id(const char *id, char out[13]);

#endif
