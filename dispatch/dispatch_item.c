/* kefu-dispatch: an action as dispatch holds it, its durable state and the retry schedule. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "kf_json.h"
#include "kf_util.h"

int dispatch_parse_schedule(const char *text, int64_t *out, size_t max, size_t *n, char *err,
                            size_t errlen)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0) {
            kf_err(err, errlen, "retry_schedule: '%s' is not a delay (like 0,5s,5m,2h)", p);
            return KF_ERR;
        }
        long long unit = 1000;
        const char *u = end;
        if (!strncmp(u, "ms", 2))
            unit = 1, u += 2;
        else if (*u == 's')
            unit = 1000, u++;
        else if (*u == 'm')
            unit = 60000, u++;
        else if (*u == 'h')
            unit = 3600000, u++;
        else if (*u == 'd')
            unit = 86400000, u++;
        if (*u && *u != ',' && *u != ' ') {
            kf_err(err, errlen, "retry_schedule: bad unit in '%s' (ms, s, m, h or d)", p);
            return KF_ERR;
        }
        if (*n == max) {
            kf_err(err, errlen, "retry_schedule: more than %zu attempts", max);
            return KF_ERR;
        }
        if (v > 30LL * 86400000 / unit) {
            kf_err(err, errlen, "retry_schedule: '%s' is more than 30 days", p);
            return KF_ERR;
        }
        out[(*n)++] = v * unit;
        p = u;
    }
    if (*n == 0) {
        kf_err(err, errlen, "retry_schedule: no attempt (give at least \"0\")");
        return KF_ERR;
    }
    return KF_OK;
}

int64_t dispatch_parse_retry_after(const char *v, int64_t now_ms)
{
    if (!v)
        return -1;
    while (*v == ' ')
        v++;
    if (isdigit((unsigned char)*v)) {
        long long s;
        char buf[24];
        size_t k = strcspn(v, " \r\n");
        if (k >= sizeof(buf))
            return -1;
        memcpy(buf, v, k);
        buf[k] = '\0';
        if (kf_parse_ll(buf, 0, 86400, &s) != KF_OK)
            return -1;
        return s * 1000;
    }
    struct tm tm = {0}; /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    const char *e = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e)
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    int64_t d = at - now_ms;
    return d < 0 ? 0 : d > 86400000 ? 86400000 : d;
}

static char *s_field(char **fv, const size_t *fvlen, size_t n, const char *name, size_t *len)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        if (strcmp(fv[i], name) == 0) {
            if (len)
                *len = fvlen[i + 1];
            return fv[i + 1];
        }
    return NULL;
}

static char *s_jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? kf_xstrdup(s) : NULL;
}

item_t *dispatch_item_new(const char *sid, char **fv, const size_t *fvlen, size_t n, char *err,
                          size_t errlen)
{
    size_t jl = 0;
    const char *t = s_field(fv, fvlen, n, "t", NULL), *id = s_field(fv, fvlen, n, "id", NULL);
    const char *j = s_field(fv, fvlen, n, "j", &jl), *x = s_field(fv, fvlen, n, "x", NULL);
    size_t logl = 0;
    const char *tr = s_field(fv, fvlen, n, "tr", NULL), *log = s_field(fv, fvlen, n, "log", &logl);
    if (!t || !id || !*id || !j ||
        (strcmp(t, "action.contact") && strcmp(t, "action.task") && strcmp(t, "action.alert"))) {
        kf_err(err, errlen, "entry %s: not an action (fields t, id, j)", sid);
        return NULL;
    }
    bool ctl = false; /* it becomes the webhook-id header: no control characters */
    for (const char *p = id; *p; p++)
        ctl |= (unsigned char)*p < 0x20 || *p == 0x7f;
    if (ctl || strlen(id) > 256 || !kf_utf8_valid(id, strlen(id))) {
        kf_err(err, errlen, "entry %s: the action id is not printable UTF-8 of at most 256 bytes", sid);
        return NULL;
    }
    item_t *it = kf_xcalloc(1, sizeof(*it));
    snprintf(it->sid, sizeof(it->sid), "%s", sid);
    it->topic = kf_xstrdup(t);
    it->id = kf_xstrdup(id);
    it->j = kf_xstrndup(j, jl);
    char perr[256];
    it->env = kf_json_parse_event(j, jl, t, perr, sizeof(perr));
    if (it->env) {
        const kf_env_t *e = it->env;
        it->shop = e->shop_id && *e->shop_id ? kf_xstrdup(e->shop_id) : NULL;
        it->emitted = e->occurred_at;
        const char *buyer = NULL;
        if (e->payload_case == KEFU__V1__ENVELOPE__PAYLOAD_ACTION_CONTACT) {
            char ch[32];
            buyer = e->action_contact->buyer_id;
            const char *c = e->action_contact->has_channel
                                ? kf_json_enum_name(&kefu__v1__channel__descriptor,
                                                    e->action_contact->channel, ch, sizeof(ch))
                                : NULL;
            it->channel = c && strcmp(c, "unspecified") ? kf_xstrdup(c) : NULL;
        } else if (e->payload_case == KEFU__V1__ENVELOPE__PAYLOAD_ACTION_ALERT) {
            buyer = e->action_alert->buyer_id;
        } else if (e->payload_case == KEFU__V1__ENVELOPE__PAYLOAD_ACTION_TASK) {
            buyer = e->action_task->buyer_id;
        }
        it->buyer = buyer && *buyer ? kf_xstrdup(buyer) : NULL;
    } else { /* a dead letter at accept (bad_action) if it names its shop */
        it->bad = kf_xstrdup(perr);
        json_error_t je;
        json_t *o = json_loadb(j, jl, 0, &je);
        if (!json_is_object(o)) {
            kf_err(err, errlen, "entry %s: j is not a JSON object: %s", sid, je.text);
            json_decref(o);
            dispatch_item_free(it);
            return NULL;
        }
        it->shop = s_jstr(o, "shop_id");
        json_decref(o);
    }
    long long xv;
    if (x && kf_parse_ll(x, 0, INT64_MAX, &xv) == KF_OK)
        it->x = xv;
    if (!it->shop) {
        kf_err(err, errlen, "entry %s (%s): no shop_id", sid, id);
        dispatch_item_free(it);
        return NULL;
    }
    it->state = "pending";
    it->manual = tr && !strcmp(tr, "manual");
    it->log = log ? json_loadb(log, logl, 0, NULL) : NULL; /* a redelivery's history */
    if (!json_is_array(it->log)) {
        json_decref(it->log);
        it->log = json_array();
    }
    while (json_array_size(it->log) > DISPATCH_LOG_MAX)
        json_array_remove(it->log, 0);
    it->hidx = (size_t)-1;
    it->seen_mono = kf_mono_ms();
    return it;
}

void dispatch_item_free(item_t *it)
{
    if (!it)
        return;
    free(it->topic);
    free(it->id);
    free(it->shop);
    free(it->buyer);
    free(it->channel);
    free(it->j);
    free(it->body);
    free(it->bad);
    kf_env_free(it->env);
    json_decref(it->log);
    free(it);
}

int dispatch_item_body(item_t *it, int offset_min, char *err, size_t errlen)
{
    if (it->body)
        return KF_OK;
    if (!it->env) {
        kf_err(err, errlen, "%s", it->bad ? it->bad : "j does not map");
        return KF_ERR;
    }
    kf_json_set_offset(offset_min);
    it->body = kf_json_dump_event(it->env);
    kf_json_set_offset(480);
    kf_env_free(it->env);
    it->env = NULL;
    it->blen = strlen(it->body);
    return KF_OK;
}

char *dispatch_item_state(const item_t *it, const char *url)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I}", "s", it->state, "id", it->id,
                          "shop", it->shop, "t", it->topic, "n", it->n, "code", it->code,
                          "last", (json_int_t)it->last);
    if (url)
        json_object_set_new(o, "url", json_string(url));
    if (it->err[0])
        json_object_set_new(o, "err", json_string(it->err));
    if (!strcmp(it->state, "pending"))
        json_object_set_new(o, "next", json_integer(it->next));
    else
        json_object_set_new(o, "done", json_integer(it->done));
    if (it->why)
        json_object_set_new(o, "why", json_string(it->why));
    json_object_set(o, "log", it->log);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static const char *const s_states[] = {"pending", "delivered", "dead", "optout", "stale",
                                       "no_endpoint", NULL};

const char *dispatch_item_restore(item_t *it, const char *text, size_t len)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    const char *s = json_string_value(json_object_get(o, "s")), *state = NULL;
    for (size_t i = 0; s && s_states[i]; i++)
        if (!strcmp(s, s_states[i]))
            state = s_states[i];
    it->n = (int)json_integer_value(json_object_get(o, "n"));
    it->code = (int)json_integer_value(json_object_get(o, "code"));
    it->last = json_integer_value(json_object_get(o, "last"));
    it->next = json_integer_value(json_object_get(o, "next"));
    const char *e = json_string_value(json_object_get(o, "err"));
    snprintf(it->err, sizeof(it->err), "%s", e ? e : "");
    json_t *log = json_object_get(o, "log");
    if (json_is_array(log)) {
        json_decref(it->log);
        it->log = json_incref(log);
    }
    json_decref(o);
    return state;
}

void dispatch_item_log(item_t *it, int64_t at, int status, int64_t ms, const char *excerpt)
{
    json_array_append_new(it->log, json_pack("[I, i, I, s, s]", (json_int_t)at, status,
                                             (json_int_t)ms, excerpt ? excerpt : "",
                                             it->manual ? "manual" : "scheduled"));
    while (json_array_size(it->log) > DISPATCH_LOG_MAX)
        json_array_remove(it->log, 0);
}

void dispatch_state_key(const char *sid, char *buf, size_t len)
{
    long long ms = strtoll(sid, NULL, 10);
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, len, "kefu:dlv:%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
