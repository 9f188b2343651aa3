/* Unit tests for dialects/anthropic_stream.c: recorded upstream streams (../shared/fixtures) decoded by
 * their provider into pivot chunks, encoded by the anthropic_messages dialect, and read back the way the
 * Anthropic SDK's MessageStream reads them, checking the event order clients rely on. Anthropic
 * recordings must come out equivalent to themselves. */
#include "../unit.h"
#include "../anthropic_thinking_sse.h"
#include "../../../dialects/anthropic_messages.h"
#include "../../../providers/provider.h"
#include "../../../src/core/common.h"
#include "../../../src/core/sse.h"

static struct lx_provider_conf anthropic_conf = {.name = "claude", .type = &lx_provider_anthropic,
                                                 .base_url = "https://api.anthropic.test"};
static struct lx_provider_conf openai_conf = {.name = "oai", .type = &lx_provider_openai, .base_url = "https://oai.test/v1"};
static struct lx_provider_conf ollama_conf = {.name = "ol", .type = &lx_provider_ollama, .base_url = "http://ol.test"};

static void collect(void *ctx, json_t *chunk)
{
    json_array_append((json_t *)ctx, chunk);
}

/* The pivot chunks provider p makes of body, fed in pieces of step bytes. */
static json_t *decode(const struct lx_provider_conf *p, const char *body, size_t len, size_t step)
{
    struct lx_chat chat = {.stream = true, .include_usage = true, .model = "m", .req_id = 7};
    void *st = p->type->stream_open(p, &chat);
    json_t *chunks = json_array();
    struct lx_error e = {0};
    for (size_t off = 0; off < len && !p->type->stream_ended(st); off += step)
        assert_int_equal(p->type->stream_feed(st, body + off, len - off < step ? len - off : step, collect, chunks, &e),
                         LX_OK);
    assert_int_equal(p->type->stream_finish(st, collect, chunks, &e), LX_OK);
    p->type->stream_close(st);
    return chunks;
}

static json_t *decode_fixture(const struct lx_provider_conf *p, const char *name)
{
    size_t len;
    char *body = read_fixture(name, &len);
    json_t *chunks = decode(p, body, len, 17);
    free(body);
    return chunks;
}

/* A parsed request for the encoder: the client's model, thinking on or off. */
static void request(struct lx_dialect_req *rq, bool thinking)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"stream\":true,%s"
             "\"messages\":[{\"role\":\"user\",\"content\":\"What is the weather in Paris?\"}]}",
             thinking ? "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2000}," : "");
    struct lx_error e = {0};
    json_t *pivot = lx_dialect_anthropic_messages.parse(body, strlen(body), rq, &e);
    assert_non_null(pivot);
    json_decref(pivot);
}

/* Encode chunks as the API layer does: each chunk, then the end. */
static void encode(const struct lx_dialect_req *rq, json_t *chunks, struct lx_buf *out)
{
    void *st = lx_dialect_anthropic_messages.stream_open(rq);
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c)
        lx_dialect_anthropic_messages.stream_chunk(st, c, out);
    lx_dialect_anthropic_messages.stream_end(st, out);
    lx_dialect_anthropic_messages.stream_close(st);
}

static int event_cb(void *ctx, const char *event, const char *data, size_t len)
{
    json_t *ev = json_loadb(data, len, 0, NULL);
    assert_non_null(ev);
    /* the SSE event name is the data's type */
    assert_string_equal(event, json_string_value(json_object_get(ev, "type")));
    json_array_append_new((json_t *)ctx, ev);
    return LX_OK;
}

static json_t *events_of(const char *sse, size_t len)
{
    struct lx_sse_decoder d = {0};
    json_t *events = json_array();
    assert_int_equal(lx_sse_feed(&d, sse, len, event_cb, events, NULL), LX_OK);
    assert_int_equal(lx_sse_flush(&d, event_cb, events, NULL), LX_OK);
    lx_sse_decoder_free(&d);
    return events;
}

static void set_usage(json_t *usage, json_t *from)
{
    const char *key;
    json_t *v;
    json_object_foreach(from, key, v) {
        if (!json_is_null(v))
            json_object_set(usage, key, v);
    }
}

/* The message an Anthropic client assembles from events, asserting the order it relies on: message_start
 * first; each block started at the next index, its deltas of its own kind, stopped before the next one
 * starts; message_delta after the last block; message_stop last. tool_use inputs are parsed from their
 * partial_json as the SDK does at content_block_stop. */
static json_t *accumulate(json_t *events)
{
    json_t *msg = NULL;
    struct lx_buf args = {0};
    int open = -1;
    bool stopped = false;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        json_int_t idx = json_integer_value(json_object_get(ev, "index"));
        if (strcmp(type, "ping") == 0)
            continue;
        assert_false(stopped);
        if (!msg) {
            assert_string_equal(type, "message_start");
            msg = json_deep_copy(json_object_get(ev, "message"));
            assert_string_equal(json_string_value(json_object_get(msg, "type")), "message");
            assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
            assert_int_equal(json_array_size(json_object_get(msg, "content")), 0);
            assert_true(json_integer_value(json_object_get(json_object_get(msg, "usage"), "input_tokens")) > 0);
            continue;
        }
        json_t *content = json_object_get(msg, "content");
        json_t *block = json_array_get(content, (size_t)idx);
        const char *btype = json_string_value(json_object_get(block, "type"));
        if (strcmp(type, "content_block_start") == 0) {
            assert_int_equal(open, -1);
            assert_int_equal(idx, json_array_size(content));
            json_array_append_new(content, json_deep_copy(json_object_get(ev, "content_block")));
            open = (int)idx;
            lx_buf_reset(&args);
        } else if (strcmp(type, "content_block_delta") == 0) {
            assert_int_equal(idx, open);
            json_t *d = json_object_get(ev, "delta");
            const char *dtype = json_string_value(json_object_get(d, "type"));
            if (strcmp(dtype, "text_delta") == 0) {
                assert_string_equal(btype, "text");
                json_object_set_new(block, "text", json_sprintf("%s%s", json_string_value(json_object_get(block, "text")),
                                                                json_string_value(json_object_get(d, "text"))));
            } else if (strcmp(dtype, "input_json_delta") == 0) {
                assert_string_equal(btype, "tool_use");
                lx_buf_puts(&args, json_string_value(json_object_get(d, "partial_json")));
            } else if (strcmp(dtype, "thinking_delta") == 0) {
                assert_string_equal(btype, "thinking");
                json_object_set_new(block, "thinking", json_sprintf("%s%s", json_string_value(json_object_get(block, "thinking")),
                                                                    json_string_value(json_object_get(d, "thinking"))));
            } else {
                assert_string_equal(dtype, "signature_delta");
                assert_string_equal(btype, "thinking");
                json_object_set(block, "signature", json_object_get(d, "signature"));
            }
        } else if (strcmp(type, "content_block_stop") == 0) {
            assert_int_equal(idx, open);
            if (strcmp(btype, "tool_use") == 0 && args.len) {
                json_t *input = json_loadb(args.data, args.len, 0, NULL);
                assert_true(json_is_object(input));
                json_object_set_new(block, "input", input);
            }
            open = -1;
        } else if (strcmp(type, "message_delta") == 0) {
            assert_int_equal(open, -1);
            json_t *d = json_object_get(ev, "delta");
            json_object_set(msg, "stop_reason", json_object_get(d, "stop_reason"));
            json_object_set(msg, "stop_sequence", json_object_get(d, "stop_sequence"));
            set_usage(json_object_get(msg, "usage"), json_object_get(ev, "usage"));
        } else {
            assert_string_equal(type, "message_stop");
            assert_int_equal(open, -1);
            stopped = true;
        }
    }
    assert_true(stopped);
    lx_buf_free(&args);
    return msg;
}

static json_t *accumulate_sse(const char *sse, size_t len)
{
    json_t *events = events_of(sse, len);
    json_t *msg = accumulate(events);
    json_decref(events);
    return msg;
}

/* Recorded chunks → our SSE → the assembled message. */
static json_t *through_dialect(json_t *chunks, bool thinking, struct lx_buf *out)
{
    struct lx_dialect_req rq;
    request(&rq, thinking);
    encode(&rq, chunks, out);
    lx_dialect_req_clear(&rq);
    return accumulate_sse(out->data, out->len);
}

static void assert_same_block(json_t *a, json_t *b)
{
    const char *type = json_string_value(json_object_get(a, "type"));
    assert_string_equal(type, json_string_value(json_object_get(b, "type")));
    static const char *const keys[] = {"text", "id", "name", "input", "thinking", "signature", "data"};
    for (size_t i = 0; i < LX_ARRAY_LEN(keys); i++)
        assert_true(json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i])) ||
                    (!json_object_get(a, keys[i]) && !json_object_get(b, keys[i])));
}

/* What an Anthropic client sees of message b equals what it sees of a. */
static void assert_same_message(json_t *a, json_t *b)
{
    json_t *ca = json_object_get(a, "content"), *cb = json_object_get(b, "content");
    assert_int_equal(json_array_size(ca), json_array_size(cb));
    for (size_t i = 0; i < json_array_size(ca); i++)
        assert_same_block(json_array_get(ca, i), json_array_get(cb, i));
    assert_string_equal(json_string_value(json_object_get(a, "stop_reason")),
                        json_string_value(json_object_get(b, "stop_reason")));
    assert_true(json_equal(json_object_get(a, "stop_sequence"), json_object_get(b, "stop_sequence")));
    assert_string_equal(json_string_value(json_object_get(a, "id")), json_string_value(json_object_get(b, "id")));
    assert_string_equal(json_string_value(json_object_get(a, "model")), json_string_value(json_object_get(b, "model")));
    json_t *ua = json_object_get(a, "usage"), *ub = json_object_get(b, "usage");
    assert_int_equal(json_integer_value(json_object_get(ua, "input_tokens")),
                     json_integer_value(json_object_get(ub, "input_tokens")));
    assert_int_equal(json_integer_value(json_object_get(ua, "output_tokens")),
                     json_integer_value(json_object_get(ub, "output_tokens")));
}

static void round_trip(const char *sse, size_t len, bool thinking)
{
    for (size_t step = 1; step < 300; step += 71) {
        json_t *original = accumulate_sse(sse, len);
        json_t *chunks = decode(&anthropic_conf, sse, len, step);
        struct lx_buf out = {0};
        json_t *ours = through_dialect(chunks, thinking, &out);
        assert_same_message(original, ours);
        lx_buf_free(&out);
        json_decref(ours);
        json_decref(chunks);
        json_decref(original);
    }
}

static void test_anthropic_fixtures_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"anthropic_messages_stream_text.sse", "anthropic_messages_stream_tool_use.sse"};
    for (size_t i = 0; i < LX_ARRAY_LEN(names); i++) {
        size_t len;
        char *sse = read_fixture(names[i], &len);
        round_trip(sse, len, false);
        free(sse);
    }
    round_trip(lx_test_thinking_sse, strlen(lx_test_thinking_sse), true);
}

/* The tool_use recording, block by block: text closed at index 0 before the tool block opens at 1. */
static void test_text_closed_before_tool(void **state)
{
    (void)state;
    json_t *chunks = decode_fixture(&anthropic_conf, "anthropic_messages_stream_tool_use.sse");
    struct lx_buf out = {0};
    json_t *msg = through_dialect(chunks, false, &out);
    json_t *events = events_of(out.data, out.len);
    const char *seq[] = {"message_start", "content_block_start", "content_block_delta", "content_block_delta",
                         "content_block_stop", "content_block_start"};
    for (size_t i = 0; i < LX_ARRAY_LEN(seq); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(events, i), "type")), seq[i]);
    json_t *tool = json_object_get(json_array_get(events, 5), "content_block");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 5), "index")), 1);
    assert_string_equal(json_string_value(json_object_get(tool, "id")), "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_int_equal(json_object_size(json_object_get(tool, "input")), 0);
    /* message_start carries the estimate (the pivot brings the real count at the end), never zero;
     * message_delta the real one, which the SDK takes over */
    json_t *start_usage = json_object_get(json_object_get(json_array_get(events, 0), "message"), "usage");
    assert_true(json_integer_value(json_object_get(start_usage, "input_tokens")) > 0);
    assert_non_null(json_object_get(start_usage, "cache_creation"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(msg, "usage"), "input_tokens")), 377);
    json_decref(events);
    json_decref(msg);
    lx_buf_free(&out);
    json_decref(chunks);
}

/* OpenAI recordings seen by an Anthropic client. */
static void test_openai_fixtures(void **state)
{
    (void)state;
    struct lx_buf out = {0};
    json_t *chunks = decode_fixture(&openai_conf, "openai_chat_stream_tool_call.sse");
    json_t *msg = through_dialect(chunks, false, &out);
    json_t *content = json_object_get(msg, "content");
    assert_int_equal(json_array_size(content), 1);
    json_t *tool = json_array_get(content, 0);
    assert_string_equal(json_string_value(json_object_get(tool, "type")), "tool_use");
    assert_string_equal(json_string_value(json_object_get(tool, "id")), "call_4XzlGBLtUe9dy3GVNV4jhq7h");
    assert_string_equal(json_string_value(json_object_get(tool, "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "input"), "city")), "New York City");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "tool_use");
    assert_string_equal(json_string_value(json_object_get(msg, "id")), "msg_chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62");
    assert_string_equal(json_string_value(json_object_get(msg, "model")), "gpt-4o-2024-08-06");
    json_decref(msg);
    json_decref(chunks);
    lx_buf_reset(&out);

    chunks = decode_fixture(&openai_conf, "openai_chat_stream_finish_length.sse");
    msg = through_dialect(chunks, false, &out);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(msg, "content"), 0), "text")), "{\"");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "max_tokens");
    json_t *usage = json_object_get(msg, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 79);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 1);
    json_decref(msg);
    json_decref(chunks);
    lx_buf_reset(&out);

    /* a refusal is text the client can show */
    chunks = decode_fixture(&openai_conf, "openai_chat_stream_refusal.sse");
    msg = through_dialect(chunks, false, &out);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(msg, "content"), 0), "text")),
                        "I'm sorry, I can't assist with that request.");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "end_turn");
    json_decref(msg);
    json_decref(chunks);

    lx_buf_reset(&out);
    chunks = decode_fixture(&openai_conf, "openai_chat_stream_text_with_usage.sse");
    msg = through_dialect(chunks, false, &out);
    json_t *first = json_array_get(json_object_get(msg, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "text");
    assert_true(json_string_length(json_object_get(first, "text")) > 0);
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "end_turn");
    assert_true(json_integer_value(json_object_get(json_object_get(msg, "usage"), "output_tokens")) > 0);
    json_decref(msg);
    json_decref(chunks);
    lx_buf_free(&out);
}

/* Ollama recordings (NDJSON; whole tool calls in one chunk, "stop" after calling tools). */
static void test_ollama_fixtures(void **state)
{
    (void)state;
    struct lx_buf out = {0};
    json_t *chunks = decode_fixture(&ollama_conf, "ollama_api_chat_stream_tool_calls.docs.ndjson");
    json_t *msg = through_dialect(chunks, false, &out);
    json_t *tool = json_array_get(json_object_get(msg, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(tool, "type")), "tool_use");
    assert_true(json_string_length(json_object_get(tool, "id")) > 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "input"), "city")), "Tokyo");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "tool_use");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(msg, "usage"), "input_tokens")), 169);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(msg, "usage"), "output_tokens")), 15);
    json_decref(msg);
    json_decref(chunks);
    lx_buf_reset(&out);

    chunks = decode_fixture(&ollama_conf, "ollama_api_chat_stream.docs.ndjson");
    msg = through_dialect(chunks, false, &out);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(msg, "content"), 0), "type")), "text");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "end_turn");
    json_decref(msg);
    json_decref(chunks);
    lx_buf_free(&out);
}

static json_t *js(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

/* Parallel calls from a pivot that interleaves nothing, then one that does; text first. */
static void test_parallel_tools(void **state)
{
    (void)state;
    json_t *chunks = js("["
        "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Checking.\"}}]},"
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"w\",\"arguments\":\"{\\\"c\\\":\"}}]}}]},"
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]},"
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"w\",\"arguments\":\"{\\\"c\\\":\\\"Rome\\\"}\"}},"
        "{\"index\":2,\"function\":{\"name\":\"t\",\"arguments\":\"\"}}]}}]},"
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]},"
        "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20,\"total_tokens\":70}}]");
    struct lx_buf out = {0};
    json_t *msg = through_dialect(chunks, false, &out);
    json_t *content = json_object_get(msg, "content");
    assert_int_equal(json_array_size(content), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "text")), "Checking.");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(content, 1), "input"), "c")), "Paris");
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 2), "id")), "b");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(content, 2), "input"), "c")), "Rome");
    /* a call without an id gets one; without arguments its input stays {} */
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 3), "id")), "toolu_llmux_2");
    assert_int_equal(json_object_size(json_object_get(json_array_get(content, 3), "input")), 0);
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "tool_use");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(msg, "usage"), "output_tokens")), 20);
    json_decref(msg);
    json_decref(chunks);
    lx_buf_free(&out);
}

/* Reasoning from OpenAI-compatible servers (reasoning_content) shows only when the client asked for
 * thinking; a stop sequence named by the choice's stop_reason is stop_sequence; no usage: estimates. */
static void test_reasoning_stop_sequence_and_estimates(void **state)
{
    (void)state;
    json_t *chunks = js("["
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Think \"}}]},"
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hard.\"}}]},"
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Answer is 42\"}}]},"
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\",\"stop_reason\":\"###\"}]}]");
    struct lx_buf out = {0};
    json_t *msg = through_dialect(chunks, true, &out);
    json_t *content = json_object_get(msg, "content");
    assert_int_equal(json_array_size(content), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "thinking")), "Think hard.");
    assert_string_equal(json_string_value(json_object_get(json_array_get(content, 0), "signature")), "");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "stop_sequence");
    assert_string_equal(json_string_value(json_object_get(msg, "stop_sequence")), "###");
    json_t *usage = json_object_get(msg, "usage");
    assert_true(json_integer_value(json_object_get(usage, "input_tokens")) > 0);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), (11 + 12 + 3) / 4);
    json_decref(msg);
    lx_buf_reset(&out);
    msg = through_dialect(chunks, false, &out);
    assert_int_equal(json_array_size(json_object_get(msg, "content")), 1);
    json_decref(msg);
    json_decref(chunks);
    lx_buf_free(&out);
}

/* A failure after the stream began: one error event in Anthropic's shape, nothing after it. The
 * recorded overloaded error goes through the provider's error and comes out as it was. */
static void test_error_event(void **state)
{
    (void)state;
    size_t len;
    char *sse = read_fixture("anthropic_messages_stream_error_overloaded.sse", &len);
    struct lx_chat chat = {.stream = true, .model = "m"};
    void *pst = lx_provider_anthropic.stream_open(&anthropic_conf, &chat);
    json_t *chunks = json_array();
    struct lx_error e = {0};
    int rc = lx_provider_anthropic.stream_feed(pst, sse, len, collect, chunks, &e);
    if (rc == LX_OK)
        rc = lx_provider_anthropic.stream_finish(pst, collect, chunks, &e);
    assert_int_equal(rc, LX_ERR);
    lx_provider_anthropic.stream_close(pst);

    struct lx_dialect_req rq;
    request(&rq, false);
    void *st = lx_dialect_anthropic_messages.stream_open(&rq);
    struct lx_buf out = {0};
    json_t *c = js("{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}");
    lx_dialect_anthropic_messages.stream_chunk(st, c, &out);
    lx_dialect_anthropic_messages.stream_error(st, &e, &out);
    lx_dialect_anthropic_messages.stream_chunk(st, c, &out);
    lx_dialect_anthropic_messages.stream_end(st, &out);
    lx_dialect_anthropic_messages.stream_close(st);
    json_t *events = events_of(out.data, out.len);
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    assert_int_equal(json_array_size(events), 4); /* message_start, block start, delta, error */
    assert_string_equal(json_string_value(json_object_get(last, "type")), "error");
    json_t *want = json_loads(strstr(sse, "{"), JSON_DISABLE_EOF_CHECK, NULL);
    assert_true(json_equal(last, want));
    json_decref(want);
    json_decref(events);
    json_decref(c);
    json_decref(chunks);
    lx_buf_free(&out);
    lx_error_clear(&e);
    lx_dialect_req_clear(&rq);
    free(sse);
}

/* ping: after a message_start (one made from the request when nothing came yet), as Anthropic writes it. */
static void test_keepalive(void **state)
{
    (void)state;
    struct lx_dialect_req rq;
    request(&rq, false);
    void *st = lx_dialect_anthropic_messages.stream_open(&rq);
    struct lx_buf out = {0};
    lx_dialect_anthropic_messages.stream_keepalive(st, &out);
    json_t *c = js("{\"id\":\"x\",\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}");
    lx_dialect_anthropic_messages.stream_chunk(st, c, &out);
    lx_dialect_anthropic_messages.stream_keepalive(st, &out);
    lx_dialect_anthropic_messages.stream_end(st, &out);
    lx_dialect_anthropic_messages.stream_keepalive(st, &out); /* after the end: nothing */
    lx_dialect_anthropic_messages.stream_close(st);
    assert_non_null(strstr(out.data, "event: ping\ndata: {\"type\":\"ping\"}\n\n"));
    json_t *events = events_of(out.data, out.len);
    static const char *const seq[] = {"message_start", "ping", "content_block_start", "content_block_delta", "ping",
                                      "content_block_stop", "message_delta", "message_stop"};
    assert_int_equal(json_array_size(events), LX_ARRAY_LEN(seq));
    for (size_t i = 0; i < LX_ARRAY_LEN(seq); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(events, i), "type")), seq[i]);
    json_t *msg = json_object_get(json_array_get(events, 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "model")), "claude-sonnet-4-5");
    assert_int_equal(strncmp(json_string_value(json_object_get(msg, "id")), "msg_", 4), 0);
    json_decref(events);
    json_decref(c);
    lx_buf_free(&out);
    lx_dialect_req_clear(&rq);
}

/* An empty answer still makes a whole message; a target's up-front prompt count (vLLM's continuous
 * usage) is message_start's input_tokens. */
static void test_empty_and_upfront_usage(void **state)
{
    (void)state;
    json_t *chunks = js("[{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}],"
                        "\"usage\":{\"prompt_tokens\":33,\"completion_tokens\":0,\"total_tokens\":33}},"
                        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}]");
    struct lx_buf out = {0};
    json_t *events;
    json_t *msg = through_dialect(chunks, false, &out);
    events = events_of(out.data, out.len);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(json_array_get(events, 0), "message"),
                                                                        "usage"), "input_tokens")), 33);
    assert_int_equal(json_array_size(json_object_get(msg, "content")), 0);
    assert_string_equal(json_string_value(json_object_get(msg, "stop_reason")), "max_tokens");
    json_decref(events);
    json_decref(msg);
    json_decref(chunks);
    lx_buf_free(&out);
}

/* A target that speaks Anthropic: its events (attached to the pivot chunks by the provider) are written
 * as they came, byte for byte, and the encoder adds nothing of its own but a ping. */
static void test_relay_byte_for_byte(void **state)
{
    (void)state;
    static const char *const names[] = {"anthropic_messages_stream_text.sse", "anthropic_messages_stream_tool_use.sse"};
    for (size_t f = 0; f < LX_ARRAY_LEN(names); f++) {
        size_t len;
        char *sse = read_fixture(names[f], &len);
        json_t *native = json_pack("{s:s,s:{},s:{},s:[]}", "api", "anthropic_messages", "body", "headers", "lost");
        struct lx_chat chat = {.stream = true, .include_usage = true, .model = "m", .native = native};
        void *pst = lx_provider_anthropic.stream_open(&anthropic_conf, &chat);
        json_t *chunks = json_array();
        struct lx_error e = {0};
        assert_int_equal(lx_provider_anthropic.stream_feed(pst, sse, len, collect, chunks, &e), LX_OK);
        assert_int_equal(lx_provider_anthropic.stream_finish(pst, collect, chunks, &e), LX_OK);
        lx_provider_anthropic.stream_close(pst);
        struct lx_dialect_req rq;
        request(&rq, false);
        struct lx_buf out = {0};
        encode(&rq, chunks, &out);
        assert_int_equal(out.len, len + 2);
        assert_memory_equal(out.data, sse, len);
        void *st = lx_dialect_anthropic_messages.stream_open(&rq);
        lx_dialect_anthropic_messages.stream_chunk(st, json_array_get(chunks, 0), &out);
        lx_buf_reset(&out);
        lx_dialect_anthropic_messages.stream_keepalive(st, &out);
        assert_string_equal(out.data, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
        lx_dialect_anthropic_messages.stream_close(st);
        lx_buf_free(&out);
        lx_dialect_req_clear(&rq);
        json_decref(chunks);
        json_decref(native);
        free(sse);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_fixtures_round_trip),
        cmocka_unit_test(test_text_closed_before_tool),
        cmocka_unit_test(test_openai_fixtures),
        cmocka_unit_test(test_ollama_fixtures),
        cmocka_unit_test(test_parallel_tools),
        cmocka_unit_test(test_reasoning_stop_sequence_and_estimates),
        cmocka_unit_test(test_error_event),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_empty_and_upfront_usage),
        cmocka_unit_test(test_relay_byte_for_byte),
    };
    return cmocka_run_group_tests_name("anthropic_stream", tests, NULL, NULL);
}
