/* nudge-idle: hold N idle subscribed WebSocket connections to a broker, for measuring its memory
 * per connection (bench/memory.sh, docs/bench.md §Memory per connection). Built from the tests'
 * crowd (tests/support/crowd.c): one thread, one epoll, N up to ~19,000 per process.
 *
 *   nudge-idle PORT N FIRST one|own [SECRET-FILE|-] [EPOCH SEQ]
 *
 * one: every connection subscribes to "news"; own: connection i to a topic of its own ("t:<i>",
 * or "user:u<i>" with tokens), i from FIRST. With SECRET-FILE, connection i says hello with an
 * HS256 token for sub "u<i>" (the broker wants --token-secret-file and --public news). With
 * EPOCH SEQ, its sub carries a resume position. Prints "ready R failed F" once every connection
 * is subscribed (or has failed), then answers pings until killed (at most an hour). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crowd.h"
#include "jwt.h"

static char **tokens;
static uint32_t first;

static const char *token_of(uint32_t i, void *arg)
{
    (void)arg;
    return tokens[i - first];
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: nudge-idle PORT N FIRST one|own [SECRET-FILE|-] [EPOCH SEQ]\n");
        return 2;
    }
    struct crowd_opts o = {0};
    o.port = (uint16_t)atoi(argv[1]);
    o.n = (uint32_t)atoi(argv[2]);
    o.first = first = (uint32_t)atoi(argv[3]);
    o.topic_prefix = "t:";
    if (argc > 5 && strcmp(argv[5], "-") != 0) {
        size_t sl;
        char *secret = jwt_read_file(argv[5], &sl);
        if (!secret) {
            fprintf(stderr, "nudge-idle: cannot read %s\n", argv[5]);
            return 1;
        }
        while (sl && secret[sl - 1] == '\n')
            sl--;
        if (!(tokens = calloc(o.n ? o.n : 1, sizeof(*tokens)))) return 1;
        for (uint32_t i = 0; i < o.n; i++) {
            char claims[160];
            snprintf(claims, sizeof claims, "{\"sub\":\"u%u\",\"exp\":%lld}", first + i,
                     (long long)time(NULL) + 86400);
            if (!(tokens[i] = jwt_mint("HS256", secret, sl, NULL, claims))) return 1;
        }
        free(secret);
        o.token = token_of;
        o.topic_prefix = "user:u";
    }
    if (strcmp(argv[4], "one") == 0) o.topic = "news";
    if (argc > 7) {
        o.resume_epoch = argv[6];
        o.resume_seq = strtoull(argv[7], NULL, 10);
    }
    o.timeout_ms = 120000;
    o.window = 128;
    struct crowd cr;
    uint32_t ready = crowd_open(&cr, &o);
    printf("ready %u failed %u\n", ready, cr.failed);
    fflush(stdout);
    uint32_t gone = crowd_serve(&cr, 3600 * 1000);
    fprintf(stderr, "nudge-idle: %u closed by the broker, %u pings answered\n", gone, cr.pings);
    crowd_close(&cr);
    for (uint32_t i = 0; tokens && i < o.n; i++)
        free(tokens[i]);
    free(tokens);
    return 0;
}
