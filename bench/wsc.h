/* wsc: the WebSocket client side that the peers' adapters share (mqtt.c, nats.c, sio.c): the
 * upgrade request and its answer, masked client frames, and the read loop over server frames.
 * No I/O: bytes in, bytes out (peer.h's struct pbuf). */
#ifndef WSC_H
#define WSC_H

#include <stddef.h>
#include <stdint.h>

#include "peer.h"

#define WSC_TEXT 0x1
#define WSC_BINARY 0x2

/* Queue an upgrade request for path on host:port, asking for subprotocol proto (NULL: none).
 * 0 or -ENOMEM. */
int wsc_upgrade(struct pbuf *out, const char *host, int port, const char *path, const char *proto);

/* The server's answer to the upgrade at the front of p[0..n): the bytes it takes (> 0) once it
 * is complete and says 101, 0 while incomplete, -EPROTO when refused (printed to stderr with who
 * and idx). */
long wsc_upgraded(const uint8_t *p, size_t n, const char *who, int idx);

/* Queue one client frame (FIN, opcode op) of p[0..n): masked, as RFC 6455 requires of clients,
 * with a zero key, so the payload goes as is (what nudge's own adapter does). 0 or -ENOMEM. */
int wsc_frame(struct pbuf *out, uint8_t op, const void *p, size_t n);
/* The header of such a frame of n payload bytes alone, for a payload queued in pieces after it.
 * 0 or -ENOMEM. */
int wsc_frame_head(struct pbuf *out, uint8_t op, size_t n);

/* What the adapter does with the data it receives: consume complete messages of its protocol
 * from the front of p[0..n) and return how many bytes it used, or a negative errno. */
typedef long (*wsc_parse_fn)(struct peer_conn *c, const uint8_t *p, size_t n,
                             const struct peer_events *ev);

/* A byte stream carried in data frames (MQTT and NATS over WebSocket: a packet may span frames,
 * a frame may hold several, and a frame may be larger than the generator's read buffer). */
struct wsc_stream {
    struct pbuf rest; /* what parse left: an incomplete packet, joined with what follows */
    size_t left;      /* payload bytes of the current data frame not received yet */
};

/* Read the server frames at the front of p[0..n): pings are answered, a close ends the connection
 * (-ECONNRESET), data goes to parse. With a stream (owned by the caller, freed with
 * wsc_stream_free), a data frame's payload goes to parse as it arrives, even before the frame is
 * complete, and what parse leaves waits in stream->rest. Without (NULL), each data frame is one
 * whole message (Engine.IO) that parse must take entirely. Returns the bytes of p used, or a
 * negative errno. */
long wsc_input(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev,
               wsc_parse_fn parse, struct wsc_stream *stream);
void wsc_stream_free(struct wsc_stream *s);

/* The number written in decimal at p[0..n) (digits only, at most 10 of them, at most
 * UINT32_MAX): 0, or -1 when it is not one. */
int wsc_u32(const uint8_t *p, size_t n, uint32_t *v);

#endif
