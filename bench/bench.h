/* What bench.c (the fan-out and publish benchmark) shares with catchup.c (the resume one). */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);
/* Write all n bytes to a socket (blocking or not: EAGAIN is waited out). 0 or -1. */
int send_all(int fd, const void *p, size_t n);
/* One masked client frame (mask 0: the payload is sent as is, which RFC 6455 allows); n < 65536.
 * 0 or -1. */
int send_frame(int fd, uint8_t opcode, const uint8_t *p, size_t n);
/* `nudge-bench catchup ...` (argv[0] = "catchup"): the resume benchmark. Exit status. */
int catchup_main(int argc, char **argv);

#endif
