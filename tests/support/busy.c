/* busy: the spinners are plain fork()ed children that never return to the caller's code: they
 * pin themselves, arm their alarm and loop on a volatile counter (no allocation, no I/O). */
#include "busy.h"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUSY_MAX 256

static pid_t pids[BUSY_MAX];
static int npids;

__attribute__((noreturn)) static void spin(long cpu, pid_t parent, unsigned max_secs)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0); /* the parent died before prctl */
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
    signal(SIGALRM, SIG_DFL);
    alarm(max_secs);
    volatile unsigned long n = 0;
    for (;;)
        n++;
}

int busy_start(int per_core, unsigned max_secs)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    pid_t parent = getpid();
    for (long c = 0; c < cpus; c++)
        for (int k = 0; k < per_core && npids < BUSY_MAX; k++) {
            pid_t p = fork();
            if (p == 0) spin(c, parent, max_secs);
            if (p > 0) pids[npids++] = p;
        }
    return npids;
}

void busy_stop(void)
{
    for (int i = 0; i < npids; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < npids; i++)
        waitpid(pids[i], NULL, 0);
    npids = 0;
}
