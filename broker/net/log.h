/* log: one line per event on stderr, "nudged: LEVEL: message". The level lives in the server
 * context; callers check it with LOG_ON before formatting. */
#ifndef NUDGE_LOG_H
#define NUDGE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *s);
/* Write one line at level (no level check). */
void log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_ON(max, lvl) ((lvl) <= (max))
#define LOGF(max, lvl, ...)                                                                        \
    do {                                                                                           \
        if (LOG_ON(max, lvl)) log_emit(lvl, __VA_ARGS__);                                          \
    } while (0)

#endif
