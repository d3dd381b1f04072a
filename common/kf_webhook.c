/* kf_webhook: see kf_webhook.h. */
#include "kf_webhook.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_util.h"

int kf_webhook_key(const char *secret, unsigned char *key)
{
    if (!secret || strncmp(secret, "whsec_", 6) != 0)
        return -1;
    const char *b = secret + 6;
    size_t n = strlen(b);
    if (n == 0 || n % 4 != 0 || n > 88)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)b[i]) && b[i] != '+' && b[i] != '/' &&
            !(b[i] == '=' && i >= n - 2))
            return -1;
    unsigned char buf[72];
    int len = EVP_DecodeBlock(buf, (const unsigned char *)b, (int)n);
    if (len < 0)
        return -1;
    len -= (b[n - 1] == '=') + (b[n - 2] == '=');
    if (len <= 0 || len > 64)
        return -1;
    memcpy(key, buf, (size_t)len);
    return len;
}

int kf_webhook_sign(const char *secret, const char *id, long long ts, const void *body,
                    size_t len, char *out)
{
    unsigned char key[64], mac[EVP_MAX_MD_SIZE];
    int klen = kf_webhook_key(secret, key);
    if (klen < 0)
        return KF_ERR;
    char head[320];
    int hl = snprintf(head, sizeof(head), "%s.%lld.", id, ts);
    if (hl < 0 || (size_t)hl >= sizeof(head))
        return KF_ERR;
    /* HMAC over head + body without copying the body */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t mlen = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, (size_t)klen, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)hl) &&
             EVP_MAC_update(ctx, body, len) && EVP_MAC_final(ctx, mac, &mlen, sizeof(mac));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok || mlen != 32)
        return KF_ERR;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, 32);
    return KF_OK;
}

char *kf_webhook_header(const char *const *secrets, size_t n, const char *id, long long ts,
                        const void *body, size_t len)
{
    if (n == 0)
        return NULL;
    char *out = kf_xmalloc(n * KF_WEBHOOK_SIG_LEN + 1), *p = out;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ' ';
        if (kf_webhook_sign(secrets[i], id, ts, body, len, p) != KF_OK) {
            free(out);
            return NULL;
        }
        p += strlen(p);
    }
    return out;
}

bool kf_webhook_verify(const char *secret, const char *id, const char *ts, const void *body,
                       size_t len, const char *header)
{
    long long t;
    char want[KF_WEBHOOK_SIG_LEN];
    if (!id || !ts || !header || kf_parse_ll(ts, 0, 99999999999LL, &t) != KF_OK ||
        kf_webhook_sign(secret, id, t, body, len, want) != KF_OK)
        return false;
    size_t wl = strlen(want);
    bool match = false;
    for (const char *p = header; *p;) {
        while (*p == ' ')
            p++;
        size_t k = strcspn(p, " ");
        if (k == wl && CRYPTO_memcmp(p, want, wl) == 0)
            match = true;
        p += k;
    }
    return match;
}

/* ---------------------------------------------------------------- secrets file */

typedef struct {
    char *shop;
    char *secret[KF_WEBHOOK_MAX_SECRETS];
    size_t n;
} s_entry_t;

struct kf_secrets_s {
    s_entry_t *e;
    size_t n;
    const s_entry_t *any; /* '*' */
};

static int s_parse_line(kf_secrets_t *self, char *line, char *err, size_t errlen)
{
    char *save = NULL, *shop = strtok_r(line, " \t", &save);
    if (!shop || *shop == '#')
        return KF_OK;
    s_entry_t e = {.shop = kf_xstrdup(shop)};
    unsigned char key[64];
    for (char *s; (s = strtok_r(NULL, " \t", &save));) {
        if (*s == '#')
            break;
        if (e.n == KF_WEBHOOK_MAX_SECRETS) {
            kf_err(err, errlen, "more than %d secrets for '%s'", KF_WEBHOOK_MAX_SECRETS, shop);
            goto fail;
        }
        if (kf_webhook_key(s, key) < 0) {
            kf_err(err, errlen, "secret %zu of '%s' is not whsec_<base64>", e.n + 1, shop);
            goto fail;
        }
        e.secret[e.n++] = kf_xstrdup(s);
    }
    if (e.n == 0) {
        kf_err(err, errlen, "no secret for '%s'", shop);
        goto fail;
    }
    self->e = kf_xrealloc(self->e, (self->n + 1) * sizeof(*self->e));
    self->e[self->n++] = e;
    return KF_OK;
fail:
    for (size_t i = 0; i < e.n; i++)
        free(e.secret[i]);
    free(e.shop);
    return KF_ERR;
}

kf_secrets_t *kf_secrets_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        kf_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    kf_secrets_t *self = kf_xcalloc(1, sizeof(*self));
    char line[1024], why[256];
    for (int no = 1; fgets(line, sizeof(line), f); no++) {
        line[strcspn(line, "\r\n")] = '\0';
        if (s_parse_line(self, line, why, sizeof(why)) != KF_OK) {
            kf_err(err, errlen, "%s:%d: %s", path, no, why);
            fclose(f);
            kf_secrets_destroy(&self);
            return NULL;
        }
    }
    fclose(f);
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->e[i].shop, "*") == 0)
            self->any = &self->e[i];
    return self;
}

void kf_secrets_destroy(kf_secrets_t **self_p)
{
    kf_secrets_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++) {
        for (size_t k = 0; k < self->e[i].n; k++) {
            OPENSSL_cleanse(self->e[i].secret[k], strlen(self->e[i].secret[k]));
            free(self->e[i].secret[k]);
        }
        free(self->e[i].shop);
    }
    free(self->e);
    free(self);
    *self_p = NULL;
}

const char *const *kf_secrets_get(const kf_secrets_t *self, const char *shop, size_t *n)
{
    const s_entry_t *hit = NULL;
    for (size_t i = 0; self && i < self->n && !hit; i++)
        if (shop && strcmp(self->e[i].shop, shop) == 0)
            hit = &self->e[i];
    if (!hit && self)
        hit = self->any;
    *n = hit ? hit->n : 0;
    return hit ? (const char *const *)hit->secret : NULL;
}

size_t kf_secrets_count(const kf_secrets_t *self) { return self ? self->n : 0; }
