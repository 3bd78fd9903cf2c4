/* hpub: see hpub.h. The body is parsed by jansson (as the subscribers' JSON messages are,
 * sub.c), then read field by field in a fixed order so the first error for a body is
 * deterministic: topics, data, skip_origin, origin. Topic strings point into the parsed tree,
 * and "data" is packed to msgpack (wire__json_pack) and checked with wire_data_check, so the
 * engine sees exactly what a TCP publish would give it. */
#include "hpub.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct hpub_priv {
    json_t *root;
    struct wire_buf data;
};

void hpub_msg_clear(struct pub_msg *m)
{
    struct hpub_priv *pv = m->priv;
    if (!pv) return;
    json_decref(pv->root);
    wire_buf_free(&pv->data);
    free(pv);
    m->priv = NULL;
}

static int str_of(const json_t *v, struct wire_str *out)
{
    if (!json_is_string(v) || json_string_length(v) > UINT32_MAX) return WIRE_EFIELD;
    out->p = json_string_value(v);
    out->len = (uint32_t)json_string_length(v);
    return WIRE_OK;
}

static int fields(json_t *root, const struct wire_limits *lim, struct hpub_priv *pv,
                  struct pub_msg *m)
{
    int rc;
    json_t *topics = json_object_get(root, "topics");
    if (!json_is_array(topics) || json_array_size(topics) == 0) return WIRE_EFIELD;
    size_t n = json_array_size(topics);
    if (n > lim->max_topics || n > WIRE_TOPICS_MAX) return WIRE_ETOOMANY;
    m->ntopics = (uint32_t)n;
    for (uint32_t i = 0; i < m->ntopics; i++)
        if ((rc = str_of(json_array_get(topics, i), &m->topics[i]))) return rc;
    json_t *data = json_object_get(root, "data");
    if (data) {
        if ((rc = wire__json_pack(data, &pv->data))) return rc;
        m->data = pv->data.data;
        m->data_len = pv->data.len;
        if ((rc = wire_data_check(m->data, m->data_len, lim)))
            return rc == WIRE_EMALFORMED ? WIRE_EDATA : rc;
    }
    json_t *skip = json_object_get(root, "skip_origin");
    if (skip) {
        if (!json_is_boolean(skip)) return WIRE_EFIELD;
        m->skip_origin = json_is_true(skip);
    }
    json_t *origin = json_object_get(root, "origin");
    if (origin && (rc = str_of(origin, &m->origin))) return rc;
    return WIRE_OK;
}

int hpub_decode(const uint8_t *body, size_t len, const struct wire_limits *lim, struct pub_msg *out)
{
    struct wire_limits def;
    if (!lim) {
        wire_limits_default(&def);
        lim = &def;
    }
    memset(out, 0, sizeof(*out));
    if (len > WIRE_FRAME_MAX) return WIRE_ETOOBIG;
    if (!wire_utf8_valid((const char *)body, len)) return WIRE_EMALFORMED;
    json_error_t err;
    json_t *root = json_loadb((const char *)body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!root) {
        switch (json_error_code(&err)) {
        case json_error_numeric_overflow: /* an integer past int64 in "data" */
            return WIRE_EDATA;
        case json_error_out_of_memory:
            return WIRE_ENOMEM;
        default:
            return WIRE_EMALFORMED;
        }
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return WIRE_EMALFORMED;
    }
    struct hpub_priv *pv = calloc(1, sizeof(*pv));
    if (!pv) {
        json_decref(root);
        return WIRE_ENOMEM;
    }
    pv->root = root;
    out->priv = pv;
    out->type = PUB_PUBLISH;
    int rc = fields(root, lim, pv, out);
    if (rc) {
        hpub_msg_clear(out);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int hpub_encode_ack(struct wire_buf *out, const uint64_t *seqs, uint32_t nseqs)
{
    size_t mark = out->len;
    int rc = wire_buf_append(out, "{\"seqs\":[", 9);
    for (uint32_t i = 0; i < nseqs && !rc; i++) {
        if (i) rc = wire_buf_append(out, ",", 1);
        if (!rc) rc = wire__json_uint(out, seqs[i]);
    }
    if (!rc) rc = wire_buf_append(out, "]}", 2);
    if (rc) out->len = mark;
    return rc ? WIRE_ENOMEM : WIRE_OK;
}

int hpub_encode_error(struct wire_buf *out, int32_t code, const char *msg)
{
    size_t mark = out->len;
    const char *name = wire_code_name(code);
    int rc = wire_buf_append(out, "{\"error\":{\"code\":", 17);
    if (!rc) rc = wire__json_uint(out, code < 0 ? 0 : (uint64_t)code);
    if (!rc) rc = wire_buf_append(out, ",\"name\":", 8);
    if (!rc) rc = wire__json_str(out, name, strlen(name));
    if (!rc) rc = wire_buf_append(out, ",\"msg\":", 7);
    if (!rc) rc = wire__json_str(out, msg ? msg : "", msg ? strlen(msg) : 0);
    if (!rc) rc = wire_buf_append(out, "}}", 2);
    if (rc) out->len = mark;
    return rc ? WIRE_ENOMEM : WIRE_OK;
}

int hpub_status(int32_t code)
{
    switch (code) {
    case 0:
        return 200;
    case WIRE_C_TOO_LARGE:
        return 413;
    case WIRE_C_UNAUTHORIZED:
        return 401;
    case WIRE_C_FORBIDDEN:
        return 403;
    case WIRE_C_RATE_LIMITED:
        return 429;
    case WIRE_C_STORAGE:
    case WIRE_C_LIMIT:
        return 503;
    case WIRE_C_INTERNAL:
        return 500;
    default: /* bad_frame, bad_field, bad_topic, bad_data, too_many_topics, ... */
        return 400;
    }
}

const char *hpub_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}
