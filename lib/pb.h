/* Helpers for protobuf-c messages used as in-memory objects.
 * Contract: every pointer inside an object built by this project is owned by
 * that object and was allocated with malloc (so protobuf_c_message_free_unpacked
 * with a NULL allocator frees it whole). Strings are never NULL: an unset
 * proto3 string is protobuf_c_empty_string. */
#ifndef SWARM_PB_H
#define SWARM_PB_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Deep copy through pack/unpack. Aborts on ENOMEM. */
void *pb_dup(const void *msg);
/* Frees a message and everything it owns; NULL is a no-op. */
void pb_free(void *msg);
/* Packs into a malloc'd buffer; *len set. */
uint8_t *pb_pack(const void *msg, size_t *len);

/* True when both messages encode to the same bytes. */
int pb_equal(const void *a, const void *b);

/* Replaces *field (freeing the old value unless it is the shared empty
 * string) with a malloc'd copy of s (NULL -> empty string). */
void pb_set_str(char **field, const char *s);
/* Appends a malloc'd copy of s to a repeated string field. */
void pb_strv_add(char ***v, size_t *n, const char *s);
/* Frees every string of a repeated string field and empties it. */
void pb_strv_clear(char ***v, size_t *n);
/* Appends a pointer to a repeated message field (takes ownership). */
void pb_ptrv_add(void ***v, size_t *n, void *elem);

#define PB_STRV_ADD(msg, field, s) \
	pb_strv_add(&(msg)->field, &(msg)->n_##field, (s))
#define PB_PTRV_ADD(msg, field, e) \
	pb_ptrv_add((void ***)&(msg)->field, &(msg)->n_##field, (e))

#endif
