/* swarmadm's output: aligned tables like Docker's tabwriter, JSON printed as
 * `docker inspect` prints it, Go-template-style --format paths over json-c
 * documents, and Docker's human-readable times and sizes. Pure: every
 * function returns text (malloc'd or into a buffer); nothing is printed. */
#ifndef SWARMADM_FORMAT_H
#define SWARMADM_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* ---- tables ---- */

/* Columns are padded to their widest cell plus FORMAT_TABLE_GAP spaces,
 * except the last; trailing blanks are trimmed from every line. Widths
 * count UTF-8 characters, not bytes. */
#define FORMAT_TABLE_GAP 3

struct table;
struct table *table_new(size_t ncols);
/* Appends a row of ncols cells (copied; NULL = empty). The first row is
 * usually the header. */
void table_add(struct table *t, const char *const *cells);
/* The whole table, one "\n"-terminated line per row; malloc'd. */
char *table_render(const struct table *t);
void table_free(struct table *t);

/* ---- JSON ---- */

/* Looks up a dotted path ("Spec.Name", ".Spec.Name"; "Endpoint.Ports.0" also
 * indexes arrays) in doc. Borrowed pointer; NULL when absent. Keys match
 * exactly, or else ignoring case (so {{.ID}} finds "Id"). */
struct json_object *format_get(struct json_object *doc, const char *path);
/* The string at path, or "" (numbers and bools are not converted). */
const char *format_get_str(struct json_object *doc, const char *path);
/* The integer at path, or 0. */
int64_t format_get_int(struct json_object *doc, const char *path);

/* doc as `docker inspect` prints it: 4-space indent, "key": value, no
 * escaped slashes; no trailing newline. malloc'd. */
char *format_json_pretty(struct json_object *doc);
/* doc on one line with no spaces (the template `json` function). malloc'd. */
char *format_json_compact(struct json_object *doc);

/* ---- templates ---- */

/* Executes a Go-template-style format against doc:
 *   text around actions is copied; {{- and -}} trim blanks as in Go;
 *   {{.}} {{.A.B}} print a value: strings raw, numbers, true/false, arrays
 *   as [a b], objects as map[k:v]; {{json .A}} prints compact JSON;
 *   also {{index .A "key"}}, {{len .A}}, {{lower X}}, {{upper X}},
 *   {{join .A ","}} and pipes ({{.A | json}}).
 * A field that does not exist is an error ("template: .Spec.Foo: no field
 * \"Foo\"") except the optional ones the manager leaves out when unset
 * (Networks, Args, Healthcheck, UpdateStatus, PreviousSpec...), which give
 * their Go zero value ("", 0, [], <nil>) as Docker's typed structs do.
 * *out is malloc'd, with no newline added. 0 or -EINVAL with err set. */
int format_template(const char *tmpl, struct json_object *doc, char **out,
		    char *err, size_t errlen);

/* ---- times and sizes ---- */

/* RFC 3339 ("2026-11-25T17:21:43.123456789Z", offsets allowed) into unix ns.
 * Go's zero time "0001-01-01T00:00:00Z" gives 0. 0 or -EINVAL. */
int format_time_parse(const char *s, int64_t *ns);
/* "18 seconds ago", "less than a second ago", "about a minute ago" (Docker's
 * `service ps` CURRENT STATE wording, lower-case). */
void format_since(int64_t then_ns, int64_t now_ns, char *out, size_t outlen);
/* Docker's units.HumanSize: decimal, 4 significant digits: "187.8MB",
 * "5.2kB", "0B". */
void format_human_size(int64_t bytes, char *out, size_t outlen);

/* "running" -> "Running" into out. */
void format_capitalize(const char *s, char *out, size_t outlen);

#endif
