/* grant: a token holder's grant from the real auth code, for unit tests (test_auth, test_mem). */
#ifndef NUDGE_TEST_GRANT_H
#define NUDGE_TEST_GRANT_H

#include "auth.h"

/* The grant auth_sub_hello gives a hello whose HS256 token (signed with secret, expiring in 10
 * minutes) has "sub" sub and, unless NULL, the "topics" claim topics (JSON array text). Asserts
 * that the hello is accepted; the grant is the caller's, as auth_sub_hello's. */
struct auth_grant *grant_mint(struct auth *a, const char *secret, const char *sub,
                              const char *topics);

#endif
