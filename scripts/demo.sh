#!/bin/bash
# demo.sh: from a fresh clone on Debian 12, as root: installs the
# dependencies, builds, starts a 3-node cluster on this machine (swarm-lab)
# and runs the walk-through steps that are built so far, printing each
# command and its output. The lab stays up afterwards; the last line says
# how to remove it.
set -uo pipefail
cd "$(dirname "$(readlink -f "$0")")/.." || exit 1
top=$PWD

bash scripts/deps.sh || exit 1
if [ ! -f Makefile ]; then
	autoreconf -fi || exit 1
	./configure || exit 1
fi
make -j2 || exit 1

lab=lab/swarm-lab
failed=0

# Prints a command as the user would type it, then runs it.
step() {
	printf '\n\033[1m$ %s\033[0m\n' "$*"
	"$@"
	local rc=$?
	[ "$rc" = 0 ] || { echo "(exit status $rc)"; failed=$((failed + 1)); }
	return "$rc"
}
# A step that must be refused: shows the error, counts a failure if it
# was accepted.
refused() { # NODE CMD...
	local node=$1; shift
	printf '\n\033[1m$ %s\033[0m\n' "$lab exec $node -- $*"
	if "$lab" exec "$node" -- "$@"; then
		echo "(accepted, but it should have been refused)"; failed=$((failed + 1))
	else
		echo "(refused, as it should be)"
	fi
}
on() { # NODE CMD...
	local node=$1; shift
	step "$lab" exec "$node" -- "$@"
}

if [ -d "/run/swarm-lab/${SWARM_LAB_PREFIX:-swl}" ]; then
	step "$lab" down
fi
step "$lab" up --nodes 3 || { echo "demo: the lab did not come up; remove what is left with: $top/$lab down"; exit 1; }

echo
echo "== 0. The cluster: node1 is the manager, node2 and node3 joined as workers"
on node1 swarmadm node ls
on node1 swarmadm network ls

echo
echo "== 1. An encrypted overlay network with a chosen subnet (AES-GCM between nodes, keys from the managers)"
on node1 swarmadm network create --driver overlay --opt encrypted --subnet 198.19.10.0/24 ol_net
on node1 swarmadm network ls

echo
echo "== 2. A replicated service with a VIP and a published port: 5 nginx containers (runc)"
on node1 swarmadm service create --replicas 5 --network ol_net --name my-nginx -p 80:80 nginx
on node1 swarmadm service ps my-nginx
on node1 swarmadm service inspect --format='{{json .Endpoint.VirtualIPs}}' my-nginx
on node1 swarmadm service inspect --format='{{json .Endpoint.Ports}}' my-nginx
on node2 swarmadm container ls
echo "(how this node encrypts ol_net: the provider probed at start)"
on node1 swarmadm network inspect --format '{{json .Encryption}}' ol_net

echo
echo "== 4. DNS round robin cannot publish ingress-mode ports (refused, nothing created)"
refused node1 swarmadm service create --replicas 5 --name web-test --network ol_net --endpoint-mode dnsrr -p 8080:80 nginx
on node1 swarmadm service ls

echo
echo "== Which task answers: nginx replies with its container's name"
node=$("$lab" exec node1 -- swarmadm service ps my-nginx 2>/dev/null |
	awk '$2 == "my-nginx.1" && $5 == "Running" { print $4; exit }')
if [ -n "$node" ]; then
	on "$node" swarmadm container exec my-nginx.1 -- busybox timeout 5 busybox wget -q -O - http://127.0.0.1/
fi

echo
echo "== The overlay: each node's containers on ol_net, and a request across nodes by IP (encrypted: AES-GCM by swarm-sealer on udp/4793)"
on node2 swarmadm network inspect ol_net --format '{{json .Containers}}'
other=node2; [ "$node" = node2 ] && other=node3
ip=$("$lab" exec "$other" -- swarmadm network inspect ol_net --format '{{json .Containers}}' 2>/dev/null |
	jq -r '[.[] | .IPv4Address][0] // empty' | sed 's|/.*||')
if [ -n "$node" ] && [ -n "$ip" ]; then
	on "$node" swarmadm container exec my-nginx.1 -- busybox timeout 5 busybox wget -q -O - "http://$ip/"
	echo "(my-nginx.1 on $node fetched from $ip, a task on $other)"
fi

echo
echo "== 3. Service discovery from another service's container (swarm-dnsd at 127.0.0.11)"
on node1 swarmadm service create --name my-centos --network ol_net busybox
on node1 swarmadm service update --args "ping www.example.com" my-centos
cnode=$("$lab" exec node1 -- swarmadm service ps my-centos 2>/dev/null |
	awk '$5 == "Running" { print $4; exit }')
if [ -n "$cnode" ]; then
	on "$cnode" swarmadm container exec my-centos.1 -- nslookup my-nginx
	on "$cnode" swarmadm container exec my-centos.1 -- nslookup tasks.my-nginx
	on "$cnode" swarmadm container exec my-centos.1 -- nslookup www.example.com
fi

echo
echo "== 4. DNS round robin instead of a VIP"
on node1 swarmadm service create --replicas 5 --name web-test --network ol_net --endpoint-mode dnsrr nginx
if [ -n "$cnode" ]; then
	on "$cnode" swarmadm container exec my-centos.1 -- nslookup web-test
	wip=$("$lab" exec "$cnode" -- swarmadm container exec my-centos.1 -- nslookup web-test 2>/dev/null |
		awk '/^Address: 198/ { print $2; exit }')
	[ -n "$wip" ] && on "$cnode" swarmadm container exec my-centos.1 -- nslookup "$wip"
fi

echo
echo "== Scaling down to 2"
on node1 swarmadm service scale my-nginx=2
on node1 swarmadm service ps my-nginx

echo
echo "== VIP load balancing (swarm-lbd): 10 requests to http://my-nginx/ from my-centos"
if [ -n "$cnode" ]; then
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		"$lab" exec "$cnode" -- swarmadm container exec my-centos.1 -- \
			busybox timeout 5 busybox wget -q -O - http://my-nginx/ 2>/dev/null
	done | sort | uniq -c
	on "$cnode" swarmadm container exec my-centos.1 -- ping -c 2 my-nginx
fi

echo
echo "== 5. The routing mesh: port 80 on every node's address, from a host on the underlay"
"$lab" attach demo-client 192.0.2.99 > /dev/null 2>&1 || true
for a in 192.0.2.11 192.0.2.12 192.0.2.13; do
	printf '%s: ' "$a"
	"$lab" exec demo-client -- curl -s -m 5 "http://$a/" || { echo "(no answer)"; failed=$((failed + 1)); }
done

if [ "$failed" != 0 ]; then echo "demo: $failed step(s) failed (see above)"; fi
echo "The lab is still up: try '$top/$lab exec node1 -- swarmadm service ls'."
echo "Remove it with: $top/$lab down"
[ "$failed" = 0 ]
