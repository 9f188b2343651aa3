/* Fuzz target for a client's Responses request (dialects/openai_responses.c) and the item translator
 * (openai_responses_items.c). Input: the request body. A refused body gets a 400 with a message and a
 * code and keeps nothing; an accepted one gives a pivot that the chat validation the engine relies on
 * accepts (lx_openai_chat_validate), with the client's model; its stored input items normalise to themselves
 * (what is stored can be read back as input) and translate to messages again with the input as history
 * (what a later turn does); the history budget keeps a subset or refuses with a 400; and the answer side
 * (completion and a stream with a text part and a tool call) builds responses whose events count their
 * sequence numbers from 0. */
#include "../../dialects/openai_chat.h"
#include "../../dialects/openai_responses.h"
#include "../../src/core/buf.h"
#include "../../src/core/common.h"
#include "../../src/core/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_responses_request: %s\n", what);
    abort();
}

/* The events in out carry sequence numbers 0, 1, 2, ... in order, and none is [DONE]. */
static int event_cb(void *ctx, const char *event, const char *data, size_t len)
{
    long *want = ctx;
    json_t *ev = json_loadb(data, len, 0, NULL);
    if (!json_is_object(ev))
        fail("an event that is not a JSON object (or [DONE])");
    if (json_integer_value(json_object_get(ev, "sequence_number")) != (*want)++ || !json_is_integer(json_object_get(ev, "sequence_number")))
        fail("sequence numbers out of order");
    if (strcmp(event, json_string_value(json_object_get(ev, "type"))) != 0)
        fail("an SSE event name that is not the event's type");
    json_decref(ev);
    return LX_OK;
}

static void check_sequence(const struct lx_buf *out)
{
    long want = 0;
    struct lx_sse_decoder d = {0};
    if (lx_sse_feed(&d, out->data, out->len, event_cb, &want, NULL) != LX_OK || lx_sse_pending(&d))
        fail("a stream that does not decode as whole SSE events");
    lx_sse_decoder_free(&d);
}

static void check_answers(const struct lx_dialect_req *rq)
{
    json_t *completion = json_loads("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"ok\","
                                    "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                                    "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],"
                                    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
                                    0, NULL);
    json_t *resp = lx_dialect_openai_responses.completion(rq, completion);
    if (!json_is_object(resp) || json_array_size(json_object_get(resp, "output")) != 2)
        fail("a completion without its two output items");
    json_decref(resp);
    json_decref(completion);

    static const char *const chunks[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":1}}",
    };
    void *st = lx_dialect_openai_responses.stream_open(rq);
    struct lx_buf out = {0};
    for (size_t i = 0; i < LX_ARRAY_LEN(chunks); i++) {
        json_t *c = json_loads(chunks[i], 0, NULL);
        lx_dialect_openai_responses.stream_chunk(st, c, &out);
        json_decref(c);
    }
    json_t *stored = lx_responses_stream_response(st);
    if (json_array_size(json_object_get(stored, "output")) != 2)
        fail("a stream's response without its two output items");
    json_decref(stored);
    lx_dialect_openai_responses.stream_end(st, &out);
    lx_dialect_openai_responses.stream_close(st);
    check_sequence(&out);
    lx_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lx_dialect_req rq = {0};
    struct lx_error err = {0};
    json_t *pivot = lx_dialect_openai_responses.parse((const char *)data, size, &rq, &err);
    if (!pivot) {
        if (err.status != 400 || !err.message || !err.code)
            fail("a refused request without a 400, a message and a code");
        if (rq.priv || rq.model)
            fail("a refused request kept state");
        lx_error_clear(&err);
        return 0;
    }
    if (lx_error_isset(&err))
        fail("an accepted request with err set");
    if (!rq.model || strcmp(json_string_value(json_object_get(pivot, "model")), rq.model) != 0)
        fail("the pivot does not carry the client's model");
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    if (!t.id || !json_is_array(t.input))
        fail("an accepted request without an id or input items");
    if (json_array_size(json_object_get(pivot, "messages")) > 0 && lx_openai_chat_validate(pivot, "", true, &err) != LX_OK)
        fail("a pivot that chat validation refuses");
    if (json_array_size(json_object_get(pivot, "messages")) == 0 && !t.previous_response_id && !t.conversation_id)
        fail("a stateless request with nothing to answer");

    /* Stored items read back as input unchanged. */
    json_t *again = lx_responses_items_normalize(t.input, "items", &err);
    if (!again || !json_equal(again, t.input))
        fail("normalised items do not normalise to themselves");
    json_decref(again);
    /* The input as the history of a later turn translates too (an empty one leaves nothing to answer). */
    if (json_array_size(t.input) > 0 && lx_responses_set_history(&rq, pivot, t.input, &err) != LX_OK)
        fail("stored items that do not translate as history");
    lx_error_clear(&err);

    long dropped;
    long budget = (long)(size % 97);
    json_t *kept = lx_responses_fit(t.input, t.input, budget, size % 2, &dropped, &err);
    if (kept) {
        if (json_array_size(kept) + (size_t)dropped != json_array_size(t.input))
            fail("truncation lost count of the items");
        json_decref(kept);
    } else if (err.status != 400 || !err.code || strcmp(err.code, "context_length_exceeded") != 0) {
        fail("a history that does not fit without a 400 context_length_exceeded");
    }
    lx_error_clear(&err);

    check_answers(&rq);
    json_decref(pivot);
    lx_dialect_req_clear(&rq);
    return 0;
}
