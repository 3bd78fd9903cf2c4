/* sock: what the kernel knows about a connected TCP socket and libuv does not expose. Kept out
 * of the transports because <linux/tcp.h> (the full struct tcp_info) cannot share a file with
 * <uv.h>, which pulls in glibc's shorter <netinet/tcp.h>. */
#ifndef NUDGE_SOCK_H
#define NUDGE_SOCK_H

#include <stdint.h>

/* Bytes of our output the peer has acknowledged over the connection's life (monotonic) in
 * *acked, and in *waiting 1 when output is still unsent (a ping would queue behind it), else 0.
 * Returns 0, or -errno (-ENOSYS when the kernel's tcp_info is too old to carry these). */
int sock_progress(int fd, uint64_t *acked, int *waiting);

#endif
