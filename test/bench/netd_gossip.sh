#!/bin/bash
# swarm-netd against real serf (hashicorp memberlist, LAN profile), side by
# side in one run, on the same network namespaces.
# Usage: test/bench/netd_gossip.sh BUILDDIR   (root; BUILDDIR/netd/swarm-netd)
#
# Topology: one namespace per node ($PFX-nI, eth0 = 198.51.100.I/24), the
# veth peers on one bridge inside a hub namespace ($PFX-hub); sandboxes are
# namespaces $PFX-bI-K made with `ip netns add`; overlay addresses are in
# 198.18.0.0/16. Nothing is added to the root namespace. The daemons are
# started with `nsenter --net` (no new mount namespace), so netd's overlay
# namespace files RUN/ov-VNI are visible here; they are unmounted at the end.
# Every daemon's stdout/stderr line is stamped with $EPOCHREALTIME as it
# arrives, as in /work/shared/peers/serf-gossip.sh.
#
# Measured, for each N of SIZES (netd first, then serf, in the same namespaces):
#   (a) endpoint: N netd nodes (port 7946), one sandbox each attached to
#       overlay net1 (VNI 4242, 198.18.0.0/16); once every node holds all
#       others' neighbour entries, `ip monitor neigh` runs in RUN/ov-4242 of
#       nodes 2..N; t0 = just before `swarm-netd attach` of a new sandbox on
#       node1 (198.18.1.R), t = the last node's stamp of the later of its
#       neighbour entry and its FDB entry on vxlan0 ("every node has
#       programmed it"); then the same for its `detach` (both deleted).
#       serf (port 7947, same namespaces, after netd has been stopped):
#       t0 = just before `serf event -coalesce=false` on agent 1, t = the
#       last of the N handlers' runs (the reference's "user event").
#   (b) member join: t0 = launch of a new daemon joining node 1, t = the last
#       existing daemon logging it ("gossip, node dX (...) joined" for netd,
#       "EventMemberJoin: sX" for serf). REPS joins, cluster grows to N+REPS.
#   idle RSS/CPU of the N daemons over SAMPLE_SECONDS.
# Then, on FAIL_SIZE (10; 0 skips) nodes:
#   (c) failure: kill -9 one daemon; t = the last survivor logging it failed
#       ("... failed, from Y" / "EventMemberFailed"), and t = all survivors
#       listing it dead/failed when polled (`swarm-netd members` every ~0.1 s
#       on each survivor, `serf members -status=failed`). A replacement joins
#       between repetitions.
#   (d) data path: two netd nodes, TCP with iperf3 from a sandbox on node1 to
#       one on node2 over the overlay, vs node1 -> node2 over the underlay
#       veths (overlay MTU = underlay - 50); IPERF_REPS alternating runs.
#   (e) false positives (FP_SECONDS > 0): FP_SIZE healthy netd nodes, one
#       sandbox each, for FP_SECONDS; counts "suspect"/"failed"/"refuting"
#       log lines (there should be none).
# Prints a summary table with netd/serf ratios (lower is better for times;
# for throughput the ratio is overlay/underlay), and `key value` lines to
# $SWARM_BENCH_RESULTS when set.
#
# Env knobs: SIZES ("3 20 50"), REPS (3), FAIL_SIZE (10, 0 skips),
# FP_SECONDS (600, 0 skips), FP_SIZE (20), IPERF_SECONDS (10, 0 skips), IPERF_REPS (3),
# SAMPLE_SECONDS (10, 0 skips), NETD_STAGGER (0.05 s between netd starts),
# SERF_STAGGER (0.2 s), SERF_ENCRYPT (1: serf uses a gossip key, as netd
# does; 0: plaintext like the reference figures), WITH_SERF (1; 0 measures
# netd alone), PFX (namespace prefix, "bng"), NETD_LOG_LEVEL (info),
# KEEP_RAW=dir (copy logs, monitor output and a timeline there).
# SIZES="" skips (a) and (b).
# Lists of node numbers, pids and files are split on purpose:
# shellcheck disable=SC2046,SC2086,SC2207,SC2015,SC2317
set -uo pipefail

B=${1:-}
[ -n "$B" ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
NETD=$(cd "$B" 2>/dev/null && pwd)/netd/swarm-netd
SIZES=${SIZES-"3 20 50"}   # "" (set and empty): none
REPS=${REPS:-3}
FAIL_SIZE=${FAIL_SIZE:-10}
FP_SECONDS=${FP_SECONDS:-600}
FP_SIZE=${FP_SIZE:-20}
IPERF_SECONDS=${IPERF_SECONDS:-10}
IPERF_REPS=${IPERF_REPS:-3}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
NETD_STAGGER=${NETD_STAGGER:-0.05}
SERF_STAGGER=${SERF_STAGGER:-0.2}
SERF_ENCRYPT=${SERF_ENCRYPT:-1}
WITH_SERF=${WITH_SERF:-1}
PFX=${PFX:-bng}
NETD_LOG_LEVEL=${NETD_LOG_LEVEL:-info}
NETPFX=198.51.100
VNI=4242
HUB=$PFX-hub

die() { echo "netd_gossip: $*" >&2; exit 1; }
say() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$NETD" ] || die "no $NETD (build first)"
for n in $SIZES; do
	[[ $n =~ ^[0-9]+$ ]] && ((n >= 2 && n + REPS <= 250)) || die "bad size $n (2..250-REPS)"
done
((FAIL_SIZE == 0 || (FAIL_SIZE >= 3 && FAIL_SIZE + REPS <= 250))) || die "bad FAIL_SIZE"
((FP_SIZE >= 2 && FP_SIZE <= 250)) || die "bad FP_SIZE"
need=()
command -v serf > /dev/null || need+=(serf)
command -v nsenter > /dev/null || need+=(util-linux)
command -v jq > /dev/null || need+=(jq)
((IPERF_SECONDS > 0)) && ! command -v iperf3 > /dev/null && need+=(iperf3)
if ((${#need[@]})); then
	say "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" > /dev/null ||
		die "cannot install ${need[*]}"
fi
SERF=$(command -v serf)
if ip netns list | awk '{ print $1 }' | grep -q "^$PFX-"; then
	die "namespaces $PFX-* exist already (another run, or one that was killed -9); remove them or set PFX"
fi

WORK=$(mktemp -d /tmp/netd-gossip.XXXXXX)
RES=$WORK/results      # "key value" lines
ROWS=$WORK/rows        # summary table rows, tab-separated
: > "$RES"
: > "$ROWS"
declare -A PIDS=()     # label -> pid of a process we started (our child)
declare -A NETD_USAGE=() SERF_USAGE=()   # N -> "rss_MiB cpu_pct"
NSLIST=()              # namespaces we made
SYSCTL_SAVE=()         # "key old ours" for each sysctl raised

# kill_ours SIG LABEL...: signals the labelled processes if they are still our
# children (a pid bash has already reaped may belong to someone else by now).
kill_ours() {
	local sig=$1 l p; shift
	for l in "$@"; do
		p=${PIDS[$l]:-}
		[ -n "$p" ] || continue
		if [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$$" ]; then
			kill "-$sig" "$p" 2>/dev/null
		fi
	done
}
# reap LABEL...: waits (bounded, 5 s) for them to exit, then SIGKILLs.
reap() {
	local l p k
	for l in "$@"; do
		p=${PIDS[$l]:-}
		[ -n "$p" ] || continue
		for ((k = 0; k < 50; k++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill_ours KILL "$l"
		unset "PIDS[$l]"
	done
}
labels() { # PATTERN -> labels matching the glob
	local l
	for l in "${!PIDS[@]}"; do
		# shellcheck disable=SC2053
		[[ $l == $1 ]] && echo "$l"
	done
}
umount_work() {
	local m
	awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
}
cleanup() {
	set +e
	trap - EXIT INT TERM
	kill_ours KILL "${!PIDS[@]}"
	local l
	sleep 0.2
	umount_work
	for l in "${NSLIST[@]}"; do ip netns del "$l" 2>/dev/null; done
	# put back what we raised, unless someone (a swarm-lab going down)
	# changed it since
	local k old ours
	for l in "${SYSCTL_SAVE[@]}"; do
		read -r k old ours <<< "$l"
		[ "$(sysctl -n "$k" 2>/dev/null)" = "$ours" ] && sysctl -qw "$k=$old"
	done
	if [ -n "${KEEP_RAW:-}" ]; then
		mkdir -p "$KEEP_RAW" && cp -r "$WORK"/. "$KEEP_RAW/" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "netd_gossip: interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- helpers
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
later() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
diff_s() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# stats: numbers on stdin (NaN = a failed repetition) -> "min median max ok/total"
stats() {
	sort -g | awk 'NF == 0 { next } $1 != "NaN" { a[++n] = $1 } $1 == "NaN" { f++ }
		END { if (!n) { printf "- - - 0/%d\n", f; exit }
		      printf "%s %s %s %d/%d\n", a[1], a[int((n + 1) / 2)], a[n], n, n + f }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
# result KEY STATS-LINE: min/median/max into $RES
result() {
	local k=$1 mn md mx ok
	read -r mn md mx ok <<< "$2"
	printf '%s.min %s\n%s.median %s\n%s.max %s\n%s.ok %s\n' "$k" "$mn" "$k" "$md" "$k" "$mx" "$k" "$ok" >> "$RES"
}
# row N MEASURE NETD-STATS SERF-STATS: a summary line with the median ratio
row() {
	local a b
	a=$(echo "$3" | awk '{ print $2 }'); b=$(echo "$4" | awk '{ print $2 }')
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$(ratio "$a" "$b")" >> "$ROWS"
}
# first_stamps PATTERN FILE...: "count max" over the files of the stamp of
# each file's first line containing PATTERN
first_stamps() {
	local pat=$1; shift
	awk -v p="$pat" 'FNR == 1 { f = 0 } !f && index($0, p) { f = 1; n++; if (m == "" || $1 > m) m = $1 }
		END { print n + 0, (m == "" ? "-" : m) }' "$@" 2>/dev/null
}
# wait_stamps PATTERN TIMEOUT FILE...: waits until every file has a line with
# PATTERN; prints the last first-stamp, or "" on timeout
wait_stamps() {
	local pat=$1 to=$2; shift 2
	local end=$((SECONDS + to)) k c m
	for ((k = 0; k < to * 20 + 1 && SECONDS <= end; k++)); do
		read -r c m < <(first_stamps "$pat" "$@")
		((c == $#)) && { echo "$m"; return 0; }
		sleep 0.05
	done
	echo ""
}
files_of() { # DIR FILE-PREFIX INDEX... -> paths
	local d=$1 p=$2 i; shift 2
	for i in "$@"; do echo "$d/$p$i"; done
}
# usage_sample SECONDS PID... -> "rss_MiB_total cpu_pct_of_one_core"
usage_sample() {
	local s=$1 p rss=0 t0=0 t1=0 hz; shift
	hz=$(getconf CLK_TCK)
	for p in "$@"; do
		rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
		t0=$((t0 + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	sleep "$s"
	for p in "$@"; do t1=$((t1 + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	awk -v r="$rss" -v d=$((t1 - t0)) -v hz="$hz" -v s="$s" 'BEGIN { printf "%.1f %.1f\n", r / 1024, d / hz / s * 100 }'
}

# ---------------------------------------------------------------- network
# The neighbour tables and their gc thresholds are global across namespaces:
# 50 nodes x 49 neighbours > the default gc_thresh3 (1024) ("neighbor table
# overflow", lost packets, a cluster that never converges). Raised only where
# lower (a swarm-lab may have raised them already), and again whenever the
# script waits for a cluster: a swarm-lab going down meanwhile puts back its
# own saved values. Each key's restore value is the one found before our last
# raise.
ensure_sysctls() {
	local kv k want cur i
	for kv in gc_thresh1=1024 gc_thresh2=8192 gc_thresh3=16384; do
		k=net.ipv4.neigh.default.${kv%=*} want=${kv#*=}
		cur=$(sysctl -n "$k") || die "cannot read $k"
		((cur < want)) || continue
		sysctl -qw "$k=$want" || die "cannot raise $k"
		for i in "${!SYSCTL_SAVE[@]}"; do
			[[ ${SYSCTL_SAVE[$i]} == "$k "* ]] || continue
			unset "SYSCTL_SAVE[$i]"
			say "WARNING: $k was lowered to $cur meanwhile (a swarm-lab going down?); raised again"
		done
		SYSCTL_SAVE+=("$k $cur $want")
	done
}
ensure_sysctls
ip netns add "$HUB" || die "cannot make namespace $HUB"
NSLIST+=("$HUB")
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
ip -n "$HUB" link set lo up
declare -A HAVE_NS=()
ns_of() { echo "/run/netns/$PFX-n$1"; }
mk_node_ns() { # I (idempotent)
	local i=$1 ns=$PFX-n$1
	[ -n "${HAVE_NS[$i]:-}" ] && return 0
	ip netns add "$ns" || die "cannot make namespace $ns"
	NSLIST+=("$ns")
	ip -n "$HUB" link add "v$i" type veth peer name eth0 netns "$ns" &&
		ip -n "$HUB" link set "v$i" master br0 up &&
		ip -n "$ns" link set lo up &&
		ip -n "$ns" addr add "$NETPFX.$i/24" dev eth0 &&
		ip -n "$ns" link set eth0 up || die "cannot wire $ns"
	HAVE_NS[$i]=1
}
mk_nodes() { local i; for ((i = 1; i <= $1; i++)); do mk_node_ns "$i"; done; }
mk_sandbox() { # NAME -> SB = its netns path (not in a subshell: NSLIST)
	ip netns add "$PFX-$1" || die "cannot make namespace $PFX-$1"
	NSLIST+=("$PFX-$1")
	SB=/run/netns/$PFX-$1
}
del_sandboxes() {
	local i keep=()
	for i in "${NSLIST[@]}"; do
		if [[ $i == "$PFX"-b* ]]; then ip netns del "$i" 2>/dev/null; else keep+=("$i"); fi
	done
	NSLIST=("${keep[@]}")
}

# ---------------------------------------------------------------- netd
head -c 16 /dev/urandom | base64 > "$WORK/netd.key"
ND=$WORK/netd          # per node: nI/{netd.conf,run,state,log}
mkdir -p "$ND"
nrun() { echo "$ND/n$1/run"; }
start_netd() { # I [JOIN]
	local i=$1 join=${2:-} d=$ND/n$1
	mkdir -p "$d/run" "$d/state"
	{
		echo "node_name = d$i"
		echo "bind_addr = $NETPFX.$i"
		echo "bind_port = 7946"
		echo "advertise_addr = $NETPFX.$i"
		echo "keyring_file = $WORK/netd.key"
		echo "datapath = on"
		[ -n "$join" ] && echo "join = $join"
	} > "$d/netd.conf"
	nsenter --net="$(ns_of "$i")" "$NETD" --foreground --config "$d/netd.conf" \
		--state-dir "$d/state" --run-dir "$d/run" --log-level "$NETD_LOG_LEVEL" > >(stamp >> "$d/log") 2>&1 &
	PIDS[netd$i]=$!
	disown "$!"
}
wait_netd_socket() { # I
	local k
	for ((k = 0; k < 100; k++)); do
		[ -S "$(nrun "$1")/netd.sock" ] && return 0
		kill -0 "${PIDS[netd$1]}" 2>/dev/null || break
		sleep 0.05
	done
	tail -n 5 "$ND/n$1/log" >&2
	die "netd d$1 did not make its socket"
}
netd_members() { "$NETD" members --run-dir "$(nrun "$1")" 2>/dev/null; }
netd_alive() { netd_members "$1" | grep -o '"Status":"alive"' | wc -l; }
netd_status_of() { # I NAME -> its status in node I's member list
	netd_members "$1" | jq -r --arg n "$2" '.[] | select(.Name == $n) | .Status' 2>/dev/null
}
# wait_netd_alive WANT TIMEOUT I...: every listed node sees WANT alive members
wait_netd_alive() {
	local want=$1 to=$2 i k ok; shift 2
	local end=$((SECONDS + to))
	declare -A seen=()
	for ((k = 0; k < to * 5 + 1 && SECONDS <= end; k++)); do
		ensure_sysctls
		ok=1
		for i in "$@"; do
			[ -n "${seen[$i]:-}" ] && continue
			if [ "$(netd_alive "$i")" -eq "$want" ]; then seen[$i]=1; else ok=0; fi
		done
		((ok)) && return 0
		sleep 0.2
	done
	printf 'netd alive counts (want %s):' "$want" >&2
	for i in "$@"; do printf ' d%s=%s' "$i" "$(netd_alive "$i")" >&2; done
	echo >&2
	gone_daemons
	return 1
}
netd_neigh_count() { # I -> permanent neighbour entries on vxlan0 of its ov-VNI
	nsenter --net="$(nrun "$1")/ov-$VNI" ip neigh show dev vxlan0 nud permanent 2>/dev/null | wc -l
}
# wait_neigh WANT TIMEOUT I...
wait_neigh() {
	local want=$1 to=$2 i k ok; shift 2
	local end=$((SECONDS + to))
	declare -A seen=()
	for ((k = 0; k < to * 4 + 1 && SECONDS <= end; k++)); do
		ensure_sysctls
		ok=1
		for i in "$@"; do
			[ -n "${seen[$i]:-}" ] && continue
			if [ "$(netd_neigh_count "$i")" -ge "$want" ]; then seen[$i]=1; else ok=0; fi
		done
		((ok)) && return 0
		sleep 0.25
	done
	printf 'neighbour entries on vxlan0 (want %s):' "$want" >&2
	for i in "$@"; do printf ' d%s=%s' "$i" "$(netd_neigh_count "$i")" >&2; done
	echo >&2
	return 1
}
netd_attach() { # I TASK SANDBOX-PATH IP
	"$NETD" attach "$2" "$3" net1 "$VNI" 198.18.0.0/16 198.18.0.1 "$4" --run-dir "$(nrun "$1")" > /dev/null
}
build_netd() { # N: nodes 1..N, node 1 the seed
	local n=$1 i t0=$EPOCHREALTIME
	ensure_sysctls
	start_netd 1
	wait_netd_socket 1
	for ((i = 2; i <= n; i++)); do start_netd "$i" "$NETPFX.1"; sleep "$NETD_STAGGER"; done
	for ((i = 2; i <= n; i++)); do wait_netd_socket "$i"; done
	wait_netd_alive "$n" 120 $(seq 1 "$n") || die "netd cluster of $n did not converge"
	say "netd: $n nodes started and all see $n alive after $(diff_s "$t0" "$EPOCHREALTIME") s"
}
# Anything netd left in a node's own namespace besides lo and eth0 (with no
# gateway configured it should leave nothing there).
netd_leftovers() {
	local i l out=""
	for i in "$@"; do
		l=$(ip -n "$PFX-n$i" -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
			grep -vx 'lo\|eth0' | tr '\n' ' ')
		[ -n "$l" ] && out+="d$i: $l; "
	done
	echo "$out"
}
# Problem lines in netd logs: warnings and errors, false suspicions.
netd_log_problems() { # I...
	local i
	for i in "$@"; do
		grep -E 'swarm-netd\[(warn|error)|suspect, from|failed, from|refut' "$ND/n$i/log" 2>/dev/null | sed "s/^/d$i: /"
	done
}
stop_netd() { # stops every netd and monitor, unmounts the overlay namespaces
	local ids
	ids=$(labels 'mon*'; labels 'netd*')
	kill_ours TERM $ids
	reap $ids
	umount_work
	del_sandboxes
}
# A fresh $ND; the previous one is kept for KEEP_RAW as raw/netd-STAGE.
STAGE=0
reset_netd_dirs() {
	if [ -n "${KEEP_RAW:-}" ] && [ -d "$ND" ] && [ -n "$(ls "$ND")" ]; then
		mkdir -p "$WORK/raw" && mv "$ND" "$WORK/raw/netd-$((++STAGE))"
	fi
	rm -rf "$ND"
	mkdir -p "$ND"
}
# Daemons we started that are gone (for messages about a stuck cluster).
gone_daemons() {
	local l out=""
	for l in $(labels 'netd*'; labels 'serf*'); do
		kill -0 "${PIDS[$l]}" 2>/dev/null || out+="$l "
	done
	[ -n "$out" ] && echo "daemons that exited: $out(something outside killed them?)" >&2
}

# ---------------------------------------------------------------- serf
SD=$WORK/serf          # log/sI, ev/sI
mkdir -p "$SD/log" "$SD/ev"
SERF_KEY=$(head -c 16 /dev/urandom | base64)
cat > "$WORK/handler.sh" << 'EOF'
#!/bin/bash
t=$EPOCHREALTIME
p=$(cat)
printf '%s %s %s\n' "$t" "$SERF_USER_EVENT" "$p" >> "$BENCH_EVDIR/$SERF_SELF_NAME"
EOF
chmod +x "$WORK/handler.sh"
start_serf() { # I [JOIN [retry]]
	local i=$1 join=${2:-} retry=${3:-}
	local args=(agent -node="s$i" -bind="$NETPFX.$i:7947" -rpc-addr=127.0.0.1:7373 -profile=lan
		-log-level=info -event-handler="user:bench=$WORK/handler.sh")
	((SERF_ENCRYPT)) && args+=(-encrypt="$SERF_KEY")
	if [ -n "$join" ] && [ -n "$retry" ]; then
		args+=(-retry-join="$join:7947" -retry-interval=1s)
	elif [ -n "$join" ]; then
		args+=(-join="$join:7947")
	fi
	BENCH_EVDIR=$SD/ev nsenter --net="$(ns_of "$i")" "$SERF" "${args[@]}" \
		> >(stamp >> "$SD/log/s$i") 2>&1 &
	PIDS[serf$i]=$!
	disown "$!"
}
serf_alive() {
	{ nsenter --net="$(ns_of "$1")" timeout 5 "$SERF" members -status=alive 2>/dev/null || true; } | wc -l
}
wait_serf_alive() { # WANT TIMEOUT I...
	local want=$1 to=$2 i k ok; shift 2
	local end=$((SECONDS + to))
	declare -A seen=()
	for ((k = 0; k < to * 2 + 1 && SECONDS <= end; k++)); do
		ensure_sysctls
		ok=1
		for i in "$@"; do
			[ -n "${seen[$i]:-}" ] && continue
			if [ "$(serf_alive "$i")" -eq "$want" ]; then seen[$i]=1; else ok=0; fi
		done
		((ok)) && return 0
		sleep 0.5
	done
	printf 'serf alive counts (want %s):' "$want" >&2
	for i in "$@"; do printf ' s%s=%s' "$i" "$(serf_alive "$i")" >&2; done
	echo >&2
	gone_daemons
	return 1
}
build_serf() { # N
	local n=$1 i t0=$EPOCHREALTIME
	ensure_sysctls
	start_serf 1
	sleep 0.5
	# staggered, with -retry-join: Go agents starting at once on 2 cores
	# starve each other, and a plain -join that times out makes one exit
	for ((i = 2; i <= n; i++)); do start_serf "$i" "$NETPFX.1" retry; sleep "$SERF_STAGGER"; done
	wait_serf_alive "$n" 180 $(seq 1 "$n") || die "serf cluster of $n did not converge"
	say "serf: $n agents started and all see $n alive after $(diff_s "$t0" "$EPOCHREALTIME") s"
}
stop_serf() {
	local ids
	ids=$(labels 'serf*')
	kill_ours KILL $ids
	reap $ids
	if [ -n "${KEEP_RAW:-}" ]; then
		mkdir -p "$WORK/raw/serf-$((++STAGE))" && mv "$SD/log" "$SD/ev" "$WORK/raw/serf-$STAGE/"
		mkdir -p "$SD/log" "$SD/ev"
	fi
	rm -f "$SD"/log/* "$SD"/ev/*
}
pids_of() { # PREFIX I... -> pids
	local p=$1 i; shift
	for i in "$@"; do echo "${PIDS[$p$i]}"; done
}

# ================================================================ (a)+(b)
for N in $SIZES; do
	total=$((N + REPS))
	mk_nodes "$total"
	say "---- N=$N: swarm-netd"
	reset_netd_dirs
	build_netd "$N"
	t0=$EPOCHREALTIME
	for ((i = 1; i <= N; i++)); do
		mk_sandbox "b$i-0"
		netd_attach "$i" "t$i" "$SB" "198.18.0.$((10 + i))" || die "attach on d$i failed"
	done
	wait_neigh $((N - 1)) 120 $(seq 1 "$N") || die "netd: endpoints did not reach every node"
	fill=$(diff_s "$t0" "$EPOCHREALTIME")
	say "netd: $N sandboxes attached one after the other, all nodes programmed all $((N - 1)) remote ones after $fill s"
	echo "netd_gossip.n$N.netd_initial_fill_s $fill" >> "$RES"
	if ((SAMPLE_SECONDS > 0)); then
		read -r rss cpu < <(usage_sample "$SAMPLE_SECONDS" $(pids_of netd $(seq 1 "$N")))
		printf 'netd_gossip.n%s.netd_idle_rss_mib %s\nnetd_gossip.n%s.netd_idle_cpu_pct %s\n' "$N" "$rss" "$N" "$cpu" >> "$RES"
		NETD_USAGE[$N]="$rss $cpu"
		say "netd: $N nodes idle: RSS $rss MiB total, CPU $cpu % of one core"
	fi
	# (a) a new endpoint on node 1, seen programmed by nodes 2..N
	# (neighbour and FDB entries both show in `ip monitor neigh`)
	MON=$WORK/mon/n$N
	mkdir -p "$MON"
	for ((i = 2; i <= N; i++)); do
		nsenter --net="$(nrun "$i")/ov-$VNI" ip monitor neigh > >(stamp > "$MON/m$i") 2>&1 &
		PIDS[mon$i]=$!
		disown "$!"
	done
	sleep 1
	mons=$(files_of "$MON" m $(seq 2 "$N"))
	ea=(); ed=()
	for ((r = 1; r <= REPS; r++)); do
		ip=198.18.1.$r mac=$(printf '02:42:c6:12:01:%02x' "$r")
		mk_sandbox "b1-$r"
		t0=$EPOCHREALTIME
		netd_attach 1 "e$r" "$SB" "$ip" || die "attach e$r failed"
		echo "$t0 N=$N attach e$r $ip (returned $EPOCHREALTIME)" >> "$WORK/timeline"
		# programmed = its neighbour entry and its FDB entry (-> node 1)
		t=$(wait_stamps " $ip dev vxlan0 lladdr $mac" 30 $mons)
		t2=$(wait_stamps " $NETPFX.1 dev vxlan0 lladdr $mac" 30 $mons)
		ea+=("$([ -n "$t" ] && [ -n "$t2" ] && diff_s "$t0" "$(later "$t" "$t2")" || echo NaN)")
		sleep 1
		t0=$EPOCHREALTIME
		"$NETD" detach "e$r" --run-dir "$(nrun 1)" > /dev/null || die "detach e$r failed"
		echo "$t0 N=$N detach e$r (returned $EPOCHREALTIME)" >> "$WORK/timeline"
		t=$(wait_stamps "Deleted $ip dev vxlan0" 30 $mons)
		t2=$(wait_stamps "Deleted $NETPFX.1 dev vxlan0 lladdr $mac" 30 $mons)
		ed+=("$([ -n "$t" ] && [ -n "$t2" ] && diff_s "$t0" "$(later "$t" "$t2")" || echo NaN)")
		say "netd N=$N rep $r: new endpoint programmed on all $((N - 1)) others after ${ea[-1]} s, its removal after ${ed[-1]} s"
		sleep 1
	done
	kill_ours TERM $(labels 'mon*')
	reap $(labels 'mon*')
	# (b) member join
	nj=()
	for ((r = 1; r <= REPS; r++)); do
		new=$((N + r))
		t0=$EPOCHREALTIME
		start_netd "$new" "$NETPFX.1"
		t=$(wait_stamps "gossip, node d$new ($NETPFX.$new:7946) joined" 30 $(files_of "$ND" n $(seq 1 $((new - 1))) | sed 's|$|/log|'))
		nj+=("$([ -n "$t" ] && diff_s "$t0" "$t" || echo NaN)")
		say "netd N=$N join rep $r: all $((new - 1)) logged d$new joined after ${nj[-1]} s"
		wait_netd_alive "$new" 60 $(seq 1 "$new") || say "WARNING: netd cluster did not reach $new alive"
		sleep 1
	done
	probs=$(netd_log_problems $(seq 1 "$total"))
	[ -n "$probs" ] && { say "netd N=$N: log lines to look at:"; echo "$probs" | head -n 20 | sed 's/^/#   /' >&2; }
	stop_netd
	left=$(netd_leftovers $(seq 1 "$total"))
	[ -n "$left" ] && say "netd N=$N: links left in node namespaces after stop: $left"
	echo "netd_gossip.n$N.netd_warnings $(echo -n "$probs" | grep -c .)" >> "$RES"

	se=(); sj=()
	if ((WITH_SERF)); then
		say "---- N=$N: serf"
		build_serf "$N"
		sleep 3
		if ((SAMPLE_SECONDS > 0)); then
			read -r rss cpu < <(usage_sample "$SAMPLE_SECONDS" $(pids_of serf $(seq 1 "$N")))
			printf 'netd_gossip.n%s.serf_idle_rss_mib %s\nnetd_gossip.n%s.serf_idle_cpu_pct %s\n' "$N" "$rss" "$N" "$cpu" >> "$RES"
			SERF_USAGE[$N]="$rss $cpu"
			say "serf: $N agents idle: RSS $rss MiB total, CPU $cpu % of one core"
		fi
		# (a) user event from agent 1 to the N handlers
		se=()
		evs=$(files_of "$SD/ev" s $(seq 1 "$N"))
		for ((r = 1; r <= REPS; r++)); do
			t0=$EPOCHREALTIME
			nsenter --net="$(ns_of 1)" timeout 10 "$SERF" event -coalesce=false bench "r$r-x" > /dev/null
			t=$(wait_stamps " bench r$r-x" 20 $evs)
			se+=("$([ -n "$t" ] && diff_s "$t0" "$t" || echo NaN)")
			say "serf N=$N event rep $r: all $N handlers ran after ${se[-1]} s"
			sleep 2
		done
		# (b) member join
		sj=()
		for ((r = 1; r <= REPS; r++)); do
			new=$((N + r))
			t0=$EPOCHREALTIME
			start_serf "$new" "$NETPFX.1"
			t=$(wait_stamps "EventMemberJoin: s$new " 30 $(files_of "$SD/log" s $(seq 1 $((new - 1)))))
			sj+=("$([ -n "$t" ] && diff_s "$t0" "$t" || echo NaN)")
			say "serf N=$N join rep $r: all $((new - 1)) logged s$new joined after ${sj[-1]} s"
			wait_serf_alive "$new" 60 "$new" || say "WARNING: s$new does not see $new alive"
			sleep 2
		done
		stop_serf
	fi

	a=$(printf '%s\n' "${ea[@]}" | stats); b=$(printf '%s\n' "${se[@]}" | stats)
	result "netd_gossip.n$N.netd_endpoint_add_s" "$a"
	result "netd_gossip.n$N.serf_user_event_s" "$b"
	row "$N" "endpoint programmed on all / serf user event handled by all (s)" "$a" "$b"
	echo "netd_gossip.n$N.ratio_endpoint_vs_event $(ratio "$(echo "$a" | awk '{print $2}')" "$(echo "$b" | awk '{print $2}')")" >> "$RES"
	a=$(printf '%s\n' "${ed[@]}" | stats)
	result "netd_gossip.n$N.netd_endpoint_del_s" "$a"
	row "$N" "endpoint removed on all (s; no serf counterpart)" "$a" "- - - -"
	a=$(printf '%s\n' "${nj[@]}" | stats); b=$(printf '%s\n' "${sj[@]}" | stats)
	result "netd_gossip.n$N.netd_join_s" "$a"
	result "netd_gossip.n$N.serf_join_s" "$b"
	row "$N" "new member logged by all (s, from its launch)" "$a" "$b"
	echo "netd_gossip.n$N.ratio_join $(ratio "$(echo "$a" | awk '{print $2}')" "$(echo "$b" | awk '{print $2}')")" >> "$RES"
done

# ================================================================ (c) failure
# fail_run KIND: KIND netd|serf; fills FL (logged) and FP (polled)
fail_run() {
	local kind=$1 r i victim t0 t k end vname pat repl
	local alive=() survivors=()
	FL=(); FPL=()
	alive=($(seq 1 "$N"))
	for ((r = 1; r <= REPS; r++)); do
		victim=${alive[$((${#alive[@]} / 2))]}
		survivors=()
		for i in "${alive[@]}"; do [ "$i" = "$victim" ] || survivors+=("$i"); done
		if [ "$kind" = netd ]; then
			vname=d$victim pat="gossip, node d$victim ($NETPFX.$victim:7946) failed"
			logs=$(files_of "$ND" n "${survivors[@]}" | sed 's|$|/log|')
		else
			vname=s$victim pat="EventMemberFailed: s$victim "
			logs=$(files_of "$SD/log" s "${survivors[@]}")
		fi
		declare -A conf=()
		local tp=""
		t0=$EPOCHREALTIME
		kill_ours KILL "$kind$victim"
		reap "$kind$victim"
		end=$((SECONDS + 60))
		for ((k = 0; k < 600 && SECONDS <= end; k++)); do
			for i in "${survivors[@]}"; do
				[ -n "${conf[$i]:-}" ] && continue
				if [ "$kind" = netd ]; then
					[ "$(netd_status_of "$i" "$vname")" = dead ] && conf[$i]=1
				else
					nsenter --net="$(ns_of "$i")" timeout 5 "$SERF" members -name="^$vname\$" -status=failed 2>/dev/null |
						grep -q . && conf[$i]=1
				fi
			done
			if ((${#conf[@]} == ${#survivors[@]})); then tp=$EPOCHREALTIME; break; fi
			sleep 0.1
		done
		t=$(wait_stamps "$pat" 30 $logs)
		FL+=("$([ -n "$t" ] && diff_s "$t0" "$t" || echo NaN)")
		FPL+=("$([ -n "$tp" ] && diff_s "$t0" "$tp" || echo NaN)")
		say "$kind failure rep $r: all ${#survivors[@]} survivors logged $vname failed after ${FL[-1]} s; all listed it dead/failed (poll) after ${FPL[-1]} s"
		unset conf
		repl=$((N + r))
		if [ "$kind" = netd ]; then
			start_netd "$repl" "$NETPFX.1"
			alive=("${survivors[@]}" "$repl")
			wait_netd_alive "$N" 60 "${alive[@]}" || say "WARNING: netd did not get back to $N alive"
		else
			start_serf "$repl" "$NETPFX.1"
			alive=("${survivors[@]}" "$repl")
			wait_serf_alive "$N" 60 "${alive[@]}" || say "WARNING: serf did not get back to $N alive"
		fi
		sleep 3
	done
}
if ((FAIL_SIZE > 0)); then
	N=$FAIL_SIZE
	mk_nodes $((N + REPS))
	say "---- failure detection, N=$N: swarm-netd"
	reset_netd_dirs
	build_netd "$N"
	sleep 3
	fail_run netd
	nfl=$(printf '%s\n' "${FL[@]}" | stats); nfp=$(printf '%s\n' "${FPL[@]}" | stats)
	probs=$(netd_log_problems $(seq 1 $((N + REPS))) | grep -v ' failed, from \| suspect, from ' || true)
	[ -n "$probs" ] && { say "netd failure run: other log lines to look at:"; echo "$probs" | head -n 20 | sed 's/^/#   /' >&2; }
	stop_netd
	FL=(); FPL=()
	if ((WITH_SERF)); then
		say "---- failure detection, N=$N: serf"
		build_serf "$N"
		sleep 3
		fail_run serf
		stop_serf
	fi
	sfl=$(printf '%s\n' "${FL[@]}" | stats); sfp=$(printf '%s\n' "${FPL[@]}" | stats)
	result "netd_gossip.n$N.netd_fail_logged_s" "$nfl"
	result "netd_gossip.n$N.serf_fail_logged_s" "$sfl"
	result "netd_gossip.n$N.netd_fail_polled_s" "$nfp"
	result "netd_gossip.n$N.serf_fail_polled_s" "$sfp"
	row "$N" "failure: all survivors logged it failed (s)" "$nfl" "$sfl"
	row "$N" "failure: all survivors list it dead (poll, s)" "$nfp" "$sfp"
fi

# ================================================================ (d) data path
iperf_run() { # FROM-NETNS TO-NETNS TO-IP -> Gbit/s or NaN
	local from=$1 to=$2 ip=$3 k bps
	nsenter --net="$to" iperf3 -s -1 -B "$ip" > /dev/null 2>&1 &
	PIDS[iperf]=$!
	disown "$!"
	for ((k = 0; k < 50; k++)); do
		nsenter --net="$to" ss -ltnH 'sport = :5201' 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	bps=$(nsenter --net="$from" timeout $((IPERF_SECONDS + 20)) iperf3 -c "$ip" -t "$IPERF_SECONDS" -J 2>/dev/null |
		jq -r '.end.sum_received.bits_per_second // empty' 2>/dev/null)
	kill_ours TERM iperf
	reap iperf
	if [ -n "$bps" ]; then awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }'; else echo NaN; fi
}
if ((IPERF_SECONDS > 0)); then
	say "---- data path: iperf3 over the overlay vs the underlay"
	reset_netd_dirs
	build_netd 2
	mk_sandbox b1-0; sa=$SB
	mk_sandbox b2-0; sb=$SB
	netd_attach 1 t1 "$sa" 198.18.0.11 && netd_attach 2 t2 "$sb" 198.18.0.12 || die "attach failed"
	wait_neigh 1 30 1 2 || die "netd: the two endpoints did not reach each other"
	umtu=$(ip -n "$PFX-n1" -o link show eth0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
	omtu=$(ip -n "$PFX-b1-0" -o link show eth0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
	ov=(); un=()
	for ((r = 1; r <= IPERF_REPS; r++)); do
		un+=("$(iperf_run "$(ns_of 1)" "$(ns_of 2)" "$NETPFX.2")")
		ov+=("$(iperf_run "$sa" "$sb" 198.18.0.12)")
		say "iperf3 rep $r: underlay ${un[-1]} Gbit/s (mtu $umtu), overlay ${ov[-1]} Gbit/s (mtu $omtu)"
	done
	stop_netd
	a=$(printf '%s\n' "${ov[@]}" | stats); b=$(printf '%s\n' "${un[@]}" | stats)
	result "netd_gossip.tcp_overlay_gbps" "$a"
	result "netd_gossip.tcp_underlay_gbps" "$b"
	row 2 "TCP Gbit/s, overlay (netd) / underlay veths" "$a" "$b"
	echo "netd_gossip.ratio_tcp_overlay_vs_underlay $(ratio "$(echo "$a" | awk '{print $2}')" "$(echo "$b" | awk '{print $2}')")" >> "$RES"
fi

# ================================================================ (e) false positives
if ((FP_SECONDS > 0)); then
	N=$FP_SIZE
	say "---- false positives: $N healthy netd nodes for $FP_SECONDS s"
	mk_nodes "$N"
	reset_netd_dirs
	build_netd "$N"
	for ((i = 1; i <= N; i++)); do
		mk_sandbox "b$i-0"
		netd_attach "$i" "t$i" "$SB" "198.18.0.$((10 + i))" || die "attach on d$i failed"
	done
	wait_neigh $((N - 1)) 120 $(seq 1 "$N") || say "WARNING: endpoints did not reach every node"
	t_fp0=$EPOCHREALTIME
	minalive=$N
	hz=$(getconf CLK_TCK)
	c0=0
	for p in $(pids_of netd $(seq 1 "$N")); do c0=$((c0 + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	end=$((SECONDS + FP_SECONDS))
	for ((k = 0; k < FP_SECONDS / 10 + 1 && SECONDS < end; k++)); do
		sleep $((end - SECONDS < 10 ? (end - SECONDS > 0 ? end - SECONDS : 0) : 10))
		for ((i = 1; i <= N; i++)); do
			a=$(netd_alive "$i")
			((a < minalive)) && minalive=$a
		done
	done
	c1=0
	for p in $(pids_of netd $(seq 1 "$N")); do c1=$((c1 + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done
	fpcpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$(diff_s "$t_fp0" "$EPOCHREALTIME")" 'BEGIN { printf "%.1f", d / hz / s * 100 }')
	# only lines stamped inside the window
	cnt() { cat "$ND"/n*/log | awk -v t="$t_fp0" -v p="$1" '$1 >= t && index($0, p) { n++ } END { print n + 0 }'; }
	fsus=$(cnt " suspect, from ") ffail=$(cnt " failed, from ") fref=$(cnt "refuting")
	fwarn=$(cat "$ND"/n*/log | awk -v t="$t_fp0" '$1 >= t && /swarm-netd\[(warn|error)/ { n++ } END { print n + 0 }')
	alive_end=$(for ((i = 1; i <= N; i++)); do netd_alive "$i"; done | sort -n | head -n 1)
	say "false positives over $FP_SECONDS s: $fsus suspect, $ffail failed, $fref refuting lines, $fwarn warnings; lowest alive count seen $minalive/$N; netd CPU $fpcpu % of one core (all $N)"
	[ "$fwarn" -gt 0 ] && cat "$ND"/n*/log | awk -v t="$t_fp0" '$1 >= t && /swarm-netd\[(warn|error)|suspect, from|failed, from|refut/' | head -n 20 | sed 's/^/#   /' >&2
	stop_netd
	printf 'netd_gossip.fp.seconds %s\nnetd_gossip.fp.suspect_lines %s\nnetd_gossip.fp.failed_lines %s\nnetd_gossip.fp.refute_lines %s\nnetd_gossip.fp.warnings %s\nnetd_gossip.fp.min_alive %s\nnetd_gossip.fp.cpu_pct %s\n' \
		"$FP_SECONDS" "$fsus" "$ffail" "$fref" "$fwarn" "$minalive" "$fpcpu" >> "$RES"
	: "$alive_end"
fi

# ================================================================ summary
echo
echo "swarm-netd ($NETD) vs serf $("$SERF" version | head -n 1) (Debian $(dpkg-query -W -f='${Version}' serf 2>/dev/null)), LAN profile,"
echo "one netns per node on one bridge ($NETPFX.0/24), REPS=$REPS, serf $( ((SERF_ENCRYPT)) && echo encrypted || echo plaintext), netd encrypted; $(nproc) cores"
[ -s "$ROWS" ] && printf '%-4s %-66s %-26s %-26s %s\n' N "measure" "netd min/median/max (ok)" "serf min/median/max (ok)" "netd/serf"
awk -F'\t' '{ split($3, a, " "); split($4, b, " ");
	na = a[1] "/" a[2] "/" a[3] " (" a[4] ")"; nb = b[1] "/" b[2] "/" b[3] " (" b[4] ")";
	if ($4 == "- - - -") nb = "-";
	printf "%-4s %-66s %-26s %-26s %s\n", $1, $2, na, nb, $5 }' "$ROWS"
if ((SAMPLE_SECONDS > 0)) && [ -n "$SIZES" ]; then
	echo
	echo "idle, all daemons summed, over $SAMPLE_SECONDS s (CPU in % of one core):"
	for N in $SIZES; do
		read -r nr nc <<< "${NETD_USAGE[$N]:-- -}"
		read -r sr sc <<< "${SERF_USAGE[$N]:-- -}"
		printf '  N=%-3s netd %7s MiB %5s %%   serf %7s MiB %5s %%\n' "$N" "$nr" "$nc" "$sr" "$sc"
	done
fi
if ((FP_SECONDS > 0)); then
	echo
	echo "false positives, $FP_SIZE healthy netd nodes over $FP_SECONDS s: $fsus suspect, $ffail failed, $fref refuting, $fwarn warning lines; lowest alive count $minalive/$FP_SIZE"
fi
echo
echo "goals: endpoint faster than serf at every size and < 1 s at 50; overlay TCP >= 0.9 x underlay"
[ -n "${SWARM_BENCH_RESULTS:-}" ] && cat "$RES" >> "$SWARM_BENCH_RESULTS"
exit 0
