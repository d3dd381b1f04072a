/* kf_webhook: the Standard Webhooks test vector, rotation headers, verification and the
 * secrets file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kf_util.h"
#include "kf_webhook.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define BODY "{\"test\": 2432232314}"

static void test_vector(void **state)
{
    char sig[KF_WEBHOOK_SIG_LEN];
    assert_int_equal(kf_webhook_sign(SECRET, ID, 1614265330, BODY, strlen(BODY), sig), KF_OK);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_true(kf_webhook_verify(SECRET, ID, "1614265330", BODY, strlen(BODY), sig));
    assert_false(kf_webhook_verify(SECRET, ID, "1614265331", BODY, strlen(BODY), sig));
    assert_false(kf_webhook_verify(SECRET, ID, "1614265330", BODY, strlen(BODY) - 1, sig));
    assert_false(kf_webhook_verify(SECRET, "msg_other", "1614265330", BODY, strlen(BODY), sig));
}

static void test_rotation(void **state)
{
    const char *secrets[] = {"whsec_c2VjcmV0LW9uZQ==", SECRET};
    char *h = kf_webhook_header(secrets, 2, ID, 1614265330, BODY, strlen(BODY));
    assert_non_null(h);
    assert_non_null(strchr(h, ' '));
    assert_non_null(strstr(h, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    assert_true(kf_webhook_verify(secrets[0], ID, "1614265330", BODY, strlen(BODY), h));
    assert_true(kf_webhook_verify(SECRET, ID, "1614265330", BODY, strlen(BODY), h));
    assert_false(kf_webhook_verify("whsec_b3RoZXI=", ID, "1614265330", BODY, strlen(BODY), h));
    free(h);
    const char *bad[] = {"nope"};
    assert_null(kf_webhook_header(bad, 1, ID, 1, BODY, 1));
}

static void test_bad_keys(void **state)
{
    unsigned char key[64];
    assert_int_equal(kf_webhook_key("whsec_", key), -1);
    assert_int_equal(kf_webhook_key("whsec_abc", key), -1);
    assert_int_equal(kf_webhook_key("whsec_ab$d", key), -1);
    assert_int_equal(kf_webhook_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key), -1);
    assert_int_equal(kf_webhook_key("whsec_c2VjcmV0LW9uZQ==", key), 10);
    assert_memory_equal(key, "secret-one", 10);
}

static void test_secrets_file(void **state)
{
    char path[] = "/tmp/kf_secrets_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# shops\ns1 %s\ns2 whsec_c2VjcmV0LW9uZQ== %s  # rotating\n\n* whsec_b3RoZXI=\n",
            SECRET, SECRET);
    fclose(f);
    char err[256];
    kf_secrets_t *s = kf_secrets_load(path, err, sizeof(err));
    assert_non_null(s);
    size_t n;
    const char *const *v = kf_secrets_get(s, "s1", &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], SECRET);
    v = kf_secrets_get(s, "s2", &n);
    assert_int_equal(n, 2);
    v = kf_secrets_get(s, "s9", &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "whsec_b3RoZXI=");
    kf_secrets_destroy(&s);
    assert_null(s);

    f = fopen(path, "w");
    fprintf(f, "s1 %s\ns3 notasecret\n", SECRET);
    fclose(f);
    assert_null(kf_secrets_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, ":2: secret 1 of 's3'"));
    f = fopen(path, "w");
    fprintf(f, "s4\n");
    fclose(f);
    assert_null(kf_secrets_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "no secret for 's4'"));
    unlink(path);
    assert_null(kf_secrets_load(path, err, sizeof(err)));
    assert_null(kf_secrets_get(NULL, "s1", &n));
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_secrets_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
