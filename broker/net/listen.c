/* listen: numeric or resolvable host, first address that binds wins; the bound address is read
 * back with getsockname so "port 0" callers learn the ephemeral port for the ready line. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int listen_parse(const char *addr, char *host, size_t hostlen, unsigned *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) return -EINVAL;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']') return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen) return -EINVAL;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || p > 65535) return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned)p;
    return 0;
}

int listen_open(const char *addr, int backlog, int share, int *fd_out, char *bound, size_t boundlen)
{
    char host[256], portstr[8];
    unsigned port;
    if (listen_parse(addr, host, sizeof(host), &port) < 0) return -EINVAL;
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res) return -EADDRNOTAVAIL;
    int err = -EADDRNOTAVAIL, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (share) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) break;
        err = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return err;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned bport = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
            bport = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
            bport = ntohs(s6->sin6_port);
        }
    }
    if (ss.ss_family == AF_INET6)
        snprintf(bound, boundlen, "[%s]:%u", ip, bport);
    else
        snprintf(bound, boundlen, "%s:%u", ip, bport);
    *fd_out = fd;
    return 0;
}

int listen_open_group(const char *addr, int backlog, int n, int *fds, char *bound, size_t boundlen)
{
    int rc = listen_open(addr, backlog, 0, &fds[0], bound, boundlen);
    if (rc < 0 || n <= 1) return rc;
    /* The probe proved the port free; give it up and bind every worker's socket to it. */
    close(fds[0]);
    char host[256], again[300];
    unsigned port, bport;
    if (listen_parse(addr, host, sizeof(host), &port) < 0 ||
        listen_parse(bound, again, sizeof(again), &bport) < 0)
        return -EINVAL;
    snprintf(again, sizeof(again), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, bport);
    for (int i = 0; i < n; i++) {
        if ((rc = listen_open(again, backlog, 1, &fds[i], bound, boundlen)) < 0) {
            while (i--)
                close(fds[i]);
            return rc;
        }
    }
    return 0;
}
