# shellcheck shell=bash
# Framework of the integration tests: sourced by each test/integration/*.sh.
#
# A test file is one lab (its own prefix, so leftovers of one file never
# touch another) and several named checks:
#
#   PREFIX=tcl                           # 1-8 chars, unique per test file
#   . "$(dirname "$0")/lib.sh"
#   setup "3-node lab is Ready" lab_up 3   # a failed setup fails what follows
#   check "replicas spread 2/2/1" t_spread
#   finish
#
# check NAME CMD... runs CMD in a subshell with `set -e` (any failing
# command fails the check and is named in the output), its output kept and
# shown when it fails. Inside a check: `fail MSG` fails it, `skip REASON`
# skips it, `pass` ends it early as passed; lines printed starting with "# "
# are always shown (poll_until prints its measured time that way). Outside a
# check, `pass NAME`, `fail NAME MSG` and `skip NAME REASON` record a result.
#
# Results go to stdout (ok/FAIL/skip lines) and, one per line
# (PASS|FAIL|SKIP <tab> file <tab> check <tab> reason), to
# $SWARM_TEST_RESULTS when set: test/run-tests adds them up. On exit, whatever the reason, the lab is taken
# down and background processes started through bg are killed. With
# SWARM_TEST_LOGDIR set, the lab's daemon logs are copied there first when a
# check failed. KEEP_LAB=1 leaves the lab up for a look.

set -u

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_SRCDIR=$(cd "$LIB_DIR/../.." && pwd)
TOP_BUILDDIR=${SWARM_BUILDDIR:-$TOP_SRCDIR}
SWARM_LAB=${SWARM_LAB:-$TOP_BUILDDIR/lab/swarm-lab}
TEST_FILE=$(basename "$0")
: "${PREFIX:?set PREFIX before sourcing lib.sh}"
LAB_RUN=/run/swarm-lab/$PREFIX
LAB_STATE=/var/lib/swarm-lab/$PREFIX
TEST_TMP=$(mktemp -d "/tmp/swarm-test-$PREFIX.XXXXXX")
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3

N_PASS=0 N_FAIL=0 N_SKIP=0 N_CHECK=0
BG_PIDS=()
SKIP_ALL=""      # set: every check is skipped with this reason
ABORTED=""       # set: a setup failed, every check fails with this reason
IN_CHECK=""

now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

_record() { # PASS|FAIL|SKIP NAME [REASON]
	case $1 in
	PASS) N_PASS=$((N_PASS + 1)) ;;
	FAIL) N_FAIL=$((N_FAIL + 1)) ;;
	SKIP) N_SKIP=$((N_SKIP + 1)) ;;
	esac
	[ -z "${SWARM_TEST_RESULTS:-}" ] ||
		printf '%s\t%s\t%s\t%s\n' "$1" "$TEST_FILE" "$2" "${3:-}" >> "$SWARM_TEST_RESULTS"
}

pass() {
	if [ -n "$IN_CHECK" ]; then exit 0; fi
	_record PASS "$1"; echo "ok   - $1"
}
fail() {
	if [ -n "$IN_CHECK" ]; then echo "FAILED: $*" >&2; exit 1; fi
	local name=$1; shift
	_record FAIL "$name" "$*"; echo "FAIL - $name: $*"
}
skip() {
	if [ -n "$IN_CHECK" ]; then printf '%s\n' "$*" > "$TEST_TMP/skip"; exit 77; fi
	local name=$1; shift
	_record SKIP "$name" "$*"; echo "skip - $name: $*"
}

# A failing command under `set -e` names itself and where it was called
# from: "FAILED: CMD (exit N) at lib.sh:12 poll_until < test_x.sh:40 t_y".
# (A failure inside a command substitution prints a line too; the last
# FAILED line is the one that ended the check.)
_errtrap() { # CMD STATUS
	local i=0 frame where="" line fn file
	while frame=$(caller "$i"); do
		read -r line fn file <<< "$frame"
		[ "$fn" = check ] && break
		where+="${where:+ < }${file##*/}:$line $fn"
		i=$((i + 1))
	done
	echo "FAILED: $1 (exit $2) at $where" >&2
}

check() { # NAME CMD...
	local name=$1 log rc t0; shift
	N_CHECK=$((N_CHECK + 1))
	if [ -n "$SKIP_ALL" ]; then skip "$name" "$SKIP_ALL"; return 0; fi
	if [ -n "$ABORTED" ]; then fail "$name" "not run: $ABORTED"; return 1; fi
	if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
	log=$TEST_TMP/check.$N_CHECK.log
	rm -f "$TEST_TMP/skip"
	echo "# -- $name"
	t0=$(now)
	(
		IN_CHECK=1
		set -eE
		trap '_errtrap "$BASH_COMMAND" "$?"' ERR
		"$@"
	) > "$log" 2>&1 < /dev/null
	rc=$?
	grep '^# ' "$log" | sed 's/^/    /'
	if [ "$rc" = 0 ]; then
		_record PASS "$name"; echo "ok   - $name ($(since "$t0") s)"
	elif [ "$rc" = 77 ]; then
		_record SKIP "$name" "$(cat "$TEST_TMP/skip" 2>/dev/null)"
		echo "skip - $name: $(cat "$TEST_TMP/skip" 2>/dev/null)"
	else
		_record FAIL "$name" "$(grep '^FAILED' "$log" | tail -n 1 | cut -c1-200)"
		echo "FAIL - $name ($(since "$t0") s, exit $rc)"
		grep -v '^# ' "$log" | tail -n 40 | sed 's/^/    | /'
	fi
	[ "$rc" = 0 ] || [ "$rc" = 77 ]
}

# Lets the checks after a failed setup run again (cleanup checks).
resume() { ABORTED=""; }

# Like check, but when it fails every later check fails at once ("not run").
setup() { # NAME CMD...
	check "$@" || { [ -n "$SKIP_ALL" ] || ABORTED="setup '$1' failed"; }
}

finish() {
	printf '# %s: passed %d, failed %d, skipped %d\n' "$TEST_FILE" "$N_PASS" "$N_FAIL" "$N_SKIP"
	[ "$N_FAIL" = 0 ] && exit 0
	exit 1
}

# Polls CMD every INTERVAL (0.5 s) until it succeeds or TIMEOUT seconds
# pass; prints the time it took (or that it timed out, with the last
# attempt's output) as a "# " line.
poll_until() { # [-d DESC] [-i INTERVAL] TIMEOUT CMD...
	local desc="" interval=0.5 limit t0 out=$TEST_TMP/poll.$BASHPID
	while :; do
		case $1 in
		-d) desc=$2; shift 2 ;;
		-i) interval=$2; shift 2 ;;
		*) break ;;
		esac
	done
	limit=$1; shift
	[ -n "$desc" ] || desc="$*"
	t0=$(now)
	while :; do
		if "$@" > "$out" 2>&1; then
			echo "# $desc: after $(since "$t0") s"
			return 0
		fi
		if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a >= l) }'; then
			echo "# $desc: still false after $limit s (limit); last attempt said:"
			tail -n 20 "$out" | sed 's/^/#   /'
			return 1
		fi
		sleep "$interval"
	done
}

# Starts CMD in the background; it is killed when the test file ends.
bg() { "$@" & BG_PIDS+=($!); }

_cleanup() {
	local p
	trap - EXIT INT TERM
	for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do kill "$p" 2>/dev/null; done
	if [ -d "$LAB_RUN" ] && [ "$N_FAIL" != 0 ] && [ -n "${SWARM_TEST_LOGDIR:-}" ]; then
		local dest=$SWARM_TEST_LOGDIR/${TEST_FILE%.sh} f
		mkdir -p "$dest"
		for f in "$LAB_RUN"/*/*.log "$LAB_RUN"/hosts/*/*.log; do
			[ -f "$f" ] || continue
			p=${f#"$LAB_RUN"/}; cp "$f" "$dest/${p//\//-}"
		done
		echo "# daemon logs of $TEST_FILE copied to $dest"
	fi
	if [ "${KEEP_LAB:-0}" = 1 ]; then
		echo "# KEEP_LAB=1: lab '$PREFIX' left up; remove it with: $SWARM_LAB --prefix $PREFIX down"
	elif [ -z "$SKIP_ALL" ] && [ -x "$SWARM_LAB" ]; then
		"$SWARM_LAB" --prefix "$PREFIX" down > "$TEST_TMP/down.log" 2>&1 ||
			{ echo "# swarm-lab down failed:"; sed 's/^/#   /' "$TEST_TMP/down.log"; }
	fi
	rm -rf "$TEST_TMP"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites -----------------------------------------------------------

# Skips every check (with the reason) when the lab cannot run here at all.
require_lab() {
	local b
	if [ "$(id -u)" != 0 ]; then SKIP_ALL="needs root (network namespaces)"; return; fi
	if [ ! -x "$SWARM_LAB" ]; then SKIP_ALL="$SWARM_LAB not built"; return; fi
	for b in manager/swarm-manager agent/swarm-agent swarmadm/swarmadm; do
		if [ -z "${SWARM_BIN_DIR:-}" ] && [ ! -x "$TOP_BUILDDIR/$b" ]; then
			SKIP_ALL="$TOP_BUILDDIR/$b not built"; return
		fi
	done
	for b in ip runc jq nsenter; do
		command -v "$b" > /dev/null || { SKIP_ALL="$b not installed (scripts/deps.sh)"; return; }
	done
	# A lab of this prefix left by an earlier run would make `up` refuse.
	"$SWARM_LAB" --prefix "$PREFIX" down > /dev/null 2>&1 || true
}

# Note: busybox-static's `wget -T` crashes (1.35); bound wget with timeout.

# --- the lab -----------------------------------------------------------------

lab() { "$SWARM_LAB" --prefix "$PREFIX" "$@"; }
lab_up() { # N [up options]
	local n=$1; shift
	timeout 300 "$SWARM_LAB" --prefix "$PREFIX" up --nodes "$n" "$@"
}
# Runs CMD on NODE (a node or an attached host).
on() { # NODE [--] CMD...
	local node=$1; shift
	[ "${1:-}" = -- ] && shift
	timeout "${ON_TIMEOUT:-120}" "$SWARM_LAB" --prefix "$PREFIX" exec "$node" -- "$@"
}
# swarmadm on NODE.
adm() { # NODE ARGS...
	local node=$1; shift
	on "$node" swarmadm "$@"
}
runc_root() { echo "$LAB_RUN/$1/runc"; }
lab_nodes() { find "$LAB_RUN" -mindepth 1 -maxdepth 1 -name 'node*' -printf '%f\n' 2>/dev/null | sort -V; }

# "HOSTNAME STATUS AVAILABILITY MANAGER-STATUS" per line of `node ls`.
nodes_table() {
	local out
	out=$(adm node1 node ls) || return 1
	awk '
		NR == 1 && $1 == "ID" { next }
		NF >= 4 { i = 2; if ($i == "*") i++; print $i, $(i + 1), $(i + 2), (NF >= i + 3 ? $(i + 3) : "-") }' <<< "$out"
}
node_status() { nodes_table | awk -v n="$1" '$1 == n { print $2; exit }'; }
node_is() { [ "$(node_status "$1")" = "$2" ]; }
ready_nodes() { nodes_table | awk '$2 == "Ready" { n++ } END { print n + 0 }'; }

# --- tasks and containers --------------------------------------------------

# One line per task of SERVICE: "ID NAME NODE DESIRED CURRENT IMAGE" with
# NAME the slot's name (web.1) and the states lower-cased, parsed from
# `service ps --no-trunc` (Docker's columns ID NAME IMAGE NODE DESIRED-STATE
# CURRENT-STATE..., NAME web.1.<task-id> or, for older tasks of the same
# slot, "\_ web.1"). The task's container is named NAME.ID.
tasks() { # SERVICE
	local out
	out=$(adm node1 service ps --no-trunc "$1") || return 1
	awk '
		NR == 1 && $1 == "ID" { next }
		NF >= 6 {
			o = 0; if ($2 == "\\_") o = 1
			name = $(2 + o); sfx = "." $1
			if (length(name) > length(sfx) && substr(name, length(name) - length(sfx) + 1) == sfx)
				name = substr(name, 1, length(name) - length(sfx))
			print $1, name, $(4 + o), tolower($(5 + o)), tolower($(6 + o)), $(3 + o)
		}' <<< "$out"
}
# Tasks meant to run that run: desired and current state both running (a
# task on a node that went down keeps its last reported state, running).
running_tasks() { tasks "$1" | awk '$4 == "running" && $5 == "running"'; }
# Tasks whose container runs now, meant to or not (during an update or a
# scale down, old tasks run until they are stopped).
actual_running_tasks() { tasks "$1" | awk '$5 == "running"'; }
count_running() { running_tasks "$1" | wc -l; }
# "COUNT NODE" lines of running tasks, e.g. "2 node1".
running_per_node() { running_tasks "$1" | awk '{ print $3 }' | sort | uniq -c | awk '{ print $1, $2 }'; }
# The counts alone, sorted: "1 2 2".
spread_of() { running_per_node "$1" | awk '{ print $1 }' | sort -n | xargs; }
# Running tasks of SERVICE on NODE.
running_on() { running_tasks "$1" | awk -v n="$2" '$3 == n' | wc -l; }

running_is() { [ "$(count_running "$1")" = "$2" ]; }
# Polls until SERVICE has exactly N running tasks.
wait_running() { # SERVICE N [TIMEOUT]
	poll_until -d "$1: $2 running" "${3:-90}" running_is "$1" "$2"
}

# runc's view of NODE: "ID PID STATUS" per container.
runc_list() { # NODE
	runc --root "$(runc_root "$1")" list --format json 2>/dev/null |
		jq -r '(. // [])[] | "\(.id) \(.pid) \(.status)"'
}
runc_running() { runc_list "$1" | awk '$3 == "running"'; }
# Running containers on every node: "NODE ID PID", sorted.
all_containers() {
	local n
	for n in $(lab_nodes); do runc_running "$n" | awk -v n="$n" '{ print n, $1, $2 }'; done | sort
}
# The container of task ID runs on NODE (runc id or bundle names the task).
container_of_task_runs() { # NODE TASK-ID
	runc --root "$(runc_root "$1")" list --format json 2>/dev/null |
		jq -e --arg t "$2" '[(. // [])[] | select(.status == "running") |
			select((.id | contains($t)) or (.bundle | contains($t)))] | length == 1' > /dev/null
}
# Every running task of SERVICE has a running runc container on its node.
tasks_have_containers() { # SERVICE
	local id name node rest
	while read -r id name node rest; do
		container_of_task_runs "$node" "$id" || { echo "task $id ($name) on $node: no running container"; return 1; }
	done < <(running_tasks "$1")
}

# The host pid of a task's container, from `container inspect` on its node.
container_pid() { # NODE CONTAINER
	adm "$1" container inspect "$2" | jq -r 'if type == "array" then .[0] else . end | .State.Pid'
}

# Removes every service and waits until no task container runs on any node.
services_clear() {
	local s list
	list=$(adm node1 service ls -q) || return 1
	for s in $list; do adm node1 service rm "$s" > /dev/null; done
	poll_until -d "no containers left" 60 no_containers
}
no_containers() { [ -z "$(all_containers)" ]; }
# Every node back to availability active.
nodes_active() {
	local n table
	table=$(nodes_table) || return 1
	while read -r n; do
		adm node1 node update --availability active "$n" > /dev/null
	done < <(awk '$3 != "Active" { print $1 }' <<< "$table")
}
# A clean cluster for the next check: no service, every node active.
fresh() { services_clear; nodes_active; }

# The Python behind send_bytes (below).
SEND_PY='
import socket, ssl, sys, time
target, wait, data, mode = sys.argv[1], float(sys.argv[2]), bytes.fromhex(sys.argv[3]), sys.argv[4]
try:
    if target.startswith("/"):
        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(target)
    else:
        h, p = target.rsplit(":", 1)
        s = socket.create_connection((h, int(p)), timeout=5)
except OSError as e:
    print("no connection (%s)" % e); sys.exit(2)
if mode == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    if len(sys.argv) > 6:
        ctx.load_cert_chain(sys.argv[5], sys.argv[6])
    try:
        s = ctx.wrap_socket(s)
    except (ssl.SSLError, OSError) as e:
        print("closed (handshake: %s)" % e); sys.exit(0)
try:
    s.sendall(data)
except OSError as e:
    print("closed (send: %s)" % e); sys.exit(0)
end = time.time() + wait
got = b""
while time.time() < end:
    s.settimeout(max(0.1, end - time.time()))
    try:
        b = s.recv(65536)
    except socket.timeout:
        continue
    except (ssl.SSLError, OSError) as e:
        print("closed (%s) after %d bytes" % (e, len(got))); sys.exit(0)
    if not b:
        print("closed after %d bytes" % len(got)); sys.exit(0)
    got += b
print("open after %d bytes" % len(got))
'
# Sends HEX (raw bytes) to TARGET, then prints "closed ..." when the peer
# closed the connection within WAIT seconds, "open after N bytes" when not.
# TARGET is a Unix socket path or IP:PORT; MODE tls wraps the bytes in a
# TLS session, made without a client certificate unless CERT and KEY are
# given. send_bytes_on does it from inside NODE's namespace.
send_bytes() { # TARGET WAIT HEX [plain|tls [CERT KEY]]
	"$PYTHON" -c "$SEND_PY" "$1" "$2" "$3" "${4:-plain}" "${@:5}"
}
send_bytes_on() { # NODE TARGET WAIT HEX [plain|tls [CERT KEY]]
	local node=$1; shift
	on "$node" "$PYTHON" -c "$SEND_PY" "$1" "$2" "$3" "${4:-plain}" "${@:5}"
}

# What a lab of this prefix left on the host, one line per object; nothing
# when it is all gone.
# The routing mesh from the lab's host "cl": 5 requests to http://ADDR/
# on each address reach 5 different tasks (each answers its container's
# name). Fails the check otherwise.
mesh_spreads() { # ADDR...
	local a i out
	for a in "$@"; do
		out=$(for i in 1 2 3 4 5; do on cl curl -sf -m 5 "http://$a/"; done | sed 's/\.[^.]*$//' | sort | uniq -c | xargs)
		echo "# http://$a/: $out"
		[ "$(wc -w <<< "$out")" = 10 ] || fail "http://$a/ did not spread 5 requests over 5 tasks: $out"
	done
}
# The VIP of SERVICE on the network NETWORK-NAME (no prefix length).
vip_of() { # SERVICE NETWORK-NAME
	local net
	net=$(adm node1 network inspect "$2" --format '{{.Id}}')
	adm node1 service inspect "$1" --format '{{json .Endpoint.VirtualIPs}}' |
		jq -r --arg n "$net" '.[] | select(.NetworkID == $n) | .Addr' | sed 's|/.*||'
}
# Failed requests of a wrk output: socket errors plus non-2xx answers.
wrk_failed() { # FILE
	awk '/Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } /Non-2xx/ { n += $NF } END { print n + 0 }' "$1"
}
wrk_total() { awk '/requests in/ { print $1 }' "$1"; }

lab_leftovers() {
	ip netns list | awk -v p="$PREFIX-" 'index($1, p) == 1 { print "namespace " $1 }'
	ip -o link show | awk -v p="$PREFIX-" '{ n = $2; sub(/:$/, "", n); sub(/@.*/, "", n); if (index(n, p) == 1) print "link " n }'
	awk -v r="$LAB_RUN" -v s="$LAB_STATE" -v n="/run/netns/$PREFIX-" \
		'index($5, r) == 1 || index($5, s) == 1 || index($5, n) == 1 { print "mount " $5 }' /proc/self/mountinfo
	find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d -name "$PREFIX-*" -prune 2>/dev/null | sed 's/^/cgroup /'
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}; pid=${pid%/cmdline}
		[ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
		case $(tr '\0' ' ' < "$f" 2>/dev/null) in
		*"$LAB_RUN/"*|*"$LAB_STATE/"*) echo "process $pid $(tr '\0' ' ' < "$f" 2>/dev/null)" ;;
		esac
	done
	[ ! -e "$LAB_RUN" ] || echo "dir $LAB_RUN"
	[ ! -e "$LAB_STATE" ] || echo "dir $LAB_STATE"
}
