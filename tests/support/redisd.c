/* redisd: see redisd.h. A free port comes from binding port 0 and closing it; another process
 * may take it before redis-server binds it, so a start that fails is retried on a new port. */
#include "redisd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

uint16_t redisd_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    uint16_t port = 0;
    if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) && !getsockname(fd, (struct sockaddr *)&a, &al))
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

struct redisContext *redisd_connect(const struct redisd *r)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c) return NULL;
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int answers(const struct redisd *r)
{
    redisContext *c = redisd_connect(r);
    if (!c) return 0;
    redisReply *rep = redisCommand(c, "PING");
    int ok = rep && rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG");
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return ok;
}

static int reap(struct redisd *r, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) return 0;
        sleep_ms(10);
    }
    return -1;
}

static int start_once(struct redisd *r, uint16_t port)
{
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chdir(r->dir)) _exit(127);
        execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no", "--logfile",
               r->log, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    r->port = port;
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (answers(r)) return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) { /* exited: the port was taken, or no binary */
            r->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    reap(r, 5000);
    r->pid = 0;
    return -1;
}

int redisd_start(struct redisd *r, uint16_t port)
{
    if (!r->dir[0]) {
        snprintf(r->dir, sizeof(r->dir), "/tmp/nudge-redis-XXXXXX");
        if (!mkdtemp(r->dir)) {
            r->dir[0] = '\0';
            return -1;
        }
        snprintf(r->log, sizeof(r->log), "%s/log", r->dir);
    }
    for (int tries = 0; tries < (port ? 1 : 5); tries++) {
        uint16_t p = port ? port : redisd_free_port();
        if (p && start_once(r, p) == 0) return 0;
    }
    fprintf(stderr, "redisd: redis-server did not start (log %s)\n", r->log);
    return -1;
}

int redisd_stop(struct redisd *r, int keep_dir)
{
    int rc = -1;
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        if (reap(r, 10000) < 0) {
            kill(r->pid, SIGKILL);
            reap(r, 5000);
        }
        r->pid = 0;
        rc = 0;
    }
    if (!keep_dir && r->dir[0]) {
        unlink(r->log);
        rmdir(r->dir);
        r->dir[0] = '\0';
    }
    return rc;
}
