/* swarmadm's command groups and the helpers they share (main.c). Every
 * command takes the words after its name and returns the exit status: 0 on
 * success, 1 after printing one "swarmadm: ..." line on stderr. */
#ifndef SWARMADM_H
#define SWARMADM_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>
#include "admin.pb-c.h"

/* cmd_swarm.c */
int cmd_init(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_join_token(int argc, char **argv);
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

/* `inspect` output for an array of objects: the pretty array, or with a
 * format the template executed once per element, each followed by a newline.
 * Returns the exit status. */
int print_inspect(struct json_object *arr, const char *format);

/* This node's id from the agent's status (cached), or NULL when the agent
 * does not say. */
const char *self_node_id(void);

/* Whether stdout is a terminal. */
bool stdout_is_tty(void);

/* cmd_service.c: the `service ps` / `node ps` table for an array of tasks
 * (render_task objects); quiet prints task ids only. Returns the exit
 * status. */
int print_tasks(struct json_object *tasks, bool no_trunc, bool quiet);
/* The tasks of several services or nodes (body SERVICE_PS or NODE_PS), one
 * request each, as one array. NULL after printing the error. */
struct json_object *tasks_of(Swarm__AdminRequest__BodyCase body, char **names, size_t n);

/* The first 12 characters of an id, Docker's short form. */
void short_id(const char *id, char out[13]);

#endif
