/* What bench.c (the fan-out and publish benchmark) shares with catchup.c (the resume one) and
 * load.c (the load generator). */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#define THREADS_MAX 128 /* broker threads reported one by one */

/* CPU ticks of a process (the broker): total and per thread (tid order as /proc lists them). */
struct cpu {
    long long total;
    int n;
    int tid[THREADS_MAX];
    long long ticks[THREADS_MAX];
};

/* utime+stime of process pid and of each of its threads, from /proc; 0, or -1 when pid's stat
 * cannot be read. */
int cpu_read(int pid, struct cpu *c);
/* This process's own CPU time (user + system), seconds. */
double own_cpu_s(void);
/* CLOCK_MONOTONIC in seconds. */
double now_s(void);
/* Write all n bytes to a socket (blocking or not: EAGAIN is waited out). 0 or -1. */
int send_all(int fd, const void *p, size_t n);
/* One masked client frame (mask 0: the payload is sent as is, which RFC 6455 allows); n < 65536.
 * 0 or -1. */
int send_frame(int fd, uint8_t opcode, const uint8_t *p, size_t n);
/* `nudge-bench load ...` (load.c): the load generator over every system (peer.h). Exit status. */
int load_main(int argc, char **argv);
/* `nudge-bench catchup ...` (argv[0] = "catchup"): the resume benchmark. Exit status. */
int catchup_main(int argc, char **argv);

#endif
