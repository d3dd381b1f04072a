/* Unit tests for kf_cfg: defaults, file, environment, overrides, errors with file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "kf_cfg.h"
#include "kf_util.h"

/* A daemon's own table, as a worker would declare it. */
typedef struct {
    long long partitions;
    bool dry_run;
    char *greeting;
    int channel;
} pr_conf_t;

static const char *const s_channels[] = {"sms", "im", "phone", NULL};

static const kf_cfg_opt_t s_pr_opts[] = {
    {"pay-reminder", "partitions", KF_CFG_INT, 1, 100, "4", offsetof(pr_conf_t, partitions), NULL,
     "number of partitions"},
    {"pay-reminder", "dry_run", KF_CFG_BOOL, 0, 0, "no", offsetof(pr_conf_t, dry_run), NULL,
     "log actions instead of emitting them"},
    {"pay-reminder", "greeting", KF_CFG_STR, 0, 16, "hello", offsetof(pr_conf_t, greeting), NULL,
     "greeting text"},
    {"pay-reminder", "channel", KF_CFG_ENUM, 0, 0, "im", offsetof(pr_conf_t, channel), s_channels,
     "first contact channel"},
};

typedef struct {
    kf_conf_t conf;
    pr_conf_t pr;
    kf_cfg_table_t tables[2];
    char path[64];
    char err[512];
} fx_t;

static const char *const s_env_vars[] = {"KEFU_REDIS_URL", "KEFU_PAY_REMINDER_PARTITIONS",
                                         "KEFU_LOG_LEVEL", "KEFU_BUS_HWM"};

static int setup(void **state)
{
    fx_t *fx = kf_xcalloc(1, sizeof(*fx));
    fx->tables[0] = (kf_cfg_table_t){kf_conf_opts, kf_conf_nopts, &fx->conf};
    fx->tables[1] = (kf_cfg_table_t){s_pr_opts, KF_ARRAY_LEN(s_pr_opts), &fx->pr};
    for (size_t i = 0; i < KF_ARRAY_LEN(s_env_vars); i++)
        unsetenv(s_env_vars[i]);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    kf_cfg_free(fx->tables, 2);
    if (fx->path[0])
        unlink(fx->path);
    for (size_t i = 0; i < KF_ARRAY_LEN(s_env_vars); i++)
        unsetenv(s_env_vars[i]);
    free(fx);
    return 0;
}

/* Writes text to a fresh temp file, path into fx->path. */
static void s_write(fx_t *fx, const char *text)
{
    snprintf(fx->path, sizeof(fx->path), "/tmp/kf_cfg_test_XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static int s_load(fx_t *fx, const char *text)
{
    s_write(fx, text);
    fx->err[0] = '\0';
    return kf_cfg_load(fx->tables, 2, fx->path, true, fx->err, sizeof(fx->err));
}

/* err must start with "<path>:<line>: " and contain what */
static void s_assert_err_at(fx_t *fx, int line, const char *what)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s:%d: ", fx->path, line);
    if (strncmp(fx->err, prefix, strlen(prefix)) != 0 || !strstr(fx->err, what))
        fail_msg("error '%s' does not start with '%s' or lacks '%s'", fx->err, prefix, what);
}

static void test_defaults(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(kf_cfg_load(fx->tables, 2, NULL, false, fx->err, sizeof(fx->err)), KF_OK);
    assert_string_equal(fx->conf.redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(fx->conf.redis_password_file, "");
    assert_int_equal(fx->conf.redis_timeout_ms, 2000);
    assert_string_equal(fx->conf.bus_publish, "tcp://127.0.0.1:5570");
    assert_string_equal(fx->conf.bus_confirm, "tcp://127.0.0.1:5571");
    assert_string_equal(fx->conf.bus_subscribe, "tcp://127.0.0.1:5572");
    assert_int_equal(fx->conf.bus_hwm, 100000);
    assert_string_equal(fx->conf.http_listen, "127.0.0.1:8570");
    assert_int_equal(fx->conf.clock_mode, 0);
    assert_int_equal(fx->conf.log_level, LOG_INFO);
    assert_int_equal(fx->conf.heartbeat_ms, 5000);
    assert_int_equal(fx->pr.partitions, 4);
    assert_false(fx->pr.dry_run);
    assert_string_equal(fx->pr.greeting, "hello");
    assert_int_equal(fx->pr.channel, 1);
}

static void test_missing_file(void **state)
{
    fx_t *fx = *state;
    const char *p = "/nonexistent/kefu.conf";
    assert_int_equal(kf_cfg_load(fx->tables, 2, p, false, fx->err, sizeof(fx->err)), KF_OK);
    assert_int_equal(fx->pr.partitions, 4);
    assert_int_equal(kf_cfg_load(fx->tables, 2, p, true, fx->err, sizeof(fx->err)), KF_ERR);
    assert_non_null(strstr(fx->err, p));
}

static void test_file_values(void **state)
{
    fx_t *fx = *state;
    int rc = s_load(fx, "; kefu test config\n"
                        "# another comment\n"
                        "\n"
                        "[redis]\n"
                        "url = unix:///run/redis/redis.sock   ; inline comment\n"
                        "connect_timeout_ms=150\n"
                        "[bus]\n"
                        "   hwm = 7\n"
                        "   subscribe = tcp://10.0.0.1:6000\n"
                        "[log]\n"
                        "level = debug\n"
                        "[clock]\n"
                        "mode = simulated\n"
                        "[pay-reminder]\n"
                        "partitions = 100\n"
                        "dry_run = On\n"
                        "greeting = 你好\n"
                        "channel = phone\n");
    assert_int_equal(rc, KF_OK);
    assert_string_equal(fx->conf.redis_url, "unix:///run/redis/redis.sock");
    assert_int_equal(fx->conf.redis_timeout_ms, 150);
    assert_int_equal(fx->conf.bus_hwm, 7);
    assert_string_equal(fx->conf.bus_subscribe, "tcp://10.0.0.1:6000");
    assert_string_equal(fx->conf.bus_publish, "tcp://127.0.0.1:5570"); /* untouched */
    assert_int_equal(fx->conf.log_level, LOG_DEBUG);
    assert_int_equal(fx->conf.clock_mode, 1);
    assert_int_equal(fx->pr.partitions, 100);
    assert_true(fx->pr.dry_run);
    assert_string_equal(fx->pr.greeting, "你好");
    assert_int_equal(fx->pr.channel, 2);
}

static void test_unknown_key(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_load(fx, "[redis]\n"
                                "url = redis://h:1/0\n"
                                "\n"
                                "; comment\n"
                                "  urll = redis://typo\n"
                                "[bus]\n"
                                "nope = 1\n"),
                     KF_ERR);
    s_assert_err_at(fx, 5, "unknown key 'urll' in [redis]");
}

static void test_unknown_section(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_load(fx, "[redis]\nurl = redis://h:1/0\n[redsi]\nurl = x\n"), KF_ERR);
    s_assert_err_at(fx, 3, "unknown section [redsi]");
    unlink(fx->path);
    /* even when empty */
    assert_int_equal(s_load(fx, "[bus]\n\n[nosuch]\n; nothing here\n"), KF_ERR);
    s_assert_err_at(fx, 3, "unknown section [nosuch]");
}

static void test_other_daemon_section_skipped(void **state)
{
    fx_t *fx = *state;
    /* only the shared table: [pay-reminder] and [broker] belong to other daemons */
    kf_conf_t conf = {0};
    kf_cfg_table_t t = {kf_conf_opts, kf_conf_nopts, &conf};
    s_write(fx, "[broker]\nanything = goes\n[pay-reminder]\npartitions = 999\n"
                "[bus]\nhwm = 42\n");
    int rc = kf_cfg_load(&t, 1, fx->path, true, fx->err, sizeof(fx->err));
    assert_int_equal(rc, KF_OK);
    assert_int_equal(conf.bus_hwm, 42);
    kf_cfg_free(&t, 1);
    /* the owning daemon does validate it */
    assert_int_equal(kf_cfg_load(fx->tables, 2, fx->path, true, fx->err, sizeof(fx->err)),
                     KF_ERR);
    s_assert_err_at(fx, 4, "expected an integer in 1..100, got '999'");
}

static void test_bad_values(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_load(fx, "[pay-reminder]\npartitions = 0\n"), KF_ERR);
    s_assert_err_at(fx, 2, "[pay-reminder] partitions: expected an integer in 1..100, got '0'");
    unlink(fx->path);
    assert_int_equal(s_load(fx, "[pay-reminder]\n\npartitions = 12abc\n"), KF_ERR);
    s_assert_err_at(fx, 3, "got '12abc'");
    unlink(fx->path);
    assert_int_equal(s_load(fx, "[pay-reminder]\ndry_run = maybe\n"), KF_ERR);
    s_assert_err_at(fx, 2, "[pay-reminder] dry_run: expected yes/no");
    unlink(fx->path);
    assert_int_equal(s_load(fx, "[pay-reminder]\ngreeting = 12345678901234567\n"), KF_ERR);
    s_assert_err_at(fx, 2, "too long");
    unlink(fx->path);
    assert_int_equal(s_load(fx, "[redis]\nurl = \xc0\xaf\n"), KF_ERR);
    s_assert_err_at(fx, 2, "UTF-8");
}

static void test_syntax_errors(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_load(fx, "url = x\n"), KF_ERR);
    s_assert_err_at(fx, 1, "outside any [section]");
    unlink(fx->path);
    assert_int_equal(s_load(fx, "[redis]\n; ok\njust some words\n"), KF_ERR);
    s_assert_err_at(fx, 3, "syntax error");
    unlink(fx->path);
    char big[600];
    snprintf(big, sizeof(big), "[redis]\nurl = redis://%0500d\n", 0);
    assert_int_equal(s_load(fx, big), KF_ERR);
    s_assert_err_at(fx, 2, "line too long");
}

static void test_enums(void **state)
{
    fx_t *fx = *state;
    static const struct {
        const char *text;
        int level;
    } cases[] = {{"err", LOG_ERR}, {"warning", LOG_WARNING}, {"notice", LOG_NOTICE},
                 {"info", LOG_INFO}, {"DEBUG", LOG_DEBUG}};
    char a[64];
    assert_int_equal(kf_cfg_defaults(fx->tables, 2, fx->err, sizeof(fx->err)), KF_OK);
    for (size_t i = 0; i < KF_ARRAY_LEN(cases); i++) {
        snprintf(a, sizeof(a), "log.level=%s", cases[i].text);
        assert_int_equal(kf_cfg_set(fx->tables, 2, a, fx->err, sizeof(fx->err)), KF_OK);
        assert_int_equal(fx->conf.log_level, cases[i].level);
    }
    /* names outside the admitted range are rejected, and the choices are listed */
    assert_int_equal(kf_cfg_set(fx->tables, 2, "log.level=emerg", fx->err, sizeof(fx->err)),
                     KF_ERR);
    assert_non_null(strstr(fx->err, "err, warning, notice, info, debug"));
    assert_null(strstr(fx->err, "crit,"));
    assert_int_equal(fx->conf.log_level, LOG_DEBUG);
    assert_int_equal(kf_cfg_set(fx->tables, 2, "clock.mode=simulated", fx->err, sizeof(fx->err)),
                     KF_OK);
    assert_int_equal(fx->conf.clock_mode, 1);
    assert_int_equal(kf_cfg_set(fx->tables, 2, "clock.mode=fake", fx->err, sizeof(fx->err)),
                     KF_ERR);
    assert_non_null(strstr(fx->err, "real, simulated"));
}

static void test_env_beats_file(void **state)
{
    fx_t *fx = *state;
    setenv("KEFU_REDIS_URL", "redis://env:1/2", 1);
    setenv("KEFU_PAY_REMINDER_PARTITIONS", "9", 1);
    assert_int_equal(s_load(fx, "[redis]\nurl = redis://file:1/0\n[pay-reminder]\n"
                                "partitions = 3\ndry_run = yes\n"),
                     KF_OK);
    assert_string_equal(fx->conf.redis_url, "redis://env:1/2");
    assert_int_equal(fx->pr.partitions, 9);
    assert_true(fx->pr.dry_run); /* from the file */
    setenv("KEFU_BUS_HWM", "0", 1);
    assert_int_equal(kf_cfg_load(fx->tables, 2, fx->path, true, fx->err, sizeof(fx->err)),
                     KF_ERR);
    assert_non_null(strstr(fx->err, "KEFU_BUS_HWM"));
    assert_non_null(strstr(fx->err, "got '0'"));
}

static void test_set_beats_env(void **state)
{
    fx_t *fx = *state;
    setenv("KEFU_LOG_LEVEL", "err", 1);
    setenv("KEFU_PAY_REMINDER_PARTITIONS", "9", 1);
    assert_int_equal(s_load(fx, "[log]\nlevel = notice\n"), KF_OK);
    assert_int_equal(fx->conf.log_level, LOG_ERR);
    assert_int_equal(kf_cfg_set(fx->tables, 2, "log.level=debug", fx->err, sizeof(fx->err)),
                     KF_OK);
    assert_int_equal(kf_cfg_set(fx->tables, 2, "pay-reminder.partitions = 11", fx->err,
                                sizeof(fx->err)),
                     KF_OK);
    assert_int_equal(fx->conf.log_level, LOG_DEBUG);
    assert_int_equal(fx->pr.partitions, 11);
    assert_int_equal(kf_cfg_set(fx->tables, 2, "pay-reminder.partitions=x", fx->err,
                                sizeof(fx->err)),
                     KF_ERR);
    assert_non_null(strstr(fx->err, "pay-reminder.partitions=x"));
    assert_int_equal(fx->pr.partitions, 11);
    assert_int_equal(kf_cfg_set(fx->tables, 2, "redis.nope=1", fx->err, sizeof(fx->err)), KF_ERR);
    assert_non_null(strstr(fx->err, "unknown key 'nope'"));
    assert_int_equal(kf_cfg_set(fx->tables, 2, "redis-url", fx->err, sizeof(fx->err)), KF_ERR);
    assert_non_null(strstr(fx->err, "section.key=value"));
}

static void test_example(void **state)
{
    fx_t *fx = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    kf_cfg_print_example(fx->tables, 2, out);
    fclose(out);
    const kf_cfg_opt_t *all[2] = {kf_conf_opts, s_pr_opts};
    size_t nall[2] = {kf_conf_nopts, KF_ARRAY_LEN(s_pr_opts)};
    char line[256];
    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < nall[t]; i++) {
            const kf_cfg_opt_t *o = &all[t][i];
            snprintf(line, sizeof(line), "[%s]\n", o->section);
            assert_non_null(strstr(buf, line));
            snprintf(line, sizeof(line), "; %s", o->help);
            assert_non_null(strstr(buf, line));
            snprintf(line, sizeof(line), "\n%s =%s%s\n", o->name, *o->def ? " " : "", o->def);
            if (!strstr(buf, line))
                fail_msg("example lacks '%s' for [%s]:\n%s", line, o->section, buf);
        }
    }
    assert_non_null(strstr(buf, "(100..60000)"));
    /* the example is a valid config that gives the defaults */
    s_write(fx, buf);
    free(buf);
    assert_int_equal(kf_cfg_load(fx->tables, 2, fx->path, true, fx->err, sizeof(fx->err)), KF_OK);
    assert_int_equal(fx->conf.log_level, LOG_INFO);
    assert_int_equal(fx->conf.redis_timeout_ms, 2000);
    assert_string_equal(fx->conf.redis_password_file, "");
    assert_string_equal(fx->pr.greeting, "hello");
}

static void test_read_secret(void **state)
{
    fx_t *fx = *state;
    s_write(fx, "s3cr3t pass \t\r\nsecond line\n");
    char *s = kf_cfg_read_secret(fx->path, fx->err, sizeof(fx->err));
    assert_non_null(s);
    assert_string_equal(s, "s3cr3t pass");
    free(s);
    unlink(fx->path);
    s_write(fx, "");
    assert_null(kf_cfg_read_secret(fx->path, fx->err, sizeof(fx->err)));
    assert_non_null(strstr(fx->err, fx->path));
    assert_null(kf_cfg_read_secret("/nonexistent/secret", fx->err, sizeof(fx->err)));
    assert_non_null(strstr(fx->err, "/nonexistent/secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_daemon_section_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_beats_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_beats_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_secret, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
