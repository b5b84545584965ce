#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

uint8_t *pb_pack(const void *msg, size_t *len)
{
	const ProtobufCMessage *m = msg;
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(n ? n : 1);
	protobuf_c_message_pack(m, buf);
	*len = n;
	return buf;
}

void *pb_dup(const void *msg)
{
	const ProtobufCMessage *m = msg;
	size_t len;
	uint8_t *buf = pb_pack(m, &len);
	void *copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	if (!copy)
		abort();
	return copy;
}

void pb_free(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

void pb_set_str(char **field, const char *s)
{
	if (*field && *field != (char *)protobuf_c_empty_string)
		free(*field);
	*field = (s && *s) ? xstrdup(s) : (char *)protobuf_c_empty_string;
}

void pb_strv_add(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s ? s : "");
}

void pb_strv_clear(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
}

void pb_ptrv_add(void ***v, size_t *n, void *elem)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = elem;
}

int pb_equal(const void *a, const void *b)
{
	size_t la = protobuf_c_message_get_packed_size(a);
	size_t lb = protobuf_c_message_get_packed_size(b);
	if (la != lb)
		return 0;
	size_t l;
	uint8_t *pa = pb_pack(a, &l), *pbb = pb_pack(b, &l);
	int eq = memcmp(pa, pbb, la) == 0;
	free(pa);
	free(pbb);
	return eq;
}
