/* Whether this kernel has IPsec ESP, asked the only way that does not
 * guess from config files: a child process in a network namespace of its
 * own adds an ESP state with AES-GCM (rfc4106) through NETLINK_XFRM and
 * reports the kernel's answer. Nothing outside that throw-away namespace
 * is touched. */
#ifndef SWARM_ESP_PROBE_H
#define SWARM_ESP_PROBE_H

#include <stddef.h>

/* 1: ESP states can be made; 0: they cannot, why[len] says why ("no
 * NETLINK_XFRM", "the kernel has no ESP (Protocol not supported)"); -errno
 * when the probe itself could not run. */
int esp_probe(char *why, size_t len);

#endif
