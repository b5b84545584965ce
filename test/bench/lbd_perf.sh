#!/bin/bash
# swarm-lbd's data path under wrk, side by side in one run against the
# physical limit (straight to one task) and HAProxy: the method of
# /work/shared/peers/tcp-lb.sh (figures: peer-anchors.md section 3).
# Usage: test/bench/lbd_perf.sh BUILDDIR   (root; a built tree with swarm-lab)
#
# Setup: a one-node swarm-lab (prefix lbp) with the real daemons; service
# web (5 nginx tasks, 1 worker each, -p 80:80) on an overlay network, and a
# busybox task "client" whose sandbox the load runs from (wrk from the host,
# entered into the sandbox's namespace with nsenter), so that every path
# starts in the same namespace:
#   direct   wrk -> one task's overlay address (no balancing; the limit)
#   vip      wrk -> the service VIP (lbd's numgen DNAT in the sandbox)
#   haproxy  wrk -> HAProxy (mode tcp, balance roundrobin, nbthread 1) in
#            the same sandbox, over the same 5 tasks' addresses
# Every server (nginx tasks, HAProxy) is pinned to CPU 1 and wrk to CPU 0,
# as in the reference; "direct" then has CPU 1's nginx work done by one
# worker, the others by five.
# and, from a host attached to the underlay (the lab's "cl"):
#   mesh     wrk -> the node's address:80 (node DNAT -> ingress sandbox ->
#            numgen DNAT + masquerade -> a task over the ingress overlay),
#            reported against "direct" from the sandbox (the host cannot
#            reach a task's overlay address without a balancer).
# Each rep runs the paths back to back, in keepalive mode (wrk default) and
# close mode (-H "Connection: close": a new connection, so a new DNAT and
# conntrack entry, per request). Ratios are medians over the direct median
# of the same mode.
# Knobs: REPS (3), DURATION (10 s), THREADS (2), CONNS (64).
set -euo pipefail

BUILD=${1:?usage: lbd_perf.sh BUILDDIR}
BUILD=$(cd "$BUILD" && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
PREFIX=lbp
LAB=("$BUILD/lab/swarm-lab" --prefix "$PREFIX")
RUN=/run/swarm-lab/$PREFIX
CLIENT=192.0.2.100

[ "$(id -u)" = 0 ] || { echo "lbd_perf: needs root" >&2; exit 1; }
for p in wrk haproxy; do
	command -v "$p" > /dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" > /dev/null
done
# The package's own service is not wanted running on the host.
systemctl disable --now haproxy > /dev/null 2>&1 || true

work=$(mktemp -d /tmp/lbd_perf.XXXXXX)
hap_pid=""
cleanup() {
	[ -n "$hap_pid" ] && kill "$hap_pid" 2> /dev/null || true
	"${LAB[@]}" down > /dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

adm() { "${LAB[@]}" exec node1 -- swarmadm "$@"; }

echo "lbd_perf: one-node lab, web x5 (-p 80:80), client; $REPS reps of ${DURATION}s, wrk -t$THREADS -c$CONNS"
"${LAB[@]}" down > /dev/null 2>&1 || true
timeout 300 "${LAB[@]}" up --nodes 1 > "$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
"${LAB[@]}" attach cl "$CLIENT" > /dev/null
adm network create --driver overlay --subnet 198.18.10.0/24 bench > /dev/null
adm service create -d --name web --replicas 5 --network bench -p 80:80 nginx > /dev/null
adm service create -d --name client --replicas 1 --network bench busybox > /dev/null
for _ in $(seq 120); do
	n=$(adm service ps web 2> /dev/null | awk 'NR > 1 && $5 == "Running" && $6 == "Running"' | wc -l)
	c=$(adm service ps client 2> /dev/null | awk 'NR > 1 && $5 == "Running" && $6 == "Running"' | wc -l)
	[ "$n" = 5 ] && [ "$c" = 1 ] && break
	sleep 1
done
[ "$n" = 5 ] || { echo "lbd_perf: web not running" >&2; exit 1; }

containers=$(adm network inspect bench --format '{{json .Containers}}')
client_task=$(jq -r 'to_entries[] | select(.value.Name | startswith("client.")) | .key' <<< "$containers")
mapfile -t backends < <(jq -r '.[] | select(.Name | startswith("web.")) | .IPv4Address' <<< "$containers" | sed 's|/.*||' | sort)
ns=$RUN/node1/run/netns/$client_task
vip=$(adm service inspect web --format '{{json .Endpoint.VirtualIPs}}' |
	jq -r --arg n "$(adm network inspect bench --format '{{.Id}}')" '.[] | select(.NetworkID == $n) | .Addr' | sed 's|/.*||')
echo "lbd_perf: backends ${backends[*]}; VIP $vip; client sandbox $ns"
# wait for lbd to have the VIP with 5 backends
for _ in $(seq 30); do
	"${LAB[@]}" exec node1 -- swarm-lbd status |
		jq -e --arg v "$vip" '.Namespaces[].Services[] | select(.VIP == $v) | select(.Backends | length == 5)' > /dev/null && break
	sleep 0.5
done

# Layout as the reference's: every server (the 5 nginx tasks, HAProxy) on
# CPU 1, wrk on CPU 0. The processes of a task are those in its sandbox's
# network namespace.
pin_netns() { # NETNS-FILE CPU
	local ino pid
	ino=$(stat -L -c %i "$1")
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$(readlink "/proc/$pid/ns/net" 2> /dev/null)" = "net:[$ino]" ] && taskset -a -p -c "$2" "$pid" > /dev/null 2>&1
	done
	return 0
}
for t in $(jq -r 'to_entries[] | select(.value.Name | startswith("web.")) | .key' <<< "$containers"); do
	pin_netns "$RUN/node1/run/netns/$t" 1
done

# HAProxy in the client's sandbox on 127.0.0.1:8080
{
	echo "global"
	echo "  nbthread 1"
	echo "  maxconn 8000"
	echo "defaults"
	echo "  mode tcp"
	echo "  timeout connect 5s"
	echo "  timeout client 60s"
	echo "  timeout server 60s"
	echo "listen web"
	echo "  bind 127.0.0.1:8080"
	echo "  balance roundrobin"
	for i in "${!backends[@]}"; do echo "  server b$i ${backends[$i]}:80"; done
} > "$work/haproxy.cfg"
nsenter --net="$ns" taskset -c 1 haproxy -f "$work/haproxy.cfg" -db > "$work/haproxy.log" 2>&1 &
hap_pid=$!
sleep 1

# Round robin first: 10 new connections through each balancer.
rr() { # URL (in the sandbox)
	local i
	for i in $(seq 10); do nsenter --net="$ns" curl -s -m 3 "$1"; done | sed 's/\.[^.]*$//; s/^web\.//' | xargs
}
echo "lbd_perf: 10 connections, task slots: vip [$(rr "http://$vip/")] haproxy [$(rr http://127.0.0.1:8080/)]"

# One wrk run: prints "requests/s errors".
run() { # NETNS|host URL MODE
	local where=$1 url=$2 mode=$3 extra=() out
	[ "$mode" = close ] && extra=(-H "Connection: close")
	if [ "$where" = host ]; then
		out=$("${LAB[@]}" exec cl -- taskset -c 0 wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s "${extra[@]}" "$url")
	else
		out=$(nsenter --net="$where" taskset -c 0 wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s "${extra[@]}" "$url")
	fi
	awk '/Requests\/sec/ { r = $2 } /Socket errors/ { gsub(",", ""); e += $4 + $6 + $8 + $10 }
	     /Non-2xx/ { e += $NF } END { printf "%d %d\n", r, e }' <<< "$out"
}

paths=(direct vip haproxy mesh)
: > "$work/results"
for mode in keepalive close; do
	for rep in $(seq "$REPS"); do
		for p in "${paths[@]}"; do
			case $p in
			direct) r=$(run "$ns" "http://${backends[0]}/" "$mode") ;;
			vip) r=$(run "$ns" "http://$vip/" "$mode") ;;
			haproxy) r=$(run "$ns" "http://127.0.0.1:8080/" "$mode") ;;
			mesh) r=$(run host "http://192.0.2.11/" "$mode") ;;
			esac
			echo "$mode $p $rep $r" | tee -a "$work/results"
		done
	done
done

echo
echo "| mode | path | min | median | max | errors | ratio to direct |"
echo "|---|---|---|---|---|---|---|"
for mode in keepalive close; do
	dmed=$(awk -v m="$mode" '$1 == m && $2 == "direct" { print $4 }' "$work/results" | sort -n |
		awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
	for p in "${paths[@]}"; do
		awk -v m="$mode" -v p="$p" '$1 == m && $2 == p { print $4, $5 }' "$work/results" | sort -n |
			awk -v m="$mode" -v p="$p" -v d="$dmed" '{ a[NR] = $1; e += $2 }
			END { med = a[int((NR + 1) / 2)]; printf "| %s | %s | %d | %d | %d | %d | %.2f |\n", m, p, a[1], med, a[NR], e, med / d }'
	done
done
