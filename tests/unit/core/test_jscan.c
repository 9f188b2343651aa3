/* Unit tests for src/core/jscan.c: what it accepts, jansson accepts (it may leave more to jansson, never
 * less), checked on fixed cases and on many mutations of recorded bodies; and the walks over members and
 * items, the member cut, and the value helpers. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/jscan.h"

#include <jansson.h>

static bool jansson_takes(const char *p, size_t n)
{
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY, NULL);
    json_decref(j);
    return j != NULL;
}

static void check_sound(const char *p, size_t n)
{
    struct lx_jval v;
    if (lx_jscan(p, n, &v) == LX_OK && !jansson_takes(p, n))
        fail_msg("jscan takes what jansson refuses: %.*s", (int)n, p);
}

static void test_accepts_what_jansson_accepts(void **state)
{
    (void)state;
    const char *good[] = {
        "{}", "[]", " {\"a\" : [1, -2, 3.5, 1e5, -0, 0.25E-3, true, false, null, \"x\"]} ", "\"\\u00e9\\ud83d\\ude00\"",
        "{\"k\":{\"n\":{\"m\":[[[]]]}}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"é 日本\"", "123456789012345678",
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(good); i++) {
        struct lx_jval v;
        assert_int_equal(lx_jscan(good[i], strlen(good[i]), &v), LX_OK);
        assert_true(jansson_takes(good[i], strlen(good[i])));
    }
    /* Refused by both, or left to jansson. */
    const char *not_ok[] = {
        "", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul",
        "\"\\x\"", "\"\\u12\"", "\"a\nb\"", "\"\\u0000\"", "\"\\udc00\"", "\"\\ud800x\"", "\"\xff\"", "\"\xc0\xaf\"",
        "{} {}", "[1] x", "1234567890123456789", "1e400", "{\"a\":1}}",
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(not_ok); i++) {
        struct lx_jval v;
        assert_int_equal(lx_jscan(not_ok[i], strlen(not_ok[i]), &v), LX_AGAIN);
    }
    char deep[2 * LX_JSCAN_MAX_DEPTH + 3];
    memset(deep, '[', LX_JSCAN_MAX_DEPTH + 1);
    memset(deep + LX_JSCAN_MAX_DEPTH + 1, ']', LX_JSCAN_MAX_DEPTH + 1);
    struct lx_jval v;
    assert_int_equal(lx_jscan(deep, 2 * (LX_JSCAN_MAX_DEPTH + 1), &v), LX_AGAIN);
}

/* Flip, drop and insert bytes of recorded bodies: whatever jscan still takes, jansson must take too. */
static void test_mutations_are_sound(void **state)
{
    (void)state;
    const char *files[] = {"openai_chat_nonstream_tool_call.json", "anthropic_messages_nonstream_tool_use.json",
                           "openai_error_401_invalid_api_key.json", "ollama_api_tags.docs.json"};
    const char alphabet[] = "{}[],:\"\\ 0123456789.eE+-tfnul\x01\x7f\xc3\xa9\xff";
    uint64_t s = 0x2545F4914F6CDD1DULL;
    for (size_t f = 0; f < LX_ARRAY_LEN(files); f++) {
        size_t len;
        char *text = read_fixture(files[f], &len);
        char *buf = malloc(len + 2);
        check_sound(text, len);
        for (int round = 0; round < 20000; round++) {
            memcpy(buf, text, len);
            size_t n = len;
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            size_t at = (size_t)(s % len);
            char c = alphabet[(s >> 32) % (sizeof alphabet - 1)];
            switch (round % 3) {
            case 0: buf[at] = c; break;
            case 1: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
            default: memmove(buf + at + 1, buf + at, n - at); buf[at] = c; n++; break;
            }
            check_sound(buf, n);
        }
        free(buf);
        free(text);
    }
}

static void test_members_items_and_cuts(void **state)
{
    (void)state;
    const char *text = "{\"a\":1, \"b\" : [1, {\"x\":2}, \"s\"], \"c\":\"d\"}";
    struct lx_jval root;
    assert_int_equal(lx_jscan(text, strlen(text), &root), LX_OK);
    struct lx_jmember m[] = {{.key = "a"}, {.key = "b"}, {.key = "c"}, {.key = "z"}};
    size_t n;
    assert_int_equal(lx_jscan_members(&root, m, 4, &n), LX_OK);
    assert_int_equal(n, 3);
    assert_int_equal(m[3].count, 0);
    long long v;
    assert_true(lx_jval_int(&m[0].val, &v));
    assert_int_equal(v, 1);
    assert_int_equal(m[1].val.type, LX_JARRAY);
    assert_int_equal(lx_jscan_count(&m[1].val), 3);
    assert_true(lx_jval_is(&m[2].val, "d"));
    /* Each cut leaves an object that jansson reads as the original without that member. */
    for (int i = 0; i < 3; i++) {
        char cut[128];
        size_t k = m[i].cut_at;
        memcpy(cut, text, k);
        memcpy(cut + k, text + k + m[i].cut_len, strlen(text) - k - m[i].cut_len);
        cut[strlen(text) - m[i].cut_len] = '\0';
        json_t *want = json_loads(text, 0, NULL), *got = json_loads(cut, 0, NULL);
        assert_non_null(got);
        json_object_del(want, m[i].key);
        assert_true(json_equal(want, got));
        json_decref(want);
        json_decref(got);
    }
    /* The only member's cut leaves {}. */
    const char *one = "{ \"u\" : null }";
    struct lx_jmember u = {.key = "u"};
    assert_int_equal(lx_jscan(one, strlen(one), &root), LX_OK);
    assert_int_equal(lx_jscan_members(&root, &u, 1, NULL), LX_OK);
    assert_int_equal(u.cut_len, strlen("\"u\" : null"));
    /* Duplicates are counted; an escaped key cannot be compared. */
    const char *dup = "{\"a\":1,\"a\":2}";
    struct lx_jmember a = {.key = "a"};
    assert_int_equal(lx_jscan(dup, strlen(dup), &root), LX_OK);
    assert_int_equal(lx_jscan_members(&root, &a, 1, NULL), LX_OK);
    assert_int_equal(a.count, 2);
    assert_true(lx_jval_int(&a.val, &v) && v == 2);
    const char *esc = "{\"\\u0061\":1}";
    assert_int_equal(lx_jscan(esc, strlen(esc), &root), LX_OK);
    assert_int_equal(lx_jscan_members(&root, &a, 1, NULL), LX_AGAIN);
    /* Fields one at a time. */
    assert_int_equal(lx_jscan(text, strlen(text), &root), LX_OK);
    struct lx_jiter it;
    struct lx_jval key, val;
    lx_jscan_fields(&root, &it);
    int fields = 0;
    while (lx_jscan_next_field(&it, &key, &val))
        fields++;
    assert_int_equal(fields, 3);
    assert_false(lx_jval_int(&m[2].val, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_what_jansson_accepts),
        cmocka_unit_test(test_mutations_are_sound),
        cmocka_unit_test(test_members_items_and_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
