#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# swarm-lab itself: up, status, exec, attach, the upstream resolver and www,
# stopping and starting a daemon, and a down that leaves nothing behind,
# twice, and after an up that failed half-way.
PREFIX=tlab
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab

SYSCTLS_BEFORE=$(sysctl -n net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2 \
	net.ipv4.neigh.default.gc_thresh3 2>/dev/null | xargs)

t_up() {
	lab_up 3
}

t_status() {
	lab status | tee "$TEST_TMP/status"
	[ "$(wc -l < "$TEST_TMP/status")" = 3 ] || fail "expected 3 lines"
	awk '$1 == "node1" && $2 == "192.0.2.11" && $3 == "manager" && $4 == "Ready"' "$TEST_TMP/status" | grep -q . ||
		fail "node1 is not '192.0.2.11 manager Ready'"
	for i in 2 3; do
		awk -v n="node$i" -v a="192.0.2.1$i" '$1 == n && $2 == a && $3 == "worker" && $4 == "Ready"' "$TEST_TMP/status" | grep -q . ||
			fail "node$i is not '192.0.2.1$i worker Ready'"
	done
	[ "$(ready_nodes)" = 3 ] || fail "node ls does not show 3 Ready nodes"
}

t_exec() {
	on node2 ip -4 -o addr show dev eth0 | grep -q ' 192\.0\.2\.12/24 ' || fail "node2 eth0 is not 192.0.2.12/24"
	# shellcheck disable=SC2016 # expanded in the node
	[ "$(on node2 sh -c 'echo $SWARM_RUN_DIR')" = "$LAB_RUN/node2/run" ] || fail "SWARM_RUN_DIR is not set"
	on node1 swarmadm node ls > /dev/null
	local rc=0
	on node3 sh -c 'exit 3' || rc=$?
	[ "$rc" = 3 ] || fail "exec did not pass the exit status 3 through (got $rc)"
	[ "$(echo piped | "$SWARM_LAB" --prefix "$PREFIX" exec node1 -- cat)" = piped ] || fail "exec does not pass stdin"
	if lab exec node9 -- true 2> /dev/null; then fail "exec on an unknown node succeeded"; fi
}

t_attach() {
	lab attach c1 192.0.2.99
	on c1 busybox ping -c1 -W2 192.0.2.11 > /dev/null || fail "c1 cannot ping node1"
	on node3 busybox ping -c1 -W2 192.0.2.99 > /dev/null || fail "node3 cannot ping c1"
	if lab attach c2 192.0.2.99 2> /dev/null; then fail "a second host got 192.0.2.99"; fi
	if lab attach node7 192.0.2.98 2> /dev/null; then fail "a host got a node's name"; fi
}

t_upstream() {
	[ "$(on node2 dig +short +time=2 +tries=2 @192.0.2.53 www.example.com)" = 192.0.2.80 ] ||
		fail "192.0.2.53 does not answer www.example.com with 192.0.2.80"
	on node2 dig +time=2 +tries=1 @192.0.2.53 nothing.invalid | grep -q 'status: NXDOMAIN' ||
		fail "the upstream does not answer NXDOMAIN for a name it does not have"
	on node3 busybox ping -c1 -W2 192.0.2.80 > /dev/null || fail "www does not answer ping"
	on node1 timeout 10 busybox wget -q -O - http://192.0.2.80/ | grep -q www.example.com || fail "www does not answer HTTP"
}

# Every daemon's /metrics passes promtool's format check, and a real
# Prometheus (run in node1's namespace) scrapes every daemon as up.
t_metrics() {
	command -v promtool > /dev/null || skip "promtool not installed (Debian prometheus)"
	local n i=0 port targets=""
	for n in node1 node2 node3; do
		i=$((i + 1))
		for port in 9400 9401 9402 9403 9404; do
			[ "$n" != node1 ] && [ "$port" = 9400 ] && continue
			on "$n" timeout 5 busybox wget -q -O "$TEST_TMP/m.$n.$port" "http://192.0.2.1$i:$port/metrics" ||
				fail "no /metrics on $n:$port"
			promtool check metrics < "$TEST_TMP/m.$n.$port" > "$TEST_TMP/promtool" 2>&1 ||
				{ cat "$TEST_TMP/promtool"; fail "promtool rejects $n:$port/metrics"; }
			targets="$targets'192.0.2.1$i:$port',"
		done
	done
	grep -q '^swarm_manager_tasks ' "$TEST_TMP/m.node1.9400" || fail "manager metrics lack swarm_manager_tasks"
	grep -q '^swarm_agent_session_connected 1' "$TEST_TMP/m.node2.9401" || fail "node2's agent does not report its session"
	grep -q '^swarm_netd_gossip_alive 3' "$TEST_TMP/m.node3.9402" || fail "node3's netd does not see 3 alive members"
	mkdir -p "$TEST_TMP/prom"
	cat > "$TEST_TMP/prom.yml" <<-EOC
	global: { scrape_interval: 1s, scrape_timeout: 1s }
	scrape_configs:
	  - job_name: swarm
	    static_configs: [ { targets: [ ${targets%,} ] } ]
	EOC
	on node1 prometheus --config.file="$TEST_TMP/prom.yml" --storage.tsdb.path="$TEST_TMP/prom" \
		--web.listen-address=127.0.0.1:9490 > "$TEST_TMP/prom.log" 2>&1 &
	local prom=$!
	# shellcheck disable=SC2064 # the pid is fixed now
	trap "kill $prom 2> /dev/null" EXIT
	poll_until -d "prometheus sees 13 targets up" 60 prom_all_up ||
		{ tail -5 "$TEST_TMP/prom.log"; fail "prometheus does not see every daemon up"; }
}
prom_all_up() {
	[ "$(on node1 timeout 3 busybox wget -q -O - 'http://127.0.0.1:9490/api/v1/query?query=sum(up)' 2>/dev/null |
		jq -r '.data.result[0].value[1] // 0')" = 13 ]
}

t_images() {
	local n
	for n in node1 node2 node3; do
		adm "$n" image ls > "$TEST_TMP/images"
		grep -qw busybox "$TEST_TMP/images" || fail "$n has no busybox image"
		grep -qw nginx "$TEST_TMP/images" || fail "$n has no nginx image"
	done
}

t_stop_start() {
	local old new
	old=$(lab pid node2 agent)
	lab stop node2 agent
	if lab pid node2 agent 2> /dev/null; then fail "agent still running after stop"; fi
	lab start node2 agent
	new=$(lab pid node2 agent)
	[ "$old" != "$new" ] || fail "the agent kept its pid"
	poll_until -d "node2 Ready again" 60 node_is node2 Ready
}

t_down() {
	lab down
	lab_leftovers > "$TEST_TMP/left"
	if [ -s "$TEST_TMP/left" ]; then cat "$TEST_TMP/left"; fail "down left these behind"; fi
	local now_sysctls
	now_sysctls=$(sysctl -n net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2 \
		net.ipv4.neigh.default.gc_thresh3 2>/dev/null | xargs)
	[ "$now_sysctls" = "$SYSCTLS_BEFORE" ] || fail "gc_thresh is '$now_sysctls', was '$SYSCTLS_BEFORE'"
}

t_down_twice() {
	lab down
	lab_leftovers > "$TEST_TMP/left"
	[ ! -s "$TEST_TMP/left" ] || fail "leftovers after a second down"
}

# An up whose manager dies at once (a stand-in binary) fails half-way, after
# namespaces, attached hosts and agents exist; down still removes it all.
t_failed_up() {
	local fake=$TEST_TMP/fakebin
	mkdir -p "$fake"
	printf '#!/bin/sh\necho "stand-in manager exits" >&2\nexit 1\n' > "$fake/swarm-manager"
	printf '#!/bin/sh\nexec sleep 600\n' > "$fake/swarm-agent"
	printf '#!/bin/sh\nexit 1\n' > "$fake/swarmadm"
	chmod +x "$fake"/*
	if SWARM_BIN_DIR=$fake SWARM_LAB_SOCKET_TIMEOUT=10 lab up --nodes 2; then fail "up succeeded with a dead manager"; fi
	[ -n "$(lab_leftovers)" ] || fail "the failed up left nothing to clean (did it start at all?)"
	lab down
	lab_leftovers > "$TEST_TMP/left"
	if [ -s "$TEST_TMP/left" ]; then cat "$TEST_TMP/left"; fail "down after a failed up left these behind"; fi
}

setup "up: a 3-node lab comes up" t_up
check "status: node1 manager, node2-3 workers, all Ready" t_status
check "exec: runs in the node with SWARM_RUN_DIR, passes status and stdin" t_exec
check "attach: a plain namespace on the underlay" t_attach
check "upstream resolver answers www.example.com, www answers ping and HTTP" t_upstream
check "images busybox and nginx are on every node" t_images
check "metrics: promtool accepts every daemon's /metrics, Prometheus scrapes them all up" t_metrics
check "stop and start an agent: new pid, node Ready again" t_stop_start
resume
check "down leaves no namespace, link, mount, cgroup, process or dir" t_down
check "down a second time succeeds" t_down_twice
check "down after an up that failed half-way leaves nothing" t_failed_up
finish
