#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 900
# The cluster on a 3-node lab: replicated and global services on runc
# containers, scaling, draining, restart on failure and on a failing health
# check, rolling updates, images missing on a node, a node going down, and
# restarts of the manager and of an agent that disturb nothing.
PREFIX=tcl
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab

t_up() {
	lab_up 3
	[ "$(ready_nodes)" = 3 ] || fail "node ls does not show 3 Ready nodes"
}

t_replicated() {
	fresh
	adm node1 service create -d --name web --replicas 5 busybox
	wait_running web 5
	echo "# spread: $(running_per_node web | xargs)"
	[ "$(spread_of web)" = "1 2 2" ] || fail "spread is '$(spread_of web)', want 1 2 2"
	tasks_have_containers web
	[ "$(all_containers | wc -l)" = 5 ] || { all_containers; fail "runc runs $(all_containers | wc -l) containers, want 5"; }
}

t_create_waits() {
	local out
	out=$(adm node1 service create --name conv --replicas 2 busybox)
	echo "$out"
	grep -qi 'converged' <<< "$out" || fail "service create did not report convergence"
	running_is conv 2 || fail "service create returned before 2 tasks ran"
	adm node1 service rm conv > /dev/null
}

t_scale() {
	adm node1 service scale web=7
	wait_running web 7
	echo "# spread at 7: $(running_per_node web | xargs)"
	[ "$(spread_of web)" = "2 2 3" ] || fail "spread is '$(spread_of web)', want 2 2 3"
	tasks_have_containers web
	adm node1 service scale web=2
	wait_running web 2
	poll_until -d "only 2 containers left" 60 containers_are 2
	tasks_have_containers web
	services_clear
}
containers_are() { [ "$(all_containers | wc -l)" = "$1" ]; }

t_global() {
	fresh
	adm node1 service create -d --name glob --mode global busybox
	wait_running glob 3
	[ "$(spread_of glob)" = "1 1 1" ] || fail "global tasks per node: $(running_per_node glob | xargs)"
	tasks_have_containers glob
	services_clear
}

t_drain() {
	fresh
	adm node1 service create -d --name dr --replicas 3 busybox
	wait_running dr 3
	adm node1 node update --availability drain node3
	poll_until -d "no dr task on node3, 3 on the others" 60 drained dr node3 3
	# The drained containers get their stop grace period (10 s: busybox
	# as pid 1 ignores SIGTERM, so SIGKILL ends them), as in Docker.
	poll_until -d "no container left on node3" 40 no_containers_on node3 ||
		{ runc_running node3; fail "containers still run on the drained node3"; }
	tasks_have_containers dr
	adm node1 node update --availability active node3
	services_clear
}
drained() { [ "$(running_on "$1" "$2")" = 0 ] && running_is "$1" "$3"; }
no_containers_on() { [ -z "$(runc_running "$1")" ]; }

t_kill_container() {
	fresh
	adm node1 service create -d --name kr --replicas 1 busybox
	wait_running kr 1
	local id name node pid
	read -r id name node _ < <(running_tasks kr)
	pid=$(container_pid "$node" "$name.$id")
	echo "# task $id on $node, container pid $pid"
	{ [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ]; } || fail "container inspect gave State.Pid '$pid'"
	kill -9 "$pid"
	poll_until -d "kr restarted after kill -9" 60 replaced kr "$id"
	tasks kr
	[ "$(tasks kr | awk -v t="$id" '$1 == t { print $5 }')" = failed ] || fail "the killed task is not failed"
	services_clear
}
# A running task other than OLD exists and OLD no longer runs.
replaced() { # SERVICE OLD-ID
	running_tasks "$1" | awk -v t="$2" '$1 != t' | grep -q . &&
		! running_tasks "$1" | awk -v t="$2" '$1 == t' | grep -q .
}

t_health() {
	fresh
	adm node1 service create -d --name hc --replicas 1 \
		--health-cmd false --health-interval 1s --health-retries 2 busybox
	poll_until -d "hc has a task" 60 has_tasks hc
	local first
	first=$(tasks hc | awk 'NR == 1 { print $1 }')
	poll_until -d "unhealthy task replaced" 90 unhealthy_replaced hc "$first"
	tasks hc
	services_clear
}
has_tasks() { tasks "$1" | grep -q .; }
# OLD is not running any more and a newer task exists.
unhealthy_replaced() { # SERVICE OLD-ID
	local st
	st=$(tasks "$1" | awk -v t="$2" '$1 == t { print $5 }')
	[ -n "$st" ] && [ "$st" != running ] && [ "$st" != starting ] &&
		tasks "$1" | awk -v t="$2" '$1 != t' | grep -q .
}

t_rolling_update() {
	fresh
	adm node1 service create -d --name ru --replicas 3 busybox
	wait_running ru 3
	adm node1 service update -d --image nginx --update-order start-first \
		--update-parallelism 1 --update-delay 1s ru
	local t0 min=999 n samples=0 done=0
	t0=$(date +%s)
	while [ $(( $(date +%s) - t0 )) -lt 180 ]; do
		tasks ru > "$TEST_TMP/ru"
		n=$(awk '$5 == "running"' "$TEST_TMP/ru" | wc -l)
		[ "$n" -lt "$min" ] && min=$n
		samples=$((samples + 1))
		if [ "$(awk '$4 == "running" && $5 == "running" && $6 ~ /^nginx/' "$TEST_TMP/ru" | wc -l)" = 3 ] &&
			! awk '$5 == "running" && $6 !~ /^nginx/' "$TEST_TMP/ru" | grep -q .; then
			done=1; break
		fi
		sleep 0.2
	done
	echo "# update took $(( $(date +%s) - t0 )) s; $samples samples, fewest running $min"
	cat "$TEST_TMP/ru"
	[ "$done" = 1 ] || fail "the update did not finish within 180 s"
	[ "$min" -ge 3 ] || fail "running tasks fell to $min during a start-first update of 3"
	tasks_have_containers ru
	services_clear
}

t_image_missing() {
	fresh
	lab mkimage "$TEST_TMP/img" busybox=onlyone:latest
	adm node1 image load "$TEST_TMP/img/onlyone.tar"
	adm node1 service create -d --name oo --replicas 3 onlyone
	poll_until -d "3 onlyone tasks on node1" 120 all_on oo node1 3
	tasks oo
	echo "# rejected tasks: $(tasks oo | awk '$5 == "rejected" { print $3 }' | sort | uniq -c | xargs)"
	tasks_have_containers oo
	services_clear
}
all_on() { # SERVICE NODE N
	running_is "$1" "$3" && [ "$(running_on "$1" "$2")" = "$3" ]
}

# The service's endpoint (VIPs, ports), as canonical JSON.
endpoint_of() {
	adm node1 service inspect "$1" | jq -S -c 'if type == "array" then .[0] else . end | .Endpoint'
}

t_manager_restart() {
	fresh
	adm node1 service create -d --name mk --replicas 3 -p 8080:80 nginx
	adm node1 service create -d --name mk2 --replicas 2 busybox
	wait_running mk 3
	wait_running mk2 2
	local services ep tasks1 tasks2 ctrs
	services=$(adm node1 service ls -q | sort)
	ep=$(endpoint_of mk)
	echo "# endpoint: $ep"
	grep -q '"VirtualIPs"' <<< "$ep" || fail "mk has no VirtualIPs"
	tasks1=$(tasks mk | awk '{ print $1, $3 }' | sort)
	tasks2=$(tasks mk2 | awk '{ print $1, $3 }' | sort)
	ctrs=$(all_containers)
	lab stop node1 manager --signal KILL
	lab start node1 manager
	poll_until -d "manager answers again" 60 adm node1 node ls
	poll_until -d "3 nodes Ready again" 60 ready_is 3
	sleep 5    # room for a wrong restart to show
	[ "$(adm node1 service ls -q | sort)" = "$services" ] || fail "the services changed"
	[ "$(endpoint_of mk)" = "$ep" ] || fail "the endpoint changed: $(endpoint_of mk)"
	[ "$(tasks mk | awk '{ print $1, $3 }' | sort)" = "$tasks1" ] || { tasks mk; fail "mk's tasks changed"; }
	[ "$(tasks mk2 | awk '{ print $1, $3 }' | sort)" = "$tasks2" ] || { tasks mk2; fail "mk2's tasks changed"; }
	[ "$(all_containers)" = "$ctrs" ] || { diff <(echo "$ctrs") <(all_containers); fail "containers changed"; }
	{ running_is mk 3 && running_is mk2 2; } || fail "not every task runs"
}
ready_is() { [ "$(ready_nodes)" = "$1" ]; }

t_agent_restart() {
	local ctrs tasks1 sig
	if ! running_is mk 3; then
		fresh
		adm node1 service create -d --name mk --replicas 3 -p 8080:80 nginx
		wait_running mk 3
	fi
	ctrs=$(all_containers)
	tasks1=$(tasks mk | awk '{ print $1, $3 }' | sort)
	for sig in TERM KILL; do
		lab stop node2 agent --signal "$sig"
		lab start node2 agent
		poll_until -d "node2 Ready after SIG$sig restart" 60 node_is node2 Ready
		sleep 5
		[ "$(all_containers)" = "$ctrs" ] || { diff <(echo "$ctrs") <(all_containers); fail "containers changed after SIG$sig"; }
		[ "$(tasks mk | awk '{ print $1, $3 }' | sort)" = "$tasks1" ] || { tasks mk; fail "mk's tasks changed after SIG$sig"; }
	done
}

t_node_down() {
	fresh
	adm node1 service create -d --name nd --replicas 3 busybox
	wait_running nd 3
	[ "$(running_on nd node3)" -ge 1 ] || fail "no nd task on node3 to move"
	lab stop node3 agent --signal KILL
	poll_until -d "node3 Down (Docker takes about 15 s)" 90 node_is node3 Down
	poll_until -d "nd's tasks running on node1 and node2" 90 drained nd node3 3
	tasks nd
	local n id
	for n in node1 node2; do
		while read -r id _; do
			container_of_task_runs "$n" "$id" || fail "task $id on $n has no container"
		done < <(running_tasks nd | awk -v n="$n" '$3 == n')
	done
}

# A burst of assignments must not stall an agent's session: 120 replicas
# at once converge and no node is ever reported Down meanwhile.
t_burst() {
	fresh
	adm node1 service create -d --name burst --replicas 120 busybox
	poll_until -d "burst: 120 running, every node Ready throughout" 240 burst_ok
	services_clear
}
burst_ok() {
	[ "$(ready_nodes)" = 3 ] || fail "a node was reported not Ready during the burst: $(nodes_table | xargs)"
	running_is burst 120
}

setup "3-node lab is up, every node Ready" t_up
check "replicated: --replicas 5 runs 5 runc containers spread 2/2/1" t_replicated
check "service create without -d waits until it converges" t_create_waits
check "scale up to 7 (3/2/2) and down to 2 (extra containers stop)" t_scale
check "global mode runs one task per node" t_global
check "drain moves tasks away from node3" t_drain
check "kill -9 of a container's process: the task fails and a new one runs" t_kill_container
check "a failing health check takes the task out and it is replaced" t_health
check "rolling --image update with start-first never drops below 3 running" t_rolling_update
check "an image only on node1: every task ends up on node1" t_image_missing
check "a burst of 120 replicas converges with every node Ready throughout" t_burst
check "kill -9 and restart of the manager loses no service, task, allocation, container" t_manager_restart
check "restarting an agent (TERM, KILL) restarts no container" t_agent_restart
check "a killed agent marks node3 Down and its tasks move to node1 and node2" t_node_down
finish
