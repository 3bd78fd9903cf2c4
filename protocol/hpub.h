/* hpub: the bodies of the HTTP publish endpoint (docs/protocol.md §HTTP publish). A request body
 * is one JSON object {"topics":[str..],"data"?:any,"origin"?:str,"skip_origin"?:bool}, decoded
 * into the same struct pub_msg as a TCP publish frame (type PUB_PUBLISH, id 0, "data" converted
 * to msgpack), under the same limits; an answer is {"seqs":[int..]} or
 * {"error":{"code":int,"name":str,"msg":str}} with the TCP protocol's codes, sent with the HTTP
 * status hpub_status gives for its code. Pure functions over memory, as pub.c and sub.c: the
 * HTTP framing itself is the transport's (broker/net/http.c). */
#ifndef NUDGE_HPUB_H
#define NUDGE_HPUB_H

#include "pub.h"

/* Decode a request body into *out (which it overwrites): one JSON object, valid UTF-8, at most
 * WIRE_FRAME_MAX bytes (the transport bounds it tighter). Not JSON or not an object:
 * WIRE_EMALFORMED; "topics" missing, empty, not an array of strings, or another field of the
 * wrong type: WIRE_EFIELD; more topics than lim->max_topics: WIRE_ETOOMANY; data over
 * lim->max_data once in msgpack: WIRE_EDATA. Unknown keys are ignored. Topic names are not
 * validated here (the engine does, as for TCP). On success the strings and data point into
 * storage owned by out until hpub_msg_clear; on error out holds nothing to clear. Returns 0 or
 * a negative wire_err. */
int hpub_decode(const uint8_t *body, size_t len, const struct wire_limits *lim,
                struct pub_msg *out);
/* Release what hpub_decode kept (not pub_msg_clear: the storage differs). Safe on a zeroed or
 * cleared message. */
void hpub_msg_clear(struct pub_msg *m);

/* Answers, appended to out (no NUL): {"seqs":[..]} in topic order, or an error object with code,
 * its wire_code_name and msg. Return 0 or WIRE_ENOMEM. */
int hpub_encode_ack(struct wire_buf *out, const uint64_t *seqs, uint32_t nseqs);
int hpub_encode_error(struct wire_buf *out, int32_t code, const char *msg);

/* The HTTP status of an answer with wire code `code` (0 = an ack: 200). */
int hpub_status(int32_t code);
/* The reason phrase of an HTTP status this endpoint sends ("Not Found"); "Error" for others.
 * Static storage. */
const char *hpub_reason(int status);

#endif
