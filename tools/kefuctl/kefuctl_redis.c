/* kefuctl_redis: a synchronous hiredis connection from the [redis] section.
 * URL forms (DESIGN §10): redis://[[user]:password@]host[:port][/db] and
 * unix:///path/redis.sock[?db=N]; the password may be percent-encoded. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "kefuctl.h"
#include "kf_util.h"

#define S_REDIS_CMD_TIMEOUT_MS 10000

typedef struct {
    bool is_unix;
    char *host;     /* host name, or the socket path when is_unix */
    int port;
    long long db;
    char *user;     /* NULL: none (AUTH password) */
    char *password; /* NULL: none */
} s_url_t;

static void s_url_free(s_url_t *u)
{
    free(u->host);
    free(u->user);
    free(u->password);
}

/* Percent-decodes s[0..n) into a new string. */
static char *s_pct_decode(const char *s, size_t n)
{
    char *out = kf_xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* "[user]:password@" in front of the host, if any; returns where the host starts. */
static const char *s_parse_userinfo(const char *p, s_url_t *u)
{
    const char *at = strrchr(p, '@');
    const char *slash = strchr(p, '/');
    if (!at || (slash && slash < at))
        return p;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon) {
        if (colon > p)
            u->user = s_pct_decode(p, (size_t)(colon - p));
        u->password = s_pct_decode(colon + 1, (size_t)(at - colon - 1));
    } else if (at > p) {
        u->password = s_pct_decode(p, (size_t)(at - p)); /* redis://secret@host */
    }
    return at + 1;
}

static int s_parse_tcp(const char *p, s_url_t *u, char *err, size_t errlen)
{
    p = s_parse_userinfo(p, u);
    const char *end = p + strcspn(p, "/?");
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') { /* [v6]:port */
        host = p + 1;
        host_end = memchr(p, ']', (size_t)(end - p));
        if (!host_end)
            goto bad;
        if (host_end[1] == ':')
            port = host_end + 2;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end)
            port = host_end + 1;
        else
            host_end = end;
    }
    u->host = host_end > host ? kf_xstrndup(host, (size_t)(host_end - host))
                              : kf_xstrdup("127.0.0.1");
    u->port = 6379;
    if (port) {
        char *pe = NULL;
        long v = strtol(port, &pe, 10);
        if (pe != end || v < 1 || v > 65535)
            goto bad;
        u->port = (int)v;
    }
    if (*end == '/' && end[1] && kf_parse_ll(end + 1, 0, 1000000, &u->db) != KF_OK)
        goto bad;
    return KF_OK;
bad:
    snprintf(err, errlen, "[redis] url: cannot parse the host, port or database");
    return KF_ERR;
}

static int s_parse_unix(const char *p, s_url_t *u, char *err, size_t errlen)
{
    const char *q = strchr(p, '?');
    u->host = q ? kf_xstrndup(p, (size_t)(q - p)) : kf_xstrdup(p);
    if (!*u->host) {
        snprintf(err, errlen, "[redis] url: unix:// needs a socket path");
        return KF_ERR;
    }
    if (q && (strncmp(q, "?db=", 4) != 0 || kf_parse_ll(q + 4, 0, 1000000, &u->db) != KF_OK)) {
        snprintf(err, errlen, "[redis] url: bad query '%s' (only ?db=N)", q);
        return KF_ERR;
    }
    return KF_OK;
}

static int s_url_parse(const char *url, s_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    if (strncmp(url, "redis://", 8) == 0)
        return s_parse_tcp(url + 8, u, err, errlen);
    if (strncmp(url, "unix://", 7) == 0) {
        u->is_unix = true;
        return s_parse_unix(url + 7, u, err, errlen);
    }
    snprintf(err, errlen, "[redis] url '%s': expected redis://host:port[/db] or unix:///path",
             url);
    return KF_ERR;
}

/* Runs one setup command (AUTH, SELECT); KF_ERR with the server's message. */
static int s_setup_cmd(redisContext *c, const char *what, int argc, const char **argv,
                       char *err, size_t errlen)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r) {
        snprintf(err, errlen, "%s: %s", what, c->errstr[0] ? c->errstr : "connection lost");
        return KF_ERR;
    }
    int rc = r->type == REDIS_REPLY_ERROR ? KF_ERR : KF_OK;
    if (rc != KF_OK)
        snprintf(err, errlen, "%s: %s", what, r->str);
    freeReplyObject(r);
    return rc;
}

static int s_setup(redisContext *c, const s_url_t *u, char *err, size_t errlen)
{
    if (u->password) {
        const char *argv[3] = {"AUTH", u->user ? u->user : u->password, u->password};
        if (s_setup_cmd(c, "AUTH", u->user ? 3 : 2, argv, err, errlen) != KF_OK)
            return KF_ERR;
    }
    if (u->db != 0) {
        char db[24];
        snprintf(db, sizeof(db), "%lld", u->db);
        const char *argv[2] = {"SELECT", db};
        if (s_setup_cmd(c, "SELECT", 2, argv, err, errlen) != KF_OK)
            return KF_ERR;
    }
    struct timeval tv = {S_REDIS_CMD_TIMEOUT_MS / 1000, 0};
    redisSetTimeout(c, tv);
    return KF_OK;
}

static int s_password_file(const kf_conf_t *conf, s_url_t *u, char *err, size_t errlen)
{
    if (!conf->redis_password_file || !*conf->redis_password_file)
        return KF_OK;
    char e[256];
    char *pw = kf_cfg_read_secret(conf->redis_password_file, e, sizeof(e));
    if (!pw) {
        snprintf(err, errlen, "[redis] password_file: %s", e);
        return KF_ERR;
    }
    free(u->password);
    u->password = pw;
    return KF_OK;
}

redisContext *kefuctl_redis_connect(const kf_conf_t *conf, char *err, size_t errlen)
{
    s_url_t u;
    redisContext *c = NULL;
    char e[256];
    if (s_url_parse(conf->redis_url, &u, err, errlen) != KF_OK ||
        s_password_file(conf, &u, err, errlen) != KF_OK)
        goto fail;
    long long ms = conf->redis_timeout_ms > 0 ? conf->redis_timeout_ms : 2000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    c = u.is_unix ? redisConnectUnixWithTimeout(u.host, tv)
                  : redisConnectWithTimeout(u.host, u.port, tv);
    if (!c || c->err) {
        snprintf(e, sizeof(e), "%s", c ? c->errstr : "out of memory");
        goto unreachable;
    }
    if (s_setup(c, &u, e, sizeof(e)) != KF_OK)
        goto unreachable;
    s_url_free(&u);
    return c;
unreachable:
    if (u.is_unix)
        snprintf(err, errlen, "redis at unix://%s: %s", u.host, e);
    else
        snprintf(err, errlen, "redis at %s:%d: %s", u.host, u.port, e);
fail:
    if (c)
        redisFree(c);
    s_url_free(&u);
    return NULL;
}
