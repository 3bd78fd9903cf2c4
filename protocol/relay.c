/* relay: see relay.h. The script does in Redis what the in-process store does in memory (store.h):
 * the topic's record is created at the floor, its seq and the global position are incremented,
 * the floor follows the highest seq, the message goes into the topic's stream and out on the
 * channel, all in one atomic call. It checks the epoch first: when Redis lost its data (a restart
 * without persistence) the key is gone, and no node may go on numbering in an epoch whose
 * positions it cannot vouch for; the node then starts or adopts a new epoch, and its subscribers
 * are reset.
 *
 * The decoder uses protocol/'s own bounds-checked reader (wire.h): a message comes from Redis, but
 * anything that can write to Redis can write to the channel, so it is untrusted input. */
#include "relay.h"

#include <string.h>

/* Lua numbers are doubles: seqs and positions stay exact up to 2^53. string.format('%d') keeps
 * a large seq from turning into "1e+15" in the stream ID. */
const char relay_publish_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e ~= ARGV[1] then return redis.error_reply('NUDGE_EPOCH ' .. (e or '')) end\n"
    "local b = redis.call('HGET', KEYS[4], 'b')\n"
    "if not b then\n"
    "  b = redis.call('GET', KEYS[3]) or '0'\n"
    "  redis.call('HSET', KEYS[4], 'b', b, 's', b)\n"
    "  redis.call('DEL', KEYS[5])\n"
    "end\n"
    "local s = redis.call('HINCRBY', KEYS[4], 's', 1)\n"
    "local g = redis.call('INCR', KEYS[2])\n"
    "if s > tonumber(redis.call('GET', KEYS[3]) or '0') then redis.call('SET', KEYS[3], s) end\n"
    "local t = redis.call('TIME')\n"
    "local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local m = cmsgpack.pack({1, ARGV[2], e, s, g, ms, ARGV[3], ARGV[4]})\n"
    "local n = tonumber(ARGV[5])\n"
    "if n > 0 then\n"
    "  redis.call('XADD', KEYS[5], 'MAXLEN', n, string.format('%d-0', s), 'm', m)\n"
    "  redis.call('EXPIRE', KEYS[5], ARGV[6])\n"
    "end\n"
    "redis.call('HSET', KEYS[4], 'g', g)\n"
    "redis.call('EXPIRE', KEYS[4], ARGV[7])\n"
    "redis.call('PUBLISH', ARGV[8], m)\n"
    "return {s, g, ms, tonumber(b)}\n";

/* XRANGE with an exclusive start ("(") needs Redis 6.2; Debian 12 has 7.0. */
const char relay_range_lua[] =
    "local e = redis.call('GET', KEYS[1]) or ''\n"
    "local r = redis.call('HMGET', KEYS[2], 'b', 's', 'g')\n"
    "if not r[2] then return {e, 0, 0, 0, 0, {}} end\n"
    "local x = redis.call('XRANGE', KEYS[3], string.format('(%d-0', tonumber(ARGV[1])), '+',\n"
    "                     'COUNT', ARGV[2])\n"
    "local m = {}\n"
    "for i, v in ipairs(x) do m[i] = v[2][2] end\n"
    "return {e, 1, tonumber(r[1]), tonumber(r[2]), tonumber(r[3] or '0'), m}\n";

const char relay_epoch_lua[] = "redis.call('SET', KEYS[1], ARGV[1], 'NX')\n"
                               "return redis.call('GET', KEYS[1])\n";

const char relay_retire_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) end\n"
    "return redis.call('GET', KEYS[1])\n";

const char relay_state_lua[] = "return {redis.call('GET', KEYS[1]) or '',\n"
                               "        tonumber(redis.call('GET', KEYS[2]) or '0'),\n"
                               "        tonumber(redis.call('GET', KEYS[3]) or '0')}\n";

int relay_key(char *out, size_t cap, const char *prefix, const char *kind, const char *name,
              size_t len)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl == 0 || pl > RELAY_PREFIX_MAX || strpbrk(prefix, "{}")) return WIRE_EFIELD;
    int topic = !strcmp(kind, "m") || !strcmp(kind, "x");
    if (!topic && strcmp(kind, "epoch") && strcmp(kind, "gpos") && strcmp(kind, "floor") &&
        strcmp(kind, "hints"))
        return WIRE_EFIELD;
    size_t kl = strlen(kind);
    size_t need = pl + 4 /* "{n}:" */ + kl + (topic ? 1 + len : 0);
    if (need + 1 > cap || need > INT32_MAX) return WIRE_ETOOBIG;
    char *o = out;
    memcpy(o, prefix, pl), o += pl;
    memcpy(o, "{n}:", 4), o += 4;
    memcpy(o, kind, kl), o += kl;
    if (topic) {
        *o++ = ':';
        if (len) memcpy(o, name, len), o += len;
    }
    *o = '\0';
    return (int)need;
}

static int rd_bytes(struct wire__rd *r, int bin_ok, const uint8_t **s, uint32_t *n)
{
    struct wire__val v;
    if (wire__rd_val(r, &v) < 0) return WIRE_EMALFORMED;
    if (v.kind != WIRE__STR && !(bin_ok && v.kind == WIRE__BIN)) return WIRE_EFIELD;
    *s = v.s;
    *n = v.n;
    return WIRE_OK;
}

static int rd_u64(struct wire__rd *r, uint64_t *out)
{
    struct wire__val v;
    if (wire__rd_val(r, &v) < 0) return WIRE_EMALFORMED;
    if (v.kind != WIRE__UINT) return WIRE_EFIELD;
    *out = v.u;
    return WIRE_OK;
}

int relay_decode(const uint8_t *p, size_t len, struct relay_msg *m)
{
    struct wire__rd r = {p, len, 0};
    struct wire__val v;
    memset(m, 0, sizeof(*m));
    if (wire__rd_val(&r, &v) < 0) return WIRE_EMALFORMED;
    if (v.kind != WIRE__ARRAY || v.u != 8) return WIRE_EMALFORMED;
    uint64_t version;
    int rc;
    if ((rc = rd_u64(&r, &version)) < 0) return rc;
    if (version != RELAY_VERSION) return WIRE_EFIELD;
    const uint8_t *s;
    uint32_t n;
    if ((rc = rd_bytes(&r, 0, &s, &n)) < 0) return rc;
    m->topic = (const char *)s, m->topic_len = n;
    if ((rc = rd_bytes(&r, 0, &s, &n)) < 0) return rc;
    if (n != 16) return WIRE_EFIELD;
    for (uint32_t i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return WIRE_EFIELD;
    memcpy(m->epoch, s, 16);
    m->epoch[16] = '\0';
    if ((rc = rd_u64(&r, &m->seq)) < 0 || (rc = rd_u64(&r, &m->gpos)) < 0 ||
        (rc = rd_u64(&r, &m->time_ms)) < 0)
        return rc;
    if (m->seq == 0 || m->gpos == 0) return WIRE_EFIELD;
    if ((rc = rd_bytes(&r, 1, &s, &n)) < 0) return rc;
    m->data = n ? s : NULL, m->data_len = n;
    if ((rc = rd_bytes(&r, 0, &s, &n)) < 0) return rc;
    if (n > RELAY_ORIGIN_MAX) return WIRE_EFIELD;
    m->origin = (const char *)s, m->origin_len = n;
    if (r.off != len) return WIRE_EMALFORMED;
    /* The topic and data were checked by the publishing node; a node checks again what it is
     * about to fan out, with the hard ceilings (nodes may run with different limits). */
    struct wire_limits lim;
    wire_limits_default(&lim);
    lim.max_topic = WIRE_TOPIC_LEN_MAX;
    lim.max_data = WIRE_DATA_MAX;
    if (wire_topic_check(m->topic, m->topic_len, &lim) < 0) return WIRE_ETOPIC;
    if (m->data && wire_data_check(m->data, m->data_len, &lim) < 0) return WIRE_EDATA;
    return WIRE_OK;
}

static const char hex[] = "0123456789abcdef";

int relay_origin(char *out, size_t cap, uint64_t node, uint64_t req, int skip, const char *conn,
                 size_t conn_len)
{
    if (conn_len > RELAY_CONN_MAX || cap < RELAY_ORIGIN_HEAD + conn_len + 1) return WIRE_ETOOBIG;
    for (int i = 0; i < 16; i++) {
        out[i] = hex[(node >> (60 - 4 * i)) & 15];
        out[16 + i] = hex[(req >> (60 - 4 * i)) & 15];
    }
    out[32] = skip ? '1' : '0';
    if (conn_len) memcpy(out + RELAY_ORIGIN_HEAD, conn, conn_len);
    out[RELAY_ORIGIN_HEAD + conn_len] = '\0';
    return (int)(RELAY_ORIGIN_HEAD + conn_len);
}

static int rd_hex16(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return WIRE_EFIELD;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return WIRE_OK;
}

int relay_origin_parse(const char *p, size_t n, uint64_t *node, uint64_t *req, int *skip,
                       const char **conn, size_t *conn_len)
{
    if (n < RELAY_ORIGIN_HEAD || n > RELAY_ORIGIN_MAX) return WIRE_EFIELD;
    if (rd_hex16(p, node) < 0 || rd_hex16(p + 16, req) < 0) return WIRE_EFIELD;
    if (p[32] != '0' && p[32] != '1') return WIRE_EFIELD;
    *skip = p[32] == '1';
    *conn = p + RELAY_ORIGIN_HEAD;
    *conn_len = n - RELAY_ORIGIN_HEAD;
    return WIRE_OK;
}
