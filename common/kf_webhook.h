/* kf_webhook: Standard Webhooks 1.0 signatures (DESIGN §3.9) and the secrets file, the one
 * place both kefu-dispatch (signing) and `kefuctl webhook-listen` (verifying) use.
 *
 * A secret is "whsec_<base64 key>"; the signature of one attempt is
 * "v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>", and the header carries one per
 * secret, space-separated, while a shop rotates its secret. */
#ifndef KF_WEBHOOK_H
#define KF_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KF_WEBHOOK_MAX_SECRETS 4
#define KF_WEBHOOK_SIG_LEN 48 /* "v1," + 44 base64 characters + NUL */

/* Decodes "whsec_<base64>" into key[64]; returns the key length (1..64) or -1. */
int kf_webhook_key(const char *secret, unsigned char *key);
/* Writes "v1,<base64>" into out (>= KF_WEBHOOK_SIG_LEN). KF_ERR for a bad secret. */
int kf_webhook_sign(const char *secret, const char *id, long long ts, const void *body,
                    size_t len, char *out);
/* The webhook-signature header value, one signature per secret (malloc'd; NULL when a secret
 * is bad). */
char *kf_webhook_header(const char *const *secrets, size_t n, const char *id, long long ts,
                        const void *body, size_t len);
/* true when one "v1," signature of header matches secret (constant-time comparison). */
bool kf_webhook_verify(const char *secret, const char *id, const char *ts, const void *body,
                       size_t len, const char *header);

/* [dispatch] secrets_file: lines "<shop_id> whsec_... [whsec_...]", '*' for every other shop,
 * '#' comments. */
typedef struct kf_secrets_s kf_secrets_t;

/* NULL with "path:line: ..." in err when the file cannot be read or a line is bad. */
kf_secrets_t *kf_secrets_load(const char *path, char *err, size_t errlen);
void kf_secrets_destroy(kf_secrets_t **self_p);
/* The secrets of shop (its line, else '*'): *n of them, NULL when it has none. Borrowed. */
const char *const *kf_secrets_get(const kf_secrets_t *self, const char *shop, size_t *n);
size_t kf_secrets_count(const kf_secrets_t *self);

#endif
