/* One version everywhere: nudged, nudge and nudge-bench print protocol/version.h's NUDGE_VERSION
 * with --version (and -V), libnudge's nudge_version() returns it, and a running broker reports
 * it in /stats. The Debian package and nudge.pc take it from the same line (Makefile). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "version.h"

#define RUN_MS 15000

/* Run "<bin dir>/<prog> <flag>" and expect exit 0 and exactly "<prog> NUDGE_VERSION\n". */
static void expect_version_line(const char *prog, const char *flag)
{
    char bin[512], want[128];
    cr_assert_eq(nudge_bin_path(prog, bin, sizeof bin), 0);
    const char *argv[] = {bin, flag, NULL};
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_cmd(argv, NULL, &out, &err, RUN_MS), 0, "%s %s: %s", prog, flag, err);
    snprintf(want, sizeof want, "%s %s\n", prog, NUDGE_VERSION);
    cr_expect_str_eq(out, want, "%s %s printed \"%s\"", prog, flag, out);
    free(out);
    free(err);
}

Test(version, every_binary_prints_the_one_version, .timeout = 60)
{
    static const char *const progs[] = {"nudged", "nudge", "nudge-bench"};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        expect_version_line(progs[i], "--version");
        expect_version_line(progs[i], "-V");
    }
    cr_expect_str_eq(nudge_version(), NUDGE_VERSION);
}

Test(version, a_running_broker_reports_it_in_stats, .timeout = 60)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    const char *v = json_string_value(json_object_get(st, "version"));
    cr_expect(v && strcmp(v, NUDGE_VERSION) == 0, "stats version %s", v ? v : "(none)");
    json_decref(st);
    cr_expect_eq(nudged_stop(&d), 0);
}
