#!/bin/bash
# swarm-dnsd against Unbound (local-data), Knot DNS and NSD (authoritative
# zone), side by side in one run, one core each, with dnsperf; the method of
# /work/shared/peers/dns-local-names.sh (figures: peer-anchors.md section 1).
# Usage: test/bench/dnsd_perf.sh BUILDDIR   (root; BUILDDIR/netd/swarm-netd,
#        BUILDDIR/dnsd/swarm-dnsd, BUILDDIR/test/bench/dns_load)
#
# Setup (nothing is added to the root namespace but two daemons on loopback):
# - a real swarm-netd (datapath = off, gossip alone on 127.0.0.1:<free port>)
#   and a real swarm-dnsd subscribed to its endpoint stream;
# - dns_load feeds netd one NetdAttach per endpoint record: records standing
#   in for the tasks of 100 services (as if on other nodes), on an overlay
#   network named "anchor.test" (198.18.0.0/16), so that dnsd's
#   <name>.<network> names are the peers' zone names byte for byte:
#     svcNNN.anchor.test        -> VIP 198.18.0.N         (N = 1..100)
#     tasks.svcNNN.anchor.test  -> task 198.18.1.N        (N = 1..99, one task)
#     tasks.svc100.anchor.test  -> 198.18.2.1..100        (100 tasks)
#   The peers serve the same names and addresses from a zone (local-data).
# - one sandbox namespace dnb-sb (lo up) announced to dnsd (DnsdRequest.add,
#   standing in for a container): dnsd answers on 127.0.0.11:53 inside it;
#   Unbound, Knot and NSD listen on 127.0.0.12/13/14:53 in the same namespace.
# - every server pinned to CPU 0 (knotd re-pins its UDP worker there anyway),
#   dnsperf to CPU 1 inside dnb-sb, swarm-netd (idle) to CPU 1.
# Query file (looped by dnsperf): the 100 service names once each, plus
# tasks.svc001..005 (one A) and 5 x tasks.svc100 (100 A), 110 lines.
#
# Measured, servers interleaved within each repetition (REPS x DURATION s):
#   peak: dnsperf -c 8 -q 100 -e unthrottled. dnsperf's own core is the
#     bottleneck here (~110-120k/s), so the peak is a floor for every server;
#   half rate: all servers at the same -Q (half of the lowest median peak,
#     or HALF_QPS), with dnsperf -v: p50/p99 latency from its per-query
#     lines, and server CPU per query two ways: the server's own processes
#     (utime+stime from /proc/PID/stat of the process and its children,
#     over the run, / queries completed) and, as the reference does, the
#     busy fraction of the server's core from /proc/stat / qps (this one
#     also holds the kernel's loopback work done on that core);
#   tasks over TCP (TCP_RUN=1): peak qps of tasks.svc100 alone over TCP;
#     dnsd caps UDP answers at 1232 bytes, so it answers the 100-address
#     name over UDP truncated (TC) and a real stub asks again over TCP;
#   RSS: dnsd with the zone and one sandbox, then with RSS_SANDBOXES
#     sandboxes (namespaces dnb-sNNNN, lo up) and RSS_ENDPOINTS endpoint
#     records in all (the extra ones: services ext001.. of 99 tasks each);
#     then (LOADED_RUN=1) one peak and one half-rate run of dnsd loaded so.
# Prints a summary table with dnsd/peer ratios, and `key value` lines to
# $SWARM_BENCH_RESULTS when set. Before every run it waits (up to
# WAIT_OTHERS s in all) until no other benchmark (netd_gossip.sh,
# serf-gossip.sh) runs, as the machine has two cores; a run that overlapped
# one anyway is repeated (twice at most), and counted if it still did. It
# also waits (same budget) until the machine's load over 1 s, ours idle, is
# under QUIET_PCT % of both cores; the busiest such second just before a
# run is printed.
#
# Env knobs: REPS (3), DURATION (10), CLIENTS (8), OUTSTANDING (100),
# SERVERS ("dnsd unbound knot nsd"; dnsd must stay), HALF_QPS (auto),
# PEER_EDNS (4096: the peers' EDNS payload, as in the reference),
# RSS_SANDBOXES (1000, 0 skips the loaded phase), RSS_ENDPOINTS (10000),
# LOADED_RUN (1), TCP_RUN (1), WAIT_OTHERS (1800), QUIET_PCT (25), DNS_LOAD (path of
# dns_load), KEEP_RAW=dir (copy configs, logs and dnsperf output there).
# shellcheck disable=SC2086,SC2207,SC2317
set -uo pipefail

B=${1:-}
[ -n "$B" ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$B" 2>/dev/null && pwd) || { echo "dnsd_perf: no directory $1" >&2; exit 2; }
NETD=$B/netd/swarm-netd
DNSD=$B/dnsd/swarm-dnsd
DNS_LOAD=${DNS_LOAD:-$B/test/bench/dns_load}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-100}
SERVERS=${SERVERS:-"dnsd unbound knot nsd"}
HALF_QPS=${HALF_QPS:-}
PEER_EDNS=${PEER_EDNS:-4096}
RSS_SANDBOXES=${RSS_SANDBOXES:-1000}
RSS_ENDPOINTS=${RSS_ENDPOINTS:-10000}
LOADED_RUN=${LOADED_RUN:-1}
TCP_RUN=${TCP_RUN:-1}
WAIT_OTHERS=${WAIT_OTHERS:-1800}
QUIET_PCT=${QUIET_PCT:-25}
SERVER_CPU=0
CLIENT_CPU=1
ZONE=anchor.test
NET_ID=dnbnet0000000000000000001
VNI=4242
SUBNET=198.18.0.0/16
GATEWAY=198.18.255.254
SB=dnb-sb
SBNS=/run/netns/$SB
BASE_ENDPOINTS=199
declare -A IP=([dnsd]=127.0.0.11 [unbound]=127.0.0.12 [knot]=127.0.0.13 [nsd]=127.0.0.14)

die() { echo "dnsd_perf: $*" >&2; exit 1; }
say() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root"
for f in "$NETD" "$DNSD" "$DNS_LOAD"; do [ -x "$f" ] || die "no $f (make bench builds it)"; done
[[ " $SERVERS " == *" dnsd "* ]] || die "SERVERS must include dnsd"
for s in $SERVERS; do [ -n "${IP[$s]:-}" ] || die "unknown server $s"; done
[[ $REPS =~ ^[0-9]+$ ]] && ((REPS >= 1 && REPS <= 20)) || die "REPS is 1-20"
[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 600)) || die "DURATION is 1-600"
[[ $RSS_SANDBOXES =~ ^[0-9]+$ ]] && ((RSS_SANDBOXES <= 4000)) || die "RSS_SANDBOXES is 0-4000"
[[ $RSS_ENDPOINTS =~ ^[0-9]+$ ]] && ((RSS_ENDPOINTS <= 50000)) || die "RSS_ENDPOINTS is at most 50000"
((RSS_SANDBOXES == 0 || RSS_ENDPOINTS >= BASE_ENDPOINTS)) || die "RSS_ENDPOINTS is at least $BASE_ENDPOINTS"
[ -z "$HALF_QPS" ] || [[ $HALF_QPS =~ ^[0-9]+$ ]] || die "HALF_QPS is a number"
[[ $WAIT_OTHERS =~ ^[0-9]+$ ]] && [[ $QUIET_PCT =~ ^[0-9]+$ ]] || die "WAIT_OTHERS and QUIET_PCT are numbers"
(($(nproc) >= 2)) || die "needs two CPUs (server and client one core each)"

need=()
command -v unbound > /dev/null || need+=(unbound)
command -v knotd > /dev/null || need+=(knot)
command -v nsd > /dev/null || need+=(nsd)
command -v dnsperf > /dev/null || need+=(dnsperf)
command -v dig > /dev/null || need+=(bind9-dnsutils)
command -v taskset > /dev/null || need+=(util-linux)
command -v nsenter > /dev/null || need+=(util-linux)
if ((${#need[@]})); then
	say "installing ${need[*]}"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } > /dev/null ||
		die "cannot install ${need[*]}"
fi
if ip netns list | awk '{ print $1 }' | grep -q '^dnb-'; then
	die "namespaces dnb-* exist already (another run, or one that was killed -9); remove them first"
fi

# RAM-backed work dir: netd and dnsd fsync their state on every change.
WORK=$(mktemp -d /dev/shm/dnsd-perf.XXXXXX 2>/dev/null || mktemp -d /tmp/dnsd-perf.XXXXXX) ||
	die "cannot make a work directory"
chmod 755 "$WORK"
RES=$WORK/results      # "key value" lines
: > "$RES"
declare -A PIDS=()     # label -> pid of a server we started (our child)
NSLIST=()              # namespaces we made

# kill_ours SIG LABEL...: signals the labelled processes if they are still our
# children (a pid bash has already reaped may belong to someone else by now).
kill_ours() {
	local sig=$1 l p; shift
	for l in "$@"; do
		p=${PIDS[$l]:-}
		[ -n "$p" ] || continue
		[ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$$" ] || continue
		if [ "$l" = nsd ]; then
			kill "-$sig" -- "-$p" 2>/dev/null   # NSD forks its server and xfrd: its group
		else
			kill "-$sig" "$p" 2>/dev/null
		fi
	done
}
running() { # PID -> true while it exists and is not a zombie
	local st
	st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}
stop_all() {
	local k l alive
	kill_ours TERM "${!PIDS[@]}"
	for ((k = 0; k < 30; k++)); do
		alive=0
		for l in "${!PIDS[@]}"; do running "${PIDS[$l]}" && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	kill_ours KILL "${!PIDS[@]}"
}
cleanup() {
	set +e
	trap - EXIT INT TERM
	stop_all
	sleep 0.2
	if ((${#NSLIST[@]})); then
		printf 'netns del %s\n' "${NSLIST[@]}" | ip -force -batch - 2>/dev/null
	fi
	if [ -n "${KEEP_RAW:-}" ]; then
		mkdir -p "$KEEP_RAW" && cp -r "$WORK"/. "$KEEP_RAW/" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "dnsd_perf: interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- helpers
# stats: numbers on stdin (NaN = a failed run) -> "min median max ok/total"
stats() {
	sort -g | awk 'NF == 0 { next } $1 != "NaN" { a[++n] = $1 } $1 == "NaN" { f++ }
		END { if (!n) { printf "- - - 0/%d\n", f; exit }
		      printf "%s %s %s %d/%d\n", a[1], a[int((n + 1) / 2)], a[n], n, n + f }'
}
med() { echo "$1" | awk '{ print $2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# result KEY STATS-LINE: min/median/max into $RES
result() {
	local k=$1 mn md mx ok
	read -r mn md mx ok <<< "$2"
	printf 'dnsd_perf.%s.min %s\ndnsd_perf.%s.median %s\ndnsd_perf.%s.max %s\ndnsd_perf.%s.ok %s\n' \
		"$k" "$mn" "$k" "$md" "$k" "$mx" "$k" "$ok" >> "$RES"
}
kv() { printf 'dnsd_perf.%s %s\n' "$1" "$2" >> "$RES"; }
tree_pids() { # PID -> it and its descendants (process trees here are 2 deep)
	local p=$1 c d
	echo "$p"
	for c in $(pgrep -P "$p"); do
		echo "$c"
		for d in $(pgrep -P "$c"); do echo "$d"; done
	done
}
tree_ticks() { # PID -> utime+stime (clock ticks) of it and its descendants
	local s=0 p t
	for p in $(tree_pids "$1"); do
		# fields after "(comm)": state is 1, utime 12, stime 13
		t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		s=$((s + ${t:-0}))
	done
	echo "$s"
}
tree_rss() { # PID -> VmRSS KiB summed over it and its descendants
	local s=0 p r
	for p in $(tree_pids "$1"); do
		r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		s=$((s + ${r:-0}))
	done
	echo "$s"
}
cpu_busy() { # CPU -> "busy total" jiffies from /proc/stat
	awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6 }' /proc/stat
}
pct() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f", t ? 100 * b / t : 0 }'; }
HZ=$(getconf CLK_TCK)
BG_MAX=0
dstatus() { "$DNSD" status --run-dir "$RUN" 2>/dev/null; }
dstatus_num() { dstatus | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds
wait_for() {
	local to=$1 k; shift
	for ((k = 0; k < to * 10; k++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
answers() { # SERVER -> true when svc001 A comes back from it in the sandbox
	printf 'svc001.%s A\n' "$ZONE" |
		nsenter --net="$SBNS" timeout 3 dnsperf -s "${IP[$1]}" -n 1 -t 1 2>/dev/null |
		grep -q 'Queries completed: *1 '
}
endpoints_are() { [ "$(dstatus_num Endpoints)" = "$1" ]; }
sandboxes_are() { [ "$(dstatus_num Sandboxes)" = "$1" ]; }
sock_exists() { [ -S "$1" ]; }

# ---------------------------------------------------------------- data
RUN=$WORK/run
mkdir -p "$RUN" "$WORK/netd" "$WORK/dnsd" "$WORK/raw"
{
	echo "net $NET_ID $ZONE $VNI $SUBNET $GATEWAY"
	# ep TASK SVC_ID SVC_NAME VIP SLOT IP
	awk 'BEGIN { for (i = 1; i <= 99; i++) printf "ep t%05d s%03d svc%03d 198.18.0.%d 1 198.18.1.%d\n", i, i, i, i, i
		for (j = 1; j <= 100; j++) printf "ep tb%04d s100 svc100 198.18.0.100 %d 198.18.2.%d\n", j, j, j }'
} > "$WORK/zone.load"
zone_rrs() { # owner-relative A records of the zone: "NAME IP"
	awk 'BEGIN { for (i = 1; i <= 100; i++) printf "svc%03d 198.18.0.%d\n", i, i
		for (i = 1; i <= 99; i++) printf "tasks.svc%03d 198.18.1.%d\n", i, i
		for (j = 1; j <= 100; j++) printf "tasks.svc100 198.18.2.%d\n", j }'
}
{
	echo "\$ORIGIN $ZONE."
	echo "\$TTL 600"
	echo "@ IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 600"
	echo "@ IN NS ns1.$ZONE."
	echo "ns1 IN A 198.18.255.1"
	zone_rrs | awk '{ printf "%s IN A %s\n", $1, $2 }'
} > "$WORK/$ZONE.zone"
awk -v z="$ZONE" 'BEGIN { for (i = 1; i <= 100; i++) {
	printf "svc%03d.%s A\n", i, z
	if (i % 20 == 10) printf "tasks.svc%03d.%s A\n", (i + 10) / 20, z
	if (i % 20 == 0) printf "tasks.svc100.%s A\n", z } }' > "$WORK/queries.txt"
printf 'tasks.svc100.%s A\n' "$ZONE" > "$WORK/tasks.txt"

# ---------------------------------------------------------------- swarm-netd + swarm-dnsd
pick_port() { # a port free for tcp and udp on this namespace
	local used p
	used=$(ss -Htuan | awk '{ n = split($5, a, ":"); print a[n] }' | sort -u)
	for p in $(seq 17946 18045); do
		grep -qx "$p" <<< "$used" || { echo "$p"; return 0; }
	done
	return 1
}
GPORT=$(pick_port) || die "no free port in 17946-18045"
cat > "$WORK/netd.conf" << EOF
# gossip alone on loopback; no kernel data path
datapath = off
node_name = bench
bind_addr = 127.0.0.1
bind_port = $GPORT
EOF
cat > "$WORK/dnsd.conf" << EOF
# nothing is forwarded in this benchmark; a dead loopback port if anything were
upstream = 127.0.0.1:9
EOF
taskset -c "$CLIENT_CPU" "$NETD" --foreground --config "$WORK/netd.conf" --state-dir "$WORK/netd" \
	--run-dir "$RUN" --log-level warn > "$WORK/netd.log" 2>&1 &
PIDS[netd]=$!
wait_for 10 sock_exists "$RUN/netd.sock" || die "swarm-netd did not start: $(tail -n 5 "$WORK/netd.log")"
taskset -c "$SERVER_CPU" "$DNSD" --foreground --config "$WORK/dnsd.conf" --state-dir "$WORK/dnsd" \
	--run-dir "$RUN" --log-level warn > "$WORK/dnsd.log" 2>&1 &
PIDS[dnsd]=$!
wait_for 10 sock_exists "$RUN/dnsd.sock" || die "swarm-dnsd did not start: $(tail -n 5 "$WORK/dnsd.log")"
"$DNS_LOAD" "$RUN" < "$WORK/zone.load" > /dev/null || die "loading the zone into netd failed"
wait_for 30 endpoints_are "$BASE_ENDPOINTS" || die "dnsd has $(dstatus_num Endpoints) endpoints, not $BASE_ENDPOINTS"
ip netns add "$SB" || die "cannot make namespace $SB"
NSLIST+=("$SB")
ip -n "$SB" link set lo up || die "cannot bring lo up in $SB"
printf 'net %s %s %s %s %s\nsb sb0000 %s\n' "$NET_ID" "$ZONE" "$VNI" "$SUBNET" "$GATEWAY" "$SBNS" |
	"$DNS_LOAD" "$RUN" > /dev/null || die "announcing $SB to dnsd failed"
wait_for 10 answers dnsd || die "dnsd does not answer on 127.0.0.11 in $SB"

# ---------------------------------------------------------------- peers (configs of the reference)
start_unbound() {
	local ip=$1 d=$WORK/unbound
	mkdir -p "$d"
	{
		cat << EOF
server:
  interface: $ip@53
  port: 53
  do-ip6: no
  do-tcp: yes
  num-threads: 1
  so-reuseport: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$d"
  pidfile: "$d/unbound.pid"
  use-syslog: no
  logfile: "$d/unbound.log"
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  edns-buffer-size: $PEER_EDNS
  max-udp-size: $PEER_EDNS
  module-config: "iterator"
  local-zone: "$ZONE." static
  local-data: "$ZONE. 600 IN SOA ns1.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 600"
EOF
		zone_rrs | awk -v z="$ZONE" '{ printf "  local-data: \"%s.%s. 600 IN A %s\"\n", $1, z, $2 }'
		echo "remote-control:"
		echo "  control-enable: no"
	} > "$d/unbound.conf"
	unbound-checkconf "$d/unbound.conf" > /dev/null || die "unbound config refused"
	nsenter --net="$SBNS" taskset -c "$SERVER_CPU" unbound -d -c "$d/unbound.conf" > "$d/out.log" 2>&1 &
	PIDS[unbound]=$!
}
start_knot() {
	local ip=$1 d=$WORK/knot
	mkdir -p "$d/db"
	cp "$WORK/$ZONE.zone" "$d/"
	cat > "$d/knot.conf" << EOF
server:
  rundir: "$d"
  listen: $ip@53
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  udp-max-payload: $PEER_EDNS
  pidfile: "$d/knot.pid"
control:
  listen: "$d/knot.sock"
log:
  - target: stderr
    any: error
database:
  storage: "$d/db"
template:
  - id: default
    storage: "$d"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $ZONE
    file: "$d/$ZONE.zone"
EOF
	knotc -c "$d/knot.conf" conf-check > /dev/null || die "knot config refused"
	nsenter --net="$SBNS" taskset -c "$SERVER_CPU" knotd -c "$d/knot.conf" > "$d/out.log" 2>&1 &
	PIDS[knot]=$!
}
start_nsd() {
	local ip=$1 d=$WORK/nsd
	mkdir -p "$d/xfr"
	cp "$WORK/$ZONE.zone" "$d/"
	cat > "$d/nsd.conf" << EOF
server:
  ip-address: $ip@53
  do-ip6: no
  server-count: 1
  reuseport: no
  username: ""
  chroot: ""
  zonesdir: "$d"
  database: ""
  pidfile: "$d/nsd.pid"
  xfrdfile: "$d/xfrd.state"
  xfrdir: "$d/xfr"
  zonelistfile: "$d/zone.list"
  logfile: "$d/nsd.log"
  verbosity: 0
  ipv4-edns-size: $PEER_EDNS
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  minimal-responses: yes
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: "$d/$ZONE.zone"
EOF
	nsd-checkconf "$d/nsd.conf" || die "nsd config refused"
	# setsid: its own process group (NSD forks a server child and xfrd)
	nsenter --net="$SBNS" setsid taskset -c "$SERVER_CPU" nsd -d -c "$d/nsd.conf" > "$d/out.log" 2>&1 &
	PIDS[nsd]=$!
}
for s in $SERVERS; do
	case $s in
	unbound) start_unbound "${IP[$s]}" ;;
	knot) start_knot "${IP[$s]}" ;;
	nsd) start_nsd "${IP[$s]}" ;;
	esac
done
for s in $SERVERS; do
	wait_for 15 answers "$s" || die "$s does not answer on ${IP[$s]} in $SB"
done
# every thread of every server process must be on SERVER_CPU only
for s in $SERVERS; do
	for p in $(tree_pids "${PIDS[$s]}"); do
		for t in /proc/$p/task/*; do
			m=$(awk '/^Cpus_allowed_list/ { print $2 }' "$t/status" 2>/dev/null)
			[ -z "$m" ] || [ "$m" = "$SERVER_CPU" ] ||
				say "WARNING: $s thread $(basename "$t") ($(cat "$t/comm" 2>/dev/null)) may run on CPUs $m, not $SERVER_CPU"
		done
	done
done

# ---------------------------------------------------------------- sanity: same answers
declare -A TASKS_BYTES=() TASKS_NOTE=()
for s in $SERVERS; do
	ip=${IP[$s]}
	got=$(nsenter --net="$SBNS" dig +short +norec +time=2 +tries=1 "@$ip" "svc007.$ZONE" A 2>/dev/null)
	[ "$got" = 198.18.0.7 ] || die "$s: svc007.$ZONE is '$got', not 198.18.0.7"
	got=$(nsenter --net="$SBNS" dig +short +norec +time=2 +tries=1 "@$ip" "tasks.svc005.$ZONE" A 2>/dev/null)
	[ "$got" = 198.18.1.5 ] || die "$s: tasks.svc005.$ZONE is '$got', not 198.18.1.5"
	# the 100-address name over UDP as dnsperf asks it (EDNS 4096), no TCP retry
	out=$(nsenter --net="$SBNS" dig +ignore +norec +bufsize=4096 +time=2 +tries=1 "@$ip" "tasks.svc100.$ZONE" A 2>/dev/null)
	n=$(sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p' <<< "$out")
	tc=$(grep -q 'flags:[^;]* tc' <<< "$out" && echo " TC" || echo "")
	TASKS_BYTES[$s]=$(printf 'tasks.svc100.%s A\n' "$ZONE" |
		nsenter --net="$SBNS" dnsperf -s "$ip" -n 1 -e -t 2 2>/dev/null | awk '/Average packet size/ { print $NF }')
	TASKS_NOTE[$s]="${n:-?} A$tc"
	say "$s: tasks.svc100 over UDP: ${TASKS_BYTES[$s]:-?} bytes, ${n:-?} addresses$tc"
	kv "$s.tasks_udp_bytes" "${TASKS_BYTES[$s]:-NaN}"
	kv "$s.tasks_udp_answers" "${n:-NaN}"
done

# ---------------------------------------------------------------- wait for the machine
# Other benchmarks share the two cores: before every run, wait until none
# runs (all waits together bounded by WAIT_OTHERS s from here); a run that
# still overlapped one is counted and reported.
others() { pgrep -f 'netd_gossip.sh|serf-gossip.sh' > /dev/null; }
OTHERS_END=$((SECONDS + WAIT_OTHERS))
WAITED=0 CONTENDED=0 RUNS=0 REPEATED=0
quiet() {
	local k
	others || return 0
	say "another benchmark is running: waiting (up to $((OTHERS_END - SECONDS > 0 ? OTHERS_END - SECONDS : 0)) s more) for it to end"
	for ((k = 0; k < WAIT_OTHERS / 5 + 1 && SECONDS < OTHERS_END; k++)); do
		sleep 5
		WAITED=$((WAITED + 5))
		others || { say "it ended; measuring"; return 0; }
	done
	say "WARNING: another benchmark still runs; measuring anyway"
	return 1
}

# ---------------------------------------------------------------- runs
# dnsperf_run SERVER OUT QPS(0=unthrottled) VERBOSE(0/1) QUERYFILE [MODE]:
# runs dnsperf in the sandbox; appends "qps completed lost avg_ms resp_bytes
# proc_ticks core_busy core_total client_busy client_total" to OUT.sum
dnsperf_once() {
	local s=$1 out=$2 q=$3 v=$4 qf=$5 mode=${6:-udp} t0 t1 sb0 st0 sb1 st1 cb0 ct0 cb1 ct1
	local args=(-s "${IP[$s]}" -d "$qf" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -e -t 2 -m "$mode")
	local bg=0 ob0 ot0 ob1 ot1
	((q > 0)) && args+=(-Q "$q")
	((v == 1)) && args+=(-v)
	quiet || bg=1
	# the machine's background: both cores' busy % over 1 s before the run,
	# waited on (same deadline) until it is under QUIET_PCT
	local k
	for ((k = 0; k < WAIT_OTHERS / 5 + 1; k++)); do
		read -r ob0 ot0 < <(cpu_busy "")
		sleep 1
		read -r ob1 ot1 < <(cpu_busy "")
		BGPCT=$(pct $((ob1 - ob0)) $((ot1 - ot0)))
		((BGPCT <= QUIET_PCT || SECONDS >= OTHERS_END)) && break
		((k == 0)) && say "the machine is busy ($BGPCT % of both cores): waiting for it to calm down"
		sleep 4
		WAITED=$((WAITED + 5))
	done
	((BGPCT > BG_MAX)) && BG_MAX=$BGPCT
	t0=$(tree_ticks "${PIDS[$s]}")
	read -r sb0 st0 < <(cpu_busy "$SERVER_CPU")
	read -r cb0 ct0 < <(cpu_busy "$CLIENT_CPU")
	nsenter --net="$SBNS" timeout $((DURATION + 20)) taskset -c "$CLIENT_CPU" dnsperf "${args[@]}" > "$out" 2>&1
	read -r cb1 ct1 < <(cpu_busy "$CLIENT_CPU")
	read -r sb1 st1 < <(cpu_busy "$SERVER_CPU")
	t1=$(tree_ticks "${PIDS[$s]}")
	others && bg=1
	awk -v tk=$((t1 - t0)) -v sb=$((sb1 - sb0)) -v st=$((st1 - st0)) -v cb=$((cb1 - cb0)) -v ct=$((ct1 - ct0)) '
		/Queries per second:/ { qps = $4 } /Queries completed:/ { done = $3 } /Queries lost:/ { lost = $3 }
		/Average Latency/ { lat = $4 * 1000 } /Average packet size/ { rb = $NF }
		END { qps = qps == "" ? "NaN" : sprintf("%.0f", qps); if (done == "") done = 0
		      printf "%s %s %s %s %s %s %s %s %s %s\n", qps, done, lost + 0, lat == "" ? "NaN" : lat, rb == "" ? "NaN" : rb, tk, sb, st, cb, ct }' \
		"$out" > "$out.sum"
	return $bg
}
# dnsperf_run: dnsperf_once, repeated (up to 3 times in all) while the run
# overlapped another benchmark
dnsperf_run() {
	local a
	RUNS=$((RUNS + 1))
	for ((a = 1; a <= 3; a++)); do
		dnsperf_once "$@" && return 0
		if ((a < 3)); then
			say "this $1 run overlapped another benchmark: repeating it"
			REPEATED=$((REPEATED + 1))
		fi
	done
	CONTENDED=$((CONTENDED + 1))
	say "WARNING: this $1 run overlapped another benchmark (kept)"
}
field() { awk -v f="$1" '{ print $f }' "$2"; }   # FIELD FILE.sum

declare -A PEAK=() HALF=() P50=() P99=() PROC_US=() CORE_US=() RESP=() TCPQ=() CCPU=() SCPU=()
say "peak: $REPS x $DURATION s per server, interleaved"
for ((r = 1; r <= REPS; r++)); do
	for s in $SERVERS; do
		f=$WORK/raw/$s.peak.$r
		dnsperf_run "$s" "$f" 0 0 "$WORK/queries.txt"
		read -r qps ndone lost lat rb tk sb st cb ct < "$f.sum"
		cat "$f.sum" >> "$WORK/raw/$s.peak.sum"
		say "$s peak run $r: qps=$qps lost=$lost avg_ms=$lat resp_B=$rb server_core=$(pct "$sb" "$st")% client_core=$(pct "$cb" "$ct")%"
	done
done
minmed=""
for s in $SERVERS; do
	PEAK[$s]=$(field 1 "$WORK/raw/$s.peak.sum" | stats)
	RESP[$s]=$(med "$(field 5 "$WORK/raw/$s.peak.sum" | stats)")
	SCPU[$s]=$(awk '{ printf "%.0f\n", $8 ? 100 * $7 / $8 : 0 }' "$WORK/raw/$s.peak.sum" | stats)
	CCPU[$s]=$(awk '{ printf "%.0f\n", $10 ? 100 * $9 / $10 : 0 }' "$WORK/raw/$s.peak.sum" | stats)
	result "$s.peak_qps" "${PEAK[$s]}"
	result "$s.peak_avg_lat_ms" "$(field 4 "$WORK/raw/$s.peak.sum" | stats)"
	result "$s.peak_server_core_pct" "${SCPU[$s]}"
	result "$s.peak_client_core_pct" "${CCPU[$s]}"
	kv "$s.avg_resp_bytes" "${RESP[$s]}"
	m=$(med "${PEAK[$s]}")
	[ "$m" = - ] && continue
	if [ -z "$minmed" ] || awk -v a="$m" -v b="$minmed" 'BEGIN { exit !(a < b) }'; then minmed=$m; fi
done
[ -n "$minmed" ] || die "no peak run succeeded"
[ -n "$HALF_QPS" ] || HALF_QPS=$(awk -v m="$minmed" 'BEGIN { printf "%d", m / 2 }')
kv half_rate_target_qps "$HALF_QPS"

# half_run SERVER FILE: the -v run at HALF_QPS; appends "p50 p99" to FILE.lat
half_run() {
	local s=$1 f=$2 n
	dnsperf_run "$s" "$f" "$HALF_QPS" 1 "$WORK/queries.txt"
	# verbose lines: "> NOERROR svc001.anchor.test A 0.000123"
	awk '/^> / { print $NF * 1000 }' "$f" | sort -g > "$f.l"
	n=$(wc -l < "$f.l")
	awk -v n="$n" 'NR == int(n * 0.50 + 0.5) { p50 = $1 } NR == int(n * 0.99 + 0.5) { p99 = $1 }
		END { printf "%s %s\n", p50 == "" ? "NaN" : p50, p99 == "" ? "NaN" : p99 }' "$f.l" >> "$f.lat"
	rm -f "$f.l"
	[ -n "${KEEP_RAW:-}" ] || : > "$f"   # the per-query lines are large
}
say "half rate: $REPS x $DURATION s per server at $HALF_QPS queries/s (dnsperf -v)"
for ((r = 1; r <= REPS; r++)); do
	for s in $SERVERS; do
		f=$WORK/raw/$s.half.$r
		half_run "$s" "$f"
		read -r qps ndone lost lat rb tk sb st cb ct < "$f.sum"
		read -r p50 p99 < "$f.lat"
		cat "$f.sum" >> "$WORK/raw/$s.half.sum"
		cat "$f.lat" >> "$WORK/raw/$s.half.lat"
		say "$s half run $r: qps=$qps lost=$lost p50_ms=$p50 p99_ms=$p99 proc_us/q=$(awk -v t="$tk" -v d="$ndone" -v hz="$HZ" 'BEGIN { printf "%.2f", d ? t / hz * 1e6 / d : 0 }') core_us/q=$(awk -v b="$sb" -v t="$st" -v q="$qps" 'BEGIN { printf "%.2f", t && q ? b / t * 1e6 / q : 0 }')"
	done
done
for s in $SERVERS; do
	sf=$WORK/raw/$s.half.sum
	HALF[$s]=$(field 1 "$sf" | stats)
	P50[$s]=$(field 1 "$WORK/raw/$s.half.lat" | stats)
	P99[$s]=$(field 2 "$WORK/raw/$s.half.lat" | stats)
	PROC_US[$s]=$(awk -v hz="$HZ" '$2 { printf "%.2f\n", $6 / hz * 1e6 / $2; next } { print "NaN" }' "$sf" | stats)
	CORE_US[$s]=$(awk '$1 != "NaN" && $8 { printf "%.2f\n", $7 / $8 * 1e6 / $1; next } { print "NaN" }' "$sf" | stats)
	result "$s.half_qps" "${HALF[$s]}"
	result "$s.half_p50_ms" "${P50[$s]}"
	result "$s.half_p99_ms" "${P99[$s]}"
	result "$s.half_avg_lat_ms" "$(field 4 "$sf" | stats)"
	result "$s.half_cpu_us_per_query" "${PROC_US[$s]}"
	result "$s.half_core_us_per_query" "${CORE_US[$s]}"
	kv "$s.half_lost" "$(awk '{ n += $3 } END { print n + 0 }' "$sf")"
done

if ((TCP_RUN)); then
	say "tasks.svc100 over TCP: 1 x $DURATION s per server"
	for s in $SERVERS; do
		f=$WORK/raw/$s.tcp
		dnsperf_run "$s" "$f" 0 0 "$WORK/tasks.txt" tcp
		read -r qps ndone lost lat rb tk sb st cb ct < "$f.sum"
		TCPQ[$s]=$qps
		kv "$s.tcp_tasks_qps" "$qps"
		kv "$s.tcp_tasks_resp_bytes" "$rb"
		say "$s tcp tasks.svc100: qps=$qps lost=$lost resp_B=$rb server_core=$(pct "$sb" "$st")%"
	done
fi

# ---------------------------------------------------------------- memory
declare -A RSS=()
for s in $SERVERS; do RSS[$s]=$(tree_rss "${PIDS[$s]}"); kv "$s.rss_kib" "${RSS[$s]}"; done
NETD_RSS0=$(tree_rss "${PIDS[netd]}")
kv netd.rss_kib "$NETD_RSS0"
LOADED_RSS="" LOADED_HWM="" NETD_RSS1="" ATTACH_S="" LPEAK="" LPROC="" LCORE=""
if ((RSS_SANDBOXES > 0)); then
	nsb=$((RSS_SANDBOXES - 1)) next=$((RSS_ENDPOINTS - BASE_ENDPOINTS))
	say "loaded: $RSS_SANDBOXES sandboxes, $RSS_ENDPOINTS endpoints (making $nsb namespaces)"
	names=()
	for ((i = 1; i <= nsb; i++)); do names+=("$(printf 'dnb-s%04d' "$i")"); done
	if ((nsb > 0)); then
		NSLIST+=("${names[@]}")
		printf 'netns add %s\n' "${names[@]}" | ip -batch - || die "cannot make the sandbox namespaces"
		for n in "${names[@]}"; do ip -n "$n" link set lo up || die "cannot bring lo up in $n"; done
	fi
	t0=$EPOCHREALTIME
	{
		echo "net $NET_ID $ZONE $VNI $SUBNET $GATEWAY"
		for ((i = 1; i <= nsb; i++)); do printf 'sb sb%04d /run/netns/dnb-s%04d\n' "$i" "$i"; done
	} | "$DNS_LOAD" "$RUN" > /dev/null || die "announcing the sandboxes failed"
	wait_for 60 sandboxes_are "$RSS_SANDBOXES" || die "dnsd serves $(dstatus_num Sandboxes) sandboxes, not $RSS_SANDBOXES"
	SB_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	say "dnsd took $nsb sandbox adds in $SB_S s"
	kv loaded.sandbox_add_s "$SB_S"
	# extra records: services ext001.. of 99 tasks each, VIPs 198.18.3.0+,
	# task addresses 198.18.16.1 up
	t0=$EPOCHREALTIME
	{
		echo "net $NET_ID $ZONE $VNI $SUBNET $GATEWAY"
		awk -v n="$next" 'BEGIN { for (k = 0; k < n; k++) { s = int(k / 99) + 1
			printf "ep x%06d e%04d ext%03d 198.18.%d.%d %d 198.18.%d.%d\n", k, s, s,
				3 + int(s / 250), s % 250 + 1, k % 99 + 1, 16 + int(k / 250), k % 250 + 1 } }'
	} | "$DNS_LOAD" "$RUN" > /dev/null || die "loading the extra records into netd failed"
	ATTACH_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	wait_for 120 endpoints_are "$RSS_ENDPOINTS" || die "dnsd has $(dstatus_num Endpoints) endpoints, not $RSS_ENDPOINTS"
	say "netd took $next attaches in $ATTACH_S s; dnsd has them all"
	kv loaded.netd_attach_s "$ATTACH_S"
	# one sandbox picked in the middle answers too
	mid=$(printf '/run/netns/dnb-s%04d' $(((nsb + 1) / 2)))
	if ((nsb > 0)); then
		got=$(nsenter --net="$mid" dig +short +norec +time=2 +tries=1 @127.0.0.11 "svc007.$ZONE" A 2>/dev/null)
		[ "$got" = 198.18.0.7 ] || say "WARNING: dnsd in $mid answered '$got' for svc007"
	fi
	sleep 1
	LOADED_RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/${PIDS[dnsd]}/status")
	LOADED_HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/${PIDS[dnsd]}/status")
	NETD_RSS1=$(tree_rss "${PIDS[netd]}")
	kv loaded.dnsd_rss_kib "$LOADED_RSS"
	kv loaded.dnsd_hwm_kib "$LOADED_HWM"
	kv loaded.netd_rss_kib "$NETD_RSS1"
	say "dnsd VmRSS $LOADED_RSS KiB (VmHWM $LOADED_HWM) with $RSS_SANDBOXES sandboxes and $RSS_ENDPOINTS endpoints; netd $NETD_RSS1 KiB"
	if ((LOADED_RUN)); then
		f=$WORK/raw/dnsd.loaded.peak
		dnsperf_run dnsd "$f" 0 0 "$WORK/queries.txt"
		read -r LPEAK ndone lost lat rb tk sb st cb ct < "$f.sum"
		f=$WORK/raw/dnsd.loaded.half
		half_run dnsd "$f"
		read -r qps ndone lost lat rb tk sb st cb ct < "$f.sum"
		read -r lp50 lp99 < "$f.lat"
		LPROC=$(awk -v t="$tk" -v d="$ndone" -v hz="$HZ" 'BEGIN { printf "%.2f", d ? t / hz * 1e6 / d : 0 }')
		LCORE=$(awk -v b="$sb" -v t="$st" -v q="$qps" 'BEGIN { printf "%.2f", t && q ? b / t * 1e6 / q : 0 }')
		kv loaded.dnsd_peak_qps "$LPEAK"
		kv loaded.dnsd_half_cpu_us_per_query "$LPROC"
		kv loaded.dnsd_half_core_us_per_query "$LCORE"
		kv loaded.dnsd_half_p50_ms "$lp50"
		kv loaded.dnsd_half_p99_ms "$lp99"
		say "dnsd loaded: peak qps=$LPEAK; at $HALF_QPS/s p50_ms=$lp50 p99_ms=$lp99 proc_us/q=$LPROC core_us/q=$LCORE"
	fi
fi
kv runs "$RUNS"
kv runs_overlapping_other_benchmarks "$CONTENDED"
kv runs_repeated "$REPEATED"
kv waited_for_others_s "$WAITED"
kv background_busy_pct_max "$BG_MAX"
st=$(dstatus)
kv dnsd.forwarded "$(grep -o '"Forwarded":[0-9]*' <<< "$st" | cut -d: -f2)"
kv dnsd.dropped "$(grep -o '"Dropped":[0-9]*' <<< "$st" | cut -d: -f2)"

# ---------------------------------------------------------------- summary
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null | sed 's/[-+~].*//'; }
declare -A LABEL=([dnsd]="swarm-dnsd" [unbound]="Unbound $(ver unbound)" [knot]="Knot $(ver knot)" [nsd]="NSD $(ver nsd)")
mmm() { echo "$1" | awk '{ printf "%s/%s/%s", $1, $2, $3 }'; }
echo
echo "DNS local names, one core each: servers on CPU $SERVER_CPU, dnsperf $(ver dnsperf) on CPU $CLIENT_CPU in sandbox netns $SB;"
echo "UDP, EDNS (peers' payload $PEER_EDNS, dnsd's fixed 1232), $REPS x $DURATION s per server interleaved, -c $CLIENTS -q $OUTSTANDING; $(nproc) cores"
echo "zone: 100 services (VIP each), svc001-099 one task, svc100 100 tasks (dnsd: $BASE_ENDPOINTS endpoint records from swarm-netd)"
echo "queries: 100 service names, 5 x tasks.<svc> (1 A), 5 x tasks.svc100 (100 A) = 4.5 %; half rate = $HALF_QPS q/s for all"
echo
printf '%-12s %-22s %-18s %-18s %-18s %-18s %6s %-12s\n' server "peak qps min/med/max" "half p50 ms" "half p99 ms" \
	"cpu us/q (proc)" "cpu us/q (core)" "resp B" "tasks UDP"
for s in $SERVERS; do
	printf '%-12s %-22s %-18s %-18s %-18s %-18s %6s %-12s\n' "${LABEL[$s]}" "$(mmm "${PEAK[$s]}")" "$(mmm "${P50[$s]}")" \
		"$(mmm "${P99[$s]}")" "$(mmm "${PROC_US[$s]}")" "$(mmm "${CORE_US[$s]}")" "${RESP[$s]}" \
		"${TASKS_BYTES[$s]:-?}B ${TASKS_NOTE[$s]}"
done
echo
echo "server core busy at peak (median): $(for s in $SERVERS; do printf '%s %s%%  ' "$s" "$(med "${SCPU[$s]}")"; done)"
echo "dnsperf core busy at peak (median): $(for s in $SERVERS; do printf '%s %s%%  ' "$s" "$(med "${CCPU[$s]}")"; done)"
if ((TCP_RUN)); then
	echo "tasks.svc100 over TCP, qps (1 run): $(for s in $SERVERS; do printf '%s %s  ' "$s" "${TCPQ[$s]}"; done)"
fi
echo
echo "dnsd / peer (medians; qps higher is better, the rest lower is better):"
printf '  %-12s %8s %8s %8s %10s %10s\n' vs "peak" "p50" "p99" "cpu(proc)" "cpu(core)"
for s in $SERVERS; do
	[ "$s" = dnsd ] && continue
	printf '  %-12s %8s %8s %8s %10s %10s\n' "${LABEL[$s]}" \
		"$(ratio "$(med "${PEAK[dnsd]}")" "$(med "${PEAK[$s]}")")" \
		"$(ratio "$(med "${P50[dnsd]}")" "$(med "${P50[$s]}")")" \
		"$(ratio "$(med "${P99[dnsd]}")" "$(med "${P99[$s]}")")" \
		"$(ratio "$(med "${PROC_US[dnsd]}")" "$(med "${PROC_US[$s]}")")" \
		"$(ratio "$(med "${CORE_US[dnsd]}")" "$(med "${CORE_US[$s]}")")"
	kv "ratio_vs_$s.peak_qps" "$(ratio "$(med "${PEAK[dnsd]}")" "$(med "${PEAK[$s]}")")"
	kv "ratio_vs_$s.cpu_us_per_query" "$(ratio "$(med "${PROC_US[dnsd]}")" "$(med "${PROC_US[$s]}")")"
	kv "ratio_vs_$s.core_us_per_query" "$(ratio "$(med "${CORE_US[dnsd]}")" "$(med "${CORE_US[$s]}")")"
	kv "ratio_vs_$s.p99_ms" "$(ratio "$(med "${P99[dnsd]}")" "$(med "${P99[$s]}")")"
done
echo
echo "RSS: $(for s in $SERVERS; do printf '%s %s KiB  ' "$s" "${RSS[$s]}"; done)(1 sandbox, the zone; NSD: all 3 processes); swarm-netd $NETD_RSS0 KiB"
if [ -n "$LOADED_RSS" ]; then
	echo "dnsd with $RSS_SANDBOXES sandboxes and $RSS_ENDPOINTS endpoints: VmRSS $LOADED_RSS KiB (VmHWM $LOADED_HWM); swarm-netd $NETD_RSS1 KiB;"
	echo "  netd took the $((RSS_ENDPOINTS - BASE_ENDPOINTS)) extra attaches in $ATTACH_S s, dnsd the $((RSS_SANDBOXES - 1)) sandbox adds in $SB_S s"
	[ -n "$LPEAK" ] && echo "  dnsd loaded so: peak $LPEAK q/s; at $HALF_QPS q/s p50 $lp50 ms, p99 $lp99 ms, cpu $LPROC us/q (proc), $LCORE us/q (core)"
fi
echo "machine: waited $WAITED s for other benchmarks or load; $REPEATED runs repeated and $CONTENDED of $RUNS kept overlapping one; busiest 1 s before a run: $BG_MAX % of both cores"
echo "reference (peer-anchors.md 1, core method at each server's own half peak): Knot 6.5, NSD 9.0, Unbound 10.5 us/query; peaks dnsperf-bound ~110-120k/s"
[ -n "${SWARM_BENCH_RESULTS:-}" ] && cat "$RES" >> "$SWARM_BENCH_RESULTS"
exit 0
