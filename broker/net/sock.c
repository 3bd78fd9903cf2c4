/* sock: one getsockopt(TCP_INFO) per call. tcpi_bytes_acked (Linux 4.1) moves only when the
 * peer's TCP acknowledges new bytes, which it does only as its application makes room by
 * reading: a peer that reads, however slowly, makes it move; a vanished or frozen one does not. */
#include "sock.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

int sock_progress(int fd, uint64_t *acked, int *waiting)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return -errno;
    if (len < offsetof(struct tcp_info, tcpi_notsent_bytes) + sizeof(ti.tcpi_notsent_bytes))
        return -ENOSYS;
    *acked = ti.tcpi_bytes_acked;
    /* Bytes not yet sent are what a ping would queue behind; bytes in flight are not. */
    *waiting = ti.tcpi_notsent_bytes > 0;
    return 0;
}
