#!/bin/bash
# Encrypted overlay throughput: iperf3 TCP from a container on node1 to a
# container on node2 over an encrypted network (swarm-sealer: AES-GCM in
# userspace) and over a plain one (kernel VXLAN), side by side in one run,
# reported as the ratio encrypted / plain, with packets/s and CPU per
# Gbit/s.
# Usage: test/bench/encrypted_perf.sh BUILDDIR   (root; a built tree with swarm-lab)
#
# Setup: a 2-node swarm-lab (prefix encp); networks ol_enc (--opt
# encrypted) and ol_plain; a busybox task pinned to each node on both
# networks. iperf3 runs from the host entered into the tasks' network
# namespaces (nsenter), so the data path is exactly the containers'.
# Each rep runs plain then encrypted back to back; figures are medians,
# and the ratio is also given rep by rep (paired).
#   Gbit/s       iperf3's receiver figure
#   packets/s    node1's underlay veth packets, both directions, per
#                second, as the veth counts them: a GSO skb (plain VXLAN's
#                super-packets, the sealer's UDP_SEGMENT trains) once
#   CPU/Gbit/s   CPU seconds of the whole machine (/proc/stat, all cores,
#                everything: iperf3, the kernel, the sealers) per Gbit
#                carried; and of the two sealers alone for encrypted
# Knobs: REPS (3), DURATION (10 s), STREAMS (1), CC (TCP congestion
# control for iperf3 -C; default: the kernel's, net.ipv4.tcp_congestion_control).
set -euo pipefail

BUILD=${1:?usage: encrypted_perf.sh BUILDDIR}
BUILD=$(cd "$BUILD" && pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-1}
CC=${CC:-$(sysctl -n net.ipv4.tcp_congestion_control)}
PREFIX=encp
LAB=("$BUILD/lab/swarm-lab" --prefix "$PREFIX")
RUN=/run/swarm-lab/$PREFIX

[ "$(id -u)" = 0 ] || { echo "encrypted_perf: needs root" >&2; exit 1; }
command -v iperf3 > /dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q iperf3 > /dev/null

work=$(mktemp -d /tmp/encrypted_perf.XXXXXX)
srv_pids=()
cleanup() {
	for p in "${srv_pids[@]}"; do kill "$p" 2> /dev/null || true; done
	"${LAB[@]}" down > /dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

adm() { "${LAB[@]}" exec node1 -- swarmadm "$@"; }
on() { local n=$1; shift; "${LAB[@]}" exec "$n" -- "$@"; }

echo "encrypted_perf: 2-node lab; iperf3 -P $STREAMS -C $CC, $REPS reps of ${DURATION}s"
"${LAB[@]}" up --nodes 2 > "$work/up.log" 2>&1 || { cat "$work/up.log"; exit 1; }
adm network create --driver overlay --opt encrypted --subnet 198.18.40.0/24 ol_enc > /dev/null
adm network create --driver overlay --subnet 198.18.41.0/24 ol_plain > /dev/null
for n in 1 2; do
	adm service create -d --name "t$n" --network ol_enc --network ol_plain \
		--constraint "node.hostname==node$n" busybox > /dev/null
done

# "TASK-ID IP" of service SVC's task on NODE, on NETWORK.
task_on() { # NODE SVC NETWORK
	on "$1" swarm-netd network "$3" 2> /dev/null |
		jq -r --arg s "$2." '.Containers // {} | to_entries[] | select(.value.Name | startswith($s)) |
			"\(.key) \(.value.IPv4Address | sub("/.*"; ""))"'
}
for i in $(seq 120); do
	[ -n "$(task_on node1 t1 ol_enc)" ] && [ -n "$(task_on node2 t2 ol_enc)" ] &&
		[ -n "$(task_on node2 t2 ol_plain)" ] &&
		on node1 swarm-netd status | jq -e .Sealer.InSync > /dev/null &&
		on node2 swarm-netd status | jq -e .Sealer.InSync > /dev/null && break
	sleep 0.5
done
read -r id1 _ < <(task_on node1 t1 ol_enc)
read -r id2 enc_ip < <(task_on node2 t2 ol_enc)
read -r _ plain_ip < <(task_on node2 t2 ol_plain)
[ -n "${id1:-}" ] && [ -n "${enc_ip:-}" ] && [ -n "${plain_ip:-}" ] || { echo "encrypted_perf: tasks did not come up" >&2; exit 1; }
ns1=$RUN/node1/run/netns/$id1
ns2=$RUN/node2/run/netns/$id2
nsenter --net="$ns2" iperf3 -s -D --pidfile "$work/iperf3.pid" > /dev/null
sleep 0.5
srv_pids+=("$(cat "$work/iperf3.pid")")

cpu_total() { awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8 }' /proc/stat; }   # ticks, all cores, not idle/iowait
sealer_ticks() { # [NODE]
	local t=0 p
	for p in $(pgrep -f "$RUN/${1:-node[12]}/run/sealer.sock"); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$t"
}
# node1's underlay packets both ways, as its veth counts them (a GSO skb once)
veth_packets() { on node1 ip -j -s link show eth0 | jq '.[0].stats64.rx.packets + .[0].stats64.tx.packets'; }
HZ=$(getconf CLK_TCK)

# One run: prints "GBPS PPS CPU_PER_GBIT SEALER_CPU_PER_GBIT".
run() { # KIND IP
	local c0 c1 s0 s1 p0 p1 bps gb a0 a1 b0 b1
	c0=$(cpu_total); s0=$(sealer_ticks); a0=$(sealer_ticks node1); b0=$(sealer_ticks node2)
	p0=$(veth_packets)
	nsenter --net="$ns1" timeout $((DURATION + 30)) iperf3 -c "$2" -t "$DURATION" -P "$STREAMS" -C "$CC" -J > "$work/$1.json"
	c1=$(cpu_total); s1=$(sealer_ticks); a1=$(sealer_ticks node1); b1=$(sealer_ticks node2)
	[ "$1" = enc ] && awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v d="$DURATION" -v hz="$HZ" \
		'BEGIN { printf "    sealer CPU: node1 (sending) %.0f%%, node2 (receiving) %.0f%% of a core\n", 100 * a / hz / d, 100 * b / hz / d }' >&2
	p1=$(veth_packets)
	bps=$(jq '.end.sum_received.bits_per_second' "$work/$1.json")
	gb=$(awk -v b="$bps" -v d="$DURATION" 'BEGIN { print b * d / 1e9 }')
	awk -v b="$bps" -v d="$DURATION" -v p=$((p1 - p0)) -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v hz="$HZ" -v gb="$gb" \
		'BEGIN { printf "%.3f %.0f %.3f %.3f\n", b / 1e9, p / d, c / hz / gb, s / hz / gb }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: > "$work/plain"; : > "$work/enc"; : > "$work/ratio"
for r in $(seq "$REPS"); do
	p=$(run plain "$plain_ip"); e=$(run enc "$enc_ip")
	echo "  rep $r: plain $p | encrypted $e   (Gbit/s packets/s cpu-s/Gbit sealer-cpu-s/Gbit)"
	echo "$p" >> "$work/plain"; echo "$e" >> "$work/enc"
	awk -v p="${p%% *}" -v e="${e%% *}" 'BEGIN { print e / p }' >> "$work/ratio"
done
col() { awk -v c="$2" '{ print $c }' "$1" | median; }
pg=$(col "$work/plain" 1); eg=$(col "$work/enc" 1)
echo
printf "%-10s %10s %12s %14s %14s\n" path Gbit/s packets/s "CPU-s/Gbit" "sealer-s/Gbit"
printf "%-10s %10s %12s %14s %14s\n" plain "$pg" "$(col "$work/plain" 2)" "$(col "$work/plain" 3)" -
printf "%-10s %10s %12s %14s %14s\n" encrypted "$eg" "$(col "$work/enc" 2)" "$(col "$work/enc" 3)" "$(col "$work/enc" 4)"
awk -v e="$eg" -v p="$pg" 'BEGIN { printf "ratio encrypted / plain: %.2f (goal >= 0.5)\n", e / p }'
# Each rep's plain and encrypted runs are back to back, so their ratio
# drifts less with the machine's load than the medians' ratio does.
sort -g "$work/ratio" | awk -v m="$(median < "$work/ratio")" '{ a[NR] = $1 }
	END { printf "paired ratios (each rep): median %.2f, range %.2f-%.2f\n", m, a[1], a[NR] }'
for n in node1 node2; do
	echo "$n sealer: $(on "$n" swarm-netd status | jq -c '.Sealer.Status | {TxFrames, RxFrames, TrainsTx, TrainsRx, Coalesced, DropAuth, DropReplay, DropNoPeer, DropMalformed, DropTxError}')"
	echo "$n kernel: $(on "$n" nstat -az UdpRcvbufErrors UdpSndbufErrors IpReasmFails IpReasmOKs IpFragCreates 2> /dev/null | awk 'NR > 1 { printf "%s=%s ", $1, $2 }')"
done
