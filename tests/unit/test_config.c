/* config: where settings come from (a file, NUDGE_* variables, flags), which wins, and how a
 * bad one is reported (docs/operations.md §Configuration). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[] = "/tmp/nudge-config-XXXXXX";

static void setup(void)
{
    strcpy(dir, "/tmp/nudge-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

/* dir/name with text in it; its path in path. */
static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* config_parse with argv (NULL-terminated, program name first) and envp; the error in err. */
static int parse(struct config *cfg, const char **argv, const char **envp, char *err, size_t cap)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    config_default(cfg);
    return config_parse(cfg, argc, (char **)argv, (char **)envp, stdout, err, cap);
}

Test(config, a_file_the_environment_and_flags_override_each_other_in_that_order)
{
    char path[512], err[1024];
    write_file("n.conf",
               "max-conns 100\n"
               "hello-timeout 200\n"
               "pub-idle 300\n",
               path, sizeof path);
    const char *argv[] = {"nudged", "--config", path, "--pub-idle", "30000", NULL};
    const char *envp[] = {"NUDGE_HELLO_TIMEOUT=2000", "NUDGE_PUB_IDLE=3000", "HOME=/root", NULL};
    struct config cfg;
    cr_assert_eq(parse(&cfg, argv, envp, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.max_conns, 100, "from the file");
    cr_expect_eq(cfg.hello_timeout_ms, 2000, "the environment over the file");
    cr_expect_eq(cfg.pub_idle_ms, 30000, "a flag over the environment and the file");
    cr_expect_eq(cfg.ws_ping, 30, "untouched: the built-in default");
    cr_expect_str_eq(cfg.file, path);
    config_free(&cfg);
}

Test(config, nudge_config_names_the_file_and_a_config_flag_wins_over_it)
{
    char a[512], b[512], err[1024], env[600];
    write_file("a.conf", "max-conns 11\n", a, sizeof a);
    write_file("b.conf", "max-conns 22\n", b, sizeof b);
    snprintf(env, sizeof env, "NUDGE_CONFIG=%s", a);
    const char *envp[] = {env, NULL};
    struct config cfg;
    const char *argv1[] = {"nudged", NULL};
    cr_assert_eq(parse(&cfg, argv1, envp, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.max_conns, 11);
    config_free(&cfg);
    const char *argv2[] = {"nudged", "--config", b, NULL};
    cr_assert_eq(parse(&cfg, argv2, envp, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.max_conns, 22);
    config_free(&cfg);
}

Test(config, a_list_given_by_a_later_source_replaces_the_earlier_lists)
{
    char path[512], err[1024];
    write_file("n.conf",
               "public a:*\n"
               "public b:*\n"
               "anonymous news:*\n"
               "coalesce feed:*=100\n",
               path, sizeof path);
    const char *envp[] = {"NUDGE_PUBLIC=c:*   d:*", NULL};
    const char *argv[] = {"nudged", "--config", path, NULL};
    struct config cfg;
    cr_assert_eq(parse(&cfg, argv, envp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.auth.npublics, 2);
    cr_expect_str_eq(cfg.auth.publics[0], "c:*");
    cr_expect_str_eq(cfg.auth.publics[1], "d:*");
    cr_expect_eq(cfg.auth.nanons, 1, "a list no later source gives stays");
    cr_expect_eq(cfg.engine.nwindows, 1);
    config_free(&cfg);
    const char *argv2[] = {"nudged", "--config", path, "--public", "e:*", NULL};
    cr_assert_eq(parse(&cfg, argv2, envp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.auth.npublics, 1);
    cr_expect_str_eq(cfg.auth.publics[0], "e:*");
    config_free(&cfg);
}

Test(config, relative_paths_in_a_file_are_relative_to_the_files_directory)
{
    char path[512], err[1024], want[600];
    write_file("n.conf",
               "token-secret-file secrets/jwt.key\n"
               "token-secret-file /etc/abs.key\n"
               "data-dir state\n",
               path, sizeof path);
    const char *argv[] = {"nudged", "--config", path, NULL};
    struct config cfg;
    cr_assert_eq(parse(&cfg, argv, NULL, err, sizeof err), 0, "%s", err);
    snprintf(want, sizeof want, "%s/secrets/jwt.key", dir);
    cr_assert_eq(cfg.auth.nsecret_files, 2);
    cr_expect_str_eq(cfg.auth.secret_files[0], want);
    cr_expect_str_eq(cfg.auth.secret_files[1], "/etc/abs.key");
    snprintf(want, sizeof want, "%s/state", dir);
    cr_expect_str_eq(cfg.data_dir, want);
    config_free(&cfg);
}

Test(config, comments_equals_signs_quotes_and_booleans_read_as_documented)
{
    char path[512], err[1024];
    write_file("n.conf",
               "# a comment line\n"
               "   \n"
               "max-conns = 77   # the rest is a comment\n"
               "--max-subs 5\n"
               "token-aud \"my audience\"\n"
               "memory yes\n"
               "\tws-ping\t45\r\n",
               path, sizeof path);
    const char *argv[] = {"nudged", "--config", path, NULL};
    struct config cfg;
    cr_assert_eq(parse(&cfg, argv, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.max_conns, 77);
    cr_expect_eq(cfg.hub.max_subs, 5);
    cr_expect_str_eq(cfg.auth.aud, "my audience");
    cr_expect_str_eq(cfg.data_dir, "", "memory yes: in memory");
    cr_expect_eq(cfg.ws_ping, 45);
    config_free(&cfg);
    write_file("m.conf", "memory off\n", path, sizeof path);
    const char *envp[] = {"NUDGE_MEMORY=1", NULL};
    cr_assert_eq(parse(&cfg, argv, NULL, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg.data_dir, "nudge-data", "memory off: the default data dir");
    config_free(&cfg);
    cr_assert_eq(parse(&cfg, argv, envp, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg.data_dir, "", "NUDGE_MEMORY=1");
    config_free(&cfg);
}

Test(config, a_bad_setting_is_reported_with_its_file_and_line_or_its_variable)
{
    char path[512], err[1024], want[600];
    struct config cfg;
    write_file("n.conf", "max-conns 10\n\nmax-subs 10k\n", path, sizeof path);
    const char *argv[] = {"nudged", "--config", path, NULL};
    cr_expect_eq(parse(&cfg, argv, NULL, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:3: ", path);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "%s", err);
    cr_expect(strstr(err, "10k"), "%s", err);
    config_free(&cfg);

    write_file("n.conf", "# x\nmax-con 10\n", path, sizeof path);
    cr_expect_eq(parse(&cfg, argv, NULL, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: unknown setting 'max-con'", path);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "%s", err);
    config_free(&cfg);

    write_file("n.conf", "public\n", path, sizeof path);
    cr_expect_eq(parse(&cfg, argv, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, ":1: public wants a value"), "%s", err);
    config_free(&cfg);

    const char *envp[] = {"NUDGE_MAX_CONNS=many", NULL};
    const char *argv0[] = {"nudged", NULL};
    cr_expect_eq(parse(&cfg, argv0, envp, err, sizeof err), -1);
    cr_expect(strncmp(err, "NUDGE_MAX_CONNS: ", 17) == 0, "%s", err);
    config_free(&cfg);

    const char *argv1[] = {"nudged", "--config", "/nonexistent/n.conf", NULL};
    cr_expect_eq(parse(&cfg, argv1, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "/nonexistent/n.conf: No such file"), "%s", err);
    config_free(&cfg);

    const char *argv2[] = {"nudged", "--max-subs", "0", NULL};
    cr_expect_eq(parse(&cfg, argv2, NULL, err, sizeof err), -1);
    cr_expect(strncmp(err, "--max-subs wants", 16) == 0, "a flag's error as before: %s", err);
    config_free(&cfg);
}

Test(config, other_nudge_variables_are_not_settings_and_are_left_alone)
{
    char err[1024];
    const char *envp[] = {"NUDGE_BIN=build/asan", "NUDGE_ADDR=127.0.0.1:1", "NUDGE_=x", NULL};
    const char *argv[] = {"nudged", NULL};
    struct config cfg;
    cr_expect_eq(parse(&cfg, argv, envp, err, sizeof err), 0, "%s", err);
    config_free(&cfg);
}

Test(config, every_flag_of_help_can_be_set_in_a_file_and_the_environment)
{
    char *text = NULL, err[1024];
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    struct config cfg;
    config_default(&cfg);
    char *argv[] = {"nudged", "--help", NULL};
    cr_assert_eq(config_parse(&cfg, 2, argv, NULL, out, err, sizeof err), 1);
    fclose(out);
    int seen = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (p - line != 2 || strncmp(p, "--", 2)) continue; /* an option's first line */
        char name[64];
        size_t n = strcspn(p + 2, " ,");
        cr_assert_lt(n, sizeof name);
        memcpy(name, p + 2, n);
        name[n] = '\0';
        if (!strcmp(name, "help") || !strcmp(name, "version") || !strcmp(name, "config") ||
            !strcmp(name, "check-config"))
            continue;
        cr_expect(config_known(name), "--%s is not a setting of config files", name);
        seen++;
    }
    cr_expect_gt(seen, 40, "read the options from --help (%d)", seen);
    free(text);
    config_free(&cfg);
}
