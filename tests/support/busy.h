/* busy: make every core of the machine busy for a while, so a test can check that it does not
 * depend on timing it is not promised (a shared CI runner, a laptop compiling meanwhile).
 *
 * busy_start() forks per_core spinning processes pinned to each online core
 * (sysconf(_SC_NPROCESSORS_ONLN)). Each is bounded three ways: busy_stop() kills it by PID, it
 * dies with the process that started it (PR_SET_PDEATHSIG), and it exits by itself after
 * max_secs (alarm). Only these PIDs are ever signalled. One set at a time per process. */
#ifndef NUDGE_TEST_BUSY_H
#define NUDGE_TEST_BUSY_H

/* Start the spinners. Returns how many were started (0 when fork failed at once). */
int busy_start(int per_core, unsigned max_secs);
/* SIGKILL and reap every spinner busy_start() started. Safe to call twice, or without a start. */
void busy_stop(void);

#endif
