/* Fuzz target for the openai provider's stream decoder (providers/openai.c): an upstream body fed whole
 * and in chunks cut where the input says must emit the same chunks and end the same way, with err set
 * exactly when a slot fails. Input layout: byte 0 is options (bit 0: the client asked for
 * stream_options.include_usage), then a split plan (fuzz_split.h), then the upstream body. */
/* The provider under test: this file is also included, with other definitions, by the targets of the
 * providers that translate other dialects (fuzz_anthropic_*.c, fuzz_ollama_*.c). */
#ifndef FUZZ_PROVIDER
#define FUZZ_PROVIDER lx_provider_openai
#define FUZZ_NAME "fuzz_openai_stream"
#endif

#include "fuzz_split.h"
#include "../../providers/provider.h"
#include "../../src/core/buf.h"
#include "../../src/core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lx_provider_conf conf = {
    .name = "oai", .type = &FUZZ_PROVIDER, .base_url = "http://up.example/v1", .api_key = "sk-fuzz",
};

struct outcome {
    struct lx_buf chunks; /* every emitted chunk, compact JSON, one a line */
    size_t count;
    int feed_rc;
    int finish_rc;        /* LX_OK when finish was not reached */
    struct lx_error err;
};

static void fail(const char *what)
{
    fprintf(stderr, FUZZ_NAME ": %s\n", what);
    abort();
}

static void collect_cb(void *ctx, json_t *chunk)
{
    struct outcome *o = ctx;
    if (!json_is_object(chunk))
        fail("emitted a chunk that is not an object");
    if (json_object_get(chunk, "error"))
        fail("emitted an upstream error event as a chunk");
    if (!json_is_string(json_object_get(chunk, "id")) || !json_is_string(json_object_get(chunk, "object")) ||
        !json_is_integer(json_object_get(chunk, "created")) || !json_is_string(json_object_get(chunk, "model")))
        fail("emitted a chunk without id, object, created and model");
    /* "created" is filled from the wall clock at stream_open when the upstream left it out, so the two runs
     * may differ by a second there: compare everything else. */
    json_t *copy = json_copy(chunk);
    json_object_del(copy, "created");
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    if (!text)
        fail("emitted a chunk that does not serialize");
    lx_buf_puts(&o->chunks, text);
    lx_buf_append(&o->chunks, "\n", 1);
    free(text);
    o->count++;
}

/* Drive one decoder the way src/call.c does: feed until a feed fails or the stream's own end was seen
 * (the rest of the body is never read then), then finish only if no feed failed. */
static void run(struct outcome *o, bool include_usage, const char *p, size_t size, struct fuzz_split *plan)
{
    struct lx_chat chat = {.model = "gpt-fuzz", .stream = true, .include_usage = include_usage, .req_id = 1};
    void *st = FUZZ_PROVIDER.stream_open(&conf, &chat);
    size_t off = 0;
    bool ended = false;
    o->feed_rc = LX_OK;
    o->finish_rc = LX_OK;
    do {
        size_t n = plan ? fuzz_split_next(plan, size - off) : size;
        o->feed_rc = FUZZ_PROVIDER.stream_feed(st, p + off, n, collect_cb, o, &o->err);
        off += n;
        ended = o->feed_rc == LX_OK && FUZZ_PROVIDER.stream_ended(st);
    } while (o->feed_rc == LX_OK && !ended && off < size);
    if (o->feed_rc == LX_OK)
        o->finish_rc = FUZZ_PROVIDER.stream_finish(st, collect_cb, o, &o->err);
    if (ended && o->finish_rc != LX_OK)
        fail("a stream that saw its own end did not finish cleanly");
    if (ended && !FUZZ_PROVIDER.stream_ended(st))
        fail("stream_ended went back to false");
    FUZZ_PROVIDER.stream_close(st);

    bool failed = o->feed_rc != LX_OK || o->finish_rc != LX_OK;
    if (failed != lx_error_isset(&o->err))
        fail("err is set exactly when a slot fails, and not otherwise");
    if (failed && (o->err.status < 400 || !o->err.message))
        fail("a failure without an error status and message");
}

static bool str_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool include_usage = data[0] & 1;
    data++;
    size--;
    struct fuzz_split plan;
    fuzz_split_init(&plan, &data, &size);
    const char *p = (const char *)data;

    struct outcome whole = {0}, split = {0};
    run(&whole, include_usage, p, size, NULL);
    run(&split, include_usage, p, size, &plan);

    if (whole.feed_rc != split.feed_rc || whole.finish_rc != split.finish_rc)
        fail("the result depends on where the body was split");
    if (whole.count != split.count || lx_buf_avail(&whole.chunks) != lx_buf_avail(&split.chunks) ||
        (whole.count && memcmp(lx_buf_head(&whole.chunks), lx_buf_head(&split.chunks), lx_buf_avail(&whole.chunks))))
        fail("the chunks depend on where the body was split");
    if (whole.err.status != split.err.status || !str_equal(whole.err.message, split.err.message) ||
        !str_equal(whole.err.code, split.err.code) || !str_equal(whole.err.type, split.err.type) ||
        !str_equal(whole.err.param, split.err.param))
        fail("the error depends on where the body was split");

    if (lx_error_isset(&whole.err)) {
        /* What a client would get after the stream began. */
        json_t *ev = lx_error_json(&whole.err);
        char *text = json_dumps(ev, JSON_COMPACT);
        if (!text)
            fail("the error event does not serialize");
        free(text);
        json_decref(ev);
    }

    lx_buf_free(&whole.chunks);
    lx_buf_free(&split.chunks);
    lx_error_clear(&whole.err);
    lx_error_clear(&split.err);
    return 0;
}
