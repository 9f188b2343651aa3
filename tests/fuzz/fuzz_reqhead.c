/* Fuzz target for the request framing check (src/reqhead.c). Input layout: byte 0 picks the head size
 * limit, then a split plan (fuzz_split.h), then the bytes a client sent. Properties:
 * - a prefix of the input cut where the plan says is "read more" while it is shorter than an accepted
 *   head, and gives the whole input's answer once it holds the head; a refusal of a prefix is the
 *   whole input's refusal (nothing is decided by bytes not yet seen);
 * - an accepted head's canonical form holds only CRLF-terminated lines without control characters, is
 *   accepted again with the same framing, and is its own canonical form;
 * - a chunked body after the head decodes the same whole and split, and never past max_body. */
#include "fuzz_split.h"
#include "../../src/core/buf.h"
#include "../../src/core/common.h"
#include "../../src/core/reqhead.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t max_heads[] = {32768, 64, 256, 1024};

#define MAX_BODY 512
#define MAX_TRAILER 128

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_reqhead: %s\n", what);
    abort();
}

static bool same_refusal(const struct lx_reqhead *a, const struct lx_reqhead *b)
{
    return a->status == b->status && strcmp(a->code, b->code) == 0;
}

static void check_canonical(const char *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c[i];
        if (ch == '\r' && (i + 1 >= n || c[i + 1] != '\n'))
            fail("a CR without LF in the canonical head");
        if (ch == '\n' && (i == 0 || c[i - 1] != '\r'))
            fail("an LF without CR in the canonical head");
        if ((ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f)
            fail("a control character in the canonical head");
    }
    if (n < 4 || memcmp(c + n - 4, "\r\n\r\n", 4) != 0)
        fail("the canonical head does not end with an empty line");
}

static void check_accepted(const struct lx_reqhead *h, struct lx_buf *canon, size_t max)
{
    if (h->len == 0 || h->len > max)
        fail("an accepted head's length is outside the limit");
    if (h->method_len == 0 || !h->target_len)
        fail("an accepted head has no method or target");
    uint64_t body_len = h->body == LX_BODY_LENGTH ? h->content_length : 0;
    lx_reqhead_finish(canon, h, body_len);
    check_canonical(canon->data, canon->len);
    if (memcmp(canon->data, h->method, h->method_len) != 0 || canon->data[h->method_len] != ' ')
        fail("the canonical head changed the method");
    /* The canonical form may be longer than the limit (an absolute-form target becomes a Host line). */
    struct lx_reqhead h2;
    struct lx_buf again = {0};
    if (lx_reqhead_parse(canon->data, canon->len, canon->len, &h2, &again) != LX_OK)
        fail("the canonical head is refused");
    if (h2.len != canon->len)
        fail("the canonical head's length is wrong");
    if (h2.http10 != h->http10 || h2.close != h->close || h2.expect_continue)
        fail("the canonical head changed the version, the connection or Expect");
    if ((h->body == LX_BODY_NONE) != (h2.body == LX_BODY_NONE) || h2.body == LX_BODY_CHUNKED ||
        (h2.body == LX_BODY_LENGTH && h2.content_length != body_len))
        fail("the canonical head changed the framing");
    lx_reqhead_finish(&again, &h2, body_len);
    if (again.len != canon->len || memcmp(again.data, canon->data, canon->len) != 0)
        fail("the canonical head is not its own canonical form");
    lx_buf_free(&again);
}

static void check_chunked(const char *p, size_t n, struct fuzz_split *plan)
{
    struct lx_chunked whole = {0};
    struct lx_buf out_whole = {0};
    size_t used_whole;
    int rc_whole = lx_chunked_feed(&whole, p, n, &used_whole, &out_whole, MAX_BODY, MAX_TRAILER);
    if (used_whole > n || out_whole.len > MAX_BODY || whole.total > MAX_BODY)
        fail("the chunked decoder went past its input or the body limit");
    if (rc_whole == LX_ERR && (whole.status != 400 && whole.status != 413 && whole.status != 431))
        fail("a chunked body refused with an unexpected status");
    if (rc_whole == LX_AGAIN && used_whole != n)
        fail("a chunked body not done left bytes unused");

    struct lx_chunked split = {0};
    struct lx_buf out_split = {0};
    size_t off = 0;
    int rc = LX_AGAIN;
    while (rc == LX_AGAIN && off < n) {
        size_t take = fuzz_split_next(plan, n - off), used;
        rc = lx_chunked_feed(&split, p + off, take, &used, &out_split, MAX_BODY, MAX_TRAILER);
        if (rc == LX_AGAIN && used != take)
            fail("a chunked body not done left bytes of a piece unused");
        off += used;
    }
    if (rc != rc_whole || (rc == LX_OK && off != used_whole) || (rc == LX_ERR && split.status != whole.status))
        fail("the chunked body's framing depends on where it was split");
    if (rc != LX_ERR && (out_split.len != out_whole.len ||
                         (out_whole.len && memcmp(out_split.data, out_whole.data, out_whole.len) != 0)))
        fail("the decoded body depends on where it was split");
    lx_buf_free(&out_whole);
    lx_buf_free(&out_split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = max_heads[data[0] % LX_ARRAY_LEN(max_heads)];
    data++;
    size--;
    struct fuzz_split plan;
    fuzz_split_init(&plan, &data, &size);
    const char *p = (const char *)data;

    struct lx_reqhead h;
    struct lx_buf canon = {0};
    int rc = lx_reqhead_parse(p, size, max, &h, &canon);
    if (rc == LX_ERR && (h.status < 400 || h.status > 505 || !h.code || !h.message[0]))
        fail("a refusal without a status, code or message");
    if (rc != LX_OK && canon.len)
        fail("a head not accepted left canonical bytes");

    /* Prefixes, cut where the plan says. */
    struct fuzz_split cuts = plan;
    for (size_t off = 0; off < size;) {
        size_t step = fuzz_split_next(&cuts, size - off);
        off += step ? step : 1;
        if (off > size)
            off = size;
        struct lx_reqhead hp;
        int rp = lx_reqhead_parse(p, off, max, &hp, NULL);
        if (rp == LX_ERR && (rc != LX_ERR || !same_refusal(&hp, &h)))
            fail("a prefix was refused otherwise than the whole input");
        if (rc == LX_OK && off < h.len && rp != LX_AGAIN)
            fail("a prefix of an accepted head was not 'read more'");
        if (rc == LX_OK && off >= h.len && (rp != LX_OK || hp.len != h.len || hp.body != h.body))
            fail("a prefix holding an accepted head got another answer");
        if (rc == LX_AGAIN && rp != LX_AGAIN)
            fail("a prefix of an incomplete head was decided");
    }

    if (rc == LX_OK) {
        check_accepted(&h, &canon, max);
        if (h.body == LX_BODY_CHUNKED)
            check_chunked(p + h.len, size - h.len, &plan);
    }
    lx_buf_free(&canon);
    return 0;
}
