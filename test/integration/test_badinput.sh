#!/bin/bash
# shellcheck disable=SC2317 # the t_* functions are called through check
# timeout: 600
# Bad input is refused and changes nothing: wrong and rotated-out join
# tokens, TLS peers without a cluster certificate, malformed and oversized
# frames on the Unix sockets and on 2377, and swarmadm with invalid
# arguments. After each, the daemons keep serving.
PREFIX=tbad
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

require_lab

MANAGER=192.0.2.11:2377
CLIENT=192.0.2.99

t_up() {
	# node4 runs an agent that has not joined: the join tests use it.
	lab_up 3 --unjoined 1
	lab attach client "$CLIENT"
}

ready_is() { [ "$(ready_nodes)" = "$1" ]; }
node_count() { nodes_table | wc -l; }

# Joins node4 with TOKEN, which must be refused.
join_refused() { # TOKEN WHAT
	local rc=0
	adm node4 join --token "$1" "$MANAGER" > "$TEST_TMP/join.out" 2> "$TEST_TMP/join.err" || rc=$?
	echo "# $2: exit $rc: $(head -n1 "$TEST_TMP/join.err")"
	[ "$rc" != 0 ] || fail "join with $2 succeeded"
	[ "$rc" != 124 ] || fail "join with $2 hung (timeout)"
	[ -s "$TEST_TMP/join.err" ] || fail "join with $2 printed no error"
	[ "$(node_count)" = 3 ] || { nodes_table; fail "the cluster has $(node_count) nodes after a refused join"; }
}

t_wrong_token() {
	local tok digest secret flipped
	tok=$(adm node1 join-token -q worker)
	echo "# worker token: ${tok:0:20}..."
	[[ $tok == SWMTKN-1-*-* ]] || fail "token '$tok' is not SWMTKN-1-<digest>-<secret>"
	secret=${tok##*-}
	digest=${tok#SWMTKN-1-}; digest=${digest%-*}
	# Same CA digest, another secret of the same length.
	join_refused "SWMTKN-1-$digest-$(printf '%s' "$secret" | tr 'a-z0-9' 'b-z0-9a')" "a wrong secret"
	# Another CA digest, the right secret: the joiner must not trust the CA.
	flipped=$(printf '%s' "$digest" | tr 'a-z0-9' 'b-z0-9a')
	join_refused "SWMTKN-1-$flipped-$secret" "a wrong CA digest"
	join_refused "not-a-token" "a malformed token"
}

t_rotated_token() {
	local old new mgr
	old=$(adm node1 join-token -q worker)
	mgr=$(adm node1 join-token -q manager)
	[ "$old" != "$mgr" ] || fail "worker and manager tokens are the same"
	adm node1 join-token --rotate worker
	new=$(adm node1 join-token -q worker)
	[ "$new" != "$old" ] || fail "--rotate kept the token"
	[ "$(adm node1 join-token -q manager)" = "$mgr" ] || fail "rotating the worker token changed the manager token"
	join_refused "$old" "the rotated-out token"
	adm node4 join --token "$new" "$MANAGER"
	poll_until -d "4 nodes Ready" 60 ready_is 4
}

# A framed AgentMessage{id: 1, session: SessionOpen{hostname: "intruder",
# addr: CLIENT}} (proto/dispatcher.proto: AgentMessage.session = 11), hex.
session_open_hex() {
	"$PYTHON" - "$CLIENT" <<'EOF'
import sys
def field(n, b): return bytes([n << 3 | 2, len(b)]) + b
so = field(1, b"intruder") + field(2, sys.argv[1].encode())
msg = bytes([0x08, 0x01]) + field(11, so)
print((len(msg).to_bytes(4, "big") + msg).hex())
EOF
}

# RESULT (from send_bytes) shows the peer refused: it closed the
# connection, or answered (an error) and then closed or stayed silent.
refused() { # RESULT WHAT
	echo "# $2: $1"
	case $1 in
	closed*) ;;
	"open after 0 bytes") fail "$2: the connection stayed open with no answer" ;;
	open*) ;;
	*) fail "$2: no result ($1)" ;;
	esac
}

# The manager answers and as many nodes are Ready as before (N).
manager_serves() { # N
	adm node1 node ls > /dev/null || fail "the manager does not answer node ls"
	poll_until -d "$1 nodes Ready" 30 ready_is "$1"
}

t_tls_without_cert() {
	local hex r before
	before=$(ready_nodes)
	hex=$(session_open_hex)
	r=$(send_bytes_on client "$MANAGER" 10 "$hex" tls)
	refused "$r" "SessionOpen without a client certificate"
	# openssl s_client too, as an operator would try it.
	r=$( ("$PYTHON" -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$hex"; sleep 3) |
		on client timeout 15 openssl s_client -connect "$MANAGER" -tls1_3 -quiet 2>&1 | tail -n 3 || true)
	echo "# openssl s_client: $(echo "$r" | tr '\n' ' ')"
	nodes_table | grep -q intruder && fail "a node named intruder joined"
	manager_serves "$before"
}

t_foreign_cert() {
	local hex r before
	before=$(ready_nodes)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/O=not-this-cluster/OU=swarm-worker/CN=intruder" \
		-keyout "$TEST_TMP/k.pem" -out "$TEST_TMP/c.pem" 2> /dev/null
	hex=$(session_open_hex)
	r=$(send_bytes_on client "$MANAGER" 10 "$hex" tls "$TEST_TMP/c.pem" "$TEST_TMP/k.pem")
	refused "$r" "SessionOpen with a certificate of another CA"
	nodes_table | grep -q intruder && fail "a node named intruder joined"
	manager_serves "$before"
}

# 0xffffffff length, then garbage; a small frame of garbage (not protobuf).
OVERSIZED=ffffffff$(printf 'de%.0s' {1..64})
GARBAGE=00000010ffffffffffffffffffffffffffffffff

t_unix_frames() {
	local sock r before
	before=$(ready_nodes)
	for sock in "$LAB_RUN/node1/run/manager.sock" "$LAB_RUN/node1/run/agent.sock" "$LAB_RUN/node2/run/agent.sock"; do
		[ -S "$sock" ] || fail "no socket $sock"
		r=$(send_bytes "$sock" 5 "$OVERSIZED")
		echo "# $sock, oversized: $r"
		[[ $r == closed* ]] || fail "$sock kept a connection that announced a 4 GiB frame"
		r=$(send_bytes "$sock" 5 "$GARBAGE")
		echo "# $sock, garbage: $r"
		[[ $r == closed* ]] || fail "$sock kept a connection that sent an undecodable frame"
	done
	manager_serves "$before"
	adm node2 container ls > /dev/null || fail "node2's agent does not answer container ls"
	adm node1 container ls > /dev/null || fail "node1's agent does not answer container ls"
}

t_tcp_frames() {
	local r before
	before=$(ready_nodes)
	r=$(send_bytes_on client "$MANAGER" 5 "$OVERSIZED" plain)
	echo "# plain TCP, oversized: $r"
	[[ $r == closed* ]] || fail "2377 kept a plain TCP connection that sent garbage"
	r=$(send_bytes_on client "$MANAGER" 5 "$OVERSIZED" tls)
	echo "# TLS, oversized: $r"
	[[ $r == closed* ]] || fail "2377 kept a TLS connection that announced a 4 GiB frame"
	r=$(send_bytes_on client "$MANAGER" 5 "$GARBAGE" tls)
	echo "# TLS, garbage: $r"
	[[ $r == closed* ]] || fail "2377 kept a TLS connection that sent an undecodable frame"
	manager_serves "$before"
}

# swarmadm ARGS on node1 must exit non-zero with a message on stderr that
# starts with "swarmadm:", and change no service, network or container.
t_bad_args() {
	local services networks ctrs rc=0
	services=$(adm node1 service ls -q | sort)
	networks=$(adm node1 network ls -q | sort)
	ctrs=$(all_containers)
	adm node1 "$@" > "$TEST_TMP/out" 2> "$TEST_TMP/err" || rc=$?
	echo "# exit $rc: $(head -n1 "$TEST_TMP/err")"
	[ "$rc" != 0 ] || fail "exit status 0"
	[ "$rc" != 124 ] || fail "timed out"
	[ -s "$TEST_TMP/err" ] || fail "no message on stderr"
	head -n1 "$TEST_TMP/err" | grep -q '^swarmadm: ' || fail "the message does not start with 'swarmadm: '"
	sleep 1
	[ "$(adm node1 service ls -q | sort)" = "$services" ] || fail "the services changed"
	[ "$(adm node1 network ls -q | sort)" = "$networks" ] || fail "the networks changed"
	[ "$(all_containers)" = "$ctrs" ] || fail "the containers changed"
}

setup "3-node lab with an unjoined node4 and a client" t_up
check "join with a wrong token is refused" t_wrong_token
check "a rotated-out join token is refused, the new one works" t_rotated_token
check "a TLS peer without a cluster certificate cannot open a session" t_tls_without_cert
check "a TLS peer with a certificate of another CA cannot open a session" t_foreign_cert
check "malformed and oversized frames on the Unix sockets close the connection" t_unix_frames
check "malformed and oversized frames on 2377 close the connection" t_tcp_frames
check "bad args: network create --subnet 300.1.2.0/24" \
	t_bad_args network create --driver overlay --subnet 300.1.2.0/24 badsubnet
check "bad args: network create --subnet 198.18.5.0/33" \
	t_bad_args network create --driver overlay --subnet 198.18.5.0/33 badmask
check "bad args: service create --network nope" \
	t_bad_args service create -d --name badnet --network nope busybox
check "bad args: service create --replicas -1" \
	t_bad_args service create -d --name badrep --replicas -1 busybox
check "bad args: service create with an unknown flag" \
	t_bad_args service create -d --name badflag --no-such-flag busybox
check "bad args: service create with an invalid name" \
	t_bad_args service create -d --name 'bad name!' busybox
check "bad args: dnsrr with an ingress published port" \
	t_bad_args service create -d --name dnsrrpub --endpoint-mode dnsrr -p 8080:80 nginx
check "bad args: published port 70000" \
	t_bad_args service create -d --name badport -p 70000:80 nginx
check "bad args: service scale of an unknown service" \
	t_bad_args service scale nosuchservice=2
check "bad args: service update of an unknown service" \
	t_bad_args service update --replicas 3 nosuchservice
check "bad args: node update --availability sideways" \
	t_bad_args node update --availability sideways node2
finish
