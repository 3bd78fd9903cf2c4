/* lb: see lb.h. Free ports come from binding port 0 and closing it; HAProxy exits when another
 * process took one first, and the start is retried on new ports. */
#include "lb.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redisd.h"

#define TEMPLATE "broker/dist/cluster/haproxy.cfg"

static int accepts(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The template with every @NAME@ replaced by its port; NULL when it cannot be read. */
static char *fill(const struct lb *l, const uint16_t ws[LB_NODES], const uint16_t pub[LB_NODES])
{
    FILE *f = fopen(TEMPLATE, "r");
    if (!f) return NULL;
    static char in[8192];
    size_t n = fread(in, 1, sizeof(in) - 1, f);
    fclose(f);
    in[n] = '\0';
    char *out = malloc(n + 256);
    if (!out) return NULL;
    size_t o = 0;
    for (const char *p = in; *p;) {
        char name[16];
        int len = 0;
        if (*p == '@' && sscanf(p, "@%15[A-Z0-9]@%n", name, &len) == 1 && len > 0) {
            unsigned v =
                !strcmp(name, "WS")                                            ? l->ws_port
                : !strcmp(name, "PUB")                                         ? l->pub_port
                : !strncmp(name, "WS", 2) && name[2] >= '1' && name[2] <= '3'  ? ws[name[2] - '1']
                : !strncmp(name, "PUB", 3) && name[3] >= '1' && name[3] <= '3' ? pub[name[3] - '1']
                                                                               : 0;
            o += (size_t)sprintf(out + o, "%u", v);
            p += len;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    return out;
}

static int start_once(struct lb *l, const uint16_t ws[LB_NODES], const uint16_t pub[LB_NODES])
{
    l->ws_port = redisd_free_port();
    l->pub_port = redisd_free_port();
    char *cfg = fill(l, ws, pub);
    if (!cfg || !l->ws_port || !l->pub_port || l->ws_port == l->pub_port) {
        free(cfg);
        return -1;
    }
    char path[96], log[96];
    snprintf(path, sizeof(path), "%s/haproxy.cfg", l->dir);
    snprintf(log, sizeof(log), "%s/log", l->dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        free(cfg);
        return -1;
    }
    fputs(cfg, f);
    fclose(f);
    free(cfg);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *o = freopen(log, "w", stderr);
        (void)o;
        execlp("haproxy", "haproxy", "-db", "-f", path, (char *)NULL);
        _exit(127);
    }
    l->pid = pid;
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (accepts(l->ws_port) && accepts(l->pub_port)) return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            l->pid = 0;
            return -1;
        }
        nap(10);
    }
    lb_stop(l);
    return -1;
}

int lb_start(struct lb *l, const uint16_t ws[LB_NODES], const uint16_t pub[LB_NODES])
{
    memset(l, 0, sizeof(*l));
    snprintf(l->dir, sizeof(l->dir), "/tmp/nudge-lb-XXXXXX");
    if (!mkdtemp(l->dir)) return -1;
    for (int tries = 0; tries < 5; tries++)
        if (start_once(l, ws, pub) == 0) return 0;
    fprintf(stderr, "lb: haproxy did not start (log %s/log)\n", l->dir);
    return -1;
}

void lb_stop(struct lb *l)
{
    if (l->pid > 0) {
        kill(l->pid, SIGTERM);
        int i = 0;
        for (; i < 500 && waitpid(l->pid, NULL, WNOHANG) != l->pid; i++)
            nap(10);
        if (i == 500) {
            kill(l->pid, SIGKILL);
            waitpid(l->pid, NULL, 0);
        }
        l->pid = 0;
    }
    if (l->dir[0]) {
        char p[96];
        snprintf(p, sizeof(p), "%s/haproxy.cfg", l->dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/log", l->dir);
        unlink(p);
        rmdir(l->dir);
        l->dir[0] = '\0';
    }
}
