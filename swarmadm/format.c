/* swarmadm's output formatting (see format.h). */
#include "format.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- a growing string ---- */

struct buf {
	char *s;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		buf_add(b, tmp, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)n);
	free(big);
}

/* Always returns a malloc'd string, "" for an empty buffer. */
static char *buf_take(struct buf *b)
{
	if (!b->s)
		return xstrdup("");
	return b->s;
}

/* ---- tables ---- */

struct table {
	size_t ncols;   /* cells per row */
	size_t nrows;   /* rows added */
	char **cells;   /* nrows * ncols, malloc'd strings */
};

struct table *table_new(size_t ncols)
{
	struct table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	return t;
}

void table_add(struct table *t, const char *const *cells)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*t->cells));
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = xstrdup(cells[c] ? cells[c] : "");
	t->nrows++;
}

/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static size_t format_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

char *table_render(const struct table *t)
{
	size_t *width = xcalloc(t->ncols ? t->ncols : 1, sizeof(*width));
	struct buf b = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = format_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		size_t start = b.len;
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			buf_str(&b, cell);
			if (c + 1 < t->ncols)
				for (size_t pad = format_width(cell); pad < width[c] + FORMAT_TABLE_GAP; pad++)
					buf_add(&b, " ", 1);
		}
		while (b.len > start && b.s[b.len - 1] == ' ')
			b.len--;
		buf_add(&b, "\n", 1);
	}
	free(width);
	return buf_take(&b);
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* ---- JSON ---- */

/* Child key of an object: exact, else ignoring case. */
static struct json_object *format_child(struct json_object *o, const char *key, size_t klen)
{
	struct json_object *found = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_foreach(o, k, v) {
		if (strlen(k) == klen && strncmp(k, key, klen) == 0)
			return v ? v : NULL;
	}
	json_object_object_foreach(o, k2, v2) {
		if (strlen(k2) == klen && strncasecmp(k2, key, klen) == 0) {
			found = v2;
			break;
		}
	}
	return found;
}

/* Like format_child, but tells a present null apart from an absent key. */
static bool format_has_child(struct json_object *o, const char *key, size_t klen,
			     struct json_object **out)
{
	if (!o || !json_object_is_type(o, json_type_object))
		return false;
	json_object_object_foreach(o, k, v) {
		if (strlen(k) == klen && strncmp(k, key, klen) == 0) {
			*out = v;
			return true;
		}
	}
	json_object_object_foreach(o, k2, v2) {
		if (strlen(k2) == klen && strncasecmp(k2, key, klen) == 0) {
			*out = v2;
			return true;
		}
	}
	return false;
}

struct json_object *format_get(struct json_object *doc, const char *path)
{
	const char *p = path;
	struct json_object *cur = doc;

	while (*p == '.')
		p++;
	while (*p && cur) {
		size_t len = strcspn(p, ".");
		if (json_object_is_type(cur, json_type_array)) {
			char *end;
			long idx = strtol(p, &end, 10);
			if (end != p + len || idx < 0 || (size_t)idx >= json_object_array_length(cur))
				return NULL;
			cur = json_object_array_get_idx(cur, (size_t)idx);
		} else {
			cur = format_child(cur, p, len);
		}
		p += len;
		while (*p == '.')
			p++;
	}
	return cur;
}

const char *format_get_str(struct json_object *doc, const char *path)
{
	struct json_object *v = format_get(doc, path);

	if (!v || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

int64_t format_get_int(struct json_object *doc, const char *path)
{
	struct json_object *v = format_get(doc, path);

	if (!v)
		return 0;
	return json_object_get_int64(v);
}

static void format_json_escape(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': buf_str(b, "\\\""); break;
		case '\\': buf_str(b, "\\\\"); break;
		case '\n': buf_str(b, "\\n"); break;
		case '\r': buf_str(b, "\\r"); break;
		case '\t': buf_str(b, "\\t"); break;
		case '\b': buf_str(b, "\\b"); break;
		case '\f': buf_str(b, "\\f"); break;
		default:
			if (c < 0x20)
				buf_printf(b, "\\u%04x", c);
			else
				buf_add(b, (const char *)&c, 1);
		}
	}
	buf_add(b, "\"", 1);
}

/* Scalars as JSON text (json-c for numbers; strings through our escaper so
 * that '/' is never escaped). */
static void format_json_scalar(struct buf *b, struct json_object *v)
{
	if (!v) {
		buf_str(b, "null");
		return;
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		format_json_escape(b, json_object_get_string(v));
		break;
	case json_type_boolean:
		buf_str(b, json_object_get_boolean(v) ? "true" : "false");
		break;
	case json_type_null:
		buf_str(b, "null");
		break;
	default:
		buf_str(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	}
}

static void format_indent(struct buf *b, int level)
{
	for (int i = 0; i < level; i++)
		buf_str(b, "    ");
}

static void format_json_write(struct buf *b, struct json_object *v, int level, bool pretty)
{
	if (v && json_object_is_type(v, json_type_object)) {
		if (json_object_object_length(v) == 0) {
			buf_str(b, "{}");
			return;
		}
		bool first = true;
		buf_str(b, "{");
		json_object_object_foreach(v, key, val) {
			if (!first)
				buf_str(b, ",");
			first = false;
			if (pretty) {
				buf_str(b, "\n");
				format_indent(b, level + 1);
			}
			format_json_escape(b, key);
			buf_str(b, pretty ? ": " : ":");
			format_json_write(b, val, level + 1, pretty);
		}
		if (pretty) {
			buf_str(b, "\n");
			format_indent(b, level);
		}
		buf_str(b, "}");
	} else if (v && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		if (n == 0) {
			buf_str(b, "[]");
			return;
		}
		buf_str(b, "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				buf_str(b, ",");
			if (pretty) {
				buf_str(b, "\n");
				format_indent(b, level + 1);
			}
			format_json_write(b, json_object_array_get_idx(v, i), level + 1, pretty);
		}
		if (pretty) {
			buf_str(b, "\n");
			format_indent(b, level);
		}
		buf_str(b, "]");
	} else {
		format_json_scalar(b, v);
	}
}

char *format_json_pretty(struct json_object *doc)
{
	struct buf b = { 0 };

	format_json_write(&b, doc, 0, true);
	return buf_take(&b);
}

char *format_json_compact(struct json_object *doc)
{
	struct buf b = { 0 };

	format_json_write(&b, doc, 0, false);
	return buf_take(&b);
}

/* ---- templates ---- */

/* Fields that the manager's JSON leaves out when unset (Go's omitempty)
 * but that Docker's typed structs always have: a template naming one gets
 * the Go zero value of its type instead of an error. */
enum format_zero { Z_STR, Z_INT, Z_BOOL, Z_LIST, Z_NIL };
static const struct { const char *name; enum format_zero zero; } format_optional[] = {
	{ "Hostname", Z_STR }, { "Source", Z_STR }, { "Err", Z_STR }, { "Message", Z_STR },
	{ "NodeID", Z_STR }, { "AllocError", Z_STR }, { "FailureAction", Z_STR },
	{ "Order", Z_STR }, { "Gateway", Z_STR }, { "Health", Z_STR },
	{ "StopGracePeriod", Z_INT }, { "Interval", Z_INT }, { "Timeout", Z_INT },
	{ "StartPeriod", Z_INT }, { "Retries", Z_INT }, { "NanoCPUs", Z_INT },
	{ "MemoryBytes", Z_INT }, { "Delay", Z_INT }, { "Monitor", Z_INT }, { "Slot", Z_INT },
	{ "ReadOnly", Z_BOOL }, { "Ingress", Z_BOOL }, { "Attachable", Z_BOOL },
	{ "Command", Z_LIST }, { "Args", Z_LIST }, { "Env", Z_LIST }, { "Mounts", Z_LIST },
	{ "Test", Z_LIST }, { "Constraints", Z_LIST }, { "Networks", Z_LIST },
	{ "Aliases", Z_LIST }, { "Ports", Z_LIST }, { "VirtualIPs", Z_LIST },
	{ "NetworksAttachments", Z_LIST },
	{ "PreviousSpec", Z_NIL }, { "UpdateStatus", Z_NIL }, { "ManagerStatus", Z_NIL },
	{ "Healthcheck", Z_NIL }, { "ServiceStatus", Z_NIL }, { "TmpfsOptions", Z_NIL },
	{ "ContainerStatus", Z_NIL }, { "StartedAt", Z_NIL },
};

/* The zero value for an absent optional field; false when name is not one. */
static bool format_zero_value(const char *name, size_t len, struct json_object **out)
{
	for (size_t i = 0; i < ARRAY_SIZE(format_optional); i++) {
		if (strlen(format_optional[i].name) != len || strncmp(format_optional[i].name, name, len))
			continue;
		switch (format_optional[i].zero) {
		case Z_STR: *out = json_object_new_string(""); break;
		case Z_INT: *out = json_object_new_int64(0); break;
		case Z_BOOL: *out = json_object_new_boolean(false); break;
		case Z_LIST: *out = json_object_new_array(); break;
		case Z_NIL: *out = NULL; break;
		}
		return true;
	}
	return false;
}

/* Go's %v of a value. */
static void format_text(struct buf *b, struct json_object *v)
{
	if (!v) {
		buf_str(b, "<nil>");
		return;
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		buf_str(b, json_object_get_string(v));
		break;
	case json_type_array:
		buf_str(b, "[");
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			if (i)
				buf_str(b, " ");
			format_text(b, json_object_array_get_idx(v, i));
		}
		buf_str(b, "]");
		break;
	case json_type_object: {
		/* Go prints maps with sorted keys. */
		size_t n = (size_t)json_object_object_length(v), i = 0;
		const char **keys = xcalloc(n ? n : 1, sizeof(*keys));
		json_object_object_foreach(v, k, val) {
			(void)val;
			keys[i++] = k;
		}
		for (size_t a = 1; a < n; a++)
			for (size_t c = a; c > 0 && strcmp(keys[c - 1], keys[c]) > 0; c--) {
				const char *t = keys[c];
				keys[c] = keys[c - 1];
				keys[c - 1] = t;
			}
		buf_str(b, "map[");
		for (i = 0; i < n; i++) {
			if (i)
				buf_str(b, " ");
			buf_printf(b, "%s:", keys[i]);
			format_text(b, json_object_object_get(v, keys[i]));
		}
		buf_str(b, "]");
		free(keys);
		break;
	}
	default:
		format_json_scalar(b, v);
	}
}

/* A parsed pipeline command argument. */
enum targ_kind { TARG_FIELD, TARG_STRING, TARG_NUMBER, TARG_FUNC };

struct tctx {
	struct json_object *doc;
	char *err;
	size_t errlen;
};

static int tfail(struct tctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tfail(struct tctx *c, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, c->errlen, "template: ");

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Evaluates a field chain ".A.B" against doc; *out gets a new reference
 * (NULL = Go nil). */
static int teval_field(struct tctx *c, const char *path, size_t plen, struct json_object **out)
{
	struct json_object *cur = c->doc;
	size_t i = 1;

	if (plen == 1) {
		*out = json_object_get(cur);
		return 0;
	}
	while (i < plen) {
		size_t j = i;
		while (j < plen && path[j] != '.')
			j++;
		if (j == i)
			return tfail(c, "%.*s: bad field name", (int)plen, path);
		struct json_object *next = NULL;
		if (!cur || !json_object_is_type(cur, json_type_object))
			return tfail(c, "%.*s: can't evaluate field \"%.*s\" of a non-object", (int)plen, path,
				     (int)(j - i), path + i);
		if (!format_has_child(cur, path + i, j - i, &next)) {
			if (j < plen || !format_zero_value(path + i, j - i, out))
				return tfail(c, "%.*s: no field \"%.*s\"", (int)plen, path, (int)(j - i), path + i);
			return 0;
		}
		cur = next;
		i = j + 1;
	}
	*out = json_object_get(cur);
	return 0;
}

/* Splits s[0..len) into words (quoted strings stay whole). */
static size_t tsplit(const char *s, size_t len, const char **w, size_t *wl, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && n < max) {
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len)
			break;
		size_t start = i;
		if (s[i] == '"') {
			i++;
			while (i < len && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				i++;
			}
			if (i < len)
				i++;
		} else if (s[i] == '`') {
			i++;
			while (i < len && s[i] != '`')
				i++;
			if (i < len)
				i++;
		} else {
			while (i < len && !isspace((unsigned char)s[i]))
				i++;
		}
		w[n] = s + start;
		wl[n++] = i - start;
	}
	return n;
}

/* One word as a value: field, string or number literal. */
static int teval_word(struct tctx *c, const char *w, size_t wl, struct json_object **out)
{
	if (w[0] == '.')
		return teval_field(c, w, wl, out);
	if (w[0] == '"' || w[0] == '`') {
		if (wl < 2 || w[wl - 1] != w[0])
			return tfail(c, "unterminated string %.*s", (int)wl, w);
		struct buf b = { 0 };
		for (size_t i = 1; i + 1 < wl; i++) {
			char ch = w[i];
			if (w[0] == '"' && ch == '\\' && i + 2 < wl) {
				ch = w[++i];
				ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
			}
			buf_add(&b, &ch, 1);
		}
		char *s = buf_take(&b);
		*out = json_object_new_string(s);
		free(s);
		return 0;
	}
	if (isdigit((unsigned char)w[0]) || w[0] == '-') {
		char tmp[32];
		char *end;
		if (wl >= sizeof(tmp))
			return tfail(c, "bad number %.*s", (int)wl, w);
		memcpy(tmp, w, wl);
		tmp[wl] = '\0';
		long long v = strtoll(tmp, &end, 10);
		if (*end)
			return tfail(c, "bad number %s", tmp);
		*out = json_object_new_int64(v);
		return 0;
	}
	if (wl == 3 && strncmp(w, "nil", 3) == 0) {
		*out = NULL;
		return 0;
	}
	return tfail(c, "function \"%.*s\" not defined or not allowed here", (int)wl, w);
}

static const char *const tfuncs[] = { "json", "index", "len", "lower", "upper", "join", "println", NULL };

static bool tis_func(const char *w, size_t wl)
{
	for (const char *const *f = tfuncs; *f; f++)
		if (strlen(*f) == wl && strncmp(*f, w, wl) == 0)
			return true;
	return false;
}

/* Applies function f to args (references owned by the caller). */
static int tcall(struct tctx *c, const char *f, struct json_object **a, size_t na,
		 struct json_object **out)
{
	if (strcmp(f, "json") == 0) {
		if (na != 1)
			return tfail(c, "json takes one argument");
		char *s = format_json_compact(a[0]);
		*out = json_object_new_string(s);
		free(s);
		return 0;
	}
	if (strcmp(f, "len") == 0) {
		if (na != 1 || !a[0])
			return tfail(c, "len takes one argument");
		if (json_object_is_type(a[0], json_type_array))
			*out = json_object_new_int64((int64_t)json_object_array_length(a[0]));
		else if (json_object_is_type(a[0], json_type_object))
			*out = json_object_new_int64(json_object_object_length(a[0]));
		else if (json_object_is_type(a[0], json_type_string))
			*out = json_object_new_int64(json_object_get_string_len(a[0]));
		else
			return tfail(c, "len of a value that has no length");
		return 0;
	}
	if (strcmp(f, "lower") == 0 || strcmp(f, "upper") == 0) {
		if (na != 1)
			return tfail(c, "%s takes one argument", f);
		struct buf b = { 0 };
		format_text(&b, a[0]);
		char *s = buf_take(&b);
		for (char *p = s; *p; p++)
			*p = (char)(f[0] == 'l' ? tolower((unsigned char)*p) : toupper((unsigned char)*p));
		*out = json_object_new_string(s);
		free(s);
		return 0;
	}
	if (strcmp(f, "join") == 0) {
		if (na != 2 || !a[0] || !json_object_is_type(a[0], json_type_array) ||
		    !a[1] || !json_object_is_type(a[1], json_type_string))
			return tfail(c, "join takes a list and a separator");
		struct buf b = { 0 };
		for (size_t i = 0; i < json_object_array_length(a[0]); i++) {
			if (i)
				buf_str(&b, json_object_get_string(a[1]));
			format_text(&b, json_object_array_get_idx(a[0], i));
		}
		char *s = buf_take(&b);
		*out = json_object_new_string(s);
		free(s);
		return 0;
	}
	if (strcmp(f, "println") == 0) {
		struct buf b = { 0 };
		for (size_t i = 0; i < na; i++) {
			if (i)
				buf_str(&b, " ");
			format_text(&b, a[i]);
		}
		buf_str(&b, "\n");
		char *s = buf_take(&b);
		*out = json_object_new_string(s);
		free(s);
		return 0;
	}
	/* index */
	if (na < 2)
		return tfail(c, "index takes a value and at least one key");
	struct json_object *cur = a[0];
	for (size_t i = 1; i < na; i++) {
		if (cur && json_object_is_type(cur, json_type_object) && a[i] &&
		    json_object_is_type(a[i], json_type_string)) {
			cur = json_object_object_get(cur, json_object_get_string(a[i]));
		} else if (cur && json_object_is_type(cur, json_type_array) && a[i] &&
			   json_object_is_type(a[i], json_type_int)) {
			int64_t k = json_object_get_int64(a[i]);
			if (k < 0 || (size_t)k >= json_object_array_length(cur))
				return tfail(c, "index out of range: %lld", (long long)k);
			cur = json_object_array_get_idx(cur, (size_t)k);
		} else {
			return tfail(c, "can't index this value");
		}
	}
	*out = json_object_get(cur);
	return 0;
}

/* Evaluates one pipeline command; prev (may be NULL when first) is passed
 * as the last argument. */
static int teval_cmd(struct tctx *c, const char *s, size_t len, bool has_prev,
		     struct json_object *prev, struct json_object **out)
{
	const char *w[16];
	size_t wl[16];
	struct json_object *args[17];
	size_t n = tsplit(s, len, w, wl, 16), na = 0;
	int rc = 0;

	if (n == 0)
		return tfail(c, "empty command");
	if (memchr(s, '(', len))
		return tfail(c, "parentheses are not supported");
	if (!tis_func(w[0], wl[0])) {
		if ((n > 1 || has_prev) && w[0][0] == '.')
			return tfail(c, "%.*s is not a function", (int)wl[0], w[0]);
		if (n > 1 || has_prev)
			return tfail(c, "function \"%.*s\" not defined", (int)wl[0], w[0]);
		return teval_word(c, w[0], wl[0], out);
	}
	char fname[16];
	snprintf(fname, sizeof(fname), "%.*s", (int)wl[0], w[0]);
	for (size_t i = 1; i < n; i++) {
		if (tis_func(w[i], wl[i])) {
			rc = tfail(c, "nested function calls need parentheses (not supported)");
			goto out;
		}
		if ((rc = teval_word(c, w[i], wl[i], &args[na])) < 0)
			goto out;
		na++;
	}
	if (has_prev)
		args[na++] = json_object_get(prev);
	rc = tcall(c, fname, args, na, out);
out:
	for (size_t i = 0; i < na; i++)
		json_object_put(args[i]);
	return rc;
}

/* Executes the action text between {{ and }}. */
static int teval_action(struct tctx *c, const char *s, size_t len, struct buf *b)
{
	struct json_object *val = NULL;
	bool has = false;
	size_t i = 0;

	while (i <= len) {
		size_t j = i;
		bool quoted = false;
		while (j < len && (quoted || s[j] != '|')) {
			if (s[j] == '"' && (j == 0 || s[j - 1] != '\\'))
				quoted = !quoted;
			j++;
		}
		const char *cmd = s + i;
		size_t clen = j - i;
		while (clen && isspace((unsigned char)*cmd)) {
			cmd++;
			clen--;
		}
		const char *kw[] = { "range", "if", "with", "end", "else", "define", "template", "block" };
		for (size_t k = 0; k < ARRAY_SIZE(kw); k++) {
			size_t kl = strlen(kw[k]);
			if (!has && clen >= kl && strncmp(cmd, kw[k], kl) == 0 &&
			    (clen == kl || isspace((unsigned char)cmd[kl]))) {
				json_object_put(val);
				return tfail(c, "\"%s\" actions are not supported", kw[k]);
			}
		}
		struct json_object *next = NULL;
		int rc = teval_cmd(c, cmd, clen, has, val, &next);
		json_object_put(val);
		if (rc < 0)
			return rc;
		val = next;
		has = true;
		i = j + 1;
	}
	format_text(b, val);
	json_object_put(val);
	return 0;
}

int format_template(const char *tmpl, struct json_object *doc, char **out,
		    char *err, size_t errlen)
{
	struct tctx c = { .doc = doc, .err = err, .errlen = errlen };
	struct buf b = { 0 };
	const char *p = tmpl;

	while (*p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			buf_str(&b, p);
			break;
		}
		const char *text_end = open;
		const char *act = open + 2;
		if (act[0] == '-' && (isspace((unsigned char)act[1]))) {
			while (text_end > p && isspace((unsigned char)text_end[-1]))
				text_end--;
			act++;
		}
		buf_add(&b, p, (size_t)(text_end - p));
		const char *close = strstr(act, "}}");
		if (!close) {
			free(b.s);
			return tfail(&c, "unclosed action");
		}
		const char *act_end = close;
		bool trim_after = close > act && close[-1] == '-' &&
				  close - 1 > act && isspace((unsigned char)close[-2]);
		if (trim_after)
			act_end--;
		size_t alen = (size_t)(act_end - act);
		while (alen && isspace((unsigned char)act[alen - 1]))
			alen--;
		while (alen && isspace((unsigned char)*act)) {
			act++;
			alen--;
		}
		if (alen == 0) {
			free(b.s);
			return tfail(&c, "missing value for command");
		}
		if (alen >= 4 && strncmp(act, "/*", 2) == 0 && strncmp(act + alen - 2, "*/", 2) == 0) {
			/* a comment */
		} else if (teval_action(&c, act, alen, &b) < 0) {
			free(b.s);
			return -EINVAL;
		}
		p = close + 2;
		if (trim_after)
			while (isspace((unsigned char)*p))
				p++;
	}
	*out = buf_take(&b);
	return 0;
}

/* ---- times and sizes ---- */

int format_time_parse(const char *s, int64_t *ns)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0;
	int64_t frac = 0, off = 0;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
		return -EINVAL;
	p = s + n;
	if (*p == '.') {
		int digits = 0;
		p++;
		while (isdigit((unsigned char)*p)) {
			if (digits < 9) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (!digits)
			return -EINVAL;
		while (digits++ < 9)
			frac *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return -EINVAL;
		off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	if (y <= 1) {
		*ns = 0;  /* Go's zero time */
		return 0;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*ns = ((int64_t)timegm(&tm) - off) * 1000000000LL + frac;
	return 0;
}

void format_since(int64_t then_ns, int64_t now_ns, char *out, size_t outlen)
{
	char d[64];

	human_duration(now_ns > then_ns ? now_ns - then_ns : 0, d, sizeof(d));
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(out, outlen, "%s ago", d);
}

void format_human_size(int64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1000;
		u++;
	}
	snprintf(out, outlen, "%.4g%s", v, units[u]);
}

void format_capitalize(const char *s, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", s);
	if (outlen && out[0])
		out[0] = (char)toupper((unsigned char)out[0]);
}
