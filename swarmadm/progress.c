/* Service convergence progress (see progress.h). */
#include "progress.h"
#include "format.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Docker's numbered states; 0 = past running (terminal or not shown). */
static int progress_step(const char *state)
{
	static const struct { const char *name; int step; } steps[] = {
		{ "new", 1 }, { "pending", 3 }, { "assigned", 4 }, { "accepted", 5 },
		{ "preparing", 6 }, { "ready", 7 }, { "starting", 8 }, { "running", 9 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
		if (strcmp(state, steps[i].name) == 0)
			return steps[i].step;
	return 0;
}

/* One task as the progress sees it. */
struct ptask {
	struct json_object *obj;
	uint64_t slot;         /* replicated */
	const char *node;      /* global */
	int64_t created;
	int desired_step;      /* 0 = desired past running */
	int step;              /* observed, 0 = past running */
	const char *state;
	const char *health;
	const char *err;
	bool current;          /* runs the current spec */
};

static bool progress_is_running(const struct ptask *t)
{
	return t->current && t->desired_step == PROGRESS_STEPS && t->step == PROGRESS_STEPS &&
	       (!*t->health || strcmp(t->health, "healthy") == 0);
}

/* Better task to show for a slot: active desired state first, then newest,
 * then furthest along. */
static bool progress_better(const struct ptask *a, const struct ptask *b)
{
	if ((a->desired_step > 0) != (b->desired_step > 0))
		return a->desired_step > 0;
	if (a->created != b->created)
		return a->created > b->created;
	return a->step > b->step;
}

/* A group of tasks sharing a slot (or node). */
struct pgroup {
	uint64_t slot;
	const char *node;
	struct ptask *best;        /* best current task, NULL if none */
	bool has_active;           /* any task (any spec) with an active desired state */
};

static int progress_group_cmp(const void *a, const void *b)
{
	const struct pgroup *x = a, *y = b;

	if (x->node && y->node)
		return strcmp(x->node, y->node);
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static void progress_fail(struct progress *out, const char *fmt, const char *a, const char *b)
{
	out->verdict = PROGRESS_FAILED;
	snprintf(out->message, sizeof(out->message), fmt, a, b);
}

void progress_compute(struct json_object *service, struct json_object *tasks,
		      enum progress_kind kind, int64_t since_ns, struct progress *out)
{
	bool global = format_get(service, "Spec.Mode.Global") != NULL;
	int64_t version = format_get_int(service, "Version.Index");
	struct json_object *tmpl = format_get(service, "Spec.TaskTemplate");
	const char *ustate = format_get_str(service, "UpdateStatus.State");
	const char *umsg = format_get_str(service, "UpdateStatus.Message");
	size_t nt = tasks && json_object_is_type(tasks, json_type_array) ? json_object_array_length(tasks) : 0;
	struct ptask *pt = xcalloc(nt ? nt : 1, sizeof(*pt));
	struct pgroup *g = xcalloc(nt ? nt : 1, sizeof(*g));
	size_t ng = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < nt; i++) {
		struct ptask *t = &pt[i];
		struct json_object *spec;
		t->obj = json_object_array_get_idx(tasks, i);
		t->slot = (uint64_t)format_get_int(t->obj, "Slot");
		t->node = format_get_str(t->obj, "NodeID");
		if (format_time_parse(format_get_str(t->obj, "CreatedAt"), &t->created) < 0)
			t->created = 0;
		t->desired_step = progress_step(format_get_str(t->obj, "DesiredState"));
		t->state = format_get_str(t->obj, "Status.State");
		t->step = progress_step(t->state);
		t->health = format_get_str(t->obj, "Status.Health");
		t->err = format_get_str(t->obj, "Status.Err");
		if (!*t->err)
			t->err = format_get_str(t->obj, "AllocError");
		spec = format_get(t->obj, "Spec");
		t->current = format_get_int(t->obj, "SpecVersion.Index") == version ||
			     (tmpl && spec && json_object_equal(spec, tmpl));

		size_t k;
		for (k = 0; k < ng; k++)
			if (global ? strcmp(g[k].node, t->node) == 0 : g[k].slot == t->slot)
				break;
		if (k == ng) {
			g[ng].slot = t->slot;
			g[ng].node = global ? t->node : NULL;
			ng++;
		}
		if (t->desired_step > 0)
			g[k].has_active = true;
		if (t->current && (!g[k].best || progress_better(t, g[k].best)))
			g[k].best = t;
	}
	qsort(g, ng, sizeof(*g), progress_group_cmp);

	if (global) {
		for (size_t k = 0; k < ng; k++)
			if (g[k].has_active && *g[k].node)
				out->want++;
	} else {
		out->want = (uint64_t)format_get_int(service, "Spec.Mode.Replicated.Replicas");
	}

	out->lines = xcalloc(ng ? ng : 1, sizeof(*out->lines));
	for (size_t k = 0; k < ng && out->n_lines < out->want; k++) {
		struct ptask *t = g[k].best;
		struct progress_line *l;
		if (!t || (global && !*g[k].node))
			continue;
		/* A slot whose current tasks all ended shows the last error only
		 * while no other task is meant to run there. */
		if (t->desired_step == 0 && !(t->err[0] && !g[k].has_active))
			continue;
		l = &out->lines[out->n_lines++];
		if (global)
			snprintf(l->id, sizeof(l->id), "%.12s", g[k].node);
		else
			snprintf(l->id, sizeof(l->id), "%zu/%llu", out->n_lines, (unsigned long long)out->want);
		if (t->desired_step == 0 || (t->step == 0 && *t->err)) {
			snprintf(l->action, sizeof(l->action), "%s", *t->err ? t->err : t->state);
			l->step = 0;
		} else if (t->step == PROGRESS_STEPS && *t->health && strcmp(t->health, "healthy") != 0) {
			snprintf(l->action, sizeof(l->action), "%s", strcmp(t->health, "unhealthy") == 0 ? "unhealthy" : "starting");
			l->step = PROGRESS_STEPS - 1;
		} else {
			snprintf(l->action, sizeof(l->action), "%s", t->state);
			l->step = t->step ? t->step : 1;
		}
		if (progress_is_running(t))
			out->running++;
	}

	int64_t started = 0;
	if (since_ns && (format_time_parse(format_get_str(service, "UpdateStatus.StartedAt"), &started) < 0 ||
			 started < since_ns - 1000000000LL))
		ustate = "";  /* an earlier update's outcome */
	if (kind == PROGRESS_UPDATE && strcmp(ustate, "paused") == 0)
		progress_fail(out, "update paused%s%s", *umsg ? ": " : "", umsg);
	else if (kind == PROGRESS_UPDATE && strcmp(ustate, "rollback_completed") == 0)
		progress_fail(out, "service rolled back%s%s", *umsg ? ": " : "", umsg);
	else if (kind == PROGRESS_ROLLBACK && strcmp(ustate, "rollback_paused") == 0)
		progress_fail(out, "rollback paused%s%s", *umsg ? ": " : "", umsg);
	else if (out->running >= out->want && strcmp(ustate, "updating") != 0 &&
		 strcmp(ustate, "rollback_started") != 0)
		out->verdict = PROGRESS_CONVERGED;
	free(pt);
	free(g);
}

void progress_clear(struct progress *p)
{
	free(p->lines);
	p->lines = NULL;
	p->n_lines = 0;
}

size_t progress_lines(const struct progress *p, bool bars, char ***lines)
{
	char **v = xcalloc(p->n_lines + 1, sizeof(*v));
	size_t n = 0;

	v[n++] = xasprintf("overall progress: %llu out of %llu tasks",
			   (unsigned long long)p->running, (unsigned long long)p->want);
	for (size_t i = 0; i < p->n_lines; i++) {
		const struct progress_line *l = &p->lines[i];
		if (l->step == 0) {
			v[n++] = xasprintf("%s: %s", l->id, l->action);
		} else if (!bars) {
			v[n++] = xasprintf("%s: %s", l->id, l->action);
		} else {
			/* Docker: percentage/2 '=' signs, then '>', padded to 50. */
			int fill = (l->step * 100 / PROGRESS_STEPS) / 2;
			char bar[64];
			memset(bar, '=', (size_t)fill);
			bar[fill] = '>';
			memset(bar + fill + 1, ' ', (size_t)(50 - fill));
			bar[51] = '\0';
			v[n++] = xasprintf("%s: %-9s [%s]", l->id, l->action, bar);
		}
	}
	*lines = v;
	return n;
}
