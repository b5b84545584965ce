/* Fuzz target for the inbound gossip path (memberlist wire format): label
 * strip and check, decryption with a fixed test key, CRC, compound split,
 * decompression and the decoding of every message; the TCP stream form and
 * the raw LZW decoder too. Whatever the bytes, it must return cleanly and
 * never read outside the input. Built for libFuzzer with
 * -fsanitize=fuzzer, or linked with replay.c to replay the corpus in
 * `make check`. Packets in corpus/gossip that are encrypted use
 * FUZZ_GOSSIP_KEY with label "" or "fuzz". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gossip_crypto.h"
#include "gossip_pack.h"
#include "gossip_wire.h"
#include "lzw.h"

#define FUZZ_GOSSIP_KEY "fuzz-gossip-key-0123456789abcdef" /* 32 bytes */

/* Reads every byte of a view, so a view past the input trips ASan. */
static unsigned touch(struct gossip_bytes b)
{
	unsigned s = 0;
	for (size_t i = 0; i < b.len; i++)
		s += b.p[i];
	return s;
}

static volatile unsigned sink;

static int leaf(void *arg, const uint8_t *p, size_t len)
{
	struct gossip_msg m;
	(void)arg;
	if (gossip_decode_msg(p, len, &m) < 0)
		return 0; /* memberlist drops the one message and goes on */
	switch (m.type) {
	case GOSSIP_PING:
		sink += touch(m.u.ping.node) + touch(m.u.ping.source_addr) + touch(m.u.ping.source_node);
		break;
	case GOSSIP_INDIRECT_PING:
		sink += touch(m.u.indirect_ping.target) + touch(m.u.indirect_ping.node) +
			touch(m.u.indirect_ping.source_addr) + touch(m.u.indirect_ping.source_node);
		break;
	case GOSSIP_ACK: sink += touch(m.u.ack.payload); break;
	case GOSSIP_ERR: sink += touch(m.u.err.error); break;
	case GOSSIP_SUSPECT: sink += touch(m.u.suspect.node) + touch(m.u.suspect.from); break;
	case GOSSIP_DEAD: sink += touch(m.u.dead.node) + touch(m.u.dead.from); break;
	case GOSSIP_ALIVE:
		sink += touch(m.u.alive.node) + touch(m.u.alive.addr) + touch(m.u.alive.meta) +
			touch(m.u.alive.vsn);
		break;
	case GOSSIP_USER: sink += touch(m.u.user); break;
	default: break;
	}
	return 0;
}

/* A push/pull stream as a TCP reader would consume it. */
static void push_pull(const uint8_t *p, size_t len)
{
	struct gossip_push_pull_header h;
	size_t off = 1, used;
	if (gossip_decode_push_pull_header(p + off, len - off, &h, &used) < 0)
		return;
	off += used;
	for (int64_t i = 0; i < h.nodes; i++) {
		struct gossip_push_node_state st;
		if (gossip_decode_push_node_state(p + off, len - off, &st, &used) < 0)
			return;
		sink += touch(st.name) + touch(st.addr) + touch(st.meta) + touch(st.vsn);
		off += used;
	}
	if ((uint64_t)h.user_state_len <= len - off)
		sink += touch((struct gossip_bytes){ p + off, (size_t)h.user_state_len });
}

static void user_stream(const uint8_t *p, size_t len)
{
	struct gossip_user_msg_header h;
	size_t used;
	if (gossip_decode_user_msg_header(p + 1, len - 1, &h, &used) < 0)
		return;
	if ((uint64_t)h.user_msg_len <= len - 1 - used)
		sink += touch((struct gossip_bytes){ p + 1 + used, (size_t)h.user_msg_len });
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gossip_keyring kr;
	static const char *const labels[] = { NULL, "fuzz" };
	struct gossip_buf scratch;
	const uint8_t *msg;
	size_t mlen, used;

	if (kr.n == 0)
		gossip_keyring_add(&kr, (const uint8_t *)FUZZ_GOSSIP_KEY, 32);
	gossip_buf_init(&scratch, 1 << 20);

	for (size_t i = 0; i < 2; i++) {
		/* UDP, with verify_incoming off so undecryptable input also
		 * reaches the CRC and dispatch code as plaintext. */
		if (gossip_pack_udp_open(data, size, labels[i], &kr, false, &scratch, &msg, &mlen) == 0 && mlen > 0)
			gossip_pack_walk(msg, mlen, GOSSIP_UDP_MAX_DECOMPRESS, leaf, NULL);

		/* TCP: one message per connection. */
		if (gossip_pack_tcp_open(data, size, labels[i], &kr, false, &scratch, &msg, &mlen, &used) == 0 &&
		    mlen > 0) {
			if (msg[0] == GOSSIP_PUSH_PULL)
				push_pull(msg, mlen);
			else if (msg[0] == GOSSIP_USER)
				user_stream(msg, mlen);
			else
				leaf(NULL, msg, mlen);
		}
	}
	gossip_buf_free(&scratch);

	uint8_t *out;
	size_t olen;
	if (lzw_decode(data, size, 1 << 20, &out, &olen) == 0)
		free(out);
	return 0;
}
