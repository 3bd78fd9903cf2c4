/* match: wildcard subscriptions. A registry of (pattern, sub) pairs and the question "which subs
 * want this topic?", answered in time proportional to the matching part of the registry, not to
 * its size.
 *
 * Topics are ':'-separated segments; a segment may be empty ("a::b" is "a", "", "b"; the empty
 * string is one empty segment). In a pattern:
 *   "*"  as a whole segment matches exactly one segment, whatever it holds (even nothing);
 *   "**" as the last segment matches one or more remaining segments ("**" alone: every topic);
 *   any other use of '*' ("pro*", "*a", "***", "a:**:b") makes the pattern invalid.
 * Topics are plain bytes: a '*' in a topic has no special meaning (the wire layer refuses it).
 * Part of the broker core: no I/O, no globals, not thread-safe (one registry per worker). */
#ifndef NUDGE_MATCH_H
#define NUDGE_MATCH_H

#include <stddef.h>

struct match;

/* A new, empty registry with its own random hash key. The caller owns it (match_free).
 * NULL on OOM. */
struct match *match_new(void);
/* Free the registry and everything it allocated. Registered subs are the caller's and are not
 * touched. m may be NULL. */
void match_free(struct match *m);

/* Classify s[0..len), a subscription string that passed the ordinary topic checks except for
 * '*'. Returns 1 for a valid pattern (at least one "*" segment or a final "**" segment), 0 for a
 * plain topic (no '*' at all), -1 for an illegal use of '*'. */
int match_kind(const char *s, size_t len);

/* Register sub under the pattern pat[0..len). The registry copies what it needs of pat; sub
 * stays owned by the caller, who must remove it before freeing it. Returns 0; -EINVAL when pat
 * is not a valid pattern (match_kind != 1: plain topics belong in the exact topic table);
 * -EEXIST when sub is already registered under this pattern; -ENOMEM (nothing changed). */
int match_add(struct match *m, const char *pat, size_t len, void *sub);
/* Unregister sub from pat[0..len) and free the trie nodes that no longer lead to a pattern.
 * Returns 0, or -ENOENT when that pair is not registered. */
int match_remove(struct match *m, const char *pat, size_t len, void *sub);

/* Call fn(sub, arg) once per registered (pattern, sub) whose pattern matches topic[0..len): a
 * sub registered under two matching patterns is called twice. Order is unspecified. fn must
 * not add to or remove from m. Cost: the trie nodes on the topic's matching paths plus the
 * calls; independent of the number of registered patterns. */
void match_each(const struct match *m, const char *topic, size_t len,
                void (*fn)(void *sub, void *arg), void *arg);
/* The most memory registering pat[0..len) can take, in bytes, counting the allocator's
 * overhead: a node, its segment and a child table for every segment (as if no other pattern
 * shared its path), plus its sub list entry. What a per-connection budget charges for a pattern:
 * the real cost of a pattern is its segments, not its length ("a:a:...:*" of 254 bytes is 127
 * nodes, ~25 KB). pat must be a valid pattern. */
size_t match_cost(const char *pat, size_t len);
/* Segments of s[0..len) (1 + the number of ':'). */
size_t match_segments(const char *s, size_t len);
/* Registered (pattern, sub) pairs. */
size_t match_count(const struct match *m);

/* One pattern against one topic, no registry. A plain topic as pat (match_kind 0) matches only
 * itself. Returns 1 on a match, 0 on none, -1 when pat is invalid. */
int match_one(const char *pat, size_t plen, const char *topic, size_t tlen);

/* For tests: match_each's walk, returning how many trie nodes it touched (nodes entered plus
 * hash-chain entries compared on the way). match_each is exactly this with the count dropped. */
size_t match__each_visits(const struct match *m, const char *topic, size_t len,
                          void (*fn)(void *sub, void *arg), void *arg);
/* For tests: trie nodes allocated, the root included (1 for an empty registry). */
size_t match__nodes(const struct match *m);

#endif
