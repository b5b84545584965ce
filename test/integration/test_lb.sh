#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 900
# Load balancing on a 3-node lab: swarm-lbd balances service VIPs inside
# every sandbox and serves the routing mesh on every node (TCP and UDP),
# mode=host ports only where a task runs, a scale-down and an lbd kill -9
# under wrk, conntrack of balanced idle connections, and the manager's
# refusals (dnsrr with -p, a port clash, ports out of range).
PREFIX=tlb
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab
for b in wrk conntrack python3 curl; do
	command -v "$b" > /dev/null || { SKIP_ALL="$b not installed (scripts/deps.sh)"; break; }
done

CLIENT=192.0.2.100
NODES="192.0.2.11 192.0.2.12 192.0.2.13"

# The sandbox netns file of a task of SERVICE running on NODE (network
# inspect lists the node's containers by task id).
sandbox_of() { # NODE SERVICE NET
	local t
	t=$(adm "$1" network inspect "$3" --format '{{json .Containers}}' 2> /dev/null |
		jq -r --arg s "$2." 'to_entries[] | select(.value.Name | startswith($s)) | .key' | head -n 1)
	[ -n "$t" ] && echo "$LAB_RUN/$1/run/netns/$t"
}
# "NODE TASK-ID" of every running task of SERVICE.
task_nodes() { # SERVICE
	running_tasks "$1" | awk '{ print $3, $1 }'
}
# The client container (service "client", one task) and its node.
client_ctr() {
	local n c
	for n in node1 node2 node3; do
		c=$(adm $n container ls 2> /dev/null | awk '/ client\.1\./ { print $NF }')
		[ -n "$c" ] && { echo "$n $c"; return 0; }
	done
	return 1
}
in_client() { # CMD...
	local nc
	nc=$(client_ctr) || return 1
	adm "${nc%% *}" container exec "${nc#* }" -- "$@"
}
# A UDP responder in netns (a task's sandbox): each datagram is answered
# with "<tag> <sender address>"; it ends by itself after SECONDS.
udp_responder() { # NETNS PORT TAG SECONDS
	nsenter --net="$1" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.5)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        continue
    s.sendto(("%s %s" % (sys.argv[2], peer[0])).encode(), peer)
' "$2" "$3" "$4"
}
udp_ask() { # HOST PORT: prints the answer
	on cl python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(200)[0].decode())
' "$1" "$2"
}
# wrk from the client host; prints its output.
wrk_run() { # SECONDS URL [wrk args]
	local d=$1 url=$2; shift 2
	ON_TIMEOUT=$((d + 30)) on cl wrk -t2 -c10 -d"${d}s" --timeout 3s "$@" "$url"
}

# NODE's lbd balances PORT ("8081:80/tcp") in its ingress sandbox to N
# backends, and sends it there from the node's namespace.
mesh_programmed() { # NODE PORT N
	local pub=${2%%:*} proto=${2##*/} st
	st=$(on "$1" swarm-lbd status) || return 1
	jq -e --arg p "$2" --argjson n "$3" --arg m "$pub:$pub/$proto" '
		([.Namespaces[] | select(.Kind == "ingress") | .Services[]
		  | select((.Ports | index($p)) and (.Backends | length == $n))] | length > 0) and
		([.Namespaces[] | select(.Kind == "node") | .Services[]
		  | select(.ID == "mesh" and (.Ports | index($m)))] | length > 0)' <<< "$st" > /dev/null
}

t_up() {
	lab_up 3
	lab attach cl "$CLIENT" > /dev/null
	adm node1 network create --driver overlay --opt encrypted --subnet 198.18.10.0/24 ol_net > /dev/null
	adm node1 service create -d --name my-nginx --replicas 5 --network ol_net -p 80:80 nginx > /dev/null
	adm node1 service create -d --name client --replicas 1 --network ol_net busybox > /dev/null
	adm node1 service create -d --name solo --replicas 1 --network ol_net -p 8081:80 nginx > /dev/null
	adm node1 service create -d --name udp-echo --replicas 2 --network ol_net -p 5353:5353/udp busybox > /dev/null
	adm node1 service create -d --name hostweb --replicas 1 \
		--publish mode=host,published=8080,target=80 nginx > /dev/null
	adm node1 service create -d --name hostudp --replicas 1 \
		--publish mode=host,published=5454,target=5454,protocol=udp busybox > /dev/null
	wait_running my-nginx 5
	wait_running client 1
	wait_running solo 1
	wait_running udp-echo 2
	wait_running hostweb 1
	wait_running hostudp 1
	echo "# my-nginx per node: $(running_per_node my-nginx | xargs)"
	# every node's lbd has programmed the mesh, solo's port included
	local n
	for n in node1 node2 node3; do
		poll_until -d "$n: mesh programmed" 30 mesh_programmed "$n" 80:80/tcp 5
		poll_until -d "$n: solo's port programmed" 30 mesh_programmed "$n" 8081:80/tcp 1
	done
}

t_vip_round_robin() {
	local i names
	for i in $(seq 20); do
		in_client busybox timeout 5 busybox wget -q -O- http://my-nginx/
	done > "$TEST_TMP/vip.out"
	names=$(sed 's/\.[^.]*$//' "$TEST_TMP/vip.out" | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
	echo "# 20 requests to http://my-nginx/: $names"
	[ "$(sed 's/\.[^.]*$//' "$TEST_TMP/vip.out" | sort -u | wc -l)" = 5 ] ||
		fail "20 requests reached $(sed 's/\.[^.]*$//' "$TEST_TMP/vip.out" | sort -u | wc -l) tasks, not all 5"
	# the client's own address is what the tasks see: no source NAT on the VIP
	local vip ns
	vip=$(vip_of my-nginx ol_net)
	in_client ping -c 2 -W 2 "$vip" | tail -n 2 | sed 's/^/# /'
	in_client ping -c 2 -W 2 my-nginx > /dev/null || fail "ping my-nginx ($vip) does not answer"
}

t_mesh_every_node() {
	local a
	# shellcheck disable=SC2086 # one address per word
	mesh_spreads $NODES
	# solo runs on one node; its port answers on all three
	echo "# solo runs on $(running_per_node solo | awk '{ print $2 }')"
	for a in $NODES; do
		on cl curl -sf -m 5 "http://$a:8081/" | grep -q '^solo\.1\.' || fail "http://$a:8081/ (solo) does not answer"
	done
}

t_udp_mesh() {
	local node id pids=() a out n=0
	while read -r node id; do
		bg udp_responder "$LAB_RUN/$node/run/netns/$id" 5353 "$id" 60
		pids+=($!)
	done < <(task_nodes udp-echo)
	sleep 1
	echo "# udp-echo runs on $(running_per_node udp-echo | awk '{ print $2 }' | xargs)"
	for a in $NODES; do
		out=$(udp_ask "$a" 5353) || fail "UDP $a:5353 unanswered"
		echo "# udp $a:5353 -> task ${out%% *} (it saw ${out#* })"
		n=$((n + 1))
	done
	kill "${pids[@]}" 2> /dev/null || true
	[ "$n" = 3 ]
}

t_host_mode() {
	local hnode a out
	hnode=$(running_tasks hostweb | awk '{ print $3 }')
	echo "# hostweb runs on $hnode"
	for a in $NODES; do
		if [ "$a" = "$(cat "$LAB_RUN/$hnode/addr")" ]; then
			on cl curl -sf -m 5 "http://$a:8080/" | grep -q '^hostweb\.' || fail "http://$a:8080/ does not answer on hostweb's node"
		elif on cl curl -s -m 3 "http://$a:8080/" > /dev/null; then
			fail "http://$a:8080/ answers on $a, which runs no hostweb task"
		fi
	done
	# mode=host keeps the client's address (no source NAT)
	local node id
	read -r node id < <(task_nodes hostudp)
	bg udp_responder "$LAB_RUN/$node/run/netns/$id" 5454 "$id" 20
	sleep 1
	out=$(udp_ask "$(cat "$LAB_RUN/$node/addr")" 5454) || fail "UDP mode=host port unanswered"
	echo "# udp mode=host on $node: the task saw ${out#* }"
	[ "${out#* }" = "$CLIENT" ] || fail "the task saw ${out#* }, not the client's $CLIENT"
}

t_idle_conntrack() {
	local nc ns vip line
	nc=$(client_ctr)
	ns=$(sandbox_of "${nc%% *}" client ol_net)
	vip=$(vip_of my-nginx ol_net)
	# an idle connection through the VIP: nc holds it open, sends nothing
	bg timeout 30 "$SWARM_LAB" --prefix "$PREFIX" exec "${nc%% *}" -- swarmadm container exec "${nc#* }" -- \
		sh -c "sleep 20 | nc $vip 80"
	poll_until -d "idle connection tracked" 10 sh -c \
		"nsenter --net='$ns' conntrack -L -p tcp --orig-dst $vip --state ESTABLISHED 2>/dev/null | grep -q ESTABLISHED"
	line=$(nsenter --net="$ns" conntrack -L -p tcp --orig-dst "$vip" --state ESTABLISHED 2> /dev/null | head -n 1)
	echo "# $line"
	local t
	t=$(awk '{ print $3 }' <<< "$line")
	echo "# the balanced idle connection expires in $t s (IPVS would cut it after 900 s)"
	[ "$t" -gt 900 ] || fail "idle timeout $t s"
}

# my-nginx's backends in NODE's ingress sandbox, per lbd.
mesh_backends() { # NODE
	on "$1" swarm-lbd status |
		jq -r '.Namespaces[] | select(.Kind == "ingress") | .Services[] | select(.Ports | index("80:80/tcp")) | .Backends[]'
}
# Tracked connections in NODE's ingress sandbox balanced to one of IPS.
tracked_to() { # NODE IPS...
	local node=$1 ip n=0; shift
	for ip in "$@"; do
		n=$((n + $(nsenter --net="$LAB_RUN/$node/run/ingress_sbox" conntrack -L --reply-src "$ip" 2> /dev/null | grep -c . || true)))
	done
	echo "$n"
}

mesh_count_is() { [ "$(mesh_backends "$1" | wc -l)" = "$2" ]; }
none_tracked_to() { [ "$(tracked_to "$@")" = 0 ]; }

t_scale_down_under_wrk() {
	local out=$TEST_TMP/wrk-scale.out failed total before after removed
	before=$(mesh_backends node1 | sort)
	( sleep 3; adm node1 service scale my-nginx=2 > /dev/null ) &
	local scaler=$!
	wrk_run 10 "http://192.0.2.11/" > "$out"
	wait $scaler
	sed 's/^/# /' "$out"
	failed=$(wrk_failed "$out"); total=$(wrk_total "$out")
	echo "# scale 5 -> 2 under wrk (10 connections): $failed of $total requests failed"
	# at most the requests in flight on the 3 removed tasks' connections
	[ "$failed" -le 10 ] || fail "$failed requests failed"
	poll_until -d "my-nginx at 2" 60 running_is my-nginx 2
	poll_until -d "node1's mesh down to 2 backends" 20 mesh_count_is node1 2
	after=$(mesh_backends node1 | sort)
	removed=$(comm -23 <(echo "$before") <(echo "$after") | xargs)
	echo "# removed backends: $removed; lbd cleared $(on node1 swarm-lbd status | jq .ConntrackCleared) tracked connection(s) on node1"
	# shellcheck disable=SC2086 # one address per word
	poll_until -d "no tracked connection to a removed task in node1's ingress sandbox" 20 \
		none_tracked_to node1 $removed
}

t_lbd_kill_under_wrk() {
	local out=$TEST_TMP/wrk-kill.out failed total before after
	before=$(on node1 nft list ruleset | md5sum)
	(
		sleep 2
		lab stop node1 lbd --signal KILL
		sleep 1
		lab start node1 lbd > /dev/null
	) &
	local killer=$!
	# Connection: close: every request is a new connection through the mesh
	wrk_run 8 "http://192.0.2.11/" -H 'Connection: close' > "$out"
	wait $killer
	sed 's/^/# /' "$out"
	failed=$(wrk_failed "$out"); total=$(wrk_total "$out")
	echo "# lbd kill -9 + restart on node1 under wrk (new connection per request): $failed of $total failed"
	[ "$failed" = 0 ] || fail "$failed requests failed"
	poll_until -d "restarted lbd synced" 20 sh -c "'$SWARM_LAB' --prefix $PREFIX exec node1 -- swarm-lbd status | jq -e .Synced"
	after=$(on node1 nft list ruleset | md5sum)
	[ "$before" = "$after" ] || fail "the restart changed node1's rules"
	echo "# node1's rules identical across the restart"
}

t_refusals() {
	local out
	if out=$(adm node1 service create -d --name rr-pub --endpoint-mode dnsrr -p 8090:80 nginx 2>&1); then
		fail "dnsrr with -p accepted"
	fi
	echo "# dnsrr -p: $out"
	grep -qi 'dnsrr' <<< "$out" || fail "unclear error: $out"
	! adm node1 service inspect rr-pub > /dev/null 2>&1 || fail "rr-pub exists"
	adm node1 service create -d --name rr-host --endpoint-mode dnsrr \
		--publish mode=host,published=8091,target=80 nginx > /dev/null || fail "dnsrr with a mode=host port refused"
	if out=$(adm node1 service create -d --name clash -p 80:80 nginx 2>&1); then
		fail "a second service on port 80 accepted"
	fi
	echo "# clash: $out"
	grep -q 'my-nginx' <<< "$out" || fail "the error does not name my-nginx: $out"
	! adm node1 service inspect clash > /dev/null 2>&1 || fail "clash exists"
	if out=$(adm node1 service update --publish-add 8081:80 my-nginx 2>&1); then
		fail "update taking solo's port accepted"
	fi
	grep -q 'solo' <<< "$out" || fail "the update error does not name solo: $out"
	local p
	for p in 70000:80 80:70000 80:0; do
		if out=$(adm node1 service create -d --name badport -p "$p" nginx 2>&1); then
			fail "-p $p accepted"
		fi
		echo "# -p $p: $out"
	done
	! adm node1 service inspect badport > /dev/null 2>&1 || fail "badport exists"
	adm node1 service rm rr-host > /dev/null
}

# A batch that fails is retried by itself, without waiting for another
# change or the periodic resync (60 s), and lbd's table is its own: a
# hand-made element holding port 8082 in node3's mesh map (leading to a
# chain of its own) makes lbd's batch for a new service fail; lbd retries,
# reads the table back, deletes the stray element in the same batch that
# adds its own, and the port answers, no command run.
t_retry_after_failure() {
	on node3 nft add chain ip swarm_lb blocker
	on node3 nft add element ip swarm_lb ports '{ tcp . 8082 : goto blocker }'
	local t0 dt
	t0=$(now)
	adm node1 service create -d --name solo2 --replicas 1 --network ol_net -p 8082:80 nginx > /dev/null
	wait_running solo2 1
	poll_until -d "node1: solo2's port programmed" 30 mesh_programmed node1 8082:80/tcp 1
	poll_until -d "node3: solo2's port answers" 20 sh -c \
		"'$SWARM_LAB' --prefix $PREFIX exec cl curl -sf -m 2 http://192.0.2.13:8082/ | grep -q '^solo2\.1\.'"
	dt=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	local retries
	retries=$(on node3 swarm-lbd status | jq .Retries)
	echo "# port 8082 answers on node3 $dt s after the service was created, the stray element removed (retries: $retries)"
	[ "$retries" -ge 1 ] || fail "no retry counted on node3"
	on node3 nft list map ip swarm_lb ports | grep -q 'tcp \. 8082 : goto svc_mesh' ||
		fail "port 8082 does not lead to the mesh: $(on node3 nft list map ip swarm_lb ports)"
	on node3 nft delete chain ip swarm_lb blocker

	# Now a failure lbd must not repair (someone else's rule): a rule
	# jumping to solo2's chain in node3's ingress sandbox makes deleting
	# that chain fail (EBUSY) when solo2 goes. Once the rule is removed by
	# hand, lbd's next retry deletes the chain, with no change after it.
	local id ns=$LAB_RUN/node3/run/ingress_sbox
	id=$(on node3 swarm-lbd status | jq -r '.Namespaces[] | select(.Kind == "ingress") | .Services[]
		| select(.Ports | index("8082:80/tcp")) | .ID')
	[ -n "$id" ] || fail "solo2 not in node3's ingress sandbox"
	nsenter --net="$ns" nft add chain ip swarm_lb holder
	nsenter --net="$ns" nft add rule ip swarm_lb holder jump "svc_$id"
	adm node1 service rm solo2 > /dev/null
	chain_gone() { ! nsenter --net="$ns" nft list chain ip swarm_lb "svc_$id" > /dev/null 2>&1; }
	retried() { [ "$(on node3 swarm-lbd status | jq .Retries)" -ge "$1" ]; }
	poll_until -d "node3's lbd fails to delete solo2's chain, and retries" 30 retried $((retries + 2))
	chain_gone && fail "solo2's chain deleted while a rule jumps to it"
	nsenter --net="$ns" nft delete chain ip swarm_lb holder
	t0=$(now)
	poll_until -d "node3: solo2's chain deleted once the rule is gone" 20 chain_gone
	dt=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	echo "# solo2's chain deleted $dt s after the foreign rule went, with no further change (retries: $(on node3 swarm-lbd status | jq .Retries))"
}

check "up: 3 nodes, my-nginx x5 on ol_net with -p 80, client, solo -p 8081, udp-echo -p 5353/udp, mode=host services" t_up
check "20 requests to http://my-nginx/ from a container reach all 5 tasks; ping the VIP" t_vip_round_robin
check "routing mesh: http://<nodeK>/ answers on every node from an underlay client, also for a service on one node" t_mesh_every_node
check "routing mesh over UDP: a published UDP port answers on every node" t_udp_mesh
check "mode=host: the port answers only where the task runs, and the task sees the client's address" t_host_mode
check "a balanced idle connection's conntrack entry outlives IPVS's 900 s" t_idle_conntrack
check "scale-down under wrk fails no request beyond those in flight; removed tasks' connections cleared" t_scale_down_under_wrk
check "lbd kill -9 and restart under wrk fails no request and changes no rule" t_lbd_kill_under_wrk
check "refused: dnsrr with -p, a port another service publishes (named), ports outside 1-65535" t_refusals
check "a failed batch is retried by itself: a port held by a hand-made element in lbd's map is taken back; a chain held by a foreign rule goes once the rule does" t_retry_after_failure
finish
