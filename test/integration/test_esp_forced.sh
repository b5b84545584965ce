#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 600
# The kernel ESP provider, forced (netd's encryption = kernel) on a
# 2-node lab. This kernel has no ESP, so no state can be made: what the
# test shows is netd's wiring and the promise that an encrypted network
# never falls back to cleartext. Encrypted networks ride vxlan0 with MTU
# underlay - 90 and the alias swarm-esp; netd installs our XFRM policies
# (one per peer, the catch-all that blocks the rest) and the nftables
# rules that mark the encrypted VNI; status and network inspect show the
# provider and that it is not in sync; and with no states, the encrypted
# network carries nothing while a capture of the underlay sees no VXLAN
# packet of its VNI, when the plain network beside it works. A restarted
# netd adopts its policies; one switched to userspace removes them.
PREFIX=tesp
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab
command -v tshark > /dev/null || SKIP_ALL="tshark not installed (scripts/deps.sh)"
export SWARM_LAB_ENCRYPTION=kernel

ctr_of() { adm node1 container ls 2> /dev/null | awk -v s=" $1\\.1\\." '$0 ~ s { print $NF }'; }
in_a() { adm node1 container exec "$(ctr_of a)" -- "$@"; }
# The IP of service SVC's task on NETWORK, from NODE's netd.
ip_on() { # NODE SVC NETWORK
	on "$1" swarm-netd network "$3" 2> /dev/null |
		jq -r --arg s "$2." '.Containers // {} | to_entries[] | select(.value.Name | startswith($s)) | .value.IPv4Address | sub("/.*"; "")'
}
vni_of() { on node1 swarm-netd network "$1" | jq -r .VNI; }

t_up() {
	lab_up 2
	adm node1 network create --driver overlay --opt encrypted --subnet 198.18.24.0/24 enc_net > /dev/null
	adm node1 network create --driver overlay --subnet 198.18.25.0/24 plain_net > /dev/null
	adm node1 service create -d --name a --network enc_net --network plain_net \
		--constraint node.hostname==node1 busybox > /dev/null
	adm node1 service create -d --name b --network enc_net --network plain_net \
		--constraint node.hostname==node2 busybox > /dev/null
	wait_running a 1
	wait_running b 1
	# node1 learned b's endpoint: its policy towards node2 is in place
	poll_until -d "node1 has a policy towards node2" 60 sh -c \
		"ip netns exec $PREFIX-node1 ip xfrm policy list | grep -q 'dst 192.0.2.12/32'"
}

t_provider() {
	local st enc
	st=$(on node1 swarm-netd status)
	echo "# node1 status .Esp: $(jq -c .Esp <<< "$st")"
	jq -e '.Esp.Provider | startswith("kernel (IPsec ESP")' <<< "$st" > /dev/null || fail "netd status shows no kernel provider"
	jq -e '.Sealer == null' <<< "$st" > /dev/null || fail "a sealer runs although the kernel provider was chosen"
	enc=$(adm node1 network inspect enc_net --format '{{json .Encryption}}')
	echo "# network inspect .Encryption: $enc"
	jq -e '.Provider | startswith("kernel")' <<< "$enc" > /dev/null || fail "network inspect does not show the kernel provider"
	jq -e '.InSync == false' <<< "$enc" > /dev/null || fail "in sync without ESP states?"
	lab logs node1 netd | grep -q "netd, encrypted networks: kernel" || fail "the provider choice is not logged"
	lab logs node1 netd | grep -m1 "netd, kernel ESP:" | sed 's/^/# node1: /'
}

t_vxlan_mtu() {
	local vni link
	vni=$(vni_of enc_net)
	link=$(nsenter --net="$LAB_RUN/node1/run/ov-$vni" ip -d -o link show vxlan0) || fail "enc_net has no vxlan0"
	echo "# enc_net vxlan0: $(grep -o 'mtu [0-9]*' <<< "$link"), alias $(grep -o 'alias [^ ]*' <<< "$link")"
	grep -q "mtu 1410 " <<< "$link" || fail "vxlan0 MTU is not 1500 - 90"
	grep -q "alias swarm-esp" <<< "$link" || fail "vxlan0 has no alias swarm-esp"
	in_a ip -o addr | grep -q "198.18.24." || fail "a is not on enc_net"
	local ifc
	ifc=$(in_a ip -o addr | awk '/198\.18\.24\./ { print $2 }')
	in_a ip -o link show "$ifc" | grep -q "mtu 1410 " || fail "a's enc_net leg MTU is not 1410"
}

t_policies_and_rules() {
	local pol vni
	vni=$(vni_of enc_net)
	pol=$(ip netns exec "$PREFIX-node1" ip xfrm policy list)
	echo "$pol" | sed 's/^/# node1 xfrm: /'
	grep -q "dst 192.0.2.12/32 proto udp dport 4789" <<< "$pol" || fail "no policy towards node2"
	grep -q "dst 0.0.0.0/0 proto udp dport 4789" <<< "$pol" || fail "no catch-all policy"
	grep -q "action block" <<< "$pol" || fail "the catch-all does not block"
	grep -q "reqid 21335 mode transport" <<< "$pol" || fail "the policy does not require our ESP template"
	ip netns exec "$PREFIX-node1" nft list table ip swarm_esp > "$TEST_TMP/nft.out" || fail "no nftables table swarm_esp"
	# nft prints the 24-bit VNI match in hex
	grep -Eq "\b($vni|$(printf '0x%x' "$vni"))\b" "$TEST_TMP/nft.out" ||
		fail "the rules do not name enc_net's VNI $vni: $(cat "$TEST_TMP/nft.out")"
	grep -q "ipsec missing drop" "$TEST_TMP/nft.out" || fail "no input drop of cleartext"
	sed 's/^/# nft: /' "$TEST_TMP/nft.out" | grep -E "udp dport" || true
}

t_never_cleartext() {
	local pcap=$TEST_TMP/esp.pcap encb plainb ev pv
	encb=$(ip_on node2 b enc_net)
	plainb=$(ip_on node2 b plain_net)
	[ -n "$encb" ] && [ -n "$plainb" ] || fail "b's addresses not found"
	ip netns exec "$PREFIX-node1" timeout 30 tshark -q -i eth0 -f "udp port 4789" -w "$pcap" \
		-a duration:10 > "$TEST_TMP/tshark.err" 2>&1 &
	local cap=$!
	sleep 2
	if in_a ping -c 3 -W 2 "$encb" > /dev/null; then
		fail "ping over enc_net answered with no ESP state"
	fi
	in_a ping -c 3 -W 2 "$plainb" > /dev/null || fail "ping over plain_net failed"
	wait "$cap" || true
	[ -s "$pcap" ] || fail "no capture: $(cat "$TEST_TMP/tshark.err")"
	ev=$(tshark -r "$pcap" -Y "vxlan.vni == $(vni_of enc_net)" 2> /dev/null | wc -l)
	pv=$(tshark -r "$pcap" -Y "vxlan.vni == $(vni_of plain_net)" 2> /dev/null | wc -l)
	echo "# underlay capture: $ev VXLAN packets of enc_net, $pv of plain_net"
	[ "$pv" -gt 0 ] || fail "no VXLAN of plain_net captured (is it capturing?)"
	[ "$ev" = 0 ] || fail "$ev cleartext VXLAN packets of enc_net left node1"
}

ours() { ip netns exec "$PREFIX-node1" ip xfrm policy list | grep -c "mark 0x53570000"; }

t_restart_adopts() {
	local before vni
	before=$(ours)
	lab stop node1 netd
	lab start node1 netd > /dev/null
	poll_until -d "restarted netd adopted the policies" 30 sh -c \
		"'$SWARM_LAB' --prefix $PREFIX logs node1 netd | grep -q 'esp, adopted 0 states and $before policies'"
	poll_until -d "node1 netd in status again" 30 sh -c \
		"'$SWARM_LAB' --prefix $PREFIX exec node1 -- swarm-netd status | jq -e '.Esp.Policies == $before' > /dev/null"
	[ "$(ours)" = "$before" ] || fail "$(ours) of our policies after the restart, $before before"
	# vxlan0 still points at node2 (guarded: marked, and held by a policy)
	vni=$(vni_of enc_net)
	nsenter --net="$LAB_RUN/node1/run/ov-$vni" bridge fdb show dev vxlan0 | grep -q "dst 192.0.2.12" ||
		fail "no FDB entry towards node2 on enc_net's vxlan0"
	echo "# $before policies adopted across a netd restart"
}

t_userspace_cleans() {
	sed -i 's/^encryption = .*/encryption = userspace/' "$LAB_RUN/node1/netd.conf"
	lab stop node1 netd
	lab start node1 netd > /dev/null
	poll_until -d "node1 runs the sealer" 30 sh -c \
		"'$SWARM_LAB' --prefix $PREFIX exec node1 -- swarm-netd status | jq -e '.Sealer.Provider | startswith(\"userspace\")' > /dev/null"
	[ "$(ours)" = 0 ] || fail "$(ours) of our policies left once node1 stopped using kernel ESP"
	ip netns exec "$PREFIX-node1" nft list table ip swarm_esp > /dev/null 2>&1 && fail "the swarm_esp table is left"
	lab logs node1 netd | grep "kernel ESP is not used" | tail -n 1 | sed 's/^/# node1: /'
}

setup "2-node lab, netd forced to kernel ESP; enc_net and plain_net" t_up
check "status and network inspect show the kernel provider, not in sync" t_provider
check "enc_net rides vxlan0 with MTU 1410 and alias swarm-esp" t_vxlan_mtu
check "XFRM policies (per peer, catch-all) and nftables rules installed" t_policies_and_rules
check "no ESP state: enc_net carries nothing, none of it in cleartext" t_never_cleartext
check "a restarted netd adopts its policies; vxlan0 stays guarded" t_restart_adopts
check "a netd switched to userspace removes our policies and rules" t_userspace_cleans
finish
