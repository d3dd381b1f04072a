/* libFuzzer target: an untrusted kefu:actions entry as kefu-dispatch reads it. The input is
 * "<topic>\n<x>\n<j>": dispatch_item_new, then the webhook body, the state JSON and its
 * restore. An accepted entry must give a body that is valid UTF-8 JSON, and a state that
 * restores to "pending" with the same attempts. Any violated property aborts. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "kf_util.h"

static void s_check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = kf_xstrndup((const char *)data, size);
    char *topic = in, *x = strchr(topic, '\n'), *j = NULL;
    if (x) {
        *x++ = '\0';
        j = strchr(x, '\n');
        if (j)
            *j++ = '\0';
    }
    if (!j) {
        free(in);
        return 0;
    }
    char *fv[8] = {"t", topic, "id", "a-1", "j", j, "x", x};
    size_t fl[8];
    for (int i = 0; i < 8; i++)
        fl[i] = strlen(fv[i]);
    char err[256];
    item_t *it = dispatch_item_new("1794362400000-0", fv, fl, 8, err, sizeof(err));
    if (!it) {
        s_check(err[0] != '\0');
        free(in);
        return 0;
    }
    if (dispatch_item_body(it, 480, err, sizeof(err)) == KF_OK) {
        s_check(kf_utf8_valid(it->body, it->blen));
        json_t *b = json_loadb(it->body, it->blen, 0, NULL);
        s_check(json_is_object(b));
        json_decref(b);
    }
    dispatch_item_log(it, 1, 500, 3, "x");
    it->n = 2;
    char *st = dispatch_item_state(it, "http://h/");
    s_check(st != NULL);
    const char *s = dispatch_item_restore(it, st, strlen(st));
    s_check(s && !strcmp(s, "pending") && it->n == 2);
    free(st);
    dispatch_item_free(it);
    free(in);
    return 0;
}
