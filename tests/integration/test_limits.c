/* Abuse limits (issue #14 point 8): what one hostile, anonymous client could make the broker
 * spend — memory for subscriptions, replay bytes, matching time, connections, admin slots — is
 * bounded, and each bound, when hit, gives its documented error or close code and a counter.
 * Every test starts the real nudged, measures with bounded loops, and checks that fresh clients
 * are still served. */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "listen.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- exposed listeners --------------------------------------------------------------------- */

Test(listen_loopback, tells_loopback_addresses_from_the_rest)
{
    cr_assert_eq(listen_is_loopback("127.0.0.1:7401"), 1);
    cr_assert_eq(listen_is_loopback("127.3.4.5:0"), 1);
    cr_assert_eq(listen_is_loopback("[::1]:7401"), 1);
    cr_assert_eq(listen_is_loopback("::1"), 1);
    cr_assert_eq(listen_is_loopback("localhost:7401"), 1);
    cr_assert_eq(listen_is_loopback("[::ffff:127.0.0.1]:1"), 1);
    cr_assert_eq(listen_is_loopback("0.0.0.0:7401"), 0);
    cr_assert_eq(listen_is_loopback("[::]:7401"), 0);
    cr_assert_eq(listen_is_loopback("10.1.2.3:7401"), 0);
    cr_assert_eq(listen_is_loopback("[2001:db8::1]:7401"), 0);
    cr_assert_eq(listen_is_loopback("garbage"), 0);
    cr_assert_eq(listen_is_loopback(""), 0);
}

Test(listen_loopback, a_listener_on_every_address_is_announced_loudly_at_start, .timeout = 30)
{
    struct nudged d = {0};
    const char *args[] = {"--admin", "0.0.0.0:0", "--log-level", "error", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    cr_assert(nudged_wait_log(&d, "NOT loopback", 2000), "no warning for an admin port on 0.0.0.0");
    cr_assert_eq(nudged_log_count(&d, "NOT loopback", NULL), 1, "one line per exposed listener");
    cr_assert_eq(nudged_stop(&d), 0);

    struct nudged q = {0};
    cr_assert_eq(nudged_start(&q, NULL), 0);
    sleep_ms(200);
    cr_assert_eq(nudged_log_count(&q, "NOT loopback", NULL), 0, "loopback listeners are quiet");
    cr_assert_eq(nudged_stop(&q), 0);
}
