#!/bin/bash
# timeout: 180
# swarm-netd's gossip against real serf agents (hashicorp/memberlist on the
# other side), encrypted with a shared AES-128 key.
#
# Self-contained (no swarm-lab): namespaces tgs-a (netd), tgs-b and tgs-c
# (serf) hang off a bridge in a fourth namespace tgs-hub, addresses
# 198.51.100.1-3/24. Nothing is configured in the root namespace. Needs
# root, `ip netns` and /usr/bin/serf; skips with a reason otherwise.
#
# Output: "ok   - NAME" / "FAIL - NAME: reason" (and skip); with
# $SWARM_TEST_RESULTS set, "PASS|FAIL|SKIP\ttest_gossip_serf.sh\tNAME\tREASON"
# lines are appended there (as test/integration/lib.sh's _record does).
# Exits 1 on any failure. TGS_KEEP=1 keeps the logs (path printed).
set -u

TEST_FILE=test_gossip_serf.sh
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NETD=${SWARM_BUILDDIR:+$SWARM_BUILDDIR/netd/swarm-netd}
NETD=${NETD:-$REPO/netd/swarm-netd}
SERF=${SERF:-serf}
NS_HUB=tgs-hub NS_A=tgs-a NS_B=tgs-b NS_C=tgs-c
IP_A=198.51.100.1 IP_B=198.51.100.2 IP_C=198.51.100.3
KEY=$(head -c 16 /dev/urandom | base64)
OTHER_KEY=$(head -c 16 /dev/urandom | base64)
N_FAIL=0
PIDS=()
TMP=

_record() { # PASS|FAIL|SKIP NAME [REASON]
	[ -z "${SWARM_TEST_RESULTS:-}" ] ||
		printf '%s\t%s\t%s\t%s\n' "$1" "$TEST_FILE" "$2" "${3:-}" >> "$SWARM_TEST_RESULTS"
}
pass() { _record PASS "$1"; echo "ok   - $1${2:+ ($2)}"; }
fail() { local n=$1; shift; N_FAIL=$((N_FAIL + 1)); _record FAIL "$n" "$*"; echo "FAIL - $n: $*"; }
skip() { local n=$1; shift; _record SKIP "$n" "$*"; echo "skip - $n: $*"; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	for ns in $NS_A $NS_B $NS_C $NS_HUB; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "$N_FAIL" -gt 0 ] && [ -n "${SWARM_TEST_LOGDIR:-}" ]; then
			mkdir -p "$SWARM_TEST_LOGDIR/gossip_serf" && cp "$TMP"/*.log "$SWARM_TEST_LOGDIR/gossip_serf/" 2>/dev/null
		fi
		if [ "$N_FAIL" -gt 0 ]; then
			for f in "$TMP"/*.log; do
				echo "# --- tail of ${f##*/}"
				tail -n 25 "$f" | sed 's/^/#   /'
			done
		fi
		if [ -n "${TGS_KEEP:-}" ]; then
			echo "# logs kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

now_ms() { date +%s%3N; }

# poll SECONDS CMD...: runs CMD every 0.2 s until it succeeds; 1 on timeout.
poll() {
	local end=$(($(now_ms) + $1 * 1000)); shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

# --- preconditions
if [ ! -x "$NETD" ]; then
	skip gossip_serf "swarm-netd not built ($NETD)"; exit 0
fi
if ! command -v "$SERF" >/dev/null; then
	skip gossip_serf "serf not installed"; exit 0
fi
if [ "$(id -u)" != 0 ] || ! ip netns add tgs-probe 2>/dev/null; then
	skip gossip_serf "needs root and network namespaces"; exit 0
fi
ip netns del tgs-probe
for ns in $NS_A $NS_B $NS_C $NS_HUB; do
	ip netns del "$ns" 2>/dev/null
done

TMP=$(mktemp -d /tmp/tgs.XXXXXX)

# --- topology: bridge in tgs-hub, one veth per node namespace
ip netns add $NS_HUB
ip -n $NS_HUB link add tgs-br type bridge
ip -n $NS_HUB link set tgs-br up
ip -n $NS_HUB link set lo up
i=1
for ns in $NS_A $NS_B $NS_C; do
	ip netns add "$ns"
	ip -n $NS_HUB link add "tgs-v$i" type veth peer name eth0 netns "$ns"
	ip -n $NS_HUB link set "tgs-v$i" master tgs-br up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "198.51.100.$i/24" dev eth0
	ip -n "$ns" link set eth0 up
	i=$((i + 1))
done
links_up() {
	local ns
	for ns in $NS_A $NS_B $NS_C; do
		ip -n "$ns" -o link show eth0 | grep -q 'state UP' || return 1
	done
}
if ! poll 5 links_up; then
	fail topology "veth links did not come up"; exit 1
fi

# --- netd in tgs-a
echo "$KEY" > "$TMP/keyring"
cat > "$TMP/netd.conf" <<EOF
node_name = netd-a
bind_addr = $IP_A
bind_port = 7946
keyring_file = $TMP/keyring
EOF
mkdir -p "$TMP/run" "$TMP/state"
netd_members() { "$NETD" members --run-dir "$TMP/run"; }
ip netns exec $NS_A "$NETD" --foreground --log-level debug --config "$TMP/netd.conf" \
	--state-dir "$TMP/state" --run-dir "$TMP/run" > "$TMP/netd.log" 2>&1 &
NETD_PID=$!; PIDS+=("$NETD_PID")
if ! poll 5 netd_members; then
	fail netd_start "swarm-netd did not answer on $TMP/run/netd.sock"; exit 1
fi
pass netd_start

# --- serf agents in tgs-b and tgs-c, joining netd
start_serf() { # NS NAME IP KEY LOG [JOIN]; KEY "" = no encryption
	ip netns exec "$1" "$SERF" agent -node="$2" -bind="$3:7946" -rpc-addr=127.0.0.1:7373 \
		${4:+-encrypt=$4} ${6:+-join=$6} -log-level=debug > "$TMP/$5" 2>&1 &
	PIDS+=("$!")
	LAST_PID=$!
}
start_serf $NS_B serf-b $IP_B "$KEY" serf-b.log $IP_A; SERF_B=$LAST_PID
start_serf $NS_C serf-c $IP_C "$KEY" serf-c.log $IP_A; SERF_C=$LAST_PID

serf_members() { ip netns exec "$1" "$SERF" members -rpc-addr=127.0.0.1:7373 2>/dev/null; }
# serf_status NS NODE STATUS: `serf members` in NS lists NODE with STATUS.
serf_status() { serf_members "$1" | awk -v n="$2" -v s="$3" '$1 == n && $3 == s { f = 1 } END { exit !f }'; }
# netd_status NODE STATUS
netd_status() { netd_members | grep -o '{[^}]*}' | grep -F "\"Name\":\"$1\"" | grep -qF "\"Status\":\"$2\""; }
netd_alive_count() { netd_members | grep -o '"Status":"alive"' | wc -l; }

if poll 20 serf_status $NS_B netd-a alive; then
	pass serf_sees_netd "$(serf_members $NS_B | awk '$1 == "netd-a"' | tr -s ' ')"
else
	fail serf_sees_netd "serf-b: $(serf_members $NS_B | tr '\n' ';')"
fi
if poll 20 serf_status $NS_C netd-a alive && poll 10 serf_status $NS_C serf-b alive; then
	pass serf_c_sees_all
else
	fail serf_c_sees_all "serf-c: $(serf_members $NS_C | tr '\n' ';')"
fi
if poll 20 netd_status serf-b alive && poll 10 netd_status serf-c alive; then
	pass netd_sees_serf "$(netd_members)"
else
	fail netd_sees_serf "netd: $(netd_members 2>&1)"
fi
if serf_members $NS_B | awk '$1 == "netd-a"' | grep -q 'role=swarm-netd'; then
	pass netd_role_tag
else
	fail netd_role_tag "serf-b: $(serf_members $NS_B | tr '\n' ';')"
fi

# --- optional (TGS_LONG=1, ~40 s more): periodic push/pulls (30 s) both
# ways go through and nobody gets suspected in steady state
if [ -n "${TGS_LONG:-}" ]; then
	sleep 35
	np=$(grep -c 'merged push/pull' "$TMP/netd.log")
	if serf_status $NS_B netd-a alive && netd_status serf-b alive && netd_status serf-c alive &&
		[ "$np" -ge 3 ] && ! grep -q 'suspect' "$TMP/netd.log"; then
		pass steady_state_35s "$np push/pulls merged"
	else
		fail steady_state_35s "$np push/pulls; netd: $(netd_members)"
	fi
fi

# --- failure of a serf agent, seen by netd
t0=$(now_ms)
kill -9 "$SERF_C"
if poll 40 netd_status serf-c dead; then
	pass netd_detects_serf_failure "$(( ($(now_ms) - t0) ))ms"
else
	fail netd_detects_serf_failure "after 40 s: $(netd_members 2>&1)"
fi
# netd stays alive in serf-b's view meanwhile (no false positive)
if serf_status $NS_B netd-a alive; then
	pass netd_stays_alive
else
	fail netd_stays_alive "serf-b: $(serf_members $NS_B | tr '\n' ';')"
fi

# --- agents with another key, or none, never see netd alive (in tgs-c)
for variant in other-key:"$OTHER_KEY" no-key:; do
	vname=${variant%%:*} vkey=${variant#*:} node=serf-x-${variant%%:*}
	start_serf $NS_C "$node" $IP_C "$vkey" "$node.log"
	poll 5 serf_members $NS_C
	ip netns exec $NS_C "$SERF" join -rpc-addr=127.0.0.1:7373 $IP_A > "$TMP/$node-join.log" 2>&1
	sleep 3
	if serf_status $NS_C netd-a alive || netd_status "$node" alive; then
		fail "rejected_$vname" "$node: $(serf_members $NS_C | tr '\n' ';') netd: $(netd_members)"
	else
		pass "rejected_$vname" "join said: $(tr '\n\t' '  ' < "$TMP/$node-join.log" | tr -s ' ' | cut -c1-90)"
	fi
	kill -9 "$LAST_PID"; wait "$LAST_PID" 2>/dev/null
done

# --- failure of netd, seen by serf-b
t0=$(now_ms)
kill -9 "$NETD_PID"
if poll 40 serf_status $NS_B netd-a failed; then
	pass serf_detects_netd_failure "$(( ($(now_ms) - t0) ))ms"
else
	fail serf_detects_netd_failure "after 40 s: $(serf_members $NS_B | tr '\n' ';')"
fi

[ "$N_FAIL" -eq 0 ]
