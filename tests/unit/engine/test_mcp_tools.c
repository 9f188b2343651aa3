/* Unit tests for src/mcp_tools.c: the text a model sees for each kind of tool result, 2026-07-28's
 * header value encoding, and which x-mcp-header marks are valid. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/mcp_internal.h"

static char *text_of(const char *result_json, size_t max)
{
    json_t *r = json_loads(result_json, 0, NULL);
    assert_non_null(r);
    char *t = lx_mcp_result_text(r, max);
    json_decref(r);
    return t;
}

static void expect_text(const char *result_json, const char *want)
{
    char *t = text_of(result_json, 0);
    assert_string_equal(t, want);
    free(t);
}

static void test_result_text(void **state)
{
    (void)state;
    expect_text("{\"content\":[{\"type\":\"text\",\"text\":\"one\"},{\"type\":\"text\",\"text\":\"two\"}]}", "one\ntwo");
    /* 'abcd' is 4 bytes: base64 YWJjZA== */
    expect_text("{\"content\":[{\"type\":\"image\",\"data\":\"YWJjZA==\",\"mimeType\":\"image/png\"}]}",
                "[image: image/png, 4 bytes]");
    expect_text("{\"content\":[{\"type\":\"audio\",\"data\":\"YWJj\"}]}", "[audio: unknown type, 3 bytes]");
    expect_text("{\"content\":[{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///a\",\"text\":\"body\"}}]}",
                "[resource: file:///a]\nbody");
    expect_text("{\"content\":[{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///b\",\"mimeType\":\"application/pdf\","
                "\"blob\":\"YWI=\"}}]}",
                "[resource: file:///b, application/pdf, 2 bytes]");
    expect_text("{\"content\":[{\"type\":\"resource_link\",\"uri\":\"file:///c\",\"name\":\"c.txt\"}]}",
                "[resource link: c.txt file:///c]");
    expect_text("{\"content\":[{\"type\":\"hologram\"}]}", "[hologram content]");
    /* structuredContent shows when no text says it, and not twice when a text does. */
    expect_text("{\"content\":[],\"structuredContent\":{\"a\":1}}", "{\"a\":1}");
    expect_text("{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"a\\\": 1}\"}],\"structuredContent\":{\"a\":1}}",
                "{\"a\": 1}");
    expect_text("{\"content\":[]}", "(the tool returned no content)");
    expect_text("{}", "(the tool returned no content)");
}

static void test_result_text_cut(void **state)
{
    (void)state;
    char *t = text_of("{\"content\":[{\"type\":\"text\",\"text\":\"abcdefghij\"}]}", 4);
    assert_string_equal(t, "abcd\n[... cut: 4 of 10 bytes shown]");
    free(t);
    /* Never inside a UTF-8 sequence: "é" is two bytes. */
    t = text_of("{\"content\":[{\"type\":\"text\",\"text\":\"a\\u00e9b\"}]}", 2);
    assert_true(strncmp(t, "a\n[... cut: 1 of 4", 18) == 0);
    free(t);
}

static void expect_header(const char *in, const char *want)
{
    char *v = mcp_header_value(in, strlen(in));
    assert_string_equal(v, want);
    free(v);
}

static void test_header_values(void **state)
{
    (void)state;
    /* The revision's own examples. */
    expect_header("us-west1", "us-west1");
    expect_header("Hello, \xe4\xb8\x96\xe7\x95\x8c", "=?base64?SGVsbG8sIOS4lueVjA==?=");
    expect_header(" padded ", "=?base64?IHBhZGRlZCA=?=");
    expect_header("line1\nline2", "=?base64?bGluZTEKbGluZTI=?=");
    expect_header("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    expect_header("inner space\tand tab", "inner space\tand tab");
    expect_header("", "=?base64?" "?="); /* (split: "??=" is a trigraph) */
}

static int scan(const char *schema_json, json_t *decls, char *why, size_t n)
{
    json_t *schema = json_loads(schema_json, 0, NULL);
    assert_non_null(schema);
    int rc = mcp_xheader_scan(schema, decls, why, n);
    json_decref(schema);
    return rc;
}

static void expect_invalid(const char *schema_json, const char *want)
{
    char why[200] = "";
    assert_int_equal(scan(schema_json, NULL, why, sizeof why), LX_ERR);
    if (!strstr(why, want))
        fail_msg("\"%s\" lacks \"%s\"", why, want);
}

static void test_xheader_scan(void **state)
{
    (void)state;
    json_t *decls = json_array();
    char why[200];
    assert_int_equal(scan("{\"type\":\"object\",\"properties\":{\"region\":{\"type\":\"string\",\"x-mcp-header\":\"Region\"},"
                          "\"opts\":{\"type\":\"object\",\"properties\":{\"zone\":{\"type\":\"integer\","
                          "\"x-mcp-header\":\"Zone\"}}},\"q\":{\"type\":\"string\"}}}",
                          decls, why, sizeof why),
                     LX_OK);
    assert_int_equal(json_array_size(decls), 2);
    char *s = json_dumps(decls, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(strstr(s, "{\"header\":\"Region\",\"path\":[\"region\"]}"));
    assert_non_null(strstr(s, "{\"header\":\"Zone\",\"path\":[\"opts\",\"zone\"]}"));
    free(s);
    json_decref(decls);
    /* A property named x-mcp-header is just a property. */
    assert_int_equal(scan("{\"properties\":{\"x-mcp-header\":{\"type\":\"string\"}}}", NULL, why, sizeof why), LX_OK);

    expect_invalid("{\"properties\":{\"a\":{\"type\":\"number\",\"x-mcp-header\":\"A\"}}}", "not a string, integer or boolean");
    expect_invalid("{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"\"}}}", "empty");
    expect_invalid("{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"Bad Name\"}}}", "not a header name");
    expect_invalid("{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"Same\"},"
                   "\"b\":{\"type\":\"string\",\"x-mcp-header\":\"same\"}}}", "appears twice");
    expect_invalid("{\"properties\":{\"a\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"x-mcp-header\":\"A\"}}}}",
                   "not reached through properties");
    expect_invalid("{\"oneOf\":[{\"properties\":{\"a\":{\"type\":\"string\",\"x-mcp-header\":\"A\"}}}]}",
                   "not reached through properties");
    expect_invalid("{\"type\":\"object\",\"x-mcp-header\":\"Root\"}", "not reached through properties");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_text), cmocka_unit_test(test_result_text_cut),
        cmocka_unit_test(test_header_values), cmocka_unit_test(test_xheader_scan),
    };
    return cmocka_run_group_tests_name("mcp_tools", tests, NULL, NULL);
}
