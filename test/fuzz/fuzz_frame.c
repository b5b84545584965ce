/* Fuzz target for the frame parser and the protobuf envelopes a peer can
 * send: whatever the bytes, parsing must return cleanly. Built for
 * libFuzzer with -fsanitize=fuzzer, or linked with replay.c to replay the
 * corpus in `make check`. */
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "admin.pb-c.h"
#include "dispatcher.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, plen;
	while (off < size && frame_parse(data + off, size - off, 1 << 20, &plen) == 1) {
		const uint8_t *p = data + off + FRAME_HDR;
		Swarm__AgentMessage *am = swarm__agent_message__unpack(NULL, plen, p);
		if (am)
			swarm__agent_message__free_unpacked(am, NULL);
		Swarm__AdminRequest *ar = swarm__admin_request__unpack(NULL, plen, p);
		if (ar)
			swarm__admin_request__free_unpacked(ar, NULL);
		Swarm__ManagerMessage *mm = swarm__manager_message__unpack(NULL, plen, p);
		if (mm)
			swarm__manager_message__free_unpacked(mm, NULL);
		off += FRAME_HDR + plen;
	}
	return 0;
}
