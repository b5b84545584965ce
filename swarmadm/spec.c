/* swarmadm's flag grammar (see spec.h). */
#include "spec.h"
#include "opt.h"
#include "pb.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define NS_PER_S 1000000000LL

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int spec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- values ---- */

int spec_uint_parse(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Go units, longest first where one is a prefix of another ("ms" before "m"). */
static const struct { const char *name; int64_t ns; } spec_duration_units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
	{ "ms", 1000000 }, { "s", NS_PER_S }, { "m", 60 * NS_PER_S }, { "h", 3600 * NS_PER_S },
};

int spec_duration_parse(const char *s, int64_t *ns)
{
	const char *p = s;
	bool neg = false;
	long double total = 0;

	if (!s || !*s)
		return -EINVAL;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (!*p)
		return -EINVAL;
	while (*p) {
		uint64_t whole = 0;
		long double frac = 0, scale = 1;
		bool digits = false;

		while (isdigit((unsigned char)*p)) {
			if (whole > (UINT64_MAX - 9) / 10)
				return -EINVAL;
			whole = whole * 10 + (uint64_t)(*p++ - '0');
			digits = true;
		}
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				if (scale < 1e30L) {
					frac = frac * 10 + (*p - '0');
					scale *= 10;
				}
				p++;
				digits = true;
			}
		}
		if (!digits)
			return -EINVAL;
		size_t ulen = 0;
		while (p[ulen] && !isdigit((unsigned char)p[ulen]) && p[ulen] != '.')
			ulen++;
		if (ulen == 0)
			return -EINVAL;  /* missing unit */
		int64_t unit = 0;
		for (size_t i = 0; i < ARRAY_SIZE(spec_duration_units); i++)
			if (strlen(spec_duration_units[i].name) == ulen &&
			    strncmp(p, spec_duration_units[i].name, ulen) == 0)
				unit = spec_duration_units[i].ns;
		if (!unit)
			return -EINVAL;
		p += ulen;
		total += (long double)whole * unit + frac / scale * unit;
		if (total > (long double)INT64_MAX)
			return -EINVAL;
	}
	*ns = (int64_t)(neg ? -total : total);
	return 0;
}

int spec_bytes_parse(const char *s, int64_t *out)
{
	const char *p = s;
	long double v = 0, scale = 1;
	bool digits = false, dot = false;
	int64_t mult = 1;

	if (!s)
		return -EINVAL;
	while (isdigit((unsigned char)*p) || (*p == '.' && !dot && digits)) {
		if (*p == '.') {
			dot = true;
		} else if (dot) {
			scale /= 10;
			v += (*p - '0') * scale;
		} else {
			v = v * 10 + (*p - '0');
		}
		digits = true;
		p++;
	}
	if (!digits || p[-1] == '.')
		return -EINVAL;
	if (*p == ' ')
		p++;
	if (*p) {
		const char *units = "kmgtp";
		const char *u = strchr(units, tolower((unsigned char)*p));
		if (u) {
			for (const char *q = units; q <= u; q++)
				mult *= 1024;
			p++;
		}
		if (*p == 'i' || *p == 'I')
			p++;
		if (*p == 'b' || *p == 'B')
			p++;
		if (*p)
			return -EINVAL;
	}
	v *= mult;
	if (v > (long double)INT64_MAX)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

int spec_cpus_parse(const char *s, int64_t *nano)
{
	const char *p = s;
	int64_t whole = 0, frac = 0;
	int ndec = 0;
	bool digits = false;

	if (!s)
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		if (whole > 1000000)
			return -EINVAL;
		whole = whole * 10 + (*p++ - '0');
		digits = true;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (ndec == 9) {
				if (*p != '0')
					return -EINVAL;  /* finer than one nano-CPU */
			} else {
				frac = frac * 10 + (*p - '0');
				ndec++;
			}
			p++;
			digits = true;
		}
	}
	if (!digits || *p)
		return -EINVAL;
	while (ndec++ < 9)
		frac *= 10;
	*nano = whole * NS_PER_S + frac;
	return 0;
}

int spec_name_check(const char *what, const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);

	if (len == 0)
		return spec_fail(err, errlen, "%s name must not be empty", what);
	if (len > 63)
		return spec_fail(err, errlen, "invalid %s name \"%s\": longer than 63 characters", what, name);
	/* Networks may also hold dots, as in Docker; service names may not (they
	 * are DNS labels and the first part of container names). */
	bool dots = strcmp(what, "network") == 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		bool edge = i == 0 || i == len - 1;
		if (isalnum(c) || (!edge && (c == '-' || c == '_' || (dots && c == '.'))))
			continue;
		return spec_fail(err, errlen,
				 "invalid %s name \"%s\": use letters, digits, '-'%s and '_' "
				 "(not first or last)", what, name, dots ? ", '.'" : "");
	}
	return 0;
}

/* ---- ports ---- */

/* "N" or "N-M" into [*lo, *hi]; min is the smallest port allowed. */
static int spec_port_range(const char *s, size_t len, unsigned min, unsigned *lo, unsigned *hi)
{
	char buf[32];
	char *dash;
	uint64_t a, b;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = '\0';
	if (spec_uint_parse(buf, &a) < 0 || a < min || a > 65535)
		return -EINVAL;
	b = a;
	if (dash && (spec_uint_parse(dash, &b) < 0 || b < a || b > 65535))
		return -EINVAL;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
}

static Swarm__PortConfig *spec_port_new(unsigned published, unsigned target,
					const char *proto, const char *mode)
{
	Swarm__PortConfig *p = xmalloc(sizeof(*p));

	swarm__port_config__init(p);
	p->published = published;
	p->target = target;
	pb_set_str(&p->protocol, proto);
	pb_set_str(&p->mode, mode);
	return p;
}

static int spec_publish_long(const char *s, Swarm__PortConfig ***ports, size_t *n,
			     char *err, size_t errlen)
{
	char *copy = xstrdup(s), *save = NULL;
	uint64_t published = 0, target = 0;
	bool have_target = false;
	const char *proto = "tcp", *mode = "ingress";
	int rc = 0;

	for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq) {
			rc = spec_fail(err, errlen, "invalid field \"%s\" in --publish \"%s\": must be a key=value pair", f, s);
			goto out;
		}
		*eq++ = '\0';
		if (strcmp(f, "published") == 0) {
			if (spec_uint_parse(eq, &published) < 0 || published > 65535) {
				rc = spec_fail(err, errlen, "invalid published port \"%s\" in --publish \"%s\"", eq, s);
				goto out;
			}
		} else if (strcmp(f, "target") == 0) {
			if (spec_uint_parse(eq, &target) < 0 || target < 1 || target > 65535) {
				rc = spec_fail(err, errlen, "invalid target port \"%s\" in --publish \"%s\"", eq, s);
				goto out;
			}
			have_target = true;
		} else if (strcmp(f, "protocol") == 0) {
			if (strcmp(eq, "tcp") && strcmp(eq, "udp")) {
				rc = spec_fail(err, errlen, "invalid protocol \"%s\" in --publish \"%s\": tcp or udp", eq, s);
				goto out;
			}
			proto = strcmp(eq, "tcp") == 0 ? "tcp" : "udp";
		} else if (strcmp(f, "mode") == 0) {
			if (strcmp(eq, "ingress") && strcmp(eq, "host")) {
				rc = spec_fail(err, errlen, "invalid publish mode \"%s\" in --publish \"%s\": ingress or host", eq, s);
				goto out;
			}
			mode = strcmp(eq, "host") == 0 ? "host" : "ingress";
		} else {
			rc = spec_fail(err, errlen, "invalid field key \"%s\" in --publish \"%s\"", f, s);
			goto out;
		}
	}
	if (!have_target) {
		rc = spec_fail(err, errlen, "missing mandatory field \"target\" in --publish \"%s\"", s);
		goto out;
	}
	pb_ptrv_add((void ***)ports, n, spec_port_new((unsigned)published, (unsigned)target, proto, mode));
out:
	free(copy);
	return rc;
}

int spec_publish_parse(const char *s, Swarm__PortConfig ***ports, size_t *n,
		       char *err, size_t errlen)
{
	const char *proto = "tcp";
	const char *slash, *colon;
	size_t end;
	unsigned plo = 0, phi = 0, tlo, thi;

	if (!s || !*s)
		return spec_fail(err, errlen, "invalid --publish \"\": empty");
	if (strchr(s, '='))
		return spec_publish_long(s, ports, n, err, errlen);

	slash = strchr(s, '/');
	end = slash ? (size_t)(slash - s) : strlen(s);
	if (slash) {
		if (strcmp(slash + 1, "tcp") == 0)
			proto = "tcp";
		else if (strcmp(slash + 1, "udp") == 0)
			proto = "udp";
		else
			return spec_fail(err, errlen, "invalid protocol \"%s\" in --publish \"%s\": tcp or udp", slash + 1, s);
	}
	colon = memchr(s, ':', end);
	if (colon && memchr(colon + 1, ':', end - (size_t)(colon + 1 - s)))
		return spec_fail(err, errlen, "invalid --publish \"%s\": a host IP is not supported, use PUBLISHED:TARGET", s);
	if (colon) {
		if (spec_port_range(s, (size_t)(colon - s), 0, &plo, &phi) < 0)
			return spec_fail(err, errlen, "invalid published port in --publish \"%s\"", s);
		if (spec_port_range(colon + 1, end - (size_t)(colon + 1 - s), 1, &tlo, &thi) < 0)
			return spec_fail(err, errlen, "invalid target port in --publish \"%s\"", s);
		if (plo == 0 && phi != 0)
			return spec_fail(err, errlen, "invalid published port in --publish \"%s\"", s);
		if (phi - plo != thi - tlo)
			return spec_fail(err, errlen, "invalid --publish \"%s\": published and target ranges differ in size", s);
	} else {
		if (spec_port_range(s, end, 1, &tlo, &thi) < 0)
			return spec_fail(err, errlen, "invalid port in --publish \"%s\"", s);
	}
	for (unsigned t = tlo; t <= thi; t++) {
		unsigned pub = colon && plo ? plo + (t - tlo) : 0;
		pb_ptrv_add((void ***)ports, n, spec_port_new(pub, t, proto, "ingress"));
	}
	return 0;
}

void spec_port_string(const Swarm__PortConfig *p, char *out, size_t outlen)
{
	const char *proto = p->protocol && *p->protocol ? p->protocol : "tcp";

	if (p->published)
		snprintf(out, outlen, "*:%u->%u/%s", p->published, p->target, proto);
	else
		snprintf(out, outlen, "*:0->%u/%s", p->target, proto);
}

/* ---- mounts ---- */

int spec_mount_parse(const char *s, Swarm__Mount **out, char *err, size_t errlen)
{
	char *copy = xstrdup(s), *save = NULL;
	Swarm__Mount *m = xmalloc(sizeof(*m));
	int rc = 0;

	swarm__mount__init(m);
	for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		const char *val = eq ? eq + 1 : NULL;
		if (eq)
			*eq = '\0';
		if (strcmp(f, "readonly") == 0 || strcmp(f, "ro") == 0) {
			bool b;
			if (opt_bool(val, &b) < 0) {
				rc = spec_fail(err, errlen, "invalid value \"%s\" for %s in --mount \"%s\"", val, f, s);
				goto out;
			}
			m->readonly = b;
			continue;
		}
		if (!val) {
			rc = spec_fail(err, errlen, "invalid field \"%s\" in --mount \"%s\": must be a key=value pair", f, s);
			goto out;
		}
		if (strcmp(f, "type") == 0) {
			if (strcmp(val, "bind") && strcmp(val, "tmpfs")) {
				rc = spec_fail(err, errlen, "mount type \"%s\" is not supported (bind or tmpfs)", val);
				goto out;
			}
			pb_set_str(&m->type, val);
		} else if (strcmp(f, "source") == 0 || strcmp(f, "src") == 0) {
			pb_set_str(&m->source, val);
		} else if (strcmp(f, "target") == 0 || strcmp(f, "destination") == 0 ||
			   strcmp(f, "dst") == 0) {
			pb_set_str(&m->target, val);
		} else if (strcmp(f, "tmpfs-size") == 0) {
			if (spec_bytes_parse(val, &m->tmpfs_size) < 0) {
				rc = spec_fail(err, errlen, "invalid tmpfs-size \"%s\" in --mount \"%s\"", val, s);
				goto out;
			}
		} else {
			rc = spec_fail(err, errlen, "unexpected key \"%s\" in --mount \"%s\"", f, s);
			goto out;
		}
	}
	if (!*m->type) {
		rc = spec_fail(err, errlen, "--mount \"%s\" needs type=bind or type=tmpfs", s);
	} else if (!*m->target || m->target[0] != '/') {
		rc = spec_fail(err, errlen, "--mount \"%s\" needs an absolute target path", s);
	} else if (strcmp(m->type, "bind") == 0 && (!*m->source || m->source[0] != '/')) {
		rc = spec_fail(err, errlen, "bind --mount \"%s\" needs an absolute source path", s);
	} else if (strcmp(m->type, "tmpfs") == 0 && *m->source) {
		rc = spec_fail(err, errlen, "tmpfs --mount \"%s\" takes no source", s);
	} else if (strcmp(m->type, "bind") == 0 && m->tmpfs_size) {
		rc = spec_fail(err, errlen, "tmpfs-size is only for type=tmpfs in --mount \"%s\"", s);
	}
out:
	free(copy);
	if (rc < 0)
		pb_free(m);
	else
		*out = m;
	return rc;
}

/* ---- networks ---- */

int spec_network_attach_parse(const char *s, Swarm__NetworkAttachmentConfig **out,
			      char *err, size_t errlen)
{
	Swarm__NetworkAttachmentConfig *a = xmalloc(sizeof(*a));
	char *copy = NULL, *save = NULL;
	int rc = 0;

	swarm__network_attachment_config__init(a);
	if (!strchr(s, '=')) {
		pb_set_str(&a->target, s);
	} else {
		copy = xstrdup(s);
		for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(f, '=');
			if (!eq) {
				rc = spec_fail(err, errlen, "invalid field \"%s\" in --network \"%s\": must be a key=value pair", f, s);
				goto out;
			}
			*eq++ = '\0';
			if (strcmp(f, "name") == 0 || strcmp(f, "target") == 0) {
				pb_set_str(&a->target, eq);
			} else if (strcmp(f, "alias") == 0) {
				if (!*eq) {
					rc = spec_fail(err, errlen, "empty alias in --network \"%s\"", s);
					goto out;
				}
				PB_STRV_ADD(a, aliases, eq);
			} else {
				rc = spec_fail(err, errlen, "invalid field key \"%s\" in --network \"%s\" (name, alias)", f, s);
				goto out;
			}
		}
	}
	if (!*a->target)
		rc = spec_fail(err, errlen, "--network \"%s\" names no network", s);
out:
	free(copy);
	if (rc < 0)
		pb_free(a);
	else
		*out = a;
	return rc;
}

size_t spec_network_remove(Swarm__ServiceSpec *spec, const char *target)
{
	size_t removed = 0, j = 0;

	for (size_t i = 0; i < spec->n_networks; i++) {
		if (strcmp(spec->networks[i]->target, target) == 0) {
			pb_free(spec->networks[i]);
			removed++;
		} else {
			spec->networks[j++] = spec->networks[i];
		}
	}
	spec->n_networks = j;
	return removed;
}

/* ---- constraints ---- */

static void spec_trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

int spec_constraint_check(const char *expr, char *norm, size_t normlen,
			  char *err, size_t errlen)
{
	const char *eq = strstr(expr, "=="), *ne = strstr(expr, "!=");
	const char *op = eq && (!ne || eq < ne) ? eq : ne;
	const char *key = expr, *val;
	size_t klen, vlen;

	if (!op)
		return spec_fail(err, errlen, "invalid constraint \"%s\": expected KEY==VALUE or KEY!=VALUE", expr);
	klen = (size_t)(op - expr);
	val = op + 2;
	vlen = strlen(val);
	spec_trim(&key, &klen);
	spec_trim(&val, &vlen);
	if (!klen || !vlen || memchr(val, '=', vlen) || memchr(val, '!', vlen) == val)
		return spec_fail(err, errlen, "invalid constraint \"%s\": expected KEY==VALUE or KEY!=VALUE", expr);
	bool known = (klen == 7 && strncmp(key, "node.id", 7) == 0) ||
		     (klen == 13 && strncmp(key, "node.hostname", 13) == 0) ||
		     (klen == 9 && strncmp(key, "node.role", 9) == 0) ||
		     (klen > 12 && strncmp(key, "node.labels.", 12) == 0);
	if (!known)
		return spec_fail(err, errlen, "invalid constraint \"%s\": unknown key \"%.*s\" "
				 "(node.id, node.hostname, node.role, node.labels.NAME)", expr, (int)klen, key);
	if (klen == 9 && strncmp(key, "node.role", 9) == 0 &&
	    !(vlen == 7 && strncmp(val, "manager", 7) == 0) &&
	    !(vlen == 6 && strncmp(val, "worker", 6) == 0))
		return spec_fail(err, errlen, "invalid constraint \"%s\": node.role is manager or worker", expr);
	for (size_t i = 0; i < klen; i++)
		if (isspace((unsigned char)key[i]))
			return spec_fail(err, errlen, "invalid constraint \"%s\": blank inside the key", expr);
	if (norm)
		snprintf(norm, normlen, "%.*s%c=%.*s", (int)klen, key, op == eq ? '=' : '!', (int)vlen, val);
	return 0;
}

/* ---- words ---- */

void spec_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int spec_split_args(const char *s, char ***argv, size_t *argc, char *err, size_t errlen)
{
	size_t cap = strlen(s) + 1, len = 0, n = 0;
	char *word = xmalloc(cap);
	char **v = NULL;
	bool in_word = false;
	const char *p = s;

	while (*p) {
		char c = *p;
		if (isspace((unsigned char)c)) {
			if (in_word) {
				word[len] = '\0';
				pb_strv_add(&v, &n, word);
				len = 0;
				in_word = false;
			}
			p++;
			continue;
		}
		in_word = true;
		if (c == '\'') {
			const char *close = strchr(p + 1, '\'');
			if (!close)
				goto unterminated;
			memcpy(word + len, p + 1, (size_t)(close - p - 1));
			len += (size_t)(close - p - 1);
			p = close + 1;
		} else if (c == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
					p++;
				word[len++] = *p++;
			}
			if (!*p)
				goto unterminated;
			p++;
		} else if (c == '\\') {
			if (p[1])
				p++;
			word[len++] = *p++;
		} else {
			word[len++] = *p++;
		}
	}
	if (in_word) {
		word[len] = '\0';
		pb_strv_add(&v, &n, word);
	}
	free(word);
	*argv = v;
	*argc = n;
	return 0;
unterminated:
	free(word);
	spec_strv_free(v, n);
	return spec_fail(err, errlen, "unterminated quote in \"%s\"", s);
}

/* ---- addresses ---- */

int spec_cidr_parse(const char *s, uint32_t *net, unsigned *prefix, char *err, size_t errlen)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	uint64_t len;

	if (!slash || (size_t)(slash - s) >= sizeof(ip))
		return spec_fail(err, errlen, "invalid subnet \"%s\": expected a.b.c.d/len", s);
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (strchr(ip, ':'))
		return spec_fail(err, errlen, "invalid subnet \"%s\": IPv6 is not supported", s);
	if (inet_pton(AF_INET, ip, &a) != 1 || spec_uint_parse(slash + 1, &len) < 0 ||
	    len > 32 || strlen(slash + 1) > 2)
		return spec_fail(err, errlen, "invalid subnet \"%s\"", s);
	uint32_t addr = ntohl(a.s_addr);
	uint32_t mask = len ? ~(uint32_t)0 << (32 - len) : 0;
	if (addr & ~mask) {
		struct in_addr base = { .s_addr = htonl(addr & mask) };
		char b[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &base, b, sizeof(b));
		return spec_fail(err, errlen, "invalid subnet \"%s\": host bits set (did you mean %s/%u?)",
				 s, b, (unsigned)len);
	}
	*net = addr;
	*prefix = (unsigned)len;
	return 0;
}

/* ---- services ---- */

void spec_cli_clear(struct spec_cli *cli)
{
	spec_strv_free(cli->net_rm, cli->n_net_rm);
	cli->net_rm = NULL;
	cli->n_net_rm = 0;
}

static Swarm__UpdateConfig *spec_update_config_new(void)
{
	Swarm__UpdateConfig *u = xmalloc(sizeof(*u));

	swarm__update_config__init(u);
	u->parallelism = 1;
	u->delay_ns = 0;
	pb_set_str(&u->failure_action, "pause");
	pb_set_str(&u->order, "stop-first");
	u->monitor_ns = 5 * NS_PER_S;
	return u;
}

Swarm__ServiceSpec *spec_service_new(void)
{
	Swarm__ServiceSpec *s = xmalloc(sizeof(*s));

	swarm__service_spec__init(s);
	s->container = xmalloc(sizeof(*s->container));
	swarm__container_spec__init(s->container);
	s->container->stop_grace_ns = 10 * NS_PER_S;
	pb_set_str(&s->mode, "replicated");
	s->replicas = 1;
	pb_set_str(&s->endpoint_mode, "vip");
	s->restart = xmalloc(sizeof(*s->restart));
	swarm__restart_policy__init(s->restart);
	pb_set_str(&s->restart->condition, "any");
	s->restart->delay_ns = 5 * NS_PER_S;
	s->update = spec_update_config_new();
	s->rollback = spec_update_config_new();
	s->limits = xmalloc(sizeof(*s->limits));
	swarm__resources__init(s->limits);
	s->reservations = xmalloc(sizeof(*s->reservations));
	swarm__resources__init(s->reservations);
	return s;
}

/* Sub-objects and defaults an older or foreign spec may lack. */
static void spec_service_fill(Swarm__ServiceSpec *s)
{
	if (!*s->mode)
		pb_set_str(&s->mode, "replicated");
	if (!s->container) {
		s->container = xmalloc(sizeof(*s->container));
		swarm__container_spec__init(s->container);
	}
	if (!s->restart) {
		s->restart = xmalloc(sizeof(*s->restart));
		swarm__restart_policy__init(s->restart);
		pb_set_str(&s->restart->condition, "any");
		s->restart->delay_ns = 5 * NS_PER_S;
	}
	if (!s->update)
		s->update = spec_update_config_new();
	if (!s->rollback)
		s->rollback = spec_update_config_new();
	if (!s->limits) {
		s->limits = xmalloc(sizeof(*s->limits));
		swarm__resources__init(s->limits);
	}
	if (!s->reservations) {
		s->reservations = xmalloc(sizeof(*s->reservations));
		swarm__resources__init(s->reservations);
	}
}

enum {
	F_HELP = 1, F_DETACH, F_QUIET,
	/* create only */
	F_NAME, F_MODE, F_NETWORK, F_PUBLISH, F_ENV, F_CONSTRAINT, F_MOUNT, F_LABEL,
	/* update only */
	F_ARGS, F_IMAGE, F_FORCE, F_ROLLBACK, F_PUBLISH_ADD, F_PUBLISH_RM, F_NETWORK_ADD,
	F_NETWORK_RM, F_ENV_ADD, F_ENV_RM, F_CONSTRAINT_ADD, F_CONSTRAINT_RM, F_MOUNT_ADD,
	F_MOUNT_RM, F_LABEL_ADD, F_LABEL_RM,
	/* both */
	F_REPLICAS, F_ENTRYPOINT, F_ENDPOINT_MODE, F_HOSTNAME, F_RESTART_CONDITION,
	F_RESTART_DELAY, F_RESTART_MAX, F_STOP_GRACE, F_UPD_PAR, F_UPD_DELAY, F_UPD_ORDER,
	F_UPD_FAIL, F_UPD_MONITOR, F_RB_PAR, F_RB_DELAY, F_RB_ORDER, F_RB_FAIL, F_RB_MONITOR,
	F_HEALTH_CMD, F_HEALTH_INTERVAL, F_HEALTH_TIMEOUT, F_HEALTH_RETRIES, F_HEALTH_START,
	F_NO_HEALTH, F_LIMIT_CPU, F_LIMIT_MEM, F_RESERVE_CPU, F_RESERVE_MEM,
};

#define SPEC_BOTH_FLAGS \
	{ "help", 0, false, F_HELP }, \
	{ "detach", 'd', false, F_DETACH }, \
	{ "quiet", 'q', false, F_QUIET }, \
	{ "replicas", 0, true, F_REPLICAS }, \
	{ "entrypoint", 0, true, F_ENTRYPOINT }, \
	{ "endpoint-mode", 0, true, F_ENDPOINT_MODE }, \
	{ "hostname", 0, true, F_HOSTNAME }, \
	{ "restart-condition", 0, true, F_RESTART_CONDITION }, \
	{ "restart-delay", 0, true, F_RESTART_DELAY }, \
	{ "restart-max-attempts", 0, true, F_RESTART_MAX }, \
	{ "stop-grace-period", 0, true, F_STOP_GRACE }, \
	{ "update-parallelism", 0, true, F_UPD_PAR }, \
	{ "update-delay", 0, true, F_UPD_DELAY }, \
	{ "update-order", 0, true, F_UPD_ORDER }, \
	{ "update-failure-action", 0, true, F_UPD_FAIL }, \
	{ "update-monitor", 0, true, F_UPD_MONITOR }, \
	{ "rollback-parallelism", 0, true, F_RB_PAR }, \
	{ "rollback-delay", 0, true, F_RB_DELAY }, \
	{ "rollback-order", 0, true, F_RB_ORDER }, \
	{ "rollback-failure-action", 0, true, F_RB_FAIL }, \
	{ "rollback-monitor", 0, true, F_RB_MONITOR }, \
	{ "health-cmd", 0, true, F_HEALTH_CMD }, \
	{ "health-interval", 0, true, F_HEALTH_INTERVAL }, \
	{ "health-timeout", 0, true, F_HEALTH_TIMEOUT }, \
	{ "health-retries", 0, true, F_HEALTH_RETRIES }, \
	{ "health-start-period", 0, true, F_HEALTH_START }, \
	{ "no-healthcheck", 0, false, F_NO_HEALTH }, \
	{ "limit-cpu", 0, true, F_LIMIT_CPU }, \
	{ "limit-memory", 0, true, F_LIMIT_MEM }, \
	{ "reserve-cpu", 0, true, F_RESERVE_CPU }, \
	{ "reserve-memory", 0, true, F_RESERVE_MEM }

static const struct opt_def spec_create_flags[] = {
	SPEC_BOTH_FLAGS,
	{ "name", 0, true, F_NAME },
	{ "mode", 0, true, F_MODE },
	{ "network", 0, true, F_NETWORK },
	{ "publish", 'p', true, F_PUBLISH },
	{ "env", 'e', true, F_ENV },
	{ "constraint", 0, true, F_CONSTRAINT },
	{ "mount", 0, true, F_MOUNT },
	{ "label", 'l', true, F_LABEL },
	{ NULL, 0, false, 0 },
};

static const struct opt_def spec_update_flags[] = {
	SPEC_BOTH_FLAGS,
	{ "args", 0, true, F_ARGS },
	{ "image", 0, true, F_IMAGE },
	{ "force", 0, false, F_FORCE },
	{ "rollback", 0, false, F_ROLLBACK },
	{ "publish-add", 0, true, F_PUBLISH_ADD },
	{ "publish-rm", 0, true, F_PUBLISH_RM },
	{ "network-add", 0, true, F_NETWORK_ADD },
	{ "network-rm", 0, true, F_NETWORK_RM },
	{ "env-add", 0, true, F_ENV_ADD },
	{ "env-rm", 0, true, F_ENV_RM },
	{ "constraint-add", 0, true, F_CONSTRAINT_ADD },
	{ "constraint-rm", 0, true, F_CONSTRAINT_RM },
	{ "mount-add", 0, true, F_MOUNT_ADD },
	{ "mount-rm", 0, true, F_MOUNT_RM },
	{ "label-add", 0, true, F_LABEL_ADD },
	{ "label-rm", 0, true, F_LABEL_RM },
	{ NULL, 0, false, 0 },
};

/* Health flags are checked together once every word is read. */
struct spec_health {
	bool cmd_set, none, opts_set;
};

static Swarm__HealthConfig *spec_health(Swarm__ServiceSpec *s)
{
	if (!s->container->health) {
		s->container->health = xmalloc(sizeof(*s->container->health));
		swarm__health_config__init(s->container->health);
	}
	return s->container->health;
}

static int spec_duration_flag(const char *flag, const char *val, int64_t *ns, char *err, size_t errlen)
{
	int64_t v;

	if (spec_duration_parse(val, &v) < 0)
		return spec_fail(err, errlen, "invalid duration \"%s\" for --%s (use e.g. 10s, 1m30s, 500ms)", val, flag);
	if (v < 0)
		return spec_fail(err, errlen, "invalid duration \"%s\" for --%s: negative", val, flag);
	*ns = v;
	return 0;
}

static int spec_uint_flag(const char *flag, const char *val, uint64_t *out, char *err, size_t errlen)
{
	if (spec_uint_parse(val, out) < 0)
		return spec_fail(err, errlen, "invalid %s value %s: must be a non-negative integer", flag, val);
	return 0;
}

static int spec_choice(const char *flag, const char *val, const char *const *choices,
		       char **field, char *err, size_t errlen)
{
	char list[128] = "";

	for (const char *const *c = choices; *c; c++) {
		if (strcmp(val, *c) == 0) {
			pb_set_str(field, val);
			return 0;
		}
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", l ? ", " : "", *c);
	}
	return spec_fail(err, errlen, "invalid --%s \"%s\" (%s)", flag, val, list);
}

/* Index of the K=V entry of v with key K (the text up to '=' of kv). */
static ssize_t spec_kv_find(char **v, size_t n, const char *kv)
{
	size_t klen = strcspn(kv, "=");

	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i], kv, klen) == 0 && (v[i][klen] == '=' || v[i][klen] == '\0'))
			return (ssize_t)i;
	return -1;
}

static void spec_strv_remove_at(char **v, size_t *n, size_t at)
{
	free(v[at]);
	memmove(&v[at], &v[at + 1], (*n - at - 1) * sizeof(*v));
	(*n)--;
}

static int spec_env_value(const char *val, struct spec_cli *cli, char **out, char *err, size_t errlen)
{
	if (val[0] == '=' || !val[0])
		return spec_fail(err, errlen, "invalid environment variable \"%s\"", val);
	if (!strchr(val, '=') && cli->getenv_fn) {
		const char *v = cli->getenv_fn(val);
		if (v) {
			*out = xasprintf("%s=%s", val, v);
			return 0;
		}
	}
	*out = xstrdup(val);
	return 0;
}

static void spec_labels_set(Swarm__ServiceSpec *s, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	char *key = strndup(kv, klen);

	for (size_t i = 0; i < s->n_labels; i++) {
		if (strcmp(s->labels[i]->key, key) == 0) {
			pb_set_str(&s->labels[i]->value, eq ? eq + 1 : "");
			free(key);
			return;
		}
	}
	Swarm__KeyValue *l = xmalloc(sizeof(*l));
	swarm__key_value__init(l);
	pb_set_str(&l->key, key);
	pb_set_str(&l->value, eq ? eq + 1 : "");
	PB_PTRV_ADD(s, labels, l);
	free(key);
}

/* Returns how many labels were removed. */
static size_t spec_labels_rm(Swarm__ServiceSpec *s, const char *key)
{
	size_t j = 0, removed = 0;

	for (size_t i = 0; i < s->n_labels; i++) {
		if (strcmp(s->labels[i]->key, key) == 0) {
			pb_free(s->labels[i]);
			removed++;
		} else {
			s->labels[j++] = s->labels[i];
		}
	}
	s->n_labels = j;
	return removed;
}

/* Adds or replaces (same published port and protocol; same target for
 * allocated ones) each port of the list. Takes ownership of ports. */
static void spec_ports_add(Swarm__ServiceSpec *s, Swarm__PortConfig **ports, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		Swarm__PortConfig *p = ports[k];
		bool replaced = false;
		for (size_t i = 0; i < s->n_ports && !replaced; i++) {
			Swarm__PortConfig *q = s->ports[i];
			bool same = strcmp(q->protocol, p->protocol) == 0 &&
				    (p->published ? q->published == p->published
						  : (!q->published && q->target == p->target));
			if (same) {
				pb_free(q);
				s->ports[i] = p;
				replaced = true;
			}
		}
		if (!replaced)
			PB_PTRV_ADD(s, ports, p);
	}
	free(ports);
}

/* --publish-rm PUBLISHED[/PROTO] or the long form: removes ports with that
 * published port (or, for ports the manager allocates, that target). */
static int spec_ports_rm(Swarm__ServiceSpec *s, const char *val, bool probe, char *err, size_t errlen)
{
	unsigned published = 0, target = 0;
	const char *proto = NULL;
	size_t removed = 0, j = 0;

	if (strchr(val, '=')) {
		Swarm__PortConfig **v = NULL;
		size_t n = 0;
		if (spec_publish_parse(val, &v, &n, err, errlen) < 0)
			return -EINVAL;
		published = v[0]->published;
		target = v[0]->target;
		proto = strstr(val, "protocol=") ? (strcmp(v[0]->protocol, "udp") == 0 ? "udp" : "tcp") : NULL;
		for (size_t i = 0; i < n; i++)
			pb_free(v[i]);
		free(v);
	} else {
		char buf[16];
		const char *slash = strchr(val, '/');
		size_t len = slash ? (size_t)(slash - val) : strlen(val);
		uint64_t port;
		if (len >= sizeof(buf))
			return spec_fail(err, errlen, "invalid --publish-rm \"%s\": expected PUBLISHED[/tcp|/udp]", val);
		memcpy(buf, val, len);
		buf[len] = '\0';
		if (spec_uint_parse(buf, &port) < 0 || port < 1 || port > 65535 ||
		    (slash && strcmp(slash + 1, "tcp") && strcmp(slash + 1, "udp")))
			return spec_fail(err, errlen, "invalid --publish-rm \"%s\": expected PUBLISHED[/tcp|/udp]", val);
		published = target = (unsigned)port;
		proto = slash ? slash + 1 : NULL;
	}
	for (size_t i = 0; i < s->n_ports; i++) {
		Swarm__PortConfig *q = s->ports[i];
		bool match = (!proto || strcmp(q->protocol, proto) == 0) &&
			     (published ? q->published == published
					: (!q->published && q->target == target));
		if (!match && published && !q->published && q->target == target)
			match = !proto || strcmp(q->protocol, proto) == 0;
		if (match) {
			pb_free(q);
			removed++;
		} else {
			s->ports[j++] = q;
		}
	}
	s->n_ports = j;
	if (!removed && !probe)
		return spec_fail(err, errlen, "no published port %s on this service", val);
	return 0;
}

/* Returns how many mounts were removed. */
static size_t spec_mount_rm(Swarm__ServiceSpec *s, const char *target)
{
	Swarm__ContainerSpec *c = s->container;
	size_t j = 0, removed = 0;

	for (size_t i = 0; i < c->n_mounts; i++) {
		if (strcmp(c->mounts[i]->target, target) == 0) {
			pb_free(c->mounts[i]);
			removed++;
		} else {
			c->mounts[j++] = c->mounts[i];
		}
	}
	c->n_mounts = j;
	return removed;
}

static void spec_strv_set(char ***field, size_t *n, char **words, size_t nwords)
{
	pb_strv_clear(field, n);
	*field = words;
	*n = nwords;
}

static int spec_constraint_rm(Swarm__ServiceSpec *s, const char *expr, bool probe, char *err, size_t errlen)
{
	char want[512], have[512], e2[16];
	size_t j = 0, removed = 0;

	if (spec_constraint_check(expr, want, sizeof(want), err, errlen) < 0)
		return -EINVAL;
	for (size_t i = 0; i < s->n_constraints; i++) {
		if (spec_constraint_check(s->constraints[i], have, sizeof(have), e2, sizeof(e2)) == 0 &&
		    strcmp(have, want) == 0) {
			free(s->constraints[i]);
			removed++;
		} else {
			s->constraints[j++] = s->constraints[i];
		}
	}
	s->n_constraints = j;
	if (!removed && !probe)
		return spec_fail(err, errlen, "no constraint \"%s\" on this service", expr);
	return 0;
}

/* One flag (id, value) into spec. */
static int spec_apply(int id, const char *flag, const char *val, Swarm__ServiceSpec *s,
		      struct spec_cli *cli, struct spec_health *h, bool *replicas_set,
		      char *err, size_t errlen)
{
	static const char *const restart_conditions[] = { "none", "on-failure", "any", NULL };
	static const char *const orders[] = { "stop-first", "start-first", NULL };
	static const char *const update_actions[] = { "pause", "continue", "rollback", NULL };
	static const char *const rollback_actions[] = { "pause", "continue", NULL };
	static const char *const endpoint_modes[] = { "vip", "dnsrr", NULL };
	static const char *const modes[] = { "replicated", "global", NULL };
	Swarm__ContainerSpec *c = s->container;
	char **words = NULL;
	size_t nwords = 0;
	uint64_t u;
	bool b;

	switch (id) {
	case F_HELP:
		cli->help = true;
		return 0;
	case F_DETACH:
	case F_QUIET:
	case F_FORCE:
	case F_ROLLBACK:
	case F_NO_HEALTH:
		if (opt_bool(val, &b) < 0)
			return spec_fail(err, errlen, "invalid value \"%s\" for --%s: true or false", val, flag);
		if (id == F_DETACH)
			cli->detach = b;
		else if (id == F_QUIET)
			cli->quiet = b;
		else if (id == F_ROLLBACK)
			cli->rollback = b;
		else if (id == F_FORCE && b)
			s->force_update++;
		else if (id == F_NO_HEALTH)
			h->none = b;
		return 0;
	case F_NAME:
		if (spec_name_check("service", val, err, errlen) < 0)
			return -EINVAL;
		pb_set_str(&s->name, val);
		return 0;
	case F_MODE:
		if (spec_choice(flag, val, modes, &s->mode, err, errlen) < 0)
			return -EINVAL;
		if (strcmp(val, "global") == 0)
			s->replicas = 0;
		return 0;
	case F_REPLICAS:
		if (spec_uint_parse(val, &u) < 0)
			return spec_fail(err, errlen, "invalid replicas value %s: must be a non-negative integer", val);
		s->replicas = u;
		*replicas_set = true;
		return 0;
	case F_NETWORK:
	case F_NETWORK_ADD: {
		Swarm__NetworkAttachmentConfig *a;
		if (spec_network_attach_parse(val, &a, err, errlen) < 0)
			return -EINVAL;
		for (size_t i = 0; i < s->n_networks; i++) {
			if (strcmp(s->networks[i]->target, a->target) == 0) {
				spec_fail(err, errlen, "service is already attached to network %s", a->target);
				pb_free(a);
				return -EINVAL;
			}
		}
		PB_PTRV_ADD(s, networks, a);
		return 0;
	}
	case F_NETWORK_RM:
		if (!spec_network_remove(s, val))
			pb_strv_add(&cli->net_rm, &cli->n_net_rm, val);
		return 0;
	case F_PUBLISH:
	case F_PUBLISH_ADD: {
		Swarm__PortConfig **v = NULL;
		size_t n = 0;
		if (spec_publish_parse(val, &v, &n, err, errlen) < 0)
			return -EINVAL;
		if (id == F_PUBLISH_ADD) {
			spec_ports_add(s, v, n);
			return 0;
		}
		/* create: a port given twice is refused by validation */
		for (size_t i = 0; i < n; i++)
			PB_PTRV_ADD(s, ports, v[i]);
		free(v);
		return 0;
	}
	case F_PUBLISH_RM:
		return spec_ports_rm(s, val, cli->probe, err, errlen);
	case F_ENV:
	case F_ENV_ADD: {
		char *kv = NULL;
		if (spec_env_value(val, cli, &kv, err, errlen) < 0)
			return -EINVAL;
		ssize_t at = id == F_ENV_ADD ? spec_kv_find(c->env, c->n_env, kv) : -1;
		if (at >= 0) {
			free(c->env[at]);
			c->env[at] = kv;
		} else {
			PB_STRV_ADD(c, env, kv);
			free(kv);
		}
		return 0;
	}
	case F_ENV_RM: {
		ssize_t at;
		if (!*val || strchr(val, '='))
			return spec_fail(err, errlen, "invalid --env-rm \"%s\": give the variable name", val);
		size_t removed = 0;
		while ((at = spec_kv_find(c->env, c->n_env, val)) >= 0) {
			spec_strv_remove_at(c->env, &c->n_env, (size_t)at);
			removed++;
		}
		if (!removed && !cli->probe)
			return spec_fail(err, errlen, "no environment variable %s on this service", val);
		return 0;
	}
	case F_CONSTRAINT:
	case F_CONSTRAINT_ADD: {
		char norm[512], have[512], e2[16];
		if (spec_constraint_check(val, norm, sizeof(norm), err, errlen) < 0)
			return -EINVAL;
		for (size_t i = 0; i < s->n_constraints; i++)
			if (spec_constraint_check(s->constraints[i], have, sizeof(have), e2, sizeof(e2)) == 0 &&
			    strcmp(have, norm) == 0)
				return 0;
		PB_STRV_ADD(s, constraints, norm);
		return 0;
	}
	case F_CONSTRAINT_RM:
		return spec_constraint_rm(s, val, cli->probe, err, errlen);
	case F_MOUNT:
	case F_MOUNT_ADD: {
		Swarm__Mount *m;
		if (spec_mount_parse(val, &m, err, errlen) < 0)
			return -EINVAL;
		spec_mount_rm(s, m->target);
		PB_PTRV_ADD(c, mounts, m);
		return 0;
	}
	case F_MOUNT_RM:
		if (!spec_mount_rm(s, val) && !cli->probe)
			return spec_fail(err, errlen, "no mount at %s on this service", val);
		return 0;
	case F_LABEL:
	case F_LABEL_ADD:
		if (!*val || val[0] == '=')
			return spec_fail(err, errlen, "invalid label \"%s\": expected KEY=VALUE", val);
		spec_labels_set(s, val);
		return 0;
	case F_LABEL_RM:
		if (!spec_labels_rm(s, val) && !cli->probe)
			return spec_fail(err, errlen, "no label %s on this service", val);
		return 0;
	case F_ARGS:
	case F_ENTRYPOINT:
		if (spec_split_args(val, &words, &nwords, err, errlen) < 0)
			return -EINVAL;
		if (id == F_ARGS)
			spec_strv_set(&c->args, &c->n_args, words, nwords);
		else
			spec_strv_set(&c->command, &c->n_command, words, nwords);
		return 0;
	case F_IMAGE:
		if (!*val)
			return spec_fail(err, errlen, "--image needs an image name");
		pb_set_str(&c->image, val);
		return 0;
	case F_HOSTNAME:
		pb_set_str(&c->hostname, val);
		return 0;
	case F_ENDPOINT_MODE:
		return spec_choice(flag, val, endpoint_modes, &s->endpoint_mode, err, errlen);
	case F_RESTART_CONDITION:
		return spec_choice(flag, val, restart_conditions, &s->restart->condition, err, errlen);
	case F_RESTART_DELAY:
		return spec_duration_flag(flag, val, &s->restart->delay_ns, err, errlen);
	case F_RESTART_MAX:
		return spec_uint_flag(flag, val, &s->restart->max_attempts, err, errlen);
	case F_STOP_GRACE:
		return spec_duration_flag(flag, val, &c->stop_grace_ns, err, errlen);
	case F_UPD_PAR:
		return spec_uint_flag(flag, val, &s->update->parallelism, err, errlen);
	case F_UPD_DELAY:
		return spec_duration_flag(flag, val, &s->update->delay_ns, err, errlen);
	case F_UPD_ORDER:
		return spec_choice(flag, val, orders, &s->update->order, err, errlen);
	case F_UPD_FAIL:
		return spec_choice(flag, val, update_actions, &s->update->failure_action, err, errlen);
	case F_UPD_MONITOR:
		return spec_duration_flag(flag, val, &s->update->monitor_ns, err, errlen);
	case F_RB_PAR:
		return spec_uint_flag(flag, val, &s->rollback->parallelism, err, errlen);
	case F_RB_DELAY:
		return spec_duration_flag(flag, val, &s->rollback->delay_ns, err, errlen);
	case F_RB_ORDER:
		return spec_choice(flag, val, orders, &s->rollback->order, err, errlen);
	case F_RB_FAIL:
		return spec_choice(flag, val, rollback_actions, &s->rollback->failure_action, err, errlen);
	case F_RB_MONITOR:
		return spec_duration_flag(flag, val, &s->rollback->monitor_ns, err, errlen);
	case F_HEALTH_CMD:
		h->cmd_set = true;
		pb_strv_clear(&spec_health(s)->test, &spec_health(s)->n_test);
		if (*val) {
			PB_STRV_ADD(spec_health(s), test, "CMD-SHELL");
			PB_STRV_ADD(spec_health(s), test, val);
		}
		return 0;
	case F_HEALTH_INTERVAL:
		h->opts_set = true;
		return spec_duration_flag(flag, val, &spec_health(s)->interval_ns, err, errlen);
	case F_HEALTH_TIMEOUT:
		h->opts_set = true;
		return spec_duration_flag(flag, val, &spec_health(s)->timeout_ns, err, errlen);
	case F_HEALTH_START:
		h->opts_set = true;
		return spec_duration_flag(flag, val, &spec_health(s)->start_period_ns, err, errlen);
	case F_HEALTH_RETRIES:
		h->opts_set = true;
		if (spec_uint_flag(flag, val, &u, err, errlen) < 0)
			return -EINVAL;
		if (u > INT32_MAX)
			return spec_fail(err, errlen, "invalid health-retries value %s: too large", val);
		spec_health(s)->retries = (int32_t)u;
		return 0;
	case F_LIMIT_CPU:
	case F_RESERVE_CPU:
		if (spec_cpus_parse(val, id == F_LIMIT_CPU ? &s->limits->nano_cpus
							    : &s->reservations->nano_cpus) < 0)
			return spec_fail(err, errlen, "invalid --%s \"%s\": a decimal number of CPUs such as 0.5", flag, val);
		return 0;
	case F_LIMIT_MEM:
	case F_RESERVE_MEM:
		if (spec_bytes_parse(val, id == F_LIMIT_MEM ? &s->limits->memory_bytes
							    : &s->reservations->memory_bytes) < 0)
			return spec_fail(err, errlen, "invalid --%s \"%s\": a size such as 64M or 1G", flag, val);
		return 0;
	}
	return spec_fail(err, errlen, "internal error: flag --%s not handled", flag);
}

/* Name of the flag with this id, for messages. */
static const char *spec_flag_name(const struct opt_def *defs, int id)
{
	for (; defs->name; defs++)
		if (defs->id == id)
			return defs->name;
	return "?";
}

int spec_service_args(enum spec_cmd cmd, int argc, char **argv, Swarm__ServiceSpec *spec,
		      struct spec_cli *cli, char *err, size_t errlen)
{
	const struct opt_def *defs = cmd == SPEC_CREATE ? spec_create_flags : spec_update_flags;
	struct spec_health h = { 0 };
	struct opt_iter it;
	bool replicas_set = false, have_image = false;
	const char *val;
	int id;

	spec_service_fill(spec);
	opt_init(&it, argc, argv, cmd == SPEC_CREATE);
	while ((id = opt_next(&it, defs, &val, err, errlen)) != -1) {
		if (id < 0)
			return id;
		if (id == 0) {
			if (cmd == SPEC_UPDATE) {
				if (cli->service)
					return spec_fail(err, errlen, "service update takes exactly one SERVICE (got \"%s\" and \"%s\")",
							 cli->service, val);
				cli->service = val;
			} else if (!have_image) {
				pb_set_str(&spec->container->image, val);
				have_image = true;
				pb_strv_clear(&spec->container->args, &spec->container->n_args);
			} else {
				PB_STRV_ADD(spec->container, args, val);
			}
			continue;
		}
		const char *name = spec_flag_name(defs, id);
		if (spec_apply(id, name, val, spec, cli, &h, &replicas_set, err, errlen) < 0)
			return -EINVAL;
		if (id != F_HELP && id != F_DETACH && id != F_QUIET && id != F_ROLLBACK)
			cli->changes++;
	}
	if (cli->help)
		return 0;
	if (h.none && (h.cmd_set || h.opts_set))
		return spec_fail(err, errlen, "--no-healthcheck conflicts with --health-* options");
	if (h.none) {
		Swarm__HealthConfig *hc = spec_health(spec);
		pb_strv_clear(&hc->test, &hc->n_test);
		PB_STRV_ADD(hc, test, "NONE");
		hc->interval_ns = hc->timeout_ns = hc->start_period_ns = 0;
		hc->retries = 0;
	} else if (h.opts_set && !h.cmd_set && spec->container->health &&
		   spec->container->health->n_test == 1 &&
		   strcmp(spec->container->health->test[0], "NONE") == 0) {
		return spec_fail(err, errlen, "--health-* options need --health-cmd on a service with no health check");
	}
	if (replicas_set && strcmp(spec->mode, "replicated") != 0)
		return spec_fail(err, errlen, "--replicas can only be used with replicated mode");
	if (cmd == SPEC_CREATE && !have_image)
		return spec_fail(err, errlen, "service create needs an IMAGE");
	if (cmd == SPEC_UPDATE && !cli->service)
		return spec_fail(err, errlen, "service update needs a SERVICE");
	if (cli->rollback && cli->changes)
		return spec_fail(err, errlen, "--rollback cannot be combined with other changes");
	return spec_service_validate(spec, err, errlen);
}

int spec_service_validate(const Swarm__ServiceSpec *spec, char *err, size_t errlen)
{
	if (*spec->name && spec_name_check("service", spec->name, err, errlen) < 0)
		return -EINVAL;
	if (!spec->container || !*spec->container->image)
		return spec_fail(err, errlen, "the service has no image");
	if (strcmp(spec->mode, "replicated") && strcmp(spec->mode, "global"))
		return spec_fail(err, errlen, "invalid mode \"%s\" (replicated, global)", spec->mode);
	for (size_t i = 0; i < spec->n_ports; i++) {
		const Swarm__PortConfig *p = spec->ports[i];
		if (strcmp(spec->endpoint_mode, "dnsrr") == 0 && strcmp(p->mode, "host") != 0)
			return spec_fail(err, errlen, "port %u published with ingress mode can't be used with "
					 "endpoint mode dnsrr (use mode=host or --endpoint-mode vip)",
					 p->published ? p->published : p->target);
		for (size_t j = 0; j < i && p->published; j++)
			if (spec->ports[j]->published == p->published &&
			    strcmp(spec->ports[j]->protocol, p->protocol) == 0)
				return spec_fail(err, errlen, "published port %u/%s is given twice",
						 p->published, p->protocol);
	}
	for (size_t i = 0; i < spec->n_networks; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(spec->networks[i]->target, spec->networks[j]->target) == 0)
				return spec_fail(err, errlen, "network %s is given twice", spec->networks[i]->target);
	return 0;
}

/* ---- networks ---- */

enum { N_HELP = 1, N_DRIVER, N_OPT, N_SUBNET, N_GATEWAY, N_ATTACHABLE, N_LABEL, N_INGRESS, N_SCOPE };

static const struct opt_def spec_network_flags[] = {
	{ "help", 0, false, N_HELP },
	{ "driver", 'd', true, N_DRIVER },
	{ "opt", 'o', true, N_OPT },
	{ "subnet", 0, true, N_SUBNET },
	{ "gateway", 0, true, N_GATEWAY },
	{ "attachable", 0, false, N_ATTACHABLE },
	{ "label", 0, true, N_LABEL },
	{ "ingress", 0, false, N_INGRESS },
	{ "scope", 0, true, N_SCOPE },
	{ NULL, 0, false, 0 },
};

int spec_network_args(int argc, char **argv, Swarm__NetworkSpec *spec, bool *help,
		      char *err, size_t errlen)
{
	struct opt_iter it;
	const char *val;
	int id;
	bool b;

	*help = false;
	pb_set_str(&spec->driver, "overlay");
	opt_init(&it, argc, argv, false);
	while ((id = opt_next(&it, spec_network_flags, &val, err, errlen)) != -1) {
		switch (id) {
		case 0:
			if (*spec->name)
				return spec_fail(err, errlen, "network create takes exactly one NAME (got \"%s\" and \"%s\")",
						 spec->name, val);
			pb_set_str(&spec->name, val);
			break;
		case N_HELP:
			*help = true;
			return 0;
		case N_DRIVER:
			if (strcmp(val, "overlay") != 0)
				return spec_fail(err, errlen, "driver \"%s\" is not supported (overlay only)", val);
			break;
		case N_OPT:
			if (strcmp(val, "encrypted") == 0 || strcmp(val, "encrypted=true") == 0 ||
			    strcmp(val, "encrypted=") == 0)
				spec->encrypted = true;
			else if (strcmp(val, "encrypted=false") == 0)
				spec->encrypted = false;
			else
				return spec_fail(err, errlen, "unsupported network option \"%s\" (encrypted)", val);
			break;
		case N_SUBNET:
			if (*spec->subnet)
				return spec_fail(err, errlen, "only one --subnet is supported");
			pb_set_str(&spec->subnet, val);
			break;
		case N_GATEWAY:
			if (*spec->gateway)
				return spec_fail(err, errlen, "only one --gateway is supported");
			pb_set_str(&spec->gateway, val);
			break;
		case N_ATTACHABLE:
		case N_INGRESS:
			if (opt_bool(val, &b) < 0)
				return spec_fail(err, errlen, "invalid value \"%s\" for --%s: true or false", val,
						 id == N_INGRESS ? "ingress" : "attachable");
			if (id == N_INGRESS)
				spec->ingress = b;
			else
				spec->attachable = b;
			break;
		case N_LABEL: {
			const char *eq = strchr(val, '=');
			if (!*val || val[0] == '=')
				return spec_fail(err, errlen, "invalid label \"%s\": expected KEY=VALUE", val);
			Swarm__KeyValue *l = xmalloc(sizeof(*l));
			swarm__key_value__init(l);
			char *key = strndup(val, eq ? (size_t)(eq - val) : strlen(val));
			pb_set_str(&l->key, key);
			free(key);
			pb_set_str(&l->value, eq ? eq + 1 : "");
			PB_PTRV_ADD(spec, labels, l);
			break;
		}
		case N_SCOPE:
			if (strcmp(val, "swarm") != 0)
				return spec_fail(err, errlen, "scope \"%s\" is not supported (swarm only)", val);
			break;
		default:
			return id;  /* -EINVAL with err set */
		}
	}
	if (!*spec->name)
		return spec_fail(err, errlen, "network create needs a NAME");
	return spec_network_validate(spec, err, errlen);
}

int spec_network_validate(const Swarm__NetworkSpec *spec, char *err, size_t errlen)
{
	uint32_t net = 0, mask = 0;
	unsigned prefix = 0;
	struct in_addr gw;

	if (spec_name_check("network", spec->name, err, errlen) < 0)
		return -EINVAL;
	if (*spec->driver && strcmp(spec->driver, "overlay") != 0)
		return spec_fail(err, errlen, "driver \"%s\" is not supported (overlay only)", spec->driver);
	if (*spec->subnet) {
		if (spec_cidr_parse(spec->subnet, &net, &prefix, err, errlen) < 0)
			return -EINVAL;
		if (prefix > 29)
			return spec_fail(err, errlen, "invalid subnet \"%s\": /%u leaves too few addresses "
					 "(at most /29)", spec->subnet, prefix);
		mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
	}
	if (*spec->gateway) {
		if (!*spec->subnet)
			return spec_fail(err, errlen, "--gateway needs --subnet");
		if (strchr(spec->gateway, '/') || inet_pton(AF_INET, spec->gateway, &gw) != 1)
			return spec_fail(err, errlen, "invalid gateway \"%s\"", spec->gateway);
		uint32_t g = ntohl(gw.s_addr);
		if ((g & mask) != net)
			return spec_fail(err, errlen, "invalid gateway \"%s\": not in subnet %s",
					 spec->gateway, spec->subnet);
		if (g == net || g == (net | ~mask))
			return spec_fail(err, errlen, "invalid gateway \"%s\": the network or broadcast "
					 "address of %s", spec->gateway, spec->subnet);
	}
	return 0;
}
