/* kf_cfg: table-driven INI configuration (inih), in the manner of redis config.c.
 *
 * Each daemon describes its keys in a table of kf_cfg_opt_t and passes it, with the
 * shared table (kf_conf_opts: [redis] [bus] [http] [clock] [log]), to kf_cfg_load().
 * Order of precedence: defaults, the file, the environment (KEFU_<SECTION>_<KEY>, upper
 * case, '-' -> '_'), then argv overrides (kf_cfg_set "section.key=value").
 * An unknown section, an unknown key in a section this process owns, or a bad value is an
 * error with "file:line: ..." in err. Sections that belong to other kefu daemons
 * (kf_cfg_known_sections) are skipped: their own daemon validates them.
 */
#ifndef KF_CFG_H
#define KF_CFG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    KF_CFG_INT,    /* long long, within [min, max] */
    KF_CFG_BOOL,   /* bool: yes/no/true/false/on/off/1/0 */
    KF_CFG_STR,    /* char * (owned by the struct, freed by kf_cfg_free) */
    KF_CFG_ENUM,   /* int: index into enums[] (NULL-terminated list of names) */
} kf_cfg_type_t;

typedef struct {
    const char *section;        /* e.g. "redis" */
    const char *name;           /* e.g. "url" */
    kf_cfg_type_t type;
    long long min, max;         /* KF_CFG_INT bounds; KF_CFG_STR: max length when max > 0;
                                 * KF_CFG_ENUM: when max > 0 only indices min..max are
                                 * accepted (lets the index be a value, e.g. LOG_*) */
    const char *def;            /* default, as text (parsed like a file value) */
    size_t offset;              /* offsetof(struct, field) in the destination struct */
    const char *const *enums;   /* KF_CFG_ENUM names */
    const char *help;           /* one line, for kefu.conf.example and --help-config */
} kf_cfg_opt_t;

typedef struct {
    const kf_cfg_opt_t *opts;
    size_t nopts;
    void *dst;                  /* struct the offsets point into */
} kf_cfg_table_t;

/* The shared sections every daemon reads. */
typedef struct {
    char *redis_url;            /* [redis] url = redis://127.0.0.1:6379/0 (or unix:///path) */
    char *redis_password_file;  /* [redis] password_file = (empty: none) */
    long long redis_timeout_ms; /* [redis] connect_timeout_ms = 2000 */
    char *bus_publish;          /* [bus] publish   = tcp://127.0.0.1:5570 */
    char *bus_confirm;          /* [bus] confirm   = tcp://127.0.0.1:5571 */
    char *bus_subscribe;        /* [bus] subscribe = tcp://127.0.0.1:5572 */
    long long bus_hwm;          /* [bus] hwm = 100000 */
    char *http_listen;          /* [http] listen = 127.0.0.1:8570 */
    int clock_mode;             /* [clock] mode = real | simulated  (0 real, 1 simulated) */
    int log_level;              /* [log] level = info (LOG_* value) */
    long long heartbeat_ms;     /* [log] heartbeat_ms = 5000 */
} kf_conf_t;

extern const kf_cfg_opt_t kf_conf_opts[];
extern const size_t kf_conf_nopts;

/* Section names of every kefu daemon (NULL-terminated). */
extern const char *const kf_cfg_known_sections[];

/* Sets every option of every table to its default. The destination structs must be zeroed
 * before the first call (strings are freed when overwritten). A KF_CFG_STR is never NULL
 * after loading: an empty value is "". */
int kf_cfg_defaults(const kf_cfg_table_t *tables, size_t ntables, char *err, size_t errlen);
/* Defaults, then path (a missing file is an error only when must_exist), then environment. */
int kf_cfg_load(const kf_cfg_table_t *tables, size_t ntables, const char *path, bool must_exist,
                char *err, size_t errlen);
/* One override "section.key=value" (argv -o). */
int kf_cfg_set(const kf_cfg_table_t *tables, size_t ntables, const char *assignment, char *err,
               size_t errlen);
/* Frees the strings the tables own. */
void kf_cfg_free(const kf_cfg_table_t *tables, size_t ntables);
/* Writes an example file with every key, its default and help line. */
void kf_cfg_print_example(const kf_cfg_table_t *tables, size_t ntables, void *FILE_stream);

/* Reads the password from a file (first line, trimmed). Returns malloc'd string or NULL. */
char *kf_cfg_read_secret(const char *path, char *err, size_t errlen);

#endif
