/* Command-line flag scanning for swarmadm, in the manner of the Go pflag
 * package Docker's CLI uses: "--name value", "--name=value", "-n value",
 * "-nvalue", grouped boolean shorts ("-qd"), "--" ends the flags, and an
 * optional stop at the first positional argument (Docker's "interspersed
 * false", so that `service create IMAGE CMD -x` hands -x to CMD). Pure: no
 * I/O, no global state. */
#ifndef SWARMADM_OPT_H
#define SWARMADM_OPT_H

#include <stdbool.h>
#include <stddef.h>

struct opt_def {
	const char *name;      /* long name without "--" */
	char short_name;       /* 0 = none */
	bool has_arg;          /* takes a value */
	int id;                /* > 0, returned by opt_next */
};

struct opt_iter {
	int argc;
	char **argv;
	int i;                 /* next argv index */
	const char *group;     /* rest of a grouped short-flag word ("-qd") */
	bool stop_at_positional; /* the first positional ends flag scanning */
	bool flags_done;       /* "--" seen, or stopped at a positional */
};

/* Starts scanning argv[0..argc) (argv[0] is a flag or argument, not the
 * program name). */
void opt_init(struct opt_iter *it, int argc, char **argv, bool stop_at_positional);

/* Returns the next item:
 *   > 0   a flag's id; *val is its value (flags with has_arg), or the text
 *         after "=" for a boolean given as "--flag=false", or NULL;
 *   0     a positional argument in *val;
 *   -1    the end;
 *   -EINVAL with a one-line reason in err ("unknown flag: --foo",
 *         "flag needs an argument: --name"). */
int opt_next(struct opt_iter *it, const struct opt_def *defs, const char **val,
	     char *err, size_t errlen);

/* Parses a boolean flag's optional value (NULL = true; "true", "false",
 * "1", "0"). 0 or -EINVAL. */
int opt_bool(const char *val, bool *out);

#endif
