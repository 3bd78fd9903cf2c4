/* metrics registry (broker/hub/metrics.h): shards sum slot by slot, histograms put each observation
 * in the first bucket whose bound holds it, the Prometheus and JSON renderers print exactly the
 * expected text for a small fixed table, the broker's own table is well formed, and
 * docs/operations.md lists exactly what the table holds. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "metrics.h"
#include "msg.h"
#include "wire.h"

static const uint64_t small_bounds[] = {1, 25, 1000};
static const struct metrics_hist small_hist = {small_bounds, 3, 1000};
static const struct metrics_desc small_rows[] = {
    {"t_requests_total", METRICS_COUNTER, "", "Requests", "kind=\"a\"", "req.a", 0, NULL},
    {"t_requests_total", METRICS_COUNTER, "", NULL, "kind=\"b\"", "req.b", 1, NULL},
    {"t_open", METRICS_GAUGE, "", "Open now", NULL, "open", 2, NULL},
    {"t_wait_seconds", METRICS_HISTOGRAM, "seconds", "Wait", NULL, NULL, 3, &small_hist},
};
static const struct metrics_table small = {small_rows, 4, 8};

/* Two shards written as two workers would, summed. */
static void small_values(uint64_t v[METRICS_SLOTS])
{
    static struct metrics_shard a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    metrics_add(&a, 0, 3);
    metrics_add(&b, 0, 2);
    metrics_add(&a, 2, 10);
    metrics_sub(&b, 2, 3); /* a gauge shard may go below zero: the sum is still right */
    const uint64_t obs[] = {0, 1, 2, 25, 1000, 1001};
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
        metrics_observe(i % 2 ? &a : &b, 3, &small_hist, obs[i]);
    const struct metrics_shard *shards[2] = {&a, &b};
    metrics_sum(shards, 2, v);
}

Test(metrics, sums_every_slot_over_the_shards)
{
    struct metrics_shard s[3];
    memset(s, 0, sizeof(s));
    for (int k = 0; k < 3; k++) {
        metrics_add(&s[k], METRICS_PUBLISHES, (uint64_t)(k + 1));
        metrics_add(&s[k], METRICS_BYTES_OUT, 1000);
    }
    metrics_add(&s[0], METRICS_CONNS_WS, 5);
    metrics_sub(&s[2], METRICS_CONNS_WS, 2);
    const struct metrics_shard *p[3] = {&s[0], &s[1], &s[2]};
    uint64_t v[METRICS_SLOTS];
    memset(v, 0xff, sizeof(v));
    metrics_sum(p, 3, v);
    cr_expect_eq(v[METRICS_PUBLISHES], 6);
    cr_expect_eq(v[METRICS_BYTES_OUT], 3000);
    cr_expect_eq(v[METRICS_CONNS_WS], 3, "gauge summed across shards: %llu",
                 (unsigned long long)v[METRICS_CONNS_WS]);
    cr_expect_eq(v[METRICS_ERRORS], 0);
    for (int i = METRICS_SHARD_SLOTS; i < METRICS_SLOTS; i++)
        cr_expect_eq(v[i], 0, "read-time slot %d not zeroed", i);
}

Test(metrics, puts_each_observation_in_the_first_bucket_that_holds_it)
{
    struct metrics_shard s;
    memset(&s, 0, sizeof(s));
    const uint64_t obs[] = {0, 1, 2, 25, 26, 1000, 1001, 99999};
    const int want_bucket[] = {0, 0, 1, 1, 2, 2, 3, 3};
    uint64_t want[4] = {0}, sum = 0;
    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        metrics_observe(&s, 0, &small_hist, obs[i]);
        want[want_bucket[i]]++;
        sum += obs[i];
    }
    for (int b = 0; b < 4; b++)
        cr_expect_eq(s.v[b], want[b], "bucket %d holds %llu, want %llu", b,
                     (unsigned long long)s.v[b], (unsigned long long)want[b]);
    cr_expect_eq(s.v[4], sum, "sum slot");
    cr_expect_eq(s.v[5], 0, "histogram wrote past its slots");

    /* The broker's latency histogram: 0 ms is in the first bucket, 10 s in the last finite one. */
    memset(&s, 0, sizeof(s));
    metrics_observe(&s, METRICS_LATENCY, &metrics_latency, 0);
    metrics_observe(&s, METRICS_LATENCY, &metrics_latency, 10000);
    metrics_observe(&s, METRICS_LATENCY, &metrics_latency, 10001);
    cr_expect_eq(s.v[METRICS_LATENCY], 1);
    cr_expect_eq(s.v[METRICS_LATENCY + METRICS_LATENCY_BOUNDS - 1], 1);
    cr_expect_eq(s.v[METRICS_LATENCY + METRICS_LATENCY_BOUNDS], 1, "+Inf bucket");
    cr_expect_eq(s.v[METRICS_LATENCY + METRICS_LATENCY_BOUNDS + 1], 20001, "sum in ms");
}

Test(metrics, renders_the_prometheus_text_format_exactly)
{
    uint64_t v[METRICS_SLOTS];
    small_values(v);
    struct wire_buf out = {0};
    cr_assert_eq(metrics_render_prom(&small, v, &out), 0);
    const char *want = "# HELP t_requests_total Requests\n"
                       "# TYPE t_requests_total counter\n"
                       "t_requests_total{kind=\"a\"} 5\n"
                       "t_requests_total{kind=\"b\"} 0\n"
                       "# HELP t_open Open now\n"
                       "# TYPE t_open gauge\n"
                       "t_open 7\n"
                       "# HELP t_wait_seconds Wait\n"
                       "# TYPE t_wait_seconds histogram\n"
                       "t_wait_seconds_bucket{le=\"0.001\"} 2\n"
                       "t_wait_seconds_bucket{le=\"0.025\"} 4\n"
                       "t_wait_seconds_bucket{le=\"1\"} 5\n"
                       "t_wait_seconds_bucket{le=\"+Inf\"} 6\n"
                       "t_wait_seconds_sum 2.029\n"
                       "t_wait_seconds_count 6\n";
    cr_expect_eq(out.len, strlen(want), "length %zu, want %zu:\n%.*s", out.len, strlen(want),
                 (int)out.len, (char *)out.data);
    cr_expect(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0, "got:\n%.*s",
              (int)out.len, (char *)out.data);
    wire_buf_free(&out);
}

Test(metrics, renders_json_at_the_rows_paths_in_table_order)
{
    uint64_t v[METRICS_SLOTS];
    small_values(v);
    json_t *o = json_object();
    json_object_set_new(o, "first", json_true());
    cr_assert_eq(metrics_render_json(&small, v, o), 0);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_expect_str_eq(text, "{\"first\":true,\"req\":{\"a\":5,\"b\":0},\"open\":7}");
    free(text);
    json_decref(o);
}

Test(metrics, times_each_written_hint_from_its_publish_but_not_older_replays)
{
    struct conn c;
    memset(&c, 0, sizeof(c));
    /* Published at 10 (before the connection, opened at 50: a replay), 100, 100, 400 and 600
     * (not written yet); a control message in between. */
    const uint64_t at[] = {10, 100, 100, 400, 600};
    for (size_t i = 0; i < 5; i++) {
        struct hint *h = hint_new("t", 1, 7, NULL, 0);
        cr_assert_not_null(h);
        h->time_ms = at[i]; /* the store's stamp */
        cr_assert_eq(conn_push_hint(&c, h, 1, 0, 0), 0);
        hint_unref(h);
        if (i == 1) cr_assert_eq(conn_push_msg(&c, msg_copy((const uint8_t *)"x", 1)), 0);
    }
    struct metrics_shard s;
    memset(&s, 0, sizeof(s));
    metrics_observe_written(&s, &c, 5, 50, 500); /* entries 0..4: replay, 100, msg, 100, 400 */
    uint64_t v[METRICS_SLOTS];
    const struct metrics_shard *p[1] = {&s};
    metrics_sum(p, 1, v);
    /* ages 400, 400, 100 ms: two in le=0.5 (bucket 7), one in le=0.1 (bucket 5) */
    uint64_t total = 0;
    for (int b = 0; b <= METRICS_LATENCY_BOUNDS; b++)
        total += v[METRICS_LATENCY + b];
    cr_expect_eq(total, 3, "observations %llu, want 3 (no replay, no message, nothing unwritten)",
                 (unsigned long long)total);
    cr_expect_eq(v[METRICS_LATENCY + 5], 1);
    cr_expect_eq(v[METRICS_LATENCY + 7], 2);
    cr_expect_eq(v[METRICS_LATENCY + METRICS_LATENCY_BOUNDS + 1], 900, "sum of ages in ms");
    conn_queue_free(&c);
}

/* Writers bump their own shards while a reader sums: the reader sees monotonic totals and, once
 * the writers are done, the exact total (no lost update, no lock). */
#define BUMPS 200000
static void *writer(void *arg)
{
    struct metrics_shard *s = arg;
    for (int i = 0; i < BUMPS; i++)
        metrics_add(s, METRICS_DELIVERIES, 1);
    return NULL;
}

Test(metrics, readers_sum_shards_while_their_owners_write_them)
{
    static struct metrics_shard s[2];
    memset(s, 0, sizeof(s));
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, writer, &s[k]), 0);
    const struct metrics_shard *p[2] = {&s[0], &s[1]};
    uint64_t v[METRICS_SLOTS], last = 0;
    for (int i = 0; i < 1000; i++) {
        metrics_sum(p, 2, v);
        cr_assert_geq(v[METRICS_DELIVERIES], last, "total went back: %llu after %llu",
                      (unsigned long long)v[METRICS_DELIVERIES], (unsigned long long)last);
        cr_assert_leq(v[METRICS_DELIVERIES], 2 * BUMPS);
        last = v[METRICS_DELIVERIES];
    }
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    metrics_sum(p, 2, v);
    cr_expect_eq(v[METRICS_DELIVERIES], 2 * BUMPS);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

Test(metrics, the_broker_table_follows_prometheus_conventions_and_covers_every_slot)
{
    const struct metrics_table *t = &metrics_table;
    int used[METRICS_SLOTS] = {0};
    cr_assert_eq(t->nslots, METRICS_SLOTS);
    for (size_t i = 0; i < t->nrows; i++) {
        const struct metrics_desc *d = &t->rows[i];
        cr_expect(strncmp(d->name, "nudge_", 6) == 0, "%s: no nudge_ prefix", d->name);
        cr_expect(strspn(d->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(d->name),
                  "%s: not snake_case", d->name);
        cr_expect(ends_with(d->name, "_total") == (d->type == METRICS_COUNTER),
                  "%s: counters and only counters end in _total", d->name);
        if (*d->unit) {
            char base[128];
            snprintf(base, sizeof(base), "%s", d->name);
            if (ends_with(base, "_total")) base[strlen(base) - 6] = '\0';
            char suffix[32];
            snprintf(suffix, sizeof(suffix), "_%s", d->unit);
            cr_expect(ends_with(base, suffix), "%s: unit %s is not its suffix", d->name, d->unit);
            cr_expect(!strcmp(d->unit, "bytes") || !strcmp(d->unit, "seconds"),
                      "%s: %s is not a base unit", d->name, d->unit);
        }
        int first = i == 0 || strcmp(d->name, t->rows[i - 1].name) != 0;
        if (first) {
            cr_expect(d->help && *d->help, "%s: no help", d->name);
            if (d->help)
                cr_expect(!strpbrk(d->help, "\\\n|"), "%s: help has \\, newline or |", d->name);
            for (size_t j = 0; j < i; j++)
                cr_expect(strcmp(t->rows[j].name, d->name) != 0,
                          "%s: rows of one family must be adjacent", d->name);
        } else {
            cr_expect(d->type == t->rows[i - 1].type && d->labels && t->rows[i - 1].labels,
                      "%s: family rows differ in type or lack labels", d->name);
        }
        size_t width = 1;
        if (d->type == METRICS_HISTOGRAM) {
            cr_assert_not_null(d->hist, "%s: histogram without shape", d->name);
            cr_expect_null(d->json, "%s: histograms are not in /stats", d->name);
            width = d->hist->nbounds + 2;
        } else {
            cr_expect_not_null(d->json, "%s: every counter and gauge is in /stats", d->name);
        }
        cr_assert_leq(d->slot + width, METRICS_SLOTS, "%s: slot out of range", d->name);
        for (size_t k = 0; k < width; k++)
            used[d->slot + k]++;
        for (size_t j = 0; d->json && j < i; j++)
            cr_expect(!t->rows[j].json || strcmp(t->rows[j].json, d->json) != 0,
                      "%s: json path %s used twice", d->name, d->json);
    }
    for (int s = 0; s < METRICS_SLOTS; s++)
        cr_expect_eq(used[s], 1, "slot %d is used by %d rows (enum and table disagree)", s,
                     used[s]);
}

static char *read_doc(const char *name)
{
    char path[256];
    const char *prefixes[] = {"", "../", "../../"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%sdocs/%s", prefixes[i], name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        struct wire_buf b = {0};
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            wire_buf_append(&b, chunk, n);
        fclose(f);
        wire_buf_append(&b, "", 1);
        return (char *)b.data;
    }
    return NULL;
}

Test(metrics, operations_doc_lists_exactly_the_tables_metrics)
{
    char *doc = read_doc("operations.md");
    cr_assert_not_null(doc, "docs/operations.md not found");
    struct wire_buf md = {0};
    cr_assert_eq(metrics_render_md(&metrics_table, &md), 0);
    wire_buf_append(&md, "", 1);
    cr_expect_not_null(strstr(doc, (char *)md.data),
                       "docs/operations.md §GET /metrics must hold this table verbatim:\n%s",
                       (char *)md.data);
    wire_buf_free(&md);
    free(doc);
}
