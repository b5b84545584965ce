#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 900
# Encrypted overlays on a 3-node lab: the seed's `network create --opt
# encrypted` and services work as on a plain network (ping, DNS, VIP,
# routing mesh); a tshark capture of the UDP between two nodes finds a
# page's marker on a plain network and never on the encrypted one (whose
# frames ride swarm-sealer's port 4793, none as cleartext VXLAN on 4789);
# a key rotation under wrk fails no request; netd restarts and sealer
# kills keep or restore traffic; a node that missed the rotations cannot
# talk to the others and says so in its log, and heals with the new keys.
PREFIX=tenc
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab
for b in tshark wrk; do
	command -v "$b" > /dev/null || { SKIP_ALL="$b not installed (scripts/deps.sh)"; break; }
done

CLIENT=192.0.2.100
NODES="192.0.2.11 192.0.2.12 192.0.2.13"
MARKER=swarm-marker-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

# A busybox httpd whose only page holds the marker.
marker_cmd="mkdir -p /tmp/w && echo $MARKER > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"

client_ctr() { adm node1 container ls 2> /dev/null | awk '/ client\.1\./ { print $NF }'; }
in_client() { adm node1 container exec "$(client_ctr)" -- "$@"; }
# The sandbox netns file of the client (node1).
client_ns() {
	local n id
	read -r n id _ < <(task_ips client ol_net)
	echo "$LAB_RUN/$n/run/netns/$id"
}
# "NODE TASK-ID IP" of every task of SERVICE on NETWORK, from each node's
# netd (its containers on that network).
task_ips() { # SERVICE NETWORK
	local n
	for n in node1 node2 node3; do
		on "$n" swarm-netd network "$2" 2> /dev/null |
			jq -r --arg s "$1." --arg n "$n" \
				'.Containers // {} | to_entries[] | select(.value.Name | startswith($s)) | "\($n) \(.key) \(.value.IPv4Address | sub("/.*"; ""))"'
	done
}
sealer_json() { on "$1" swarm-netd status | jq -c .Sealer; }
in_sync() { on "$1" swarm-netd status | jq -e '.Sealer.InSync' > /dev/null; }
primary_key() { on "$1" swarm-netd status | jq -r '.DataPathKeys[0]'; }
drop_auth() { on "$1" swarm-netd status | jq -r '.Sealer.Status.DropAuth // 0'; }

t_up() {
	lab_up 3
	lab attach cl "$CLIENT" > /dev/null
	# the seed's command
	adm node1 network create --driver overlay --opt encrypted --subnet 198.18.20.0/24 ol_net > /dev/null
	adm node1 network create --driver overlay --subnet 198.18.21.0/24 plain_net > /dev/null
	adm node1 service create -d --name my-nginx --replicas 5 --network ol_net -p 80:80 nginx > /dev/null
	adm node1 service create -d --name client --replicas 1 --network ol_net --network plain_net \
		--constraint node.hostname==node1 busybox > /dev/null
	adm node1 service create -d --name mark-enc --network ol_net \
		--constraint node.hostname==node2 busybox sh -c "$marker_cmd" > /dev/null
	adm node1 service create -d --name mark-plain --network plain_net \
		--constraint node.hostname==node2 busybox sh -c "$marker_cmd" > /dev/null
	wait_running my-nginx 5
	wait_running client 1
	wait_running mark-enc 1
	wait_running mark-plain 1
	echo "# my-nginx per node: $(running_per_node my-nginx | xargs)"
	local n
	for n in node1 node2 node3; do
		poll_until -d "$n: sealer in sync" 30 in_sync "$n"
		poll_until -d "$n: mesh programmed" 30 sh -c \
			"'$SWARM_LAB' --prefix $PREFIX exec $n -- swarm-lbd status | jq -e '.Namespaces[] | select(.Kind == \"ingress\") | .Services[] | select(.Backends | length == 5)'"
	done
}

t_provider_and_mtu() {
	local enc
	enc=$(adm node1 network inspect ol_net --format '{{json .}}')
	echo "# Options: $(jq -c .Options <<< "$enc"); Encryption: $(jq -c .Encryption <<< "$enc")"
	jq -e '.Options | has("encrypted")' <<< "$enc" > /dev/null || fail "no encrypted option"
	jq -e '.Encryption.Provider | startswith("userspace (swarm-sealer")' <<< "$enc" > /dev/null ||
		fail "network inspect does not show the provider"
	lab logs node1 netd | grep -q "netd, encrypted networks: userspace" || fail "the provider choice is not logged"
	# the overhead: 1500 - 78 on the encrypted network, 1500 - 50 on the plain one
	local mtus
	mtus=$(in_client ip -o link | awk '/eth[0-9]/ { print $2, $5 }' | xargs)
	echo "# client MTUs: $mtus"
	in_client ip -o addr | grep -q "198.18.20." || fail "client not on ol_net"
	local encif plainif
	encif=$(in_client ip -o addr | awk '/198\.18\.20\./ { print $2 }')
	plainif=$(in_client ip -o addr | awk '/198\.18\.21\./ { print $2 }')
	in_client ip -o link show "$encif" | grep -q "mtu 1422 " || fail "$encif (ol_net) MTU is not 1422"
	in_client ip -o link show "$plainif" | grep -q "mtu 1450 " || fail "$plainif (plain_net) MTU is not 1450"
	# no kernel VXLAN device carries the encrypted network
	local vni
	vni=$(on node1 swarm-netd network ol_net | jq -r .VNI)
	nsenter --net="$LAB_RUN/node1/run/ov-$vni" ip -o link | grep -q "vxlan0" && fail "ol_net has a vxlan0"
	nsenter --net="$LAB_RUN/node1/run/ov-$vni" ip -o link | grep -q "sealer0" || fail "ol_net has no sealer0 TAP"
	echo "# node1: $(sealer_json node1)"
}

t_ping_dns_vip() {
	local node id ip n=0 vip
	while read -r -u 3 node id ip; do
		in_client ping -c 1 -W 3 "$ip" > /dev/null || fail "ping $ip (my-nginx task on $node) failed"
		n=$((n + 1))
	done 3< <(task_ips my-nginx ol_net)
	echo "# pinged $n my-nginx tasks on 3 nodes across ol_net"
	[ "$n" = 5 ] || fail "$n tasks found, not 5"
	vip=$(vip_of my-nginx ol_net)
	in_client nslookup my-nginx 127.0.0.11 | grep -q "$vip" || fail "my-nginx does not resolve to its VIP $vip"
	in_client nslookup tasks.my-nginx 127.0.0.11 | grep -c "198.18.20." | sed 's/^/# tasks.my-nginx answers: /'
	local i
	for i in $(seq 15); do
		in_client busybox timeout 5 busybox wget -q -O- http://my-nginx/
	done > "$TEST_TMP/vip.out"
	echo "# 15 requests to http://my-nginx/ ($vip): $(sed 's/\.[^.]*$//' "$TEST_TMP/vip.out" | sort | uniq -c | xargs)"
	[ "$(sed 's/\.[^.]*$//' "$TEST_TMP/vip.out" | sort -u | wc -l)" = 5 ] || fail "the VIP did not reach all 5 tasks"
}

t_mesh() {
	# shellcheck disable=SC2086 # one address per word
	mesh_spreads $NODES
}

# Captures all UDP between node1 and node2 on node1's underlay while the
# client (node1) fetches http://SERVICE/ (node2) three times.
capture_fetch() { # SERVICE PCAP
	ip netns exec "$PREFIX-node1" timeout 30 tshark -q -i eth0 \
		-f "udp and host 192.0.2.11 and host 192.0.2.12" -w "$2" -a duration:8 > "$TEST_TMP/tshark.err" 2>&1 &
	local cap=$!
	poll_until -d "capture started" 10 test -s "$2" ||
		{ sleep 2; }
	local i body
	for i in 1 2 3; do
		body=$(in_client busybox timeout 5 busybox wget -q -O- "http://$1/")
		[ "$body" = "$MARKER" ] || fail "http://$1/ answered '$body', not the marker"
	done
	wait "$cap" || true
	[ -s "$2" ] || fail "no capture: $(cat "$TEST_TMP/tshark.err")"
}
ports_of() { tshark -r "$1" -T fields -e udp.dstport 2> /dev/null | sort -n | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'; }

t_capture() {
	local plain=$TEST_TMP/plain.pcap enc=$TEST_TMP/enc.pcap
	capture_fetch mark-plain "$plain"
	capture_fetch mark-enc "$enc"
	echo "# marker $MARKER"
	echo "# plain_net capture, packets per UDP port: $(ports_of "$plain")"
	echo "# ol_net capture, packets per UDP port: $(ports_of "$enc")"
	grep -qa "$MARKER" "$plain" || fail "the marker is not in the plain network's capture (is it capturing?)"
	[ "$(tshark -r "$plain" -Y vxlan 2> /dev/null | wc -l)" -gt 0 ] || fail "no VXLAN in the plain capture"
	grep -qa "$MARKER" "$enc" && fail "the marker is in the encrypted network's capture"
	local sealed vx
	sealed=$(tshark -r "$enc" -Y "udp.port == 4793" 2> /dev/null | wc -l)
	vx=$(tshark -r "$enc" -Y "vxlan || udp.port == 4789" 2> /dev/null | wc -l)
	echo "# encrypted capture: $sealed packets on udp/4793, $vx VXLAN packets"
	[ "$sealed" -gt 0 ] || fail "no sealed packets on 4793"
	[ "$vx" = 0 ] || fail "$vx cleartext VXLAN packets while fetching over ol_net"
}

t_rotation_under_wrk() {
	local out=$TEST_TMP/wrk.out vip ns failed total n
	declare -A before
	for n in node1 node2 node3; do before[$n]=$(primary_key "$n"); done
	vip=$(vip_of my-nginx ol_net)
	ns=$(client_ns)
	(
		sleep 3
		adm node1 swarm update --rotate-network-keys > /dev/null
	) &
	local rot=$!
	# wrk inside the client's sandbox: every request crosses ol_net
	timeout 40 nsenter --net="$ns" wrk -t2 -c10 -d10s --timeout 3s "http://$vip/" > "$out"
	wait $rot
	sed 's/^/# /' "$out"
	failed=$(wrk_failed "$out"); total=$(wrk_total "$out")
	echo "# key rotation under wrk over ol_net: $failed of $total requests failed"
	[ "${total:-0}" -gt 0 ] || fail "wrk made no request"
	[ "$failed" = 0 ] || fail "$failed requests failed"
	# every node's sealer seals with the new primary (its key id is the
	# low byte of the key's Lamport time)
	for n in node1 node2 node3; do
		poll_until -d "$n: the sealer seals with the new primary key" 20 sh -c \
			"'$SWARM_LAB' --prefix $PREFIX exec $n -- swarm-netd status |
			 jq -e '.DataPathKeys[0] != ${before[$n]} and .Sealer.Status.KeyIds[0] == (.DataPathKeys[0] % 256)' > /dev/null"
	done
}

t_netd_restart_keeps_traffic() {
	local pid0 pid1 ip
	pid0=$(sealer_json node1 | jq -r .Pid)
	ip=$(task_ips mark-enc ol_net | awk '{ print $3 }')
	lab stop node1 netd
	# netd is down: the sealer still carries the encrypted network
	in_client ping -c 3 -W 2 "$ip" > /dev/null || fail "ping over ol_net failed while netd was down"
	pgrep -f "$LAB_RUN/node1/run/sealer.sock" > /dev/null || fail "the sealer stopped with netd"
	lab start node1 netd > /dev/null
	poll_until -d "restarted netd adopted the sealer" 20 in_sync node1
	lab logs node1 netd | grep -q "adopted the running sealer" || fail "no adoption in the log"
	pid1=$(pgrep -f "$LAB_RUN/node1/run/sealer.sock")
	echo "# sealer pid before $pid0, after netd restart $pid1 (netd's child before; adopted now)"
	# kill -9: netd starts another and traffic resumes
	kill -KILL "$pid1"
	poll_until -d "a new sealer in sync" 30 sh -c "'$SWARM_LAB' --prefix $PREFIX exec node1 -- swarm-netd status | jq -e '.Sealer.InSync and .Sealer.Spawns >= 1' > /dev/null"
	poll_until -d "ping over ol_net after the sealer's kill -9" 30 \
		adm node1 container exec "$(client_ctr)" -- ping -c 1 -W 1 "$ip"
}

t_wrong_key() {
	local node id ip ns3 i auth0 auth1
	ip=$(task_ips mark-enc ol_net | awk '{ print $3 }')
	read -r node id _ < <(task_ips my-nginx ol_net | awk '$1 == "node3"')
	[ -n "${id:-}" ] || skip "no my-nginx task on node3"
	ns3=$LAB_RUN/node3/run/netns/$id
	nsenter --net="$ns3" busybox ping -c 1 -W 2 "$ip" > /dev/null || fail "node3 cannot reach mark-enc before the test"
	# node3 misses three rotations: its ring shares no key with the others'
	lab stop node3 agent
	for i in 1 2 3; do adm node1 swarm update --rotate-network-keys > /dev/null; done
	poll_until -d "node2 holds none of node3's data-path keys" 30 sh -c "
		k3=\$('$SWARM_LAB' --prefix $PREFIX exec node3 -- swarm-netd status | jq -c .DataPathKeys)
		'$SWARM_LAB' --prefix $PREFIX exec node2 -- swarm-netd status | jq -e --argjson k3 \"\$k3\" '[.DataPathKeys[] | select(. as \$x | \$k3 | index(\$x))] | length == 0' > /dev/null"
	auth0=$(drop_auth node2)
	if nsenter --net="$ns3" busybox ping -c 3 -W 2 "$ip" > /dev/null; then
		fail "node3, with a stale key ring, still reaches node2"
	fi
	auth1=$(drop_auth node2)
	echo "# node2 dropped $((auth1 - auth0)) frame(s) from node3 as unauthenticated"
	[ "$auth1" -gt "$auth0" ] || fail "node2 did not count node3's frames as unauthenticated"
	poll_until -d "node3's log says its keys differ" 30 sh -c \
		"'$SWARM_LAB' --prefix $PREFIX logs node3 netd | grep -q 'do not share'"
	lab logs node3 netd | grep 'do not share' | tail -n 2 | sed 's/^/# node3: /'
	lab logs node2 netd | grep 'fail authentication' | tail -n 1 | sed 's/^/# node2: /'
	# the agent back: the managers' keys reach node3 and it talks again
	# (its tasks may have been moved meanwhile: a new one is pinned there)
	lab start node3 agent > /dev/null
	poll_until -d "node3 holds node2's data-path keys" 60 sh -c "
		[ \"\$('$SWARM_LAB' --prefix $PREFIX exec node3 -- swarm-netd status | jq -c .DataPathKeys)\" = \
		  \"\$('$SWARM_LAB' --prefix $PREFIX exec node2 -- swarm-netd status | jq -c .DataPathKeys)\" ]"
	adm node1 service create -d --name heal --network ol_net \
		--constraint node.hostname==node3 nginx > /dev/null
	wait_running heal 1
	poll_until -d "the client reaches a new task on node3 over ol_net" 90 sh -c \
		"'$SWARM_LAB' --prefix $PREFIX exec node1 -- swarmadm container exec $(client_ctr) -- busybox timeout 3 busybox wget -q -O- http://heal/ | grep -q '^heal\.'"
}

setup "3-node lab, encrypted ol_net and plain_net with services" t_up
check "network inspect shows the provider; MTU 1422 on ol_net, no vxlan0" t_provider_and_mtu
check "ping, DNS and VIP across nodes on the encrypted network" t_ping_dns_vip
check "routing mesh to a service on the encrypted network" t_mesh
check "tshark: marker on plain_net, never on ol_net; ol_net on 4793, no VXLAN" t_capture
check "key rotation under wrk fails no request" t_rotation_under_wrk
check "netd restart keeps encrypted traffic; a killed sealer is restarted" t_netd_restart_keeps_traffic
check "a node with a stale key ring cannot talk, logs it, heals with new keys" t_wrong_key
finish
