#!/bin/bash
# Rule-update latency of lbd's nftables provider on a real kernel:
# test/bench/lb_update (see its header) in a scratch network namespace made
# here and always removed (trap), nothing added to the root namespace.
# Usage: test/bench/lb_update.sh BUILDDIR   (root; BUILDDIR/test/bench/lb_update)
#
# Measured for 10, 100 and 1,000 services (10 backends and one published
# TCP port each, VIPs in 198.19.0.0/16, backends in 198.18.0.0/16):
#   (a) one more backend for one service through the provider's svc_set;
#   (b) the same through lb_apply of the whole desired state (what lbd
#       does on every change);
#   (c) a resync (lb_reconcile of the unchanged state: dump + compare,
#       0 ops), and the cold programming of all services from an empty
#       table.
# Prints a table and a line of ratios (1,000 against 10 services: 1.0x
# means independent of the number of services), and `key value` lines to
# $SWARM_BENCH_RESULTS when set.
#
# Env knobs (passed to lb_update): LB_SIZES ("10 100 1000", each 1-4000),
# LB_REPS (50), LB_BACKENDS (10), LB_RESYNCS (5); NS (namespace name,
# "lbb-update").
set -uo pipefail

B=${1:-}
[ -n "$B" ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$B" 2>/dev/null && pwd) || { echo "lb_update: no directory $1" >&2; exit 2; }
BIN=$B/test/bench/lb_update
NS=${NS:-lbb-update}

die() { echo "lb_update: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$BIN" ] || die "no $BIN (make bench builds it)"
command -v ip > /dev/null || die "needs ip (iproute2)"
[[ $NS =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad NS"
if ip netns list | awk '{ print $1 }' | grep -qx "$NS"; then
	die "namespace $NS exists already (another run, or one that was killed -9); remove it first"
fi

cleanup() {
	trap - EXIT INT TERM
	ip netns del "$NS" 2> /dev/null
}
trap cleanup EXIT
trap 'echo "lb_update: interrupted" >&2; exit 130' INT TERM

ip netns add "$NS" || die "cannot make namespace $NS"
ip -n "$NS" link set lo up || die "cannot set lo up in $NS"
"$BIN" "/run/netns/$NS"
