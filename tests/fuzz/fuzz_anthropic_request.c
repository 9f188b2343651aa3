/* Fuzz target for the inbound Anthropic Messages parser (dialects/anthropic_messages.c): a client's body
 * is accepted, or refused with a 400 whose Anthropic error body is {"type":"error","error":{type,
 * message}}. An accepted body gives a pivot that passes the OpenAI chat validation the engine relies on (lx_openai_chat_validate)
 * (when it has messages), whose tool messages carry their call's id and text, whose tool calls' arguments
 * are JSON objects; rq says the client's model and holds its body; the estimate is positive; the openai,
 * ollama and anthropic providers translate the pivot or refuse it with a 400; the count_tokens parse
 * agrees. Input: the request body. */
#include "../../dialects/anthropic_messages.h"
#include "../../providers/provider.h"
#include "../../dialects/openai_chat.h"
#include "../../src/core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_anthropic_request: %s\n", what);
    abort();
}

static void check_error_body(const struct lx_error *err)
{
    int status;
    json_t *b = lx_dialect_anthropic_messages.error_body(err, &status);
    json_t *inner = json_object_get(b, "error");
    if (status != err->status || strcmp(json_string_value(json_object_get(b, "type")), "error") != 0 ||
        !json_is_string(json_object_get(inner, "type")) || !json_is_string(json_object_get(inner, "message")) ||
        json_object_size(inner) != 2)
        fail("an error body not in Anthropic's shape");
    json_decref(b);
}

static void check_pivot(json_t *pivot, const struct lx_dialect_req *rq)
{
    if (!json_is_object(pivot) || !json_is_string(json_object_get(pivot, "model")) ||
        strcmp(json_string_value(json_object_get(pivot, "model")), rq->model) != 0)
        fail("a pivot without the client's model");
    if (!lx_anthropic_messages_native(rq) || rq->prompt_tokens_estimate < 1 || !rq->include_usage)
        fail("rq without the native body, a positive estimate or usage");
    json_t *msgs = json_object_get(pivot, "messages");
    if (!json_is_array(msgs))
        fail("a pivot without a messages array");
    struct lx_error err = {0};
    if (json_array_size(msgs) && lx_openai_chat_validate(pivot, "", true, &err) != LX_OK)
        fail("a pivot the OpenAI chat validation refuses");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (strcmp(role, "tool") == 0 &&
            (!json_is_string(json_object_get(m, "tool_call_id")) || !json_is_string(json_object_get(m, "content"))))
            fail("a tool message without its call's id or text");
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
            const char *args = json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
            json_t *v = args ? json_loads(args, 0, NULL) : NULL;
            if (!json_is_object(v))
                fail("a tool call whose arguments are not a JSON object");
            json_decref(v);
        }
    }
    if (rq->stream != json_is_true(json_object_get(pivot, "stream")))
        fail("rq->stream and the pivot disagree");
}

static void translate(const struct lx_provider_type *type, json_t *pivot, const struct lx_dialect_req *rq)
{
    struct lx_provider_conf p = {.name = "up", .type = type, .base_url = "http://up.example"};
    struct lx_chat chat = {.body = pivot, .model = "upstream-model", .stream = rq->stream, .include_usage = true};
    struct lx_http_request r = {0};
    struct lx_error err = {0};
    if (type->chat_request(&p, &chat, &r, &err) != LX_OK && err.status != 400)
        fail("a provider refused the pivot without a 400");
    lx_http_request_free(&r);
    lx_error_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lx_dialect_req rq;
    struct lx_error err = {0};
    json_t *pivot = lx_dialect_anthropic_messages.parse((const char *)data, size, &rq, &err);
    struct lx_dialect_req crq;
    struct lx_error cerr = {0};
    json_t *cpivot = lx_anthropic_messages_parse_count((const char *)data, size, &crq, &cerr);
    if (!pivot) {
        if (err.status != 400 || !err.message || rq.model || rq.priv)
            fail("a refused request without a 400 and a message, or with rq filled");
        check_error_body(&err);
    } else {
        if (lx_error_isset(&err))
            fail("an accepted request with err set");
        if (!cpivot)
            fail("count_tokens refused what messages accepted");
        if (crq.prompt_tokens_estimate != rq.prompt_tokens_estimate)
            fail("count_tokens and messages estimate differently");
        check_pivot(pivot, &rq);
        translate(&lx_provider_openai, pivot, &rq);
        translate(&lx_provider_ollama, pivot, &rq);
        translate(&lx_provider_anthropic, pivot, &rq);
        struct lx_anthropic_target t = {.label = "up/m", .type = "ollama"};
        if (lx_anthropic_messages_check_target(&rq, &t, &err) != LX_OK && err.status != 400)
            fail("a target check failed without a 400");
        char *dropped = lx_anthropic_messages_dropped(&rq, "user,stop,stream_options");
        free(dropped);
        json_t *native = lx_anthropic_messages_native_request(&rq, "2023-06-01", NULL);
        if (json_object_get(native, "body") != lx_anthropic_messages_native(&rq))
            fail("the native request does not carry the client's body");
        json_decref(native);
    }
    json_decref(pivot);
    json_decref(cpivot);
    lx_dialect_req_clear(&rq);
    lx_dialect_req_clear(&crq);
    lx_error_clear(&err);
    lx_error_clear(&cerr);
    return 0;
}
