/* swarm-agent: runs this node's tasks as runc containers for the manager. */
#include "agent.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "pb.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static struct agent A;

/* Gauges refreshed every few seconds from the agent's own state. */
static struct {
	ev_timer w;
	struct metric *tasks, *connected, *images;
} stats;

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	Swarm__TaskStatusUpdate **st;
	size_t n = taskmgr_statuses(A.tm, &st), running = 0;
	for (size_t i = 0; i < n; i++) {
		if (st[i]->status && st[i]->status->state == SWARM__TASK_STATE__TASK_RUNNING)
			running++;
		pb_free(st[i]);
	}
	free(st);
	metric_set(stats.tasks, (double)running);
	metric_set(stats.connected, A.session_open ? 1 : 0);
	char **imgs;
	size_t ni = images_list(A.images, &imgs);
	for (size_t i = 0; i < ni; i++)
		free(imgs[i]);
	free(imgs);
	metric_set(stats.images, (double)ni);
}

static void on_status(const char *task_id, const Swarm__TaskStatus *st, void *arg)
{
	netdc_task_state(task_id, st);
	session_report(arg, task_id, st);
}

/* taskmgr's sandbox hook: netd attaches (and answers), dnsd serves. */
static void on_sandbox(const Swarm__Task *t, const char *netns_path, int up, void *arg)
{
	if (up)
		dnsdc_sandbox(t, netns_path, up);
	netdc_sandbox(t, netns_path, up, arg);
	if (!up)
		dnsdc_sandbox(t, netns_path, up);
}

static int agent_start(struct ev_loop *loop, const struct daemon_opts *o, const struct config *cfg)
{
	struct agent *a = &A;
	char host[256] = "localhost";
	/* Detached shims and health-check processes are reaped here, not by
	 * whatever pid 1 is (in a lab node it reaps late or never). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	gethostname(host, sizeof(host) - 1);
	a->loop = loop;
	a->state_dir = xstrdup(o->state_dir);
	a->run_dir = xstrdup(o->run_dir);
	a->node_dir = xasprintf("%s/node", o->state_dir);
	a->hostname = xstrdup(config_get_or(cfg, "hostname", host));
	char *def_root = xasprintf("%s/runc", o->run_dir);
	a->runc_root = xstrdup(config_get_or(cfg, "runc_root", def_root));
	free(def_root);
	a->runc_path = xstrdup(config_get_or(cfg, "runc", "runc"));
	a->cgroup_parent = xstrdup(config_get_or(cfg, "cgroup_parent", "swarm"));
	a->shim_path = xstrdup(config_get_or(cfg, "shim", SWARM_LIBEXECDIR "/swarm-shim"));
	int r = mkdir_p(a->node_dir, 0700);
	if (r < 0)
		return r;
	char *imgdir = xasprintf("%s/images", o->state_dir);
	mkdir_p(imgdir, 0700);
	a->images = images_open(loop, imgdir);
	free(imgdir);
	if (!a->images)
		return -EIO;
	struct taskmgr_cfg tc = {
		.loop = loop,
		.state_dir = a->state_dir,
		.run_dir = a->run_dir,
		.runc_root = a->runc_root,
		.cgroup_parent = a->cgroup_parent,
		.runc_path = a->runc_path,
		.shim_path = a->shim_path,
		.images = a->images,
	};
	/* netd = off: containers get no overlay networks (a node without
	 * swarm-netd); otherwise every sandbox waits for netd's attach. */
	if (strcmp(config_get_or(cfg, "netd", "on"), "off") != 0) {
		char *sock = xasprintf("%s/netd.sock", o->run_dir);
		netdc_init(a, config_get_or(cfg, "netd_socket", sock));
		free(sock);
		sock = xasprintf("%s/dnsd.sock", o->run_dir);
		dnsdc_init(a, config_get_or(cfg, "dnsd_socket", sock));
		free(sock);
		tc.sandbox_fn = on_sandbox;
		tc.sandbox_arg = a;
	}
	session_init(a);
	a->tm = taskmgr_new(&tc, on_status, a);
	if (!a->tm)
		return -EIO;
	/* Containers outlive the agent: adopt what is running before talking
	 * to the manager, so the session reports the truth. */
	r = taskmgr_recover(a->tm);
	if (r < 0)
		log_warn("agent, recovery incomplete: %s", strerror(-r));
	stats.tasks = metric_gauge("swarm_agent_tasks_running", "Containers of this node running", NULL);
	stats.connected = metric_gauge("swarm_agent_session_connected", "1 while the manager session is open", NULL);
	stats.images = metric_gauge("swarm_agent_images", "Images in the node's store", NULL);
	ev_timer_init(&stats.w, stats_cb, 0., 2.0);
	ev_timer_start(loop, &stats.w);
	r = local_listen(a);
	if (r < 0)
		return r;
	if (identity_load(a) == 0) {
		log_info("agent, node %s resuming its session", a->id.node_id);
		session_start(a);
	} else {
		log_info("agent, not part of a swarm yet (swarmadm init or join)");
	}
	return 0;
}

static void agent_stop(void)
{
	struct agent *a = &A;
	session_stop(a);
	netdc_stop();
	dnsdc_stop();
	local_stop(a);
	/* Containers keep running: a restarted agent adopts them. */
	taskmgr_free(a->tm);
	a->tm = NULL;
	images_free(a->images);
	a->images = NULL;
}

int main(int argc, char **argv)
{
	static const struct daemon_def def = {
		.name = "swarm-agent",
		.short_name = "agent",
		.start = agent_start,
		.stop = agent_stop,
	};
	return daemon_main(&def, argc, argv);
}
