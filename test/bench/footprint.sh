#!/bin/bash
# Control-plane footprint: RSS of swarm-manager and swarm-agent on an idle
# 3-node lab, then with a 1,000-replica busybox service converged (real
# runc containers). The 100,000-task manager figure comes from
# bench_manager (same store and code, without containers).
# Usage: test/bench/footprint.sh [BUILDDIR]   (root; uses lab prefix "bfp")
set -euo pipefail
B=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB="$B/lab/swarm-lab --prefix bfp"
trap '$LAB down >/dev/null 2>&1 || true' EXIT INT TERM

rss() { # DAEMON NODE -> KiB
	local ns=bfp-$2 pid
	for pid in $(ip netns pids "$ns"); do
		if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
			awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
			return
		fi
	done
	echo 0
}

$LAB up --nodes 3 > /dev/null
sleep 5
echo "idle: swarm-manager $(rss swarm-manager node1) KiB, swarm-agent $(rss swarm-agent node2) KiB (node2), $(rss swarm-agent node1) KiB (node1)"
N=${REPLICAS:-300}
$LAB exec node1 -- swarmadm service create -d --name fp --replicas "$N" busybox > /dev/null
deadline=$((SECONDS + 600))
while [ $SECONDS -lt $deadline ]; do
	running=$($LAB exec node1 -- swarmadm service ls | awk '$2 == "fp" { split($4, a, "/"); print a[1] }')
	[ "${running:-0}" -ge "$N" ] && break
	sleep 2
done
echo "with $N busybox tasks (${running:-0} running): swarm-manager $(rss swarm-manager node1) KiB, swarm-agent $(rss swarm-agent node2) KiB (node2)"
