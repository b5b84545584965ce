#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 900
# Overlay networks on a 3-node lab: swarm-netd on every node gossips the
# endpoint tables and programs VXLAN; containers of one service on
# different nodes reach each other by IP (ping, HTTP), two overlays are
# isolated, removing a service removes its FDB/neighbour entries and the
# overlay namespace everywhere, a killed node's entries go on the others,
# and netd killed with -9 under a ping stream loses (almost) nothing.
PREFIX=tov
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab

# "NAME IP" per container of NODE on network NET (netd's view through
# `network inspect`).
ips_on() { # NODE NET
	adm "$1" network inspect "$2" --format '{{json .Containers}}' |
		jq -r 'to_entries[] | "\(.value.Name) \(.value.IPv4Address | sub("/.*"; ""))"'
}
vni_of() { adm node1 network inspect "$1" --format '{{json .Options}}' | jq -r '."com.docker.network.driver.overlay.vxlanid_list" // empty'; }
ov_ns() { echo "$LAB_RUN/$1/run/ov-$2"; } # NODE VNI
in_ov() { # NODE VNI CMD...
	local node=$1 vni=$2; shift 2
	nsenter --net="$(ov_ns "$node" "$vni")" "$@"
}
# Permanent FDB entries (MAC) and neighbour entries (IP) on vxlan0.
fdb_macs() { in_ov "$1" "$2" bridge fdb show dev vxlan0 2> /dev/null | awk '/dst/ { print $1 }' | sort; }
neigh_ips() { in_ov "$1" "$2" ip neigh show dev vxlan0 2> /dev/null | awk '{ print $1 }' | sort; }
cexec() { # NODE CONTAINER CMD...
	local node=$1 c=$2; shift 2
	adm "$node" container exec "$c" -- "$@"
}
first_container() { # NODE SERVICE [NETWORK]
	ips_on "$1" "${3:-ol_a}" 2> /dev/null | awk -v s="$2." 'index($1, s) == 1 { print $1; exit }'
}
# Checks run in subshells: what one learns, the next reads from files.
load_vnis() {
	VNI_A=$(cat "$TEST_TMP/vni.ol_a" 2> /dev/null)
	VNI_B=$(cat "$TEST_TMP/vni.ol_b" 2> /dev/null)
}
netd_pid() { cat "$LAB_RUN/$1/netd.pid" 2> /dev/null; }

t_up() {
	lab_up 3
	[ "$(ready_nodes)" = 3 ] || fail "node ls does not show 3 Ready nodes"
	local n
	for n in node1 node2 node3; do
		pid_ok "$(netd_pid $n)" || fail "$n: swarm-netd is not running"
	done
}
pid_ok() { [ -n "$1" ] && kill -0 "$1" 2> /dev/null; }

members_alive() { # NODE N
	[ "$(on "$1" swarm-netd members | jq '[.[] | select(.Status == "alive")] | length')" = "$2" ]
}

t_gossip() {
	local n t0
	t0=$(now)
	for n in node1 node2 node3; do
		poll_until -d "$n's netd sees 3 alive members" 30 members_alive $n 3
	done
	echo "# all netds see 3 alive members after $(since "$t0") s"
	on node1 swarm-netd members | jq -c '.[] | [.Name, .Addr, .Status]'
	local kr=$LAB_STATE/node1/netd/keyring
	[ -f "$kr" ] || fail "no keyring file $kr"
	[ "$(stat -c %a "$kr")" = 600 ] || fail "keyring file mode is $(stat -c %a "$kr"), want 600"
	[ "$(base64 -d "$kr" 2> /dev/null | wc -c)" -ge 16 ] || fail "keyring is not base64 of a key"
}

t_networks() {
	adm node1 network create --driver overlay --subnet 198.18.10.0/24 ol_a > /dev/null
	adm node1 network create --driver overlay --subnet 198.18.20.0/24 ol_b > /dev/null
	adm node1 service create -d --name web --replicas 3 --network ol_a nginx > /dev/null
	adm node1 service create -d --name other --replicas 1 --network ol_b busybox > /dev/null
	wait_running web 3
	wait_running other 1
	[ "$(spread_of web)" = "1 1 1" ] || fail "web is not spread 1 1 1: $(running_per_node web | xargs)"
	vni_of ol_a > "$TEST_TMP/vni.ol_a"
	vni_of ol_b > "$TEST_TMP/vni.ol_b"
	load_vnis
	[ -n "$VNI_A" ] && [ -n "$VNI_B" ] || fail "no VNI in network inspect"
	echo "# ol_a VNI $VNI_A, ol_b VNI $VNI_B"
	local n
	for n in node1 node2 node3; do
		ips_on $n ol_a > "$TEST_TMP/ips.$n"
		echo "# $n: $(xargs < "$TEST_TMP/ips.$n")"
		[ "$(wc -l < "$TEST_TMP/ips.$n")" = 1 ] || fail "$n: network inspect lists $(wc -l < "$TEST_TMP/ips.$n") containers on ol_a, want 1"
	done
	adm node1 network inspect ol_a --format '{{json .Containers}}' | jq -e '.[] | .Name and .EndpointID and .MacAddress and .IPv4Address' > /dev/null ||
		fail "network inspect Containers lacks Name/EndpointID/MacAddress/IPv4Address"
}

remote_programmed() { # NODE VNI IP...
	local node=$1 vni=$2 ip; shift 2
	for ip in "$@"; do neigh_ips "$node" "$vni" | grep -qx "$ip" || return 1; done
}

t_ping_http() {
	load_vnis
	local c1 ip2 ip3 out
	c1=$(first_container node1 web)
	ip2=$(awk '{ print $2 }' "$TEST_TMP/ips.node2")
	ip3=$(awk '{ print $2 }' "$TEST_TMP/ips.node3")
	[ -n "$c1" ] && [ -n "$ip2" ] && [ -n "$ip3" ] || fail "no containers to test with"
	poll_until -d "node1 has node2's and node3's endpoints" 30 remote_programmed node1 "$VNI_A" "$ip2" "$ip3"
	cexec node1 "$c1" ping -c 3 -W 2 "$ip2" || fail "$c1 on node1 cannot ping $ip2 on node2"
	cexec node1 "$c1" ping -c 3 -W 2 "$ip3" || fail "$c1 on node1 cannot ping $ip3 on node3"
	out=$(cexec node1 "$c1" busybox timeout 5 busybox wget -q -O - "http://$ip2/") || fail "no HTTP answer from $ip2"
	echo "# http://$ip2/ answered: $out"
	grep -q "$(awk '{ print $1 }' "$TEST_TMP/ips.node2")" <<< "$out" || fail "the answer does not name node2's task"
	[ "$(fdb_macs node1 "$VNI_A" | wc -l)" -ge 2 ] || fail "node1 has no FDB entries for the remote endpoints"
}

t_gateway() {
	local c1
	c1=$(first_container node1 web)
	cexec node1 "$c1" ip route | grep -q '^default via 198.19.255.1' || fail "no default route via the gateway bridge"
	cexec node1 "$c1" ping -c 2 -W 2 192.0.2.80 || fail "$c1 cannot reach www (192.0.2.80) outside the cluster"
}

t_isolated() {
	load_vnis
	local c ip_a
	local node
	for node in node1 node2 node3; do
		c=$(first_container $node other ol_b)
		[ -n "$c" ] && break
	done
	[ -n "$c" ] || fail "no container of 'other'"
	ip_a=$(awk '{ print $2 }' "$TEST_TMP/ips.node2")
	if cexec $node "$c" ping -c 2 -W 1 "$ip_a" > /dev/null 2>&1; then
		fail "a container on ol_b reaches $ip_a on ol_a"
	fi
	# and ol_b's namespace holds none of ol_a's endpoints
	if neigh_ips $node "$VNI_B" | grep -qx "$ip_a"; then fail "ol_b's vxlan0 has ol_a's $ip_a"; fi
}

# The first second of node's endpoint stream.
stream_of() { on "$1" timeout 1 swarm-netd watch || true; }

t_stream() {
	load_vnis
	local out n epochs
	out=$(stream_of node2)
	echo "$out" | head -n 3 | sed 's/^/# /'
	[ "$(echo "$out" | head -n 1 | jq -r .kind)" = begin ] || fail "the stream does not start with a snapshot"
	echo "$out" | jq -e 'select(.kind == "end")' > /dev/null || fail "no end of snapshot"
	n=$(echo "$out" | jq -r 'select(.kind == "put" and .network == "ol_a") | .ip' | sort -u | wc -l)
	[ "$n" -ge 3 ] || fail "node2's snapshot has $n ol_a endpoints, want the 3 of web on all nodes"
	epochs=$(echo "$out" | jq -r .epoch | sort -u | wc -l)
	[ "$epochs" = 1 ] || fail "one stream, $epochs epochs"
	echo "$out" | jq -r .version | awk 'NR > 1 && $1 != p + 1 { bad = 1 } { p = $1 } END { exit bad }' ||
		fail "versions do not grow by one"
	# a delta: a new endpoint on another node shows up in a running stream
	on node2 timeout 8 swarm-netd watch > "$TEST_TMP/watch.out" 2>&1 &
	local w=$!
	sleep 1
	adm node1 service create -d --name probe --replicas 1 --constraint node.hostname==node3 --network ol_a busybox > /dev/null
	wait $w || true
	grep -q '"kind":"put".*"name":"probe\.' "$TEST_TMP/watch.out" || { cat "$TEST_TMP/watch.out"; fail "node2's stream did not show probe's endpoint"; }
	local pip
	pip=$(grep '"name":"probe\.' "$TEST_TMP/watch.out" | head -n 1 | jq -r .ip)
	adm node1 service rm probe > /dev/null
	poll_until -d "probe's endpoint gone on node1" 60 entries_gone node1 "$VNI_A" "$pip"
}

t_bad_option_refused() {
	local out
	if out=$(adm node1 network create --driver overlay --opt encrypted=maybe --subnet 198.18.30.0/24 ol_bad 2>&1); then
		fail "a network was created with --opt encrypted=maybe: $out"
	fi
	echo "# $out"
	grep -qi "encrypted" <<< "$out" || fail "the refusal does not say why: $out"
	if adm node1 network ls | grep -qw ol_bad; then fail "the refused network exists"; fi
}

no_dups() { # NODE VNI
	local dup
	dup=$(in_ov "$1" "$2" bridge fdb show dev vxlan0 | awk '/dst/' | sort | uniq -d)
	[ -z "$dup" ] || { echo "# duplicate FDB: $dup"; return 1; }
	dup=$(in_ov "$1" "$2" ip -o link show | awk '{ print $2 }' | sort | uniq -d)
	[ -z "$dup" ]
}

t_netd_restart() {
	load_vnis
	local c1 ip2 pid sent recv lost t0 down
	c1=$(first_container node1 web)
	ip2=$(awk '{ print $2 }' "$TEST_TMP/ips.node2")
	local fdb_before epoch_before
	fdb_before=$(fdb_macs node1 "$VNI_A" | xargs)
	epoch_before=$(stream_of node1 | head -n 1 | jq -r .epoch)
	# 0.1 s apart for 8 s; netd is killed 2 s in and restarted 2 s later
	cexec node1 "$c1" ping -i 0.1 -c 80 -W 1 "$ip2" > "$TEST_TMP/ping.out" 2>&1 &
	local ping=$!
	sleep 2
	pid=$(netd_pid node1)
	kill -9 "$pid"
	t0=$(now)
	sleep 2
	lab start node1 netd
	down=$(since "$t0")
	wait "$ping"
	sent=$(awk '/packets transmitted/ { print $1 }' "$TEST_TMP/ping.out")
	recv=$(awk '/packets transmitted/ { print $4 }' "$TEST_TMP/ping.out")
	lost=$(( ${sent:-0} - ${recv:-0} ))
	echo "# netd down ${down} s under ping: ${sent:-?} sent, ${recv:-?} received, $lost lost"
	[ -n "$sent" ] && [ "$sent" -gt 0 ] || { cat "$TEST_TMP/ping.out"; fail "ping did not run"; }
	awk -v l="$lost" -v d="$down" 'BEGIN { exit !(l <= d + 1) }' ||
		fail "$lost packets lost in ${down} s of netd downtime (allowed: one per second)"
	poll_until -d "node1's netd back" 30 members_alive node1 3
	[ "$(stream_of node1 | head -n 1 | jq -r .epoch)" != "$epoch_before" ] || fail "the stream's epoch did not change across the restart"
	sleep 1
	no_dups node1 "$VNI_A" || fail "duplicate state after the netd restart"
	[ "$(fdb_macs node1 "$VNI_A" | xargs)" = "$fdb_before" ] ||
		fail "FDB changed across the restart: '$fdb_before' -> '$(fdb_macs node1 "$VNI_A" | xargs)'"
	cexec node1 "$c1" ping -c 2 -W 2 "$ip2" > /dev/null || fail "no traffic after the netd restart"
}

entries_gone() { # NODE VNI IP...
	local node=$1 vni=$2 ip; shift 2
	for ip in "$@"; do neigh_ips "$node" "$vni" | grep -qx "$ip" && return 1; done
	return 0
}
ns_gone() { [ ! -e "$(ov_ns "$1" "$2")" ]; }

t_service_rm() {
	load_vnis
	local ips n t0
	adm node1 service create -d --name extra --replicas 3 --network ol_a busybox > /dev/null
	wait_running extra 3
	ips=$(for n in node1 node2 node3; do ips_on $n ol_a; done | awk '$1 ~ /^extra\./ { print $2 }' | xargs)
	echo "# extra's addresses: $ips"
	[ "$(wc -w <<< "$ips")" = 3 ] || fail "want 3 addresses for extra, got '$ips'"
	local mine others
	for n in node1 node2 node3; do
		mine=$(ips_on $n ol_a | awk '$1 ~ /^extra\./ { print $2 }')
		others=$(tr ' ' '\n' <<< "$ips" | grep -vx "$mine" | xargs)
		# shellcheck disable=SC2086
		poll_until -d "$n programs extra's remote endpoints" 30 remote_programmed $n "$VNI_A" $others
	done
	t0=$(now)
	adm node1 service rm extra > /dev/null
	# shellcheck disable=SC2086
	for n in node1 node2 node3; do poll_until -d "$n drops extra's entries" 30 entries_gone $n "$VNI_A" $ips; done
	echo "# extra's FDB/neighbour entries gone on every node $(since "$t0") s after service rm"
	# the last local endpoint of ol_b goes: its namespace goes
	t0=$(now)
	adm node1 service rm other > /dev/null
	for n in node1 node2 node3; do poll_until -d "$n removes ol_b's namespace" 30 ns_gone $n "$VNI_B"; done
	echo "# ol_b's namespace gone on every node $(since "$t0") s after its last endpoint"
}

t_partition() {
	load_vnis
	local id3 ip1 ip3 t0
	id3=$(adm node1 node inspect node3 --format '{{.ID}}')
	ip1=$(awk '{ print $2 }' "$TEST_TMP/ips.node1")
	ip3=$(awk '{ print $2 }' "$TEST_TMP/ips.node3")
	remote_programmed node1 "$VNI_A" "$ip3" || fail "node1 lacks node3's $ip3 before the partition"
	nsenter --net="/run/netns/$PREFIX-node3" ip link set eth0 down
	t0=$(now)
	poll_until -d "node1's netd declares node3 dead" 60 netd_lists node1 "$id3" dead
	poll_until -d "node1 hides node3's endpoint" 30 entries_gone node1 "$VNI_A" "$ip3"
	nsenter --net="/run/netns/$PREFIX-node3" ip link set eth0 up
	t0=$(now)
	poll_until -d "node1 sees node3 alive again" 60 netd_lists node1 "$id3" alive
	poll_until -d "node1 programs node3's endpoint again" 30 remote_programmed node1 "$VNI_A" "$ip3"
	poll_until -d "node3 programs node1's endpoint again" 30 remote_programmed node3 "$VNI_A" "$ip1"
	echo "# tables resynchronised $(since "$t0") s after the link came back, no command run"
}

# The data-path ring after one rotation: 3 keys, the old newest first.
dp_ring_rotated() { # NODE BEFORE-JSON
	local now
	now=$(on "$1" swarm-netd status | jq -c '.DataPathKeys')
	[ "$(jq length <<< "$now")" = 3 ] && [ "$(jq '.[0]' <<< "$now")" = "$(jq 'max' <<< "$2")" ]
}
keyring_first_is() { # NODE KEY: the node's netd sends with KEY and holds 3 keys
	local kr=$LAB_STATE/$1/netd/keyring
	[ "$(head -n 1 "$kr")" = "$2" ] && [ "$(wc -l < "$kr")" = 3 ]
}

t_key_rotation() {
	local before newest n restarts dp_before
	before=$LAB_STATE/node1/netd/keyring
	[ "$(wc -l < "$before")" = 3 ] || fail "node1's gossip ring has $(wc -l < "$before") keys, not 3"
	newest=$(sed -n 2p "$before")
	restarts=$(grep -c 'advertising' "$LAB_RUN/node2/netd.log")
	dp_before=$(on node3 swarm-netd status | jq -c '.DataPathKeys')
	echo "# data-path ring before: $dp_before"
	[ "$(jq length <<< "$dp_before")" = 3 ] || fail "node3's netd has no 3-key data-path ring"

	adm node1 swarm update --rotate-network-keys > /dev/null
	for n in node1 node2 node3; do
		poll_until -d "$n's netd sends with the previous newest key" 30 keyring_first_is $n "$newest"
	done
	grep -q 'gossip key ring replaced' "$LAB_RUN/node2/netd.log" || fail "node2's netd did not replace its ring"
	[ "$(grep -c 'advertising' "$LAB_RUN/node2/netd.log")" = "$restarts" ] || fail "node2's gossip restarted"
	sleep 3
	for n in node1 node2 node3; do
		members_alive $n 3 || fail "$n's netd does not see 3 alive members after the rotation"
	done
	echo "# rotated: every netd received with 3 keys, sends with the previous newest; no gossip restart"
	# the data-path ring went the same way: three keys, the primary moved up
	poll_until -d "node3's netd has the rotated data-path ring" 30 dp_ring_rotated node3 "$dp_before"
	on node3 swarm-netd status | jq -c '.DataPathKeys' | sed 's/^/# data-path ring (Lamport times, primary first): /'
	adm node1 swarm update --key-rotation-interval 30s > /dev/null 2>&1 && fail "a 30 s interval was accepted"
	adm node1 swarm update --key-rotation-interval 24h > /dev/null
}

serf_lists() { # HOST NAME STATUS
	on "$1" serf members 2> /dev/null | awk -v n="$2" -v s="$3" '$1 == n && $3 == s { f = 1 } END { exit !f }'
}
netd_lists() { # NODE NAME STATUS
	on "$1" swarm-netd members | jq -e --arg n "$2" --arg s "$3" 'any(.[]; .Name == $n and .Status == $s)' > /dev/null
}

t_serf() {
	command -v serf > /dev/null || skip "serf is not installed"
	local key n id1 other
	key=$(head -n 1 "$LAB_STATE/node1/netd/keyring")
	other=$(head -c 16 /dev/urandom | base64)
	lab attach serf1 192.0.2.101 > /dev/null
	lab attach serf2 192.0.2.102 > /dev/null
	bg lab exec serf1 -- serf agent -node=serf1 -bind=192.0.2.101:7946 -rpc-addr=127.0.0.1:7373 \
		-encrypt="$key" -join=192.0.2.11 > "$TEST_TMP/serf1.log" 2>&1
	bg lab exec serf2 -- serf agent -node=serf2 -bind=192.0.2.102:7946 -rpc-addr=127.0.0.1:7373 \
		-encrypt="$other" -retry-join=192.0.2.11 -retry-interval=1s > "$TEST_TMP/serf2.log" 2>&1
	id1=$(adm node1 node inspect node1 --format '{{.ID}}')
	# (run after the node kill: node3 is gone)
	for n in node1 node2; do
		poll_until -d "serf1 lists $n alive" 30 serf_lists serf1 "$(adm node1 node inspect $n --format '{{.ID}}')" alive
		poll_until -d "$n's netd lists serf1 alive" 30 netd_lists $n serf1 alive
	done
	sleep 5 # serf2 retries every second with the wrong key
	if netd_lists node1 serf2 alive; then fail "serf2, with another key, joined"; fi
	if serf_lists serf2 "$id1" alive; then fail "serf2 lists node1 although its key differs"; fi
	grep -qi 'encrypt\|decrypt\|EOF\|failed' "$TEST_TMP/serf2.log" || true
	local t0
	t0=$(now)
	for pid in $(ip netns pids "$PREFIX-serf1" 2> /dev/null); do kill -9 "$pid" 2> /dev/null; done
	poll_until -d "node1's netd declares serf1 dead" 60 netd_lists node1 serf1 dead
	echo "# serf1 declared dead by node1's netd $(since "$t0") s after kill -9"
}

t_node_kill() {
	load_vnis
	local ip3 pid t0
	ip3=$(awk '{ print $2 }' "$TEST_TMP/ips.node3")
	remote_programmed node1 "$VNI_A" "$ip3" || fail "node1 does not have node3's $ip3 before the kill"
	t0=$(now)
	for pid in $(ip netns pids "$PREFIX-node3" 2> /dev/null); do kill -9 "$pid" 2> /dev/null; done
	poll_until -d "node1 drops node3's endpoint" 60 entries_gone node1 "$VNI_A" "$ip3"
	echo "# node3's endpoint removed on node1 $(since "$t0") s after node3's processes were killed"
	poll_until -d "node2 drops node3's endpoint" 60 entries_gone node2 "$VNI_A" "$ip3"
	echo "# ... and on node2 after $(since "$t0") s"
}

check "up: 3 nodes, swarm-netd on each" t_up
check "gossip: every netd sees 3 alive members; keyring file 0600, base64" t_gossip
check "networks: ol_a, ol_b, services on them; network inspect lists this node's containers" t_networks
check "data path: a container pings and fetches HTTP from containers on the other nodes" t_ping_http
check "gateway bridge: a container reaches a host outside the cluster through NAT" t_gateway
check "isolation: a container on ol_b cannot reach ol_a" t_isolated
check "network create with an unknown --opt value is refused; nothing is made" t_bad_option_refused
check "network key rotation (swarm update --rotate-network-keys) reaches every netd's gossip ring without a restart" t_key_rotation
check "endpoint stream: a snapshot of every node's endpoints, then deltas, one epoch, versions by one" t_stream
check "netd kill -9 and restart under ping: at most one lost packet per second down, no duplicates, new epoch" t_netd_restart
check "service rm removes FDB/neighbour entries everywhere; the last endpoint takes the namespace" t_service_rm
check "a node cut off until declared dead comes back and resyncs its tables by itself" t_partition
check "a killed node's endpoints are removed on the others" t_node_kill
check "serf agents on the underlay join with the cluster key from netd's keyring, another key never does" t_serf
finish
