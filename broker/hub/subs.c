/* subs: subscriptions are intrusive doubly linked nodes shared by two lists — the topic's and the
 * connection's — so unsubscribe and connection close are O(1) per subscription. */
#include "subs.h"

#include <stdlib.h>
#include <string.h>

struct htopic *htopic_find(struct table *t, const char *name, size_t len, uint64_t hash)
{
    return (struct htopic *)table_find(t, name, len, hash);
}

struct htopic *htopic_new(struct table *t, const char *name, size_t len, uint64_t hash,
                          struct etopic *et)
{
    struct htopic *ht = calloc(1, sizeof(*ht) + len + 1);
    if (!ht) return NULL;
    memcpy(ht->name, name, len);
    ht->node = (struct tnode){.hash = hash, .name = ht->name, .len = (uint32_t)len};
    ht->et = et;
    table_add(t, &ht->node);
    return ht;
}

void htopic_free(struct table *t, struct htopic *ht)
{
    table_remove(t, &ht->node);
    free(ht);
}

struct sub *sub_add(struct htopic *ht, struct conn *conn, struct sub **head)
{
    struct sub *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->topic = ht;
    s->conn = conn;
    s->tnext = ht->subs;
    if (ht->subs) ht->subs->tprev = s;
    ht->subs = s;
    ht->nsubs++;
    s->cnext = *head;
    if (*head) (*head)->cprev = s;
    *head = s;
    return s;
}

struct sub *sub_add_pattern(const char *pat, size_t len, struct conn *conn, struct sub **head)
{
    struct sub *s = calloc(1, sizeof(*s));
    char *p = malloc(len + 1);
    if (!s || !p) {
        free(s);
        free(p);
        return NULL;
    }
    memcpy(p, pat, len);
    p[len] = '\0';
    s->pat = p;
    s->patlen = (uint32_t)len;
    s->conn = conn;
    s->cnext = *head;
    if (*head) (*head)->cprev = s;
    *head = s;
    return s;
}

struct sub *sub_pattern(struct sub *head, const char *pat, size_t len)
{
    for (struct sub *s = head; s; s = s->cnext)
        if (s->pat && s->patlen == len && memcmp(s->pat, pat, len) == 0) return s;
    return NULL;
}

void sub_remove(struct sub *s, struct sub **head)
{
    struct htopic *ht = s->topic;
    if (ht) {
        if (s->tprev)
            s->tprev->tnext = s->tnext;
        else
            ht->subs = s->tnext;
        if (s->tnext) s->tnext->tprev = s->tprev;
        ht->nsubs--;
    }
    if (s->cprev)
        s->cprev->cnext = s->cnext;
    else
        *head = s->cnext;
    if (s->cnext) s->cnext->cprev = s->cprev;
    free(s->pat);
    free(s);
}

struct sub *sub_of(struct sub *head, const struct htopic *ht)
{
    /* Linear in the connection's subscriptions (bounded by --max-subs); a per-connection index
     * can replace it if profiles ever show it. */
    for (struct sub *s = head; s; s = s->cnext)
        if (s->topic == ht) return s;
    return NULL;
}
