/* Unit tests for src/reqhead.c: every framing rule of docs/api.md "HTTP strictness", the canonical form
 * MHD is given, incomplete heads, the size limit, and chunked bodies fed whole and split everywhere. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/reqhead.h"

/* Literal bytes, NULs included. */
#define S(lit) (lit), (sizeof(lit) - 1)

static int parse(const char *s, size_t n, struct lx_reqhead *h)
{
    return lx_reqhead_parse(s, n, 32768, h, NULL);
}

static void refused(const char *s, size_t n, int status, const char *code)
{
    struct lx_reqhead h;
    if (parse(s, n, &h) != LX_ERR)
        fail_msg("accepted: %.*s", (int)n, s);
    if (h.status != status)
        fail_msg("status %d, not %d, for: %.*s (%s)", h.status, status, (int)n, s, h.message);
    assert_string_equal(h.code, code);
    assert_true(h.message[0] != '\0');
}

/* The canonical head of an accepted request, with lx_reqhead_finish's ending (caller frees). */
static char *canon(const char *s, size_t n, struct lx_reqhead *h)
{
    struct lx_buf b = {0};
    assert_int_equal(lx_reqhead_parse(s, n, 32768, h, &b), LX_OK);
    lx_reqhead_finish(&b, h, h->content_length);
    return lx_buf_steal(&b, NULL);
}

static void test_simple_requests(void **state)
{
    (void)state;
    struct lx_reqhead h;
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
    assert_int_equal(parse(get, strlen(get), &h), LX_OK);
    assert_int_equal(h.len, strlen("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_int_equal(h.body, LX_BODY_NONE);
    assert_false(h.close);
    assert_false(h.http10);
    assert_int_equal(h.method_len, 3);
    assert_memory_equal(h.method, "GET", 3);
    assert_int_equal(h.target_len, 8);

    char *c = canon(S("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A:  v  \r\n\r\n"), &h);
    assert_int_equal(h.body, LX_BODY_LENGTH);
    assert_int_equal(h.content_length, 5);
    assert_string_equal(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-A: v\r\nContent-Length: 5\r\n\r\n");
    free(c);

    /* HTTP/1.0: no Host needed, closes unless keep-alive; HTTP/1.2 is read as 1.1. */
    c = canon(S("GET / HTTP/1.0\r\n\r\n"), &h);
    assert_true(h.http10);
    assert_true(h.close);
    assert_string_equal(c, "GET / HTTP/1.0\r\nConnection: close\r\n\r\n");
    free(c);
    assert_int_equal(parse(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &h), LX_OK);
    assert_false(h.close);
    c = canon(S("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), &h);
    assert_string_equal(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    free(c);
    assert_int_equal(parse(S("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n"), &h), LX_OK);
    assert_true(h.close);

    /* Empty lines before the request line are skipped (RFC 9112 section 2.2). */
    assert_int_equal(lx_reqhead_skip_empty(S("\r\n\r\nGET")), 4);
    assert_int_equal(lx_reqhead_skip_empty(S("\r\n\r")), 2);
    assert_int_equal(parse(S("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), &h), LX_OK);
    assert_int_equal(h.len, 29);
}

static void test_incomplete(void **state)
{
    (void)state;
    const char *full = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
    struct lx_reqhead h;
    for (size_t n = 0; n < strlen(full); n++)
        if (parse(full, n, &h) != LX_AGAIN)
            fail_msg("a %zu-byte prefix was not 'read more'", n);
    assert_int_equal(parse(full, strlen(full), &h), LX_OK);
    /* An error shows as soon as its line is whole (and the next line's first byte shows it is not
     * folded), without waiting for the rest of the head. */
    refused(S("GET / HTTP/1.1\r\nContent-Length : 5\r\nX"), 400, "invalid_header");
    assert_int_equal(parse(S("GET / HTTP/1.1\r\nContent-Length : 5\r\n"), &h), LX_AGAIN);
}

static void test_header_names(void **state)
{
    (void)state;
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello"), 400, "invalid_header");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 5\r\n\r\nhello"), 400, "invalid_header");
    refused(S("GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n"), 400, "invalid_header");
    refused(S("GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"), 400, "invalid_header");
    refused(S("GET / HTTP/1.1\r\nHost: x\r\nX\0Y: 1\r\n\r\n"), 400, "invalid_header");
}

static void test_obs_fold(void **state)
{
    (void)state;
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\nhello"), 400, "invalid_header");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n"), 400, "invalid_header");
    refused(S("GET / HTTP/1.1\r\nHost: x\r\nX-Other: a\r\n b\r\n\r\n"), 400, "invalid_header");
    refused(S("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400, "invalid_header");
}

static void test_content_length(void **state)
{
    (void)state;
    struct lx_reqhead h;
    assert_int_equal(parse(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65, 65\r\n\r\n"), &h), LX_OK);
    assert_int_equal(h.content_length, 65);
    assert_int_equal(parse(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"), &h), LX_OK);
    assert_int_equal(h.content_length, 7);
    assert_int_equal(parse(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n"), &h), LX_ERR);
    static const char *const bad[] = {"+65", "0x41", "65abc", "-1", "", "65, 66", "6 5", "65,", ",65", "1e3",
                                      "99999999999999999999"};
    for (size_t i = 0; i < LX_ARRAY_LEN(bad); i++) {
        char req[128];
        int n = snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n", bad[i]);
        refused(req, (size_t)n, 400, "invalid_content_length");
    }
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 31\r\n\r\n"), 400,
            "invalid_content_length");
}

static void test_transfer_encoding(void **state)
{
    (void)state;
    struct lx_reqhead h;
    char *c = canon(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked  \r\n\r\n"), &h);
    assert_int_equal(h.body, LX_BODY_CHUNKED);
    assert_false(h.close);
    assert_string_equal(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    free(c);
    assert_int_equal(parse(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"), &h), LX_OK);
    /* With a Content-Length too: framed by Transfer-Encoding, and the connection closes afterwards. */
    c = canon(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), &h);
    assert_int_equal(h.body, LX_BODY_CHUNKED);
    assert_true(h.close);
    assert_string_equal(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    free(c);

    refused(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
            "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n"), 400, "invalid_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501, "unsupported_transfer_encoding");
    refused(S("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity;x=1, chunked\r\n\r\n"), 501,
            "unsupported_transfer_encoding");
}

static void test_control_characters(void **state)
{
    (void)state;
    refused(S("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer KEY\0junk\r\n\r\n"), 400, "invalid_header");
    refused(S("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer KEY\rjunk\r\n\r\n"), 400, "invalid_header");
    refused(S("GET /v1/models HTTP/1.1\r\nHost: x\nX: 1\r\n\r\n"), 400, "invalid_header");
    refused(S("GET /v1/models HTTP/1.1\r\nHost: x\r\nX: a\x1b b\r\n\r\n"), 400, "invalid_header");
    refused(S("GET /v1/models HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n"), 400, "invalid_header");
    refused(S("GET /healthz\0x HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_target");
    refused(S("GET /healthz\tx HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_target");
    refused(S("GET /healthz%00x HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_target");
    refused(S("GET /healthz HTTP/1.1\rHost: x\r\n\r\n"), 400, "invalid_request_line");
    refused(S("GET /healthz HTTP/1.1\nHost: x\r\n\r\n"), 400, "invalid_request_line");
    /* HTAB and bytes above 0x7F are field content. */
    struct lx_reqhead h;
    assert_int_equal(parse(S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nX: a\tb \xc3\xa9\r\n\r\n"), &h), LX_OK);
}

static void test_host_and_credentials(void **state)
{
    (void)state;
    refused(S("GET / HTTP/1.1\r\n\r\n"), 400, "missing_host");
    refused(S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "duplicate_header");
    refused(S("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400, "duplicate_header");
    refused(S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400, "invalid_header");
    refused(S("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n"), 400,
            "duplicate_header");
    refused(S("GET / HTTP/1.1\r\nHost: x\r\nx-api-key: a\r\nX-Api-Key: a\r\n\r\n"), 400, "duplicate_header");
    struct lx_reqhead h;
    assert_int_equal(parse(S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), &h), LX_OK);
    assert_int_equal(parse(S("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), &h), LX_OK);
    /* Trailing whitespace is not part of a value, so the key after it is the key. */
    char *c = canon(S("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-key   \t\r\n\r\n"), &h);
    assert_string_equal(c, "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-key\r\n\r\n");
    free(c);
}

static void test_request_line(void **state)
{
    (void)state;
    refused(S("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_line");
    refused(S("GET / HTTP/1.1 \r\nHost: x\r\n\r\n"), 400, "invalid_request_line");
    refused(S("GET /\r\nHost: x\r\n\r\n"), 400, "invalid_request_line");
    refused(S("GET / http/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_line");
    refused(S("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_line");
    refused(S("GET x HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_target");
    refused(S("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505, "http_version_not_supported");
    refused(S("GET / HTTP/0.9\r\nHost: x\r\n\r\n"), 505, "http_version_not_supported");
    refused(S("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\nHost: x\r\n\r\n"), 501, "method_not_implemented");
    struct lx_reqhead h;
    char *c = canon(S("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), &h);
    assert_string_equal(c, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    free(c);
    refused(S("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "invalid_request_target");
}

static void test_absolute_form(void **state)
{
    (void)state;
    struct lx_reqhead h;
    char *c = canon(S("POST http://gw.example:8080/v1/chat/completions?x=1 HTTP/1.1\r\nHost: other\r\n"
                      "Content-Length: 2\r\n\r\n"), &h);
    assert_string_equal(c, "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw.example:8080\r\nContent-Length: 2\r\n\r\n");
    free(c);
    c = canon(S("GET HTTPS://gw HTTP/1.1\r\nHost: gw\r\n\r\n"), &h);
    assert_string_equal(c, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n");
    free(c);
    c = canon(S("GET http://gw?a HTTP/1.1\r\nHost: gw\r\n\r\n"), &h);
    assert_string_equal(c, "GET /?a HTTP/1.1\r\nHost: gw\r\n\r\n");
    free(c);
    refused(S("GET http:///x HTTP/1.1\r\nHost: gw\r\n\r\n"), 400, "invalid_request_target");
    refused(S("GET http://user@gw/x HTTP/1.1\r\nHost: gw\r\n\r\n"), 400, "invalid_request_target");
    refused(S("GET ftp://gw/x HTTP/1.1\r\nHost: gw\r\n\r\n"), 400, "invalid_request_target");
}

static void test_expect(void **state)
{
    (void)state;
    struct lx_reqhead h;
    char *c = canon(S("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"), &h);
    assert_true(h.expect_continue);
    assert_string_equal(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n");
    free(c);
}

static void test_size_limit(void **state)
{
    (void)state;
    struct lx_reqhead h;
    char line[2048];
    memset(line, 'a', sizeof line);
    /* The request line alone over the limit: 414, even before it ends. */
    struct lx_buf r = {0};
    lx_buf_puts(&r, "GET /");
    lx_buf_append(&r, line, sizeof line);
    assert_int_equal(lx_reqhead_parse(r.data, r.len, 1024, &h, NULL), LX_ERR);
    assert_int_equal(h.status, 414);
    lx_buf_puts(&r, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(lx_reqhead_parse(r.data, r.len, 1024, &h, NULL), LX_ERR);
    assert_int_equal(h.status, 414);
    assert_int_equal(lx_reqhead_parse(r.data, r.len, r.len, &h, NULL), LX_OK);
    assert_int_equal(h.len, r.len);
    assert_int_equal(lx_reqhead_parse(r.data, r.len, r.len - 1, &h, NULL), LX_ERR);
    lx_buf_free(&r);
    /* Headers over it: 431. */
    lx_buf_puts(&r, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    lx_buf_append(&r, line, sizeof line);
    assert_int_equal(lx_reqhead_parse(r.data, r.len, 1024, &h, NULL), LX_ERR);
    assert_int_equal(h.status, 431);
    assert_string_equal(h.code, "request_header_too_large");
    lx_buf_free(&r);
    /* At most 100 header fields and 100 query parameters, which MHD keeps a record of each. */
    lx_buf_puts(&r, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 99; i++)
        lx_buf_puts(&r, "a: b\r\n");
    lx_buf_puts(&r, "\r\n");
    assert_int_equal(lx_reqhead_parse(r.data, r.len, 32768, &h, NULL), LX_OK);
    lx_buf_reset(&r);
    lx_buf_puts(&r, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++)
        lx_buf_puts(&r, "a: b\r\n");
    lx_buf_puts(&r, "\r\n");
    assert_int_equal(lx_reqhead_parse(r.data, r.len, 32768, &h, NULL), LX_ERR);
    assert_int_equal(h.status, 431);
    lx_buf_reset(&r);
    lx_buf_puts(&r, "GET /?a");
    for (int i = 0; i < 100; i++)
        lx_buf_puts(&r, "&a");
    lx_buf_puts(&r, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(lx_reqhead_parse(r.data, r.len, 32768, &h, NULL), LX_ERR);
    assert_int_equal(h.status, 414);
    lx_buf_free(&r);
    /* Cookies are dropped. */
    char *c = canon(S("GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; b=2\r\n\r\n"), &h);
    assert_string_equal(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    free(c);
}

/* Decode a chunked body fed in pieces of `step` bytes (0: whole). */
static int decode(const char *body, size_t n, size_t step, struct lx_chunked *c, struct lx_buf *out, size_t *used)
{
    *c = (struct lx_chunked){0};
    size_t off = 0;
    int rc = LX_AGAIN;
    while (rc == LX_AGAIN && off < n) {
        size_t take = step && step < n - off ? step : n - off, u;
        rc = lx_chunked_feed(c, body + off, take, &u, out, 1000, 1000);
        off += u;
    }
    *used = off;
    return rc;
}

static void test_chunked(void **state)
{
    (void)state;
    const char *body = "5\r\nhello\r\n6;ext=\"x y\"\r\n world\r\nA ; e\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET";
    size_t n = strlen(body);
    for (size_t step = 0; step <= n; step++) {
        struct lx_chunked c;
        struct lx_buf out = {0};
        size_t used;
        assert_int_equal(decode(body, n, step, &c, &out, &used), LX_OK);
        assert_int_equal(used, n - 3);
        assert_string_equal(out.data, "hello world0123456789");
        assert_int_equal(c.total, 21);
        lx_buf_free(&out);
    }
    static const struct { const char *s; size_t n; } bad[] = {
        {S("+5\r\nhello\r\n0\r\n\r\n")}, {S("0x5\r\nhello\r\n0\r\n\r\n")}, {S(" 5\r\nhello\r\n0\r\n\r\n")},
        {S("5 \r\nhello\r\n0\r\n\r\n")}, {S("5\nhello\r\n0\r\n\r\n")}, {S("5\r\nhelloX\r\n0\r\n\r\n")},
        {S("5\r\nhello\n0\r\n\r\n")}, {S("5\r\nhello\r\n0\r\n\n")}, {S("-1\r\n")},
        {S("5;a\0b\r\nhello\r\n0\r\n\r\n")}, {S("0\r\n T: 1\r\n\r\n")}, {S("0\r\n: 1\r\n\r\n")},
        {S("0\r\nX T: 1\r\n\r\n")}, {S("11111111111111111\r\n")}, {S("5\r\nhello\r\r\n")},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(bad); i++) {
        struct lx_chunked c;
        size_t used;
        if (decode(bad[i].s, bad[i].n, 0, &c, NULL, &used) != LX_ERR)
            fail_msg("accepted chunked body %zu", i);
        assert_int_equal(c.status, 400);
        assert_string_equal(c.code, "invalid_chunked_body");
    }
    /* Over max_body (1000 here): 413 as soon as the size line says so. */
    struct lx_chunked c;
    size_t used;
    assert_int_equal(decode(S("3E9\r\n"), 0, &c, NULL, &used), LX_ERR);
    assert_int_equal(c.status, 413);
    assert_int_equal(decode(S("3E8\r\n"), 0, &c, NULL, &used), LX_AGAIN);
    /* A trailer section over its limit: 431. */
    c = (struct lx_chunked){0};
    char trailer[64];
    memset(trailer, 'a', sizeof trailer);
    assert_int_equal(lx_chunked_feed(&c, S("0\r\nX: "), &used, NULL, 100, 16), LX_AGAIN);
    assert_int_equal(lx_chunked_feed(&c, trailer, sizeof trailer, &used, NULL, 100, 16), LX_ERR);
    assert_int_equal(c.status, 431);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_requests),   cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_header_names),      cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_content_length),    cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_control_characters), cmocka_unit_test(test_host_and_credentials),
        cmocka_unit_test(test_request_line),      cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_expect),            cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests_name("reqhead", tests, NULL, NULL);
}
