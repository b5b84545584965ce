#!/bin/bash
# deps.sh: installs what the build, the tests and swarm-lab need, on Debian 12
# as root. Does nothing (and needs no network) when all of it is there.
# Installing nginx and unbound must not leave their services running on the
# host: the lab runs its own copies inside namespaces.
set -euo pipefail

PKGS=(
	# build
	build-essential autoconf automake libtool pkg-config
	libev-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev libsqlite3-dev
	libc-ares-dev libnl-3-dev libnl-route-3-dev libnl-genl-3-dev libnl-xfrm-3-dev libnftables-dev libnetfilter-conntrack-dev
	libsystemd-dev libjson-c-dev libmsgpack-dev zlib1g-dev libcmocka-dev
	# run: containers, images, the lab and its upstream resolver
	runc busybox-static nginx-light iproute2 nftables unbound
	procps psmisc util-linux
	# tests: peers, DNS and TLS clients, JSON
	bind9-dnsutils serf python3 jq openssl prometheus wrk conntrack curl tshark iperf3
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: everything is installed"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "deps: run as root to install: ${missing[*]}" >&2; exit 1; }
echo "deps: installing ${missing[*]}"

# Services must not start during the install (Debian's policy-rc.d
# convention: exit 101 = denied). An existing policy is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# swarm deps.sh: no service starts during its install\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Should a service have started anyway, stop (and disable) those of the
# packages installed now; services the host already ran are left alone.
stop_service() {
	if [ -d /run/systemd/system ]; then
		systemctl disable --now "$1" > /dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$1" ]; then
		"/etc/init.d/$1" stop > /dev/null 2>&1 || true
	fi
}
case " ${missing[*]} " in *" nginx-light "*) stop_service nginx ;; esac
case " ${missing[*]} " in *" unbound "*) stop_service unbound ;; esac
case " ${missing[*]} " in *" prometheus "*) stop_service prometheus ;; esac
echo "deps: done"
