/* libFuzzer target: untrusted bus frames -> kf_proto_decode -> kf_json_dump_event.
 * Input layout: [n = length of the topic frame][n bytes of topic][the Envelope bytes];
 * n = 0 stands for no topic frame (HTTP ingest). An accepted envelope must print as valid
 * JSON, and kf_proto_peek_seq (what workers read live frames with) must agree with it; what
 * kf_proto_peek_event_id reads (the broker's answers name rejected events by it) is printable
 * UTF-8 without spaces and, for an envelope that decodes, its event_id. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kf_json.h"
#include "kf_util.h"

static void s_check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || (size_t)data[0] > size - 1)
        return 0;
    size_t n = data[0];
    char topic[256];
    memcpy(topic, data + 1, n);
    topic[n] = '\0';
    kf_reject_t why = KF_REJ_NONE;
    char err[256];
    uint64_t peeked = kf_proto_peek_seq(data + 1 + n, size - 1 - n);
    char id[KF_EVENT_ID_PEEK_MAX];
    bool has_id = kf_proto_peek_event_id(data + 1 + n, size - 1 - n, id, sizeof(id));
    if (has_id) {
        s_check(kf_utf8_valid(id, strlen(id)) && strlen(id) > 0);
        for (const char *c = id; *c; c++)
            s_check((unsigned char)*c > ' ' && *c != 0x7f);
    }
    kf_env_t *env = kf_proto_decode(data + 1 + n, size - 1 - n, n ? topic : NULL, 65536, &why,
                                    err, sizeof(err));
    if (!env) {
        s_check(why != KF_REJ_NONE);
        return 0;
    }
    s_check(peeked == env->seq);
    if (has_id)
        s_check(env->event_id && strcmp(env->event_id, id) == 0);
    char *text = kf_json_dump_event(env);
    s_check(kf_utf8_valid(text, strlen(text)));
    json_t *j = json_loads(text, 0, NULL);
    s_check(j != NULL && json_is_object(j));
    json_decref(j);
    free(text);
    kf_env_free(env);
    return 0;
}
