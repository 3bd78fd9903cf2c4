/* version: the one place nudge's release number is written. nudged, nudge, nudge-bench and
 * libnudge (nudge_version()) print it; the Makefile reads it from this line for the Debian
 * package and nudge.pc, so keep it one `#define` of a quoted string. Distinct from
 * WIRE_VERSION (wire.h), the protocol's number, which changes only with the wire format. */
#ifndef NUDGE_VERSION_H
#define NUDGE_VERSION_H

#define NUDGE_VERSION "0.1.0"

#endif
