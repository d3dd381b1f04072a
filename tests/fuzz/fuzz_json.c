/* libFuzzer target: untrusted JSON text -> kf_json_parse_event (no topic hint). When it is
 * accepted: dump it, pack it, unpack it, and check that neither the wire format nor a second
 * parse of the dump changes what the JSON shows. Any violated property aborts. */
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
    char err[256];
    kf_env_t *env = kf_json_parse_event((const char *)data, size, NULL, err, sizeof(err));
    if (!env) {
        s_check(err[0] != '\0' && kf_utf8_valid(err, strlen(err)));
        return 0;
    }
    (void)kf_proto_validate(env, NULL, err, sizeof(err));
    char *text = kf_json_dump_event(env);

    size_t len;
    uint8_t *buf = kf_env_pack(env, &len);
    kf_env_t *back = kefu__v1__envelope__unpack(NULL, len, buf);
    s_check(back != NULL);
    char *text2 = kf_json_dump_event(back);
    s_check(strcmp(text, text2) == 0);

    kf_env_t *again = kf_json_parse_event(text, strlen(text), NULL, err, sizeof(err));
    s_check(again != NULL);
    char *text3 = kf_json_dump_event(again);
    s_check(strcmp(text, text3) == 0);

    free(text3);
    kf_env_free(again);
    free(text2);
    kf_env_free(back);
    free(buf);
    free(text);
    kf_env_free(env);
    return 0;
}
