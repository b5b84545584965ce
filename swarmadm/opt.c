/* Flag scanning in the manner of Go's pflag (see opt.h). */
#include "opt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void opt_init(struct opt_iter *it, int argc, char **argv, bool stop_at_positional)
{
	memset(it, 0, sizeof(*it));
	it->argc = argc;
	it->argv = argv;
	it->stop_at_positional = stop_at_positional;
}

static const struct opt_def *opt_find_long(const struct opt_def *defs, const char *name, size_t len)
{
	for (; defs && defs->name; defs++)
		if (strlen(defs->name) == len && strncmp(defs->name, name, len) == 0)
			return defs;
	return NULL;
}

static const struct opt_def *opt_find_short(const struct opt_def *defs, char c)
{
	for (; defs && defs->name; defs++)
		if (defs->short_name && defs->short_name == c)
			return defs;
	return NULL;
}

/* One character of a short-flag word; rest is what follows it. */
static int opt_short(struct opt_iter *it, const struct opt_def *defs, const char *word,
		     const char **val, char *err, size_t errlen)
{
	char c = word[0];
	const char *rest = word + 1;
	const struct opt_def *d = opt_find_short(defs, c);

	it->group = NULL;
	if (!d) {
		snprintf(err, errlen, "unknown shorthand flag: '%c'", c);
		return -EINVAL;
	}
	if (d->has_arg) {
		if (*rest) {
			*val = rest[0] == '=' ? rest + 1 : rest;
		} else if (it->i < it->argc) {
			*val = it->argv[it->i++];
		} else {
			snprintf(err, errlen, "flag needs an argument: '%c' in -%c", c, c);
			return -EINVAL;
		}
		return d->id;
	}
	if (rest[0] == '=') {
		*val = rest + 1;
		return d->id;
	}
	*val = NULL;
	if (*rest)
		it->group = rest;
	return d->id;
}

int opt_next(struct opt_iter *it, const struct opt_def *defs, const char **val,
	     char *err, size_t errlen)
{
	*val = NULL;
	if (it->group)
		return opt_short(it, defs, it->group, val, err, errlen);

	while (it->i < it->argc) {
		const char *arg = it->argv[it->i++];

		if (it->flags_done || arg[0] != '-' || arg[1] == '\0') {
			if (it->stop_at_positional)
				it->flags_done = true;
			*val = arg;
			return 0;
		}
		if (strcmp(arg, "--") == 0) {
			it->flags_done = true;
			continue;
		}
		if (arg[1] != '-')
			return opt_short(it, defs, arg + 1, val, err, errlen);

		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt_def *d = opt_find_long(defs, name, len);
		if (!d) {
			snprintf(err, errlen, "unknown flag: --%.*s", (int)len, name);
			return -EINVAL;
		}
		if (eq) {
			*val = eq + 1;
		} else if (d->has_arg) {
			if (it->i >= it->argc) {
				snprintf(err, errlen, "flag needs an argument: --%s", d->name);
				return -EINVAL;
			}
			*val = it->argv[it->i++];
		}
		return d->id;
	}
	return -1;
}

int opt_bool(const char *val, bool *out)
{
	if (!val || strcmp(val, "true") == 0 || strcmp(val, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}
