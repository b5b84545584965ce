#include "metrics.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric {
	char *name;
	char *help;
	char *labels;
	const char *type;
	double value;
	struct metric *next;
};

static struct metric *metrics_head, *metrics_tail;

static struct metric *metric_new(const char *name, const char *help, const char *labels,
				 const char *type)
{
	struct metric *m = xcalloc(1, sizeof(*m));
	m->name = xstrdup(name);
	m->help = xstrdup(help);
	m->labels = labels ? xstrdup(labels) : NULL;
	m->type = type;
	if (metrics_tail)
		metrics_tail->next = m;
	else
		metrics_head = m;
	metrics_tail = m;
	return m;
}

struct metric *metric_counter(const char *name, const char *help, const char *labels)
{
	return metric_new(name, help, labels, "counter");
}

struct metric *metric_gauge(const char *name, const char *help, const char *labels)
{
	return metric_new(name, help, labels, "gauge");
}

void metric_inc(struct metric *m) { m->value += 1; }
void metric_add(struct metric *m, double v) { m->value += v; }
void metric_set(struct metric *m, double v) { m->value = v; }
double metric_value(const struct metric *m) { return m->value; }

char *metrics_render(size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		abort();
	for (struct metric *m = metrics_head; m; m = m->next) {
		/* HELP/TYPE once per family: the first metric of that name. */
		bool first = true;
		for (struct metric *p = metrics_head; p != m; p = p->next)
			if (strcmp(p->name, m->name) == 0)
				first = false;
		if (first)
			fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
		if (m->labels)
			fprintf(f, "%s{%s} %.17g\n", m->name, m->labels, m->value);
		else
			fprintf(f, "%s %.17g\n", m->name, m->value);
	}
	fclose(f);
	*len = n;
	return buf;
}
