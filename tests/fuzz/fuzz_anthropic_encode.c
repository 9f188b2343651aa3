/* Fuzz target for the anthropic_messages stream encoder (dialects/anthropic_stream.c) on what upstreams
 * send: an upstream body is decoded by a provider into pivot chunks (as src/call.c does), encoded for an
 * Anthropic client and read back. The output must be named events whose `event:` is their data's type,
 * in the order clients check: message_start first, with positive input_tokens; blocks started at the next
 * index, one open at a time, deltas of the block's kind to the open block (argument fragments of an
 * interleaving server may go to an earlier tool_use block); then message_delta and message_stop, or one
 * error event when the upstream failed; nothing after. With bit 3 the client's own request rides along
 * (lx_chat.native), so an anthropic upstream's events are relayed as they came (names included): then
 * only the framing (whole events) and the ending are the encoder's to keep. Input layout: byte 0 is
 * options (bit 0: the client enabled thinking; bits 1-2: the provider, openai, ollama or anthropic; bit
 * 3: native), then a split plan (fuzz_split.h), then the upstream body. */
#include "fuzz_split.h"
#include "../../dialects/anthropic_messages.h"
#include "../../providers/provider.h"
#include "../../src/core/common.h"
#include "../../src/core/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_anthropic_encode: %s\n", what);
    abort();
}

struct reader {
    bool relay;          /* the upstream's own events: their order is the upstream's */
    bool started, stopped, failed;
    int open;            /* the open block's index, -1 none */
    const char *kind;    /* its type */
    json_t *kinds;       /* every block's type, by index */
};

static int event_cb(void *ctx, const char *event, const char *text, size_t len)
{
    struct reader *r = ctx;
    json_t *ev = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type || (!r->relay && strcmp(event, type) != 0)) /* a relay keeps the upstream's names */
        fail("an event whose name is not its data's type");
    if (r->stopped || r->failed)
        fail("an event after message_stop or error");
    json_int_t idx = json_integer_value(json_object_get(ev, "index"));
    if (r->relay) {
        r->stopped |= strcmp(type, "message_stop") == 0;
        r->failed |= strcmp(type, "error") == 0;
    } else if (strcmp(type, "error") == 0) {
        r->failed = true;
    } else if (strcmp(type, "ping") == 0) {
    } else if (!r->started) {
        if (strcmp(type, "message_start") != 0)
            fail("the first event is not message_start");
        if (json_integer_value(json_object_get(json_object_get(json_object_get(ev, "message"), "usage"), "input_tokens")) < 1)
            fail("message_start without input_tokens");
        r->started = true;
    } else if (strcmp(type, "content_block_start") == 0) {
        if (r->open != -1 || idx != (json_int_t)json_array_size(r->kinds))
            fail("a block started while another is open, or not at the next index");
        json_array_append(r->kinds, json_object_get(json_object_get(ev, "content_block"), "type"));
        r->open = (int)idx;
    } else if (strcmp(type, "content_block_delta") == 0) {
        const char *dt = json_string_value(json_object_get(json_object_get(ev, "delta"), "type"));
        const char *bt = json_string_value(json_array_get(r->kinds, (size_t)idx));
        bool late_args = dt && strcmp(dt, "input_json_delta") == 0 && bt && strcmp(bt, "tool_use") == 0;
        if (idx != r->open && !late_args)
            fail("a delta to a block that is not open");
        static const char *const pairs[][2] = {{"text_delta", "text"}, {"input_json_delta", "tool_use"},
                                               {"thinking_delta", "thinking"}, {"signature_delta", "thinking"}};
        bool ok = false;
        for (size_t i = 0; dt && bt && i < LX_ARRAY_LEN(pairs); i++)
            ok |= strcmp(pairs[i][0], dt) == 0 && strcmp(pairs[i][1], bt) == 0;
        if (!ok)
            fail("a delta of another kind than its block");
    } else if (strcmp(type, "content_block_stop") == 0) {
        if (idx != r->open)
            fail("a stop for a block that is not open");
        r->open = -1;
    } else if (strcmp(type, "message_delta") == 0) {
        if (r->open != -1 || !json_is_string(json_object_get(json_object_get(ev, "delta"), "stop_reason")))
            fail("message_delta with a block open or without a stop_reason");
    } else if (strcmp(type, "message_stop") == 0) {
        r->stopped = true;
    } else {
        fail("an event type the encoder does not write");
    }
    json_decref(ev);
    return LX_OK;
}

struct pivot {
    void *enc;
    struct lx_buf *out;
};

static void chunk_cb(void *ctx, json_t *chunk)
{
    struct pivot *p = ctx;
    lx_dialect_anthropic_messages.stream_chunk(p->enc, chunk, p->out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opts = data[0];
    data++;
    size--;
    struct fuzz_split split;
    fuzz_split_init(&split, &data, &size);
    static const struct lx_provider_type *const types[] = {&lx_provider_openai, &lx_provider_ollama,
                                                           &lx_provider_anthropic, &lx_provider_openai};
    const struct lx_provider_type *type = types[(opts >> 1) & 3];
    struct lx_provider_conf conf = {.name = "up", .type = type, .base_url = "http://up.example"};

    const char *body = opts & 1 ? "{\"model\":\"claude-x\",\"max_tokens\":9,\"thinking\":{\"type\":\"adaptive\"},"
                                  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}"
                                : "{\"model\":\"claude-x\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                                  "\"content\":\"hi\"}],\"stream\":true}";
    struct lx_dialect_req rq;
    struct lx_error err = {0};
    json_t *pivot = lx_dialect_anthropic_messages.parse(body, strlen(body), &rq, &err);
    json_t *native = opts & 8 ? lx_anthropic_messages_native_request(&rq, "2023-06-01", NULL) : NULL;
    struct lx_chat chat = {.body = pivot, .model = "m", .stream = true, .include_usage = true, .req_id = 1,
                           .native = native};
    struct lx_buf out = {0};
    struct pivot pv = {.enc = lx_dialect_anthropic_messages.stream_open(&rq), .out = &out};
    void *st = type->stream_open(&conf, &chat);
    int rc = LX_OK;
    for (size_t off = 0; off < size && rc == LX_OK && !type->stream_ended(st);) {
        size_t n = fuzz_split_next(&split, size - off);
        rc = type->stream_feed(st, (const char *)data + off, n, chunk_cb, &pv, &err);
        off += n;
    }
    if (rc == LX_OK)
        rc = type->stream_finish(st, chunk_cb, &pv, &err);
    if (rc == LX_OK)
        lx_dialect_anthropic_messages.stream_end(pv.enc, &out);
    else
        lx_dialect_anthropic_messages.stream_error(pv.enc, &err, &out);
    type->stream_close(st);
    lx_dialect_anthropic_messages.stream_close(pv.enc);

    struct reader r = {.open = -1, .kinds = json_array(), .relay = native && type == &lx_provider_anthropic};
    struct lx_sse_decoder d = {0};
    if (lx_sse_feed(&d, out.data ? out.data : "", out.len, event_cb, &r, NULL) != LX_OK || lx_sse_pending(&d))
        fail("output that is not whole SSE events");
    if (rc == LX_OK ? !r.stopped : !r.failed)
        fail("a stream that ends neither with message_stop nor, after a failure, an error event");
    lx_sse_decoder_free(&d);
    json_decref(r.kinds);
    lx_buf_free(&out);
    json_decref(pivot);
    json_decref(native);
    lx_dialect_req_clear(&rq);
    lx_error_clear(&err);
    return 0;
}
