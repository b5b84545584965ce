/* Prometheus metrics: a registry of counters and gauges rendered in the text
 * exposition format. Single-threaded (the event loop). */
#ifndef SWARM_METRICS_H
#define SWARM_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metric;

/* Registers a metric (name without labels; labels optional, e.g.
 * "type=\"A\""). The returned handle lives until exit. */
struct metric *metric_counter(const char *name, const char *help, const char *labels);
struct metric *metric_gauge(const char *name, const char *help, const char *labels);
void metric_inc(struct metric *m);
void metric_add(struct metric *m, double v);
void metric_set(struct metric *m, double v);
double metric_value(const struct metric *m);

/* Renders every metric into a malloc'd buffer. */
char *metrics_render(size_t *len);

#endif
