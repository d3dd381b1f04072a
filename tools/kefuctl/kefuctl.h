/* kefuctl: the one command-line tool (DESIGN §1, §10).
 *
 * Not a daemon: it may block (plain libzmq calls, synchronous hiredis, a blocking TCP
 * socket). main.c parses the global options and dispatches through a table of verbs;
 * each verb lives in kefuctl_<verb>.c and exports one kefuctl_verb_t. Adding a verb is a
 * new file plus one line in main.c's table.
 *
 * Exit codes: 0 ok, 1 the operation failed (rejected, not confirmed, broker or Redis
 * unreachable), 2 usage or configuration error. */
#ifndef KEFUCTL_H
#define KEFUCTL_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kf_cfg.h"

enum { KEFUCTL_OK = 0, KEFUCTL_FAIL = 1, KEFUCTL_USAGE = 2 };

/* The global state every verb gets: where the config comes from, and the config once
 * loaded (kefuctl_conf). */
typedef struct {
    const char *conf_path;    /* -c FILE, else $KEFU_CONF, else the default */
    bool conf_must_exist;     /* true unless conf_path is the default */
    const char **overrides;   /* -o section.key=value, in argv order */
    size_t noverrides;
    bool conf_tried, conf_loaded;
    kf_conf_t conf;
} kefuctl_t;

/* A verb: argv[0] is the verb name; returns the exit code. */
typedef int(kefuctl_verb_fn)(kefuctl_t *ctl, int argc, char **argv);

typedef struct {
    const char *name;
    kefuctl_verb_fn *fn;
    const char *synopsis;     /* one or more lines, each without the "kefuctl " prefix */
    const char *help;         /* description and options, indented lines */
} kefuctl_verb_t;

extern const kefuctl_verb_t kefuctl_verb_pub;
extern const kefuctl_verb_t kefuctl_verb_tail;
extern const kefuctl_verb_t kefuctl_verb_stat;
extern const kefuctl_verb_t kefuctl_verb_sim;
extern const kefuctl_verb_t kefuctl_verb_report;
extern const kefuctl_verb_t kefuctl_verb_tasks;
extern const kefuctl_verb_t kefuctl_verb_webhook_listen;
extern const kefuctl_verb_t kefuctl_verb_actions;
extern const kefuctl_verb_t kefuctl_verb_dead;
extern const kefuctl_verb_t kefuctl_verb_redeliver;

/* Loads the config on first use (defaults, file, environment, -o overrides). Prints
 * "kefuctl: ..." and returns NULL on error (the verb then exits KEFUCTL_USAGE). */
const kf_conf_t *kefuctl_conf(kefuctl_t *ctl);

/* ---------------------------------------------------------------- kefuctl_util.c */

/* Prints each line of text with prefix in front of it. */
void kefuctl_print_lines(FILE *f, const char *prefix, const char *text);
/* Prints "usage: kefuctl <synopsis>" lines (and the help text when full). */
void kefuctl_print_usage(FILE *f, const kefuctl_verb_t *verb, bool full);
/* Prints "kefuctl: <message>" and the verb's synopsis to stderr; returns KEFUCTL_USAGE. */
int kefuctl_usage_error(const kefuctl_verb_t *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The getopt_long() '?' / ':' case: names the bad option; returns KEFUCTL_USAGE.
 * Verbs call getopt_long with opterr = 0 and an optstring starting with ':'. */
int kefuctl_getopt_error(const kefuctl_verb_t *verb, int c, char **argv);
/* Resets getopt for a verb's argv. */
void kefuctl_getopt_reset(void);

/* Seconds (may be fractional, e.g. "0.5") within [min, max] into milliseconds. */
int kefuctl_parse_seconds(const char *s, double min, double max, int64_t *ms);

/* Reads a whole file ("-" = stdin) into a malloc'd, NUL-terminated buffer. */
char *kefuctl_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* SIGINT/SIGTERM set a flag (no SA_RESTART, so blocking calls return EINTR). */
void kefuctl_signals_init(void);
bool kefuctl_interrupted(void);

/* Sleeps ms milliseconds, or less when a signal arrives. */
void kefuctl_sleep_ms(int64_t ms);

/* ---------------------------------------------------------------- kefuctl_redis.c */

/* A synchronous hiredis connection from [redis] url / password_file / connect_timeout_ms:
 * authenticated and on the right database. NULL with a message in err. */
redisContext *kefuctl_redis_connect(const kf_conf_t *conf, char *err, size_t errlen);

/* ---------------------------------------------------------------- kefuctl_http.c */

/* GET http://<listen><path> with HTTP/1.0 over a blocking TCP socket; the whole exchange
 * takes at most timeout_ms. listen is "host:port" ("[v6]:port"; a wildcard host means
 * this machine). On KF_OK: *status and the body (malloc'd, NUL-terminated). On KF_ERR a
 * message in err ("Connection refused", "timed out after 3 s"...). */
int kefuctl_http_get(const char *listen, const char *path, int timeout_ms, int *status,
                     char **body, size_t *len, char *err, size_t errlen);
/* The URL kefuctl_http_get uses, for messages ("http://127.0.0.1:8570/stats"). */
void kefuctl_http_url(const char *listen, const char *path, char *buf, size_t len);

/* ---------------------------------------------------------------- kefuctl_table.c */

#define KEFUCTL_TABLE_MAXCOLS 16

/* An aligned text table: columns as wide as their widest cell in terminal columns (CJK
 * characters count two), separated by two spaces. */
typedef struct {
    size_t ncols;
    const char *align; /* one 'l' or 'r' per column */
    char *(*rows)[KEFUCTL_TABLE_MAXCOLS];
    size_t nrows, cap;
} kefuctl_table_t;

/* Adds a row of ncols cells (copied; NULL prints "-"). */
void kefuctl_table_add(kefuctl_table_t *t, const char *const *cells);
void kefuctl_table_print(kefuctl_table_t *t, FILE *f);
void kefuctl_table_free(kefuctl_table_t *t);

#endif
