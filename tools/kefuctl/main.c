/* kefuctl: global options, the config and the verb table. Verbs live in kefuctl_<verb>.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kefuctl.h"
#include "kf_log.h"
#include "kf_util.h"

#define KEFUCTL_DEFAULT_CONF "/etc/kefu/kefu.conf"

/* Every verb, in the order `kefuctl help` lists them. tasks, replay: later. */
static const kefuctl_verb_t *const s_verbs[] = {
    &kefuctl_verb_pub,
    &kefuctl_verb_tail,
    &kefuctl_verb_stat,
    &kefuctl_verb_sim,
    &kefuctl_verb_report,
    &kefuctl_verb_tasks,
    &kefuctl_verb_actions,
    &kefuctl_verb_dead,
    &kefuctl_verb_redeliver,
    &kefuctl_verb_webhook_listen,
    NULL,
};

static const kefuctl_verb_t *s_verb_find(const char *name)
{
    for (size_t i = 0; s_verbs[i]; i++)
        if (strcmp(s_verbs[i]->name, name) == 0)
            return s_verbs[i];
    return NULL;
}

/* The global usage; full: with every verb's description and options. */
static void s_usage(FILE *f, bool full)
{
    fprintf(f, "usage: kefuctl [-c FILE] [-o section.key=value]... VERB [ARGS...]\n");
    if (full)
        fprintf(f,
                "\n"
                "  -c FILE   config file (default: $KEFU_CONF, else " KEFUCTL_DEFAULT_CONF ")\n"
                "  -o S.K=V  override one config key, e.g. -o bus.confirm=tcp://host:5571\n"
                "  -h        this help;  -V  version\n"
                "\n"
                "Exit status: 0 ok, 1 operation failed, 2 usage or configuration error.\n");
    fprintf(f, "\nVerbs:\n");
    for (size_t i = 0; s_verbs[i]; i++) {
        kefuctl_print_lines(f, "  kefuctl ", s_verbs[i]->synopsis);
        if (full) {
            kefuctl_print_lines(f, "  ", s_verbs[i]->help);
            fputc('\n', f);
        }
    }
    kefuctl_print_lines(f, "  kefuctl ", "help [VERB]");
    if (!full)
        fprintf(f, "\nkefuctl help: every verb's options\n");
}

/* `kefuctl help [VERB]` */
static int s_help(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stdout, true);
        return KEFUCTL_OK;
    }
    const kefuctl_verb_t *verb = s_verb_find(argv[1]);
    if (!verb) {
        fprintf(stderr, "kefuctl: unknown verb '%s'\n", argv[1]);
        s_usage(stderr, false);
        return KEFUCTL_USAGE;
    }
    kefuctl_print_usage(stdout, verb, true);
    return KEFUCTL_OK;
}

const kf_conf_t *kefuctl_conf(kefuctl_t *ctl)
{
    if (ctl->conf_loaded)
        return &ctl->conf;
    kf_cfg_table_t table = {kf_conf_opts, kf_conf_nopts, &ctl->conf};
    char err[512];
    ctl->conf_tried = true; /* from here on main() frees the strings with kf_cfg_free */
    if (kf_cfg_load(&table, 1, ctl->conf_path, ctl->conf_must_exist, err, sizeof(err)) != KF_OK)
        goto fail;
    for (size_t i = 0; i < ctl->noverrides; i++)
        if (kf_cfg_set(&table, 1, ctl->overrides[i], err, sizeof(err)) != KF_OK)
            goto fail;
    ctl->conf_loaded = true;
    return &ctl->conf;
fail:
    fprintf(stderr, "kefuctl: %s\n", err);
    return NULL;
}

/* Global options, up to the verb (getopt stops at the first non-option: "+"). */
static int s_parse_global(kefuctl_t *ctl, int argc, char **argv)
{
    static const struct option s_long[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:c:o:hV", s_long, NULL)) != -1) {
        switch (c) {
        case 'c':
            ctl->conf_path = optarg;
            ctl->conf_must_exist = true;
            break;
        case 'o':
            ctl->overrides[ctl->noverrides++] = optarg;
            break;
        case 'h':
            s_usage(stdout, true);
            return KEFUCTL_OK;
        case 'V':
            printf("kefuctl %s\n", KEFU_VERSION);
            return KEFUCTL_OK;
        default:
            kefuctl_getopt_error(NULL, c, argv);
            s_usage(stderr, false);
            return KEFUCTL_USAGE;
        }
    }
    return -1; /* go on */
}

static int s_dispatch(kefuctl_t *ctl, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "kefuctl: no verb given\n");
        s_usage(stderr, false);
        return KEFUCTL_USAGE;
    }
    if (strcmp(argv[0], "help") == 0)
        return s_help(argc, argv);
    const kefuctl_verb_t *verb = s_verb_find(argv[0]);
    if (!verb) {
        fprintf(stderr, "kefuctl: unknown verb '%s'\n", argv[0]);
        s_usage(stderr, false);
        return KEFUCTL_USAGE;
    }
    kefuctl_getopt_reset();
    return verb->fn(ctl, argc, argv);
}

int main(int argc, char **argv)
{
    kefuctl_t ctl = {.conf_path = KEFUCTL_DEFAULT_CONF};
    const char *env = getenv("KEFU_CONF");
    if (env && *env) {
        ctl.conf_path = env;
        ctl.conf_must_exist = true;
    }
    ctl.overrides = kf_xcalloc((size_t)argc, sizeof(*ctl.overrides));
    kf_log_init("kefuctl", LOG_WARNING); /* a tool: the library's info lines are noise */
    kefuctl_signals_init();

    int rc = s_parse_global(&ctl, argc, argv);
    if (rc < 0)
        rc = s_dispatch(&ctl, argc - optind, argv + optind);
    if (ctl.conf_tried) {
        kf_cfg_table_t table = {kf_conf_opts, kf_conf_nopts, &ctl.conf};
        kf_cfg_free(&table, 1);
    }
    free(ctl.overrides);
    return rc;
}
