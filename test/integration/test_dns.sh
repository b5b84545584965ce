#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 900
# Service discovery on a 3-node lab: swarm-dnsd answers at 127.0.0.11 in
# every container, from netd's endpoint stream: VIPs, tasks.<service>,
# dnsrr, container names, PTR, NODATA, network scoping, forwarding to the
# lab's upstream (unbound), SERVFAIL for a dead upstream, freshness after a
# scale-down, and a dnsd restart under load.
PREFIX=tdn
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab

# Task ids of NODE's containers on NET (their netns files are named so).
tasks_on() { # NODE NET
	adm "$1" network inspect "$2" --format '{{json .Containers}}' 2> /dev/null | jq -r 'keys[]'
}
# dig inside the sandbox of one of SERVICE's containers on NODE.
sandbox_of() { # NODE SERVICE NET
	local t
	t=$(adm "$1" network inspect "$3" --format '{{json .Containers}}' 2> /dev/null |
		jq -r --arg s "$2." 'to_entries[] | select(.value.Name | startswith($s)) | .key' | head -n 1)
	[ -n "$t" ] && echo "$LAB_RUN/$1/run/netns/$t"
}
qdig() { # NETNS ARGS...
	local ns=$1; shift
	timeout 10 nsenter --net="$ns" dig @127.0.0.11 +tries=1 +time=3 "$@"
}
short() { qdig "$@" +short | sort; }
vip_of() { # SERVICE
	adm node1 service inspect "$1" --format '{{json .Endpoint.VirtualIPs}}' | jq -r '.[0].Addr' | sed 's|/.*||'
}

t_up() {
	lab_up 3
	adm node1 network create --driver overlay --opt encrypted --subnet 198.18.10.0/24 ol_net > /dev/null
	adm node1 network create --driver overlay --subnet 198.18.20.0/24 ol_other > /dev/null
	adm node1 service create -d --name my-nginx --replicas 3 --network ol_net nginx > /dev/null
	adm node1 service create -d --name web-test --replicas 3 --endpoint-mode dnsrr --network ol_net busybox > /dev/null
	adm node1 service create -d --name lonely --replicas 1 --network ol_other busybox > /dev/null
	wait_running my-nginx 3
	wait_running web-test 3
	wait_running lonely 1
	[ "$(spread_of my-nginx)" = "1 1 1" ] || fail "my-nginx is not on every node: $(running_per_node my-nginx | xargs)"
}

ips_of() { # SERVICE: overlay addresses of its running tasks, every node
	local n
	for n in node1 node2 node3; do
		adm $n network inspect ol_net --format '{{json .Containers}}' 2> /dev/null |
			jq -r --arg s "$1." '.[] | select(.Name | startswith($s)) | .IPv4Address' | sed 's|/.*||'
	done | sort
}

t_nslookup() {
	local c vip out
	vip=$(vip_of my-nginx)
	# a busybox container, on whichever node, asks with busybox nslookup
	local node
	for node in node1 node2 node3; do
		c=$(adm $node network inspect ol_net --format '{{json .Containers}}' 2> /dev/null |
			jq -r '.[] | select(.Name | startswith("web-test.")) | .Name' | head -n 1)
		[ -n "$c" ] && break
	done
	[ -n "$c" ] || fail "no web-test container"
	out=$(adm $node container exec "$c" -- nslookup my-nginx)
	echo "$out" | sed 's/^/# /'
	grep -q "Address: $vip" <<< "$out" || fail "nslookup my-nginx does not answer the VIP $vip"
	out=$(adm $node container exec "$c" -- nslookup tasks.my-nginx)
	[ "$(grep -c '^Address: 198.18.10' <<< "$out")" = 3 ] || { echo "$out"; fail "tasks.my-nginx does not list 3 tasks"; }
	out=$(adm $node container exec "$c" -- nslookup web-test)
	[ "$(grep '^Address: 198.18.10' <<< "$out" | awk '{ print $2 }' | sort | xargs)" = "$(ips_of web-test | xargs)" ] ||
		{ echo "$out"; fail "web-test (dnsrr) does not answer its task addresses $(ips_of web-test | xargs)"; }
}

t_dig() {
	local ns out ip name
	vip_of my-nginx > "$TEST_TMP/vip"
	ns=$(sandbox_of node2 my-nginx ol_net)
	[ -n "$ns" ] || fail "no sandbox of my-nginx on node2"
	out=$(qdig "$ns" my-nginx)
	grep -q 'flags: qr aa' <<< "$out" || { echo "$out"; fail "no authoritative answer for my-nginx"; }
	grep -qE "^my-nginx\.\s+600\s+IN\s+A\s+$(vip_of my-nginx)" <<< "$out" || { echo "$out"; fail "VIP answer without TTL 600"; }
	out=$(qdig "$ns" tasks.my-nginx)
	[ "$(grep -cE '^tasks\.my-nginx\.\s+5\s+IN\s+A' <<< "$out")" = 3 ] || { echo "$out"; fail "tasks. answers are not 3 with TTL 5"; }
	out=$(qdig "$ns" my-nginx AAAA)
	grep -q 'status: NOERROR' <<< "$out" && grep -q 'ANSWER: 0' <<< "$out" || { echo "$out"; fail "AAAA of a known name is not NODATA"; }
	out=$(qdig "$ns" my-nginx MX)
	grep -q 'status: NOERROR' <<< "$out" && grep -q 'ANSWER: 0' <<< "$out" || { echo "$out"; fail "MX of a known name is not NODATA"; }
	ip=$(ips_of web-test | head -n 1)
	name=$(short "$ns" -x "$ip")
	echo "# PTR $ip: $name"
	[[ $name == web-test.*.ol_net. ]] || fail "PTR of $ip is '$name', want web-test.<slot>.<id>.ol_net."
	[ "$(short "$ns" MY-NGINX.)" = "$(vip_of my-nginx)" ] || fail "names are not case-insensitive"
	[ "$(short "$ns" my-nginx.ol_net)" = "$(vip_of my-nginx)" ] || fail "<name>.<network> does not answer"
	[ "$(short "$ns" +tcp tasks.my-nginx | wc -l)" = 3 ] || fail "no answer over TCP"
	[ -n "$(short "$ns" my-nginx.1)" ] || fail "the short container name my-nginx.1 does not answer"
}

t_scope_forward() {
	local ns out
	ns=$(sandbox_of "$(running_tasks lonely | awk '{ print $3; exit }')" lonely ol_other)
	[ -n "$ns" ] || fail "no sandbox of lonely"
	out=$(qdig "$ns" my-nginx)
	grep -q 'status: NXDOMAIN' <<< "$out" || { echo "$out"; fail "a container off ol_net resolves my-nginx"; }
	[ "$(short "$ns" www.example.com)" = 192.0.2.80 ] || fail "www.example.com is not forwarded to the upstream"
	[ -n "$(short "$ns" lonely)" ] || fail "lonely does not resolve its own service"
}

# tasks.my-nginx from a my-nginx sandbox on NODE counts N addresses.
tasks_count_is() { [ "$(short "$(cat "$TEST_TMP/ns.$1")" tasks.my-nginx | grep -c .)" = "$2" ]; }

t_scale_fresh() {
	local n t0 i seen=() done_at=() all
	for n in node1 node2 node3; do
		sandbox_of $n web-test ol_net > "$TEST_TMP/ns.$n" || fail "no web-test sandbox on $n"
	done
	t0=$(now)
	adm node1 service scale my-nginx=1 > "$TEST_TMP/scale.out" 2>&1 &
	local scaler=$!
	# all three nodes polled in turn, 0.05 s apart: when each first answers 1 task
	for i in $(seq 600); do
		all=1
		for n in 1 2 3; do
			[ -n "${seen[$n]:-}" ] && continue
			if tasks_count_is node$n 1; then seen[$n]=1; done_at[$n]=$(since "$t0"); else all=0; fi
		done
		[ "$all" = 1 ] && break
		sleep 0.05
	done
	[ "$all" = 1 ] || fail "not every node dropped the stopped tasks within 30 s"
	local first last
	first=$(printf '%s\n' "${done_at[@]}" | sort -g | head -n 1)
	last=$(printf '%s\n' "${done_at[@]}" | sort -g | tail -n 1)
	echo "# from swarmadm service scale: node1 ${done_at[1]} s, node2 ${done_at[2]} s, node3 ${done_at[3]} s"
	echo "# first node to last: $(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.2f", b - a }') s"
	wait $scaler || { cat "$TEST_TMP/scale.out"; fail "service scale failed"; }
}

dnsd_stat() { on node2 swarm-dnsd status | jq -r ".$1"; }

t_bad_packets() {
	local ns f0 d0 out
	ns=$(sandbox_of node2 web-test ol_net) || fail "no web-test sandbox on node2"
	f0=$(dnsd_stat Formerr)
	d0=$(dnsd_stat Dropped)
	nsenter --net="$ns" bash -c '
		send() { printf "$1" > /dev/udp/127.0.0.11/53; }
		send "\x12\x34\x01"                                         # shorter than a header
		send "\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"  # a response
		send "\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"  # pointer to itself
		send "\x12\x36\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f\x61"            # truncated label
		head -c 60000 /dev/urandom > /dev/udp/127.0.0.11/53                 # oversized junk
		exit 0'
	sleep 0.5
	out=$(qdig "$ns" tasks.my-nginx +short)
	[ -n "$out" ] || fail "dnsd stopped answering after bad packets"
	echo "# FORMERR $f0 -> $(dnsd_stat Formerr), dropped $d0 -> $(dnsd_stat Dropped)"
	[ "$(dnsd_stat Formerr)" -ge $((f0 + 2)) ] || fail "malformed queries were not answered FORMERR"
	[ "$(dnsd_stat Dropped)" -ge $((d0 + 2)) ] || fail "a short packet and a response were not dropped and counted"
}

t_manager_away() {
	local ns
	ns=$(sandbox_of node2 web-test ol_net) || fail "no web-test sandbox on node2"
	lab stop node1 manager
	[ -n "$(short "$ns" tasks.my-nginx)" ] || { lab start node1 manager; fail "no answer with the manager stopped"; }
	[ "$(short "$ns" my-nginx)" = "$(cat "$TEST_TMP/vip")" ] || { lab start node1 manager; fail "no VIP answer with the manager stopped"; }
	lab start node1 manager
}

t_dead_upstream() {
	local ns out t0 pid
	ns=$(sandbox_of node2 web-test ol_net) || fail "no web-test sandbox on node2"
	for pid in $(ip netns pids "$PREFIX-upstream" 2> /dev/null); do kill -9 "$pid" 2> /dev/null; done
	t0=$(now)
	out=$(timeout 20 nsenter --net="$ns" dig @127.0.0.11 +tries=1 +time=10 nothing-here.example.org)
	echo "# answered after $(since "$t0") s"
	grep -q 'status: SERVFAIL' <<< "$out" || { echo "$out"; fail "a dead upstream does not give SERVFAIL"; }
	# names of the cluster still answer
	[ -n "$(short "$ns" tasks.my-nginx)" ] || fail "cluster names stopped answering with the upstream dead"
}

t_restart_under_load() {
	local ns i ok=0 bad=0 gap
	ns=$(sandbox_of node2 web-test ol_net) || fail "no web-test sandbox on node2"
	# 0.05 s apart for about 6 s; dnsd killed 1.5 s in, restarted at once
	( sleep 1.5; lab stop node2 dnsd --signal KILL; lab start node2 dnsd > /dev/null ) &
	local restarter=$!
	for i in $(seq 120); do
		if [ -n "$(timeout 2 nsenter --net="$ns" dig @127.0.0.11 +tries=1 +time=1 +short tasks.my-nginx)" ]; then
			ok=$((ok + 1)); echo "$(now) ok"
		else
			bad=$((bad + 1)); echo "$(now) lost"
		fi
		sleep 0.05
	done > "$TEST_TMP/load.log"
	wait $restarter
	gap=$(awk '$2 == "ok" { if (p) { d = $1 - p; if (d > m) m = d } p = $1 } END { printf "%.2f", m }' "$TEST_TMP/load.log")
	echo "# $ok answered, $bad lost; longest gap between answers ${gap} s"
	awk -v g="$gap" 'BEGIN { exit !(g < 2.0) }' || fail "answers stopped for ${gap} s across the restart"
	[ "$(short "$ns" my-nginx)" = "$(vip_of my-nginx)" ] || fail "the restarted dnsd does not answer"
}

check "up: 3 nodes, ol_net with my-nginx (vip) and web-test (dnsrr), ol_other with lonely" t_up
check "nslookup in a container: my-nginx -> VIP, tasks.my-nginx -> 3 tasks, web-test -> its tasks" t_nslookup
check "dig: aa flag, TTL 600 for VIPs and 5 for tasks, NODATA for AAAA/MX, PTR, case, <name>.<network>, TCP" t_dig
check "scoping and forwarding: a container off ol_net cannot resolve my-nginx; www.example.com is forwarded" t_scope_forward
check "a scale-down shows in tasks.my-nginx on every node" t_scale_fresh
check "dnsd kill -9 and restart under queries: answers come back at once, no container restart" t_restart_under_load
check "bad packets: truncated, compression loop, oversized, responses get FORMERR or are dropped and counted; dnsd keeps serving" t_bad_packets
check "the manager away: names keep answering" t_manager_away
check "a dead upstream gives SERVFAIL within the timeout; cluster names keep answering" t_dead_upstream
finish
