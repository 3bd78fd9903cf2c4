/* docs/protocol.md is normative and its examples are machine-readable: this file reads the doc at
 * test time, decodes every example, checks key fields of a few, and checks that re-encoding each
 * decoded message gives back the example's exact bytes. It also checks the doc's limits and
 * error-code tables against the code. Run from the project root (or one level below it). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pub.h"
#include "sub.h"

#define MAX_EXAMPLES 128

struct example {
    char proto[8]; /* "pub" or "sub" */
    char fmt[8];   /* "json" or "hex" */
    char name[64];
    char *text;     /* the fenced block's content, without the final newline */
    uint8_t *bytes; /* json: the text; hex: the decoded bytes */
    size_t len;
};

static char *doc;
static struct example ex[MAX_EXAMPLES];
static size_t nex;

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct wire_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        wire_buf_append(&b, chunk, n);
    fclose(f);
    wire_buf_append(&b, "", 1);
    return (char *)b.data;
}

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    unsigned v;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\n') continue;
        cr_assert(sscanf(s, "%2x", &v) == 1, "bad hex near '%.10s'", s);
        out[n++] = (uint8_t)v;
        s++;
    }
    return n;
}

static void load(void)
{
    static const char *paths[] = {"docs/protocol.md", "../docs/protocol.md",
                                  "../../docs/protocol.md"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0] && !doc; i++)
        doc = read_file(paths[i]);
    cr_assert_not_null(doc, "docs/protocol.md not found (run the tests from the project root)");

    /* A marker starts a line; mentions of the syntax inside prose (in backticks) do not. */
    const char *marker = "<!-- example: ";
    for (char *p = strstr(doc, marker); p; p = strstr(p + 1, marker)) {
        if (p > doc && p[-1] != '\n') continue;
        cr_assert_lt(nex, MAX_EXAMPLES);
        struct example *e = &ex[nex];
        cr_assert_eq(sscanf(p + strlen(marker), "%7s %7s %63s", e->proto, e->fmt, e->name), 3,
                     "bad example marker near '%.40s'", p);
        char *open = strstr(p, "\n```");
        cr_assert_not_null(open);
        char *body = strchr(open + 1, '\n');
        cr_assert_not_null(body);
        body++;
        char *close = strstr(body, "\n```");
        cr_assert_not_null(close, "unterminated block for %s", e->name);
        e->text = strndup(body, (size_t)(close - body));
        if (strcmp(e->fmt, "hex") == 0) {
            e->bytes = malloc(strlen(e->text) / 2 + 1);
            e->len = unhex(e->text, e->bytes);
        } else {
            cr_assert_str_eq(e->fmt, "json", "format of %s", e->name);
            e->bytes = (uint8_t *)strdup(e->text);
            e->len = strlen(e->text);
        }
        nex++;
    }
}

static void unload(void)
{
    for (size_t i = 0; i < nex; i++) {
        free(ex[i].text);
        free(ex[i].bytes);
    }
    free(doc);
}

TestSuite(spec, .init = load, .fini = unload);

static const struct example *find(const char *proto, const char *fmt, const char *name)
{
    for (size_t i = 0; i < nex; i++)
        if (!strcmp(ex[i].proto, proto) && !strcmp(ex[i].fmt, fmt) && !strcmp(ex[i].name, name))
            return &ex[i];
    return NULL;
}

static const struct example *need(const char *proto, const char *fmt, const char *name)
{
    const struct example *e = find(proto, fmt, name);
    cr_assert_not_null(e, "docs/protocol.md has no '%s %s %s' example", proto, fmt, name);
    return e;
}

static void same_bytes(const struct wire_buf *got, const struct example *e)
{
    char shown[512] = "";
    size_t k = 0;
    for (size_t i = 0; i < got->len && k + 4 < sizeof shown; i++) {
        if (strcmp(e->fmt, "hex") == 0)
            k += (size_t)snprintf(shown + k, sizeof shown - k, "%02x ", got->data[i]);
        else
            shown[k++] = (char)got->data[i];
    }
    shown[k] = 0;
    cr_assert(got->len == e->len && memcmp(got->data, e->bytes, e->len) == 0,
              "%s %s %s: re-encoding differs (%zu bytes, example %zu)\n  got: %s", e->proto, e->fmt,
              e->name, got->len, e->len, shown);
}

static int is(struct wire_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* ---- re-encoding decoded messages ---- */

static void pub_reencode(const struct pub_msg *m, struct wire_buf *out)
{
    cr_assert_null(m->auth, "auth cannot be re-encoded");
    cr_assert_eq(pub_encode_msg(out, m), 0);
}

static void sub_reencode(enum sub_fmt f, const struct sub_msg *m, struct wire_buf *out)
{
    cr_assert_eq(sub_encode_msg(f, out, m), 0);
}

/* Decode a pub hex example (a whole frame) into *m. */
static void pub_dec(const struct example *e, struct pub_msg *m)
{
    const uint8_t *body;
    uint32_t n;
    size_t used;
    cr_assert_eq(pub_frame_next(e->bytes, e->len, WIRE_FRAME_MAX, &body, &n, &used), 0,
                 "pub hex %s: not one frame", e->name);
    cr_assert_eq(used, e->len, "pub hex %s: bytes after the frame", e->name);
    cr_assert_eq(pub_decode(body, n, NULL, m), 0, "pub hex %s does not decode", e->name);
}

static void sub_dec(const struct example *e, struct sub_msg *m)
{
    enum sub_fmt f = strcmp(e->fmt, "hex") == 0 ? SUB_MSGPACK : SUB_JSON;
    int rc = sub_decode(f, e->bytes, e->len, NULL, m);
    cr_assert_eq(rc, 0, "sub %s %s does not decode (%d)", e->fmt, e->name, rc);
}

/* ---- the tests ---- */

Test(spec, finds_examples_in_pairs_of_json_and_hex)
{
    cr_assert_geq(nex, 40, "only %zu examples found", nex);
    for (size_t i = 0; i < nex; i++) {
        const char *twin = strcmp(ex[i].fmt, "json") == 0 ? "hex" : "json";
        cr_assert_not_null(find(ex[i].proto, twin, ex[i].name), "%s %s %s has no %s twin",
                           ex[i].proto, ex[i].fmt, ex[i].name, twin);
        cr_assert(!strcmp(ex[i].proto, "pub") || !strcmp(ex[i].proto, "sub"));
    }
}

Test(spec, has_an_example_of_every_message_type)
{
    int pub_seen[PUB_PONG + 1] = {0}, sub_seen[SUB_REFRESHED + 1] = {0};
    for (size_t i = 0; i < nex; i++) {
        if (strcmp(ex[i].fmt, "hex") != 0) continue;
        if (!strcmp(ex[i].proto, "pub")) {
            struct pub_msg *m = calloc(1, sizeof *m);
            pub_dec(&ex[i], m);
            pub_seen[m->type] = 1;
            pub_msg_clear(m);
            free(m);
        } else {
            struct sub_msg *m = calloc(1, sizeof *m);
            sub_dec(&ex[i], m);
            sub_seen[m->type] = 1;
            sub_msg_clear(m);
            free(m);
        }
    }
    for (int t = PUB_HELLO; t <= PUB_PONG; t++)
        cr_assert(pub_seen[t], "no publisher example of type %d", t);
    for (int t = SUB_HELLO; t <= SUB_REFRESHED; t++)
        cr_assert(sub_seen[t], "no subscriber example of type %d", t);
}

Test(spec, pub_hex_examples_re_encode_byte_for_byte)
{
    for (size_t i = 0; i < nex; i++) {
        if (strcmp(ex[i].proto, "pub") || strcmp(ex[i].fmt, "hex")) continue;
        struct pub_msg *m = calloc(1, sizeof *m);
        struct wire_buf out = {0};
        pub_dec(&ex[i], m);
        pub_reencode(m, &out);
        same_bytes(&out, &ex[i]);
        pub_msg_clear(m);
        free(m);
        wire_buf_free(&out);
    }
}

Test(spec, pub_json_examples_are_the_map_their_hex_twin_carries)
{
    for (size_t i = 0; i < nex; i++) {
        if (strcmp(ex[i].proto, "pub") || strcmp(ex[i].fmt, "json")) continue;
        const struct example *h = need("pub", "hex", ex[i].name);
        struct wire_buf out = {0};
        wire_buf_append(&out, "\0\0\0\0", 4);
        cr_assert_eq(wire_json_to_data(ex[i].text, ex[i].len, &out), 0, "pub json %s", ex[i].name);
        size_t n = out.len - 4;
        out.data[0] = (uint8_t)(n >> 24);
        out.data[1] = (uint8_t)(n >> 16);
        out.data[2] = (uint8_t)(n >> 8);
        out.data[3] = (uint8_t)n;
        same_bytes(&out, h);
        wire_buf_free(&out);
    }
}

Test(spec, sub_examples_re_encode_byte_for_byte_in_their_own_format)
{
    for (size_t i = 0; i < nex; i++) {
        if (strcmp(ex[i].proto, "sub")) continue;
        enum sub_fmt f = strcmp(ex[i].fmt, "hex") == 0 ? SUB_MSGPACK : SUB_JSON;
        struct sub_msg *m = calloc(1, sizeof *m);
        struct wire_buf out = {0};
        sub_dec(&ex[i], m);
        sub_reencode(f, m, &out);
        same_bytes(&out, &ex[i]);
        sub_msg_clear(m);
        free(m);
        wire_buf_free(&out);
    }
}

Test(spec, sub_json_examples_re_encode_as_their_hex_twin_and_back)
{
    for (size_t i = 0; i < nex; i++) {
        if (strcmp(ex[i].proto, "sub") || strcmp(ex[i].fmt, "json")) continue;
        const struct example *h = need("sub", "hex", ex[i].name);
        struct sub_msg *m = calloc(1, sizeof *m);
        struct wire_buf out = {0};
        sub_dec(&ex[i], m);
        sub_reencode(SUB_MSGPACK, m, &out);
        same_bytes(&out, h);
        sub_msg_clear(m);
        wire_buf_reset(&out);
        sub_dec(h, m);
        sub_reencode(SUB_JSON, m, &out);
        same_bytes(&out, &ex[i]);
        sub_msg_clear(m);
        free(m);
        wire_buf_free(&out);
    }
}

Test(spec, publish_example_decodes_to_its_fields)
{
    struct pub_msg *m = calloc(1, sizeof *m);
    pub_dec(need("pub", "hex", "publish"), m);
    cr_assert_eq(m->type, PUB_PUBLISH);
    cr_assert_eq(m->id, 1);
    cr_assert_eq(m->ntopics, 2);
    cr_assert(is(m->topics[0], "project:17") && is(m->topics[1], "user:42"));
    struct wire_buf j = {0};
    cr_assert_eq(wire_data_to_json(m->data, m->data_len, &j), 0);
    const char *want = "{\"by\":\"zo\xc3\xab\",\"rev\":12,\"score\":0.5}";
    cr_assert(j.len == strlen(want) && memcmp(j.data, want, j.len) == 0);
    cr_assert_eq(m->origin.len, 0);
    wire_buf_free(&j);
    pub_dec(need("pub", "hex", "publish-origin"), m);
    cr_assert(is(m->origin, "1f"));
    cr_assert_null(m->data);
    pub_dec(need("pub", "hex", "ack"), m);
    cr_assert_eq(m->type, PUB_ACK);
    cr_assert_eq(m->nseqs, 2);
    pub_dec(need("pub", "hex", "error-noid"), m);
    cr_assert_eq(m->id, 0);
    cr_assert_eq(m->code, WIRE_C_TOO_LARGE);
    free(m);
}

Test(spec, welcome_example_carries_the_default_limits)
{
    struct pub_msg *m = calloc(1, sizeof *m);
    struct wire_limits l;
    wire_limits_default(&l);
    pub_dec(need("pub", "hex", "welcome"), m);
    cr_assert_eq(m->type, PUB_WELCOME);
    cr_assert_eq(m->version, WIRE_VERSION);
    cr_assert_eq(m->epoch.len, 16, "epochs are 16 hex chars");
    cr_assert_eq(m->max_frame, l.max_frame);
    cr_assert_eq(m->max_topics, l.max_topics);
    cr_assert_eq(m->max_data, l.max_data);
    cr_assert_eq(m->max_topic, l.max_topic);
    free(m);
}

Test(spec, subscriber_examples_decode_to_their_fields)
{
    struct sub_msg *m = calloc(1, sizeof *m);
    sub_dec(need("sub", "json", "subscribe-resume"), m);
    cr_assert_eq(m->type, SUB_SUBSCRIBE);
    cr_assert_eq(m->id, 8);
    cr_assert_eq(m->ntopics, 2);
    cr_assert(m->has_seq[0] && !m->has_seq[1]);
    cr_assert_eq(m->seqs[0], 18);
    cr_assert(is(m->epoch, "5f0c2a9e7b1d4c38"));
    sub_msg_clear(m);

    sub_dec(need("sub", "hex", "hint"), m);
    cr_assert_eq(m->type, SUB_HINT);
    cr_assert(is(m->topic, "project:17"));
    cr_assert_eq(m->seq, 19);
    cr_assert_eq(m->count, 1);
    cr_assert_eq(m->own, 0);
    cr_assert_not_null(m->data);
    sub_msg_clear(m);

    sub_dec(need("sub", "json", "hint-coalesced-own"), m);
    cr_assert_eq(m->count, 3);
    cr_assert_eq(m->own, 1);
    cr_assert_null(m->data);
    sub_msg_clear(m);

    sub_dec(need("sub", "json", "welcome"), m);
    cr_assert_eq(m->type, SUB_WELCOME);
    cr_assert(is(m->conn, "1f"));
    sub_msg_clear(m);

    sub_dec(need("sub", "json", "error-noid"), m);
    cr_assert(!m->has_id);
    cr_assert_eq(m->code, WIRE_C_HELLO_REQUIRED);
    sub_msg_clear(m);
    free(m);
}

Test(spec, hint_data_is_the_publish_data_in_both_formats)
{
    struct pub_msg *p = calloc(1, sizeof *p);
    struct sub_msg *s = calloc(1, sizeof *s);
    pub_dec(need("pub", "hex", "publish"), p);
    sub_dec(need("sub", "hex", "hint"), s);
    cr_assert(s->data_len == p->data_len && memcmp(s->data, p->data, p->data_len) == 0);
    sub_msg_clear(s);
    sub_dec(need("sub", "json", "hint"), s);
    cr_assert(s->data_len == p->data_len && memcmp(s->data, p->data, p->data_len) == 0);
    sub_msg_clear(s);
    free(s);
    free(p);
}

Test(spec, limits_table_matches_the_defaults)
{
    struct wire_limits l;
    wire_limits_default(&l);
    char row[128];
    snprintf(row, sizeof row, "| `max_frame` | `--max-frame` | %u |", l.max_frame);
    cr_assert_not_null(strstr(doc, row), "missing: %s", row);
    snprintf(row, sizeof row, "| `max_topic` | `--max-topic` | %u |", l.max_topic);
    cr_assert_not_null(strstr(doc, row), "missing: %s", row);
    snprintf(row, sizeof row, "| `max_data` | `--max-data` | %u |", l.max_data);
    cr_assert_not_null(strstr(doc, row), "missing: %s", row);
    snprintf(row, sizeof row, "| `max_topics` | `--max-topics` | %u |", l.max_topics);
    cr_assert_not_null(strstr(doc, row), "missing: %s", row);
    cr_assert_not_null(strstr(doc, "| `max_subs` | `--max-subs` | 1024 |"));
    cr_assert_not_null(strstr(doc, "| `max_queue` | `--max-queue` | 1024 |"));
}

Test(spec, error_table_matches_the_code_names)
{
    for (int c = WIRE_C_BAD_FRAME; c <= WIRE_C_OVER_BUDGET; c++) {
        char row[64];
        snprintf(row, sizeof row, "| %d | `%s` |", c, wire_code_name(c));
        cr_assert_not_null(strstr(doc, row), "missing: %s", row);
    }
}
