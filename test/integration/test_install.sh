#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 900
# The release path: `make dist` gives a tarball that configures, builds and
# installs DESTDIR-clean, and swarm-lab runs a cluster from the installed
# prefix (no build tree involved).
PREFIX=tin
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab

INST=$TEST_TMP/prefix

t_dist_install() {
	make -s -C "$TOP_BUILDDIR" dist > "$TEST_TMP/dist.log" 2>&1 || { tail -20 "$TEST_TMP/dist.log"; fail "make dist failed"; }
	local tarball
	tarball=$(ls -t "$TOP_BUILDDIR"/swarm-*.tar.gz | head -1)
	tar -C "$TEST_TMP" -xzf "$tarball"
	rm -f "$tarball"
	local src
	src=$(find "$TEST_TMP" -mindepth 1 -maxdepth 1 -type d -name 'swarm-*' | head -1)
	mkdir "$TEST_TMP/build"
	(cd "$TEST_TMP/build" && "$src/configure" -q --prefix="$INST" && make -s -j2) > "$TEST_TMP/build.log" 2>&1 ||
		{ tail -30 "$TEST_TMP/build.log"; fail "the tarball does not build"; }
	make -s -C "$TEST_TMP/build" install DESTDIR="$TEST_TMP/dest" > /dev/null
	[ ! -e "$INST" ] || fail "make install DESTDIR=... wrote outside DESTDIR"
	for f in sbin/swarm-manager sbin/swarm-agent sbin/swarm-netd sbin/swarm-dnsd sbin/swarm-lbd bin/swarmadm \
		sbin/swarm-lab libexec/swarm/swarm-shim share/swarm/lab/mkimage share/man/man8/swarmadm.8 \
		share/man/man8/swarm-netd.8 share/man/man8/swarm-dnsd.8 share/man/man8/swarm-lbd.8; do
		[ -e "$TEST_TMP/dest$INST/$f" ] || fail "DESTDIR install lacks $f"
	done
	make -s -C "$TEST_TMP/build" install > /dev/null
	rm -rf "$TEST_TMP/build" "$src" "$TEST_TMP/dest"
	echo "# installed into $INST"
}

t_lab_installed() {
	SWARM_LAB=$INST/sbin/swarm-lab
	lab_up 2
	[ "$(ready_nodes)" = 2 ] || fail "the installed lab's nodes are not Ready"
	local pid exe
	for pid in $(ip netns pids "$PREFIX-node1"); do
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		case $exe in
		*/swarm-manager | */swarm-agent | */swarm-netd | */swarm-dnsd | */swarm-lbd)
			[[ $exe == "$INST"/* ]] || fail "$exe is not from the installed prefix" ;;
		esac
	done
	adm node1 service create -d --name inst --replicas 2 busybox
	wait_running inst 2
	tasks_have_containers inst
}

setup "make dist, then configure, build and install the tarball (DESTDIR-clean)" t_dist_install
check "swarm-lab from the installed prefix runs a service on runc" t_lab_installed
finish
