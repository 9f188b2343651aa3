/* Unit tests for src/core/whsign.c: the whsec_ secret convention and the v1 signature, against the
 * Standard Webhooks reference vector (secret, msg id, timestamp, payload and signature as the reference
 * libraries' tests use them; recomputed with Python's hmac). */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/whsign.h"

static void test_reference_vector(void **state)
{
    (void)state;
    unsigned char *key;
    size_t len;
    assert_int_equal(lx_whsec_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key, &len), LX_OK);
    assert_int_equal(len, 24);
    const char *body = "{\"test\": 2432232314}";
    char sig[LX_WHSIG_LEN];
    lx_webhook_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body), sig);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Any change to the id, the time or the body changes it. */
    char other[LX_WHSIG_LEN];
    lx_webhook_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen(body), other);
    assert_string_not_equal(sig, other);
    lx_webhook_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJel", 1614265330, body, strlen(body), other);
    assert_string_not_equal(sig, other);
    lx_webhook_sign(key, len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body) - 1, other);
    assert_string_not_equal(sig, other);
    free(key);
}

static void test_secret_forms(void **state)
{
    (void)state;
    unsigned char *key;
    size_t len;
    /* Bare base64 is accepted too; padding is not counted as key bytes. */
    assert_int_equal(lx_whsec_decode("MDEyMzQ1Njc4OWFiY2RlZmc=", &key, &len), LX_OK);
    assert_int_equal(len, 17);
    assert_memory_equal(key, "0123456789abcdefg", 17);
    free(key);
    assert_int_equal(lx_whsec_decode("whsec_MDEyMzQ1Njc4OWFiY2RlZmdo", &key, &len), LX_OK);
    assert_int_equal(len, 18);
    free(key);
    assert_int_equal(lx_whsec_decode("whsec_", &key, &len), LX_ERR);
    assert_int_equal(lx_whsec_decode("whsec_not base64!", &key, &len), LX_ERR);
    assert_int_equal(lx_whsec_decode("whsec_abc", &key, &len), LX_ERR);       /* not a whole quantum */
    assert_int_equal(lx_whsec_decode("whsec_c2hvcnQ=", &key, &len), LX_ERR);  /* "short": under 16 bytes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reference_vector), cmocka_unit_test(test_secret_forms)};
    return cmocka_run_group_tests_name("whsign", tests, NULL, NULL);
}
