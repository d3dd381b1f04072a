/* kefu-broker: HTTP — /healthz, /stats, /metrics, the dashboard, and JSON ingest. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_util.h"

extern const char kf_broker_dashboard_html[];

static void s_send(struct evhttp_request *req, int code, const char *type, const char *body)
{
    struct evbuffer *buf = evbuffer_new();
    evbuffer_add(buf, body, strlen(body));
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, NULL, buf);
    evbuffer_free(buf);
}

static void s_send_owned(struct evhttp_request *req, int code, const char *type, char *body)
{
    s_send(req, code, type, body);
    free(body);
}

/* The HTTP answer: {"result", "event_id" (when known), "seq" | "reason" and "error"}. */
void broker_http_reply(broker_t *b, item_t *it)
{
    if (!it->req)
        return; /* the client went away */
    struct evhttp_connection *conn = evhttp_request_get_connection(it->req);
    if (conn)
        evhttp_connection_set_closecb(conn, NULL, NULL);
    static const char *const s_result[] = {"ok", "duplicate", "rejected", "error"};
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string(s_result[it->reply]));
    if (it->event_id && *it->event_id)
        json_object_set_new(o, "event_id", json_string(it->event_id));
    if (it->reply == REPLY_OK || it->reply == REPLY_DUPLICATE) {
        json_object_set_new(o, "seq", json_integer((json_int_t)it->seq));
    } else {
        if (it->reply == REPLY_REJECTED)
            json_object_set_new(o, "reason", json_string(kf_reject_name(it->why)));
        json_object_set_new(o, "error", json_string(it->detail ? it->detail : ""));
    }
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = strlen(body);
    body = kf_xrealloc(body, n + 2);
    memcpy(body + n, "\n", 2);
    s_send_owned(it->req, it->http_code ? it->http_code : 200, "application/json", body);
    it->req = NULL;
}

static void s_on_conn_close(struct evhttp_connection *conn, void *arg)
{
    item_t *it = arg;
    it->req = NULL;
}

/* The ingest query: backfill=1|true|0|false (DESIGN §3.10); -1 on anything else. */
static int s_query_backfill(const char *query)
{
    if (!query || !*query)
        return 0;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(query, &kv) != 0)
        return -1;
    int rc = 0;
    for (struct evkeyval *e = kv.tqh_first; e; e = e->next.tqe_next) {
        if (strcmp(e->key, "backfill") != 0) {
            rc = -1;
        } else if (strcmp(e->value, "1") == 0 || strcmp(e->value, "true") == 0) {
            if (rc == 0)
                rc = 1;
        } else if (strcmp(e->value, "0") != 0 && strcmp(e->value, "false") != 0) {
            rc = -1;
        }
        if (rc < 0)
            break;
    }
    evhttp_clear_headers(&kv);
    return rc;
}

static void s_ingest(broker_t *b, struct evhttp_request *req, const char *topic,
                     const char *query)
{
    item_t *it = broker_item_new(ITEM_HTTP);
    it->req = req;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), s_on_conn_close, it);
    TAILQ_INSERT_TAIL(&b->pending, it, order);
    b->npending++;
    b->in_total++;
    it->topic = broker_topic_index(topic);
    if (it->topic < 0) {
        char err[128];
        snprintf(err, sizeof(err), "unknown topic '%.64s'", topic);
        broker_reject(b, it, KF_REJ_UNKNOWN_TOPIC, err);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    b->topics[it->topic].in++;
    b->topics[it->topic].bytes += n;
    char *text = kf_xmalloc(n + 1);
    evbuffer_remove(in, text, n);
    text[n] = '\0';
    char err[512];
    kf_env_t *env = kf_json_parse_event(text, n, topic, err, sizeof(err));
    free(text);
    if (!env) {
        broker_reject(b, it, KF_REJ_BAD_JSON, err);
        return;
    }
    if (env->event_id && kf_utf8_valid(env->event_id, strlen(env->event_id)))
        it->event_id = kf_xstrdup(env->event_id);
    int backfill = s_query_backfill(query);
    if (backfill < 0) {
        kf_env_free(env);
        broker_reject(b, it, KF_REJ_INVALID_FIELD,
                      "the query takes only backfill=1|true|0|false");
        return;
    }
    if (backfill) {
        env->has_backfill = 1;
        env->backfill = 1;
    }
    kf_reject_t why = kf_proto_validate(env, topic, err, sizeof(err));
    size_t len = 0;
    uint8_t *bytes = why == KF_REJ_NONE ? kf_env_pack(env, &len) : NULL;
    if (why == KF_REJ_NONE && len > (size_t)b->bconf->max_event_bytes) {
        why = KF_REJ_OVERSIZED;
        snprintf(err, sizeof(err), "event of %zu bytes is over the %lld-byte limit", len,
                 b->bconf->max_event_bytes);
    }
    if (why != KF_REJ_NONE)
        broker_reject(b, it, why, err);
    else if (kf_proto_topic_is_out(topic))
        broker_reject(b, it, KF_REJ_UNKNOWN_TOPIC, "output topics are not accepted over HTTP");
    else
        broker_submit(b, it, bytes, len, topic, env);
    free(bytes);
    kf_env_free(env);
}

static void s_on_request(struct evhttp_request *req, void *arg)
{
    broker_t *b = arg;
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char path[256];
    const char *q = strchr(uri, '?');
    size_t n = q ? (size_t)(q - uri) : strlen(uri);
    if (n >= sizeof(path))
        n = sizeof(path) - 1;
    memcpy(path, uri, n);
    path[n] = '\0';
    if (strncmp(path, "/v1/events/", 11) == 0) {
        if (cmd != EVHTTP_REQ_POST)
            return s_send(req, 405, "text/plain", "use POST\n");
        if (b->stopping)
            return s_send(req, 503, "application/json",
                          "{\"result\":\"error\",\"error\":\"broker is stopping\"}\n");
        return s_ingest(b, req, path + 11, q ? q + 1 : NULL);
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
        return s_send(req, 405, "text/plain", "method not allowed\n");
    if (strcmp(path, "/healthz") == 0) {
        bool up = kf_redis_ready(b->redis);
        return s_send(req, up ? 200 : 503, "text/plain",
                      up ? "ok\n" : "degraded: redis unavailable\n");
    }
    if (strcmp(path, "/stats") == 0)
        return s_send_owned(req, 200, "application/json", broker_stats_json(b));
    if (strcmp(path, "/metrics") == 0)
        return s_send_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                            broker_stats_prometheus(b));
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
        return s_send(req, 200, "text/html; charset=utf-8", kf_broker_dashboard_html);
    s_send(req, 404, "text/plain", "not found\n");
}

int broker_http_start(broker_t *b, char *err, size_t errlen)
{
    const char *listen = b->conf->http_listen;
    const char *colon = strrchr(listen, ':');
    long long port;
    if (!colon || kf_parse_ll(colon + 1, 1, 65535, &port)) {
        snprintf(err, errlen, "[http] listen: expected host:port, got '%s'", listen);
        return KF_ERR;
    }
    char host[128];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    b->http = evhttp_new(b->base);
    evhttp_set_max_body_size(b->http, (ev_ssize_t)b->bconf->http_max_body);
    evhttp_set_timeout(b->http, 30);
    evhttp_set_allowed_methods(b->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(b->http, s_on_request, b);
    if (evhttp_bind_socket(b->http, host, (uint16_t)port) != 0) {
        snprintf(err, errlen, "[http] listen: cannot bind %s: %s", listen,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return KF_ERR;
    }
    return KF_OK;
}

void broker_http_stop(broker_t *b)
{
    if (b->http)
        evhttp_free(b->http);
    b->http = NULL;
}
