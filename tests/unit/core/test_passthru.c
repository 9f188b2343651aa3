/* Unit tests for src/core/passthru.c: on the recorded OpenAI fixtures, the pass-through path and the general
 * path (jansson, providers/openai.c and the OpenAI chat dialect) give the client the same answer: field for
 * field always, byte for byte where the general path would not reformat (the bytes path relays the
 * upstream's own bytes). Also: what the bytes path leaves to the general one, and the request body. */
#include "../unit.h"
#include "../../../dialects/dialect.h"
#include "../../../providers/openai.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/passthru.h"
#include "../../../src/engine/exec.h"

static struct lx_provider_conf conf = {.name = "oai", .type = &lx_provider_openai, .base_url = "http://up/v1"};

/* What a client gets on each path: the wire events of every chunk, and the facts the bytes path read. */
struct events {
    struct lx_buf wire[2];     /* [0] general path, [1] bytes path: "data: ...\n\n" per chunk */
    json_t *general;           /* the general path's chunks */
    json_t *bytes;             /* the bytes path's chunks, read back */
    int n_bytes;               /* chunks that came as bytes */
    json_t *facts;             /* per bytes chunk: [preamble, finish] as the bytes path read them */
    int usage_only;
    long prompt, completion;
};

static void on_json0(void *ctx, json_t *chunk)
{
    struct events *e = ctx;
    lx_dialect_openai_chat.stream_chunk(NULL, chunk, &e->wire[0]);
    json_array_append(e->general, chunk);
}

static void on_json1(void *ctx, json_t *chunk)
{
    struct events *e = ctx;
    lx_dialect_openai_chat.stream_chunk(NULL, chunk, &e->wire[1]);
    json_array_append(e->bytes, chunk);
}

static void on_bytes(void *ctx, const struct lx_answer_bytes *chunk)
{
    struct events *e = ctx;
    lx_dialect_openai_chat.stream_chunk_bytes(NULL, chunk, &e->wire[1]);
    json_array_append_new(e->bytes, lx_answer_bytes_json(chunk));
    e->n_bytes++;
    json_array_append_new(e->facts, json_pack("[b,b]", chunk->preamble, chunk->finish));
    e->usage_only += chunk->usage_only;
    if (chunk->prompt_tokens >= 0)
        e->prompt = chunk->prompt_tokens;
    if (chunk->completion_tokens >= 0)
        e->completion = chunk->completion_tokens;
}

/* Decode a recorded stream on both paths (fed in pieces of `step` bytes). */
static void decode_both(const char *name, size_t step, struct events *e)
{
    size_t len;
    char *text = read_fixture(name, &len);
    struct lx_chat chat = {.model = "gpt-x", .stream = true, .include_usage = true};
    memset(e, 0, sizeof *e);
    e->general = json_array();
    e->bytes = json_array();
    e->facts = json_array();
    e->prompt = e->completion = -1;
    void *st[2] = {lx_openai_stream_open(&conf, &chat), lx_openai_stream_open(&conf, &chat)};
    struct lx_error err = {0};
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        assert_int_equal(lx_openai_stream_feed(st[0], text + off, n, on_json0, e, &err), LX_OK);
        assert_int_equal(lx_openai_stream_feed_bytes(st[1], text + off, n, on_json1, on_bytes, e, &err), LX_OK);
    }
    assert_int_equal(lx_openai_stream_finish(st[0], on_json0, e, &err), LX_OK);
    assert_int_equal(lx_openai_stream_finish(st[1], on_json1, e, &err), LX_OK);
    lx_openai_stream_close(st[0]);
    lx_openai_stream_close(st[1]);
    free(text);
}

static void free_events(struct events *e)
{
    lx_buf_free(&e->wire[0]);
    lx_buf_free(&e->wire[1]);
    json_decref(e->general);
    json_decref(e->bytes);
    json_decref(e->facts);
}

/* The general path's reading of a chunk: exec's preamble rule, the decoder's finish rule. */
static json_t *general_facts(json_t *chunk)
{
    bool finish = false;
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(chunk, "choices"), i, choice) {
        json_t *fr = json_object_get(choice, "finish_reason");
        finish |= fr && !json_is_null(fr);
    }
    return json_pack("[b,b]", lx_exec_is_preamble(chunk), finish);
}

/* The recorded event data lines of a fixture, each followed by a blank line, as the bytes path writes them. */
static char *recorded_events(const char *name)
{
    size_t len;
    char *text = read_fixture(name, &len);
    struct lx_buf out = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "data: ", 6) != 0 || strcmp(line, "data: [DONE]") == 0)
            continue;
        lx_buf_puts(&out, line);
        lx_buf_puts(&out, "\n\n");
    }
    free(text);
    return lx_buf_steal(&out, NULL);
}

static void test_streams_identical_on_both_paths(void **state)
{
    (void)state;
    const char *files[] = {"openai_chat_stream_text_with_usage.sse", "openai_chat_stream_tool_call.sse",
                           "openai_chat_stream_finish_length.sse", "openai_chat_stream_refusal.sse",
                           "openai_chat_stream_logprobs.sse"};
    for (size_t f = 0; f < LX_ARRAY_LEN(files); f++) {
        for (size_t step = 1; step <= 4096; step *= 8) {
            struct events e;
            decode_both(files[f], step, &e);
            /* Field for field the same chunks, every one of them passed through as bytes. */
            if (!json_equal(e.general, e.bytes)) {
                char *g = json_dumps(e.general, 0), *b = json_dumps(e.bytes, 0);
                fail_msg("%s in pieces of %zu: general %s\nbytes %s", files[f], step, g, b);
            }
            if (e.n_bytes != (int)json_array_size(e.general))
                fail_msg("%s: %d of %zu chunks as bytes", files[f], e.n_bytes, json_array_size(e.general));
            /* The bytes path relays the upstream's bytes exactly. */
            char *want = recorded_events(files[f]);
            assert_string_equal(e.wire[1].data, want);
            free(want);
            /* What llmux reads from each: whether it commits a lane, whether it finishes a choice. */
            size_t i;
            json_t *chunk;
            json_array_foreach(e.general, i, chunk) {
                json_t *want_facts = general_facts(chunk);
                assert_true(json_equal(want_facts, json_array_get(e.facts, i)));
                json_decref(want_facts);
            }
            free_events(&e);
        }
    }
}

static void test_stream_usage_read_and_cut(void **state)
{
    (void)state;
    struct events e;
    decode_both("openai_chat_stream_text_with_usage.sse", 4096, &e);
    assert_int_equal(e.usage_only, 1);
    /* The usage chunk's counts, as the general path's usage object has them. */
    json_t *last = json_array_get(e.general, json_array_size(e.general) - 1);
    json_t *u = json_object_get(last, "usage");
    assert_int_equal(e.prompt, json_integer_value(json_object_get(u, "prompt_tokens")));
    assert_int_equal(e.completion, json_integer_value(json_object_get(u, "completion_tokens")));
    free_events(&e);

    /* A chunk that carries "usage": null (as newer OpenAI recordings do on every chunk): the cut leaves the
     * chunk the general path gets by deleting the member, wherever it stands. */
    const char *chunks[] = {
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}],\"usage\":null}",
        "{\"usage\":null,\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[]}",
        "{\"id\":\"c\", \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 4}, \"object\":\"x\",\"created\":1,"
        "\"model\":\"m\",\"choices\":[{\"delta\":{}, \"finish_reason\":\"stop\"}]}",
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(chunks); i++) {
        struct lx_answer_bytes a;
        assert_int_equal(lx_passthru_chunk(chunks[i], strlen(chunks[i]), &a), LX_OK);
        assert_true(a.has_usage);
        a.cut_at = a.usage_at;
        a.cut_len = a.usage_len;
        json_t *want = json_loads(chunks[i], 0, NULL);
        json_object_del(want, "usage");
        json_t *got = lx_answer_bytes_json(&a);
        assert_true(json_equal(want, got));
        json_decref(want);
        json_decref(got);
    }
}

static void test_completion_identical_on_both_paths(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("openai_chat_nonstream_tool_call.json", &len);
    struct lx_chat chat = {.model = "gpt-x"};
    struct lx_error err = {0};
    json_t *general = lx_openai_chat_response(&conf, &chat, body, len, &err);
    assert_non_null(general);
    struct lx_answer_bytes a;
    assert_int_equal(lx_openai_chat_response_bytes(&conf, &chat, body, len, &a), LX_OK);
    assert_int_equal(a.prompt_tokens, 76);
    assert_int_equal(a.completion_tokens, 24);
    /* The client's body: the upstream's bytes as they came (ending in a newline), the same fields. */
    struct lx_buf out = {0};
    lx_dialect_openai_chat.completion_bytes(NULL, &a, &out);
    assert_int_equal(out.len, len + (body[len - 1] != '\n'));
    assert_memory_equal(out.data, body, len);
    json_t *got = json_loadb(out.data, out.len, 0, NULL);
    assert_true(json_equal(general, got));
    json_decref(got);
    json_decref(general);
    lx_buf_free(&out);
    free(body);
}

/* Whatever needs the general path's work is left to it. */
static void test_left_to_the_general_path(void **state)
{
    (void)state;
    const char *full = "\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\"";
    char buf[512];
    const char *extra[] = {
        "\"id\":\"c\",\"object\":\"x\",\"created\":1,\"choices\":[]",           /* model missing: filled */
        "\"object\":\"x\",\"created\":1,\"model\":\"m\",\"choices\":[]",        /* id missing */
        "\"id\":\"c\",\"object\":\"x\",\"created\":1.5,\"model\":\"m\",\"choices\":[]", /* created not an integer */
        "\"id\":null,\"object\":\"x\",\"created\":1,\"model\":\"m\",\"choices\":[]",
    };
    struct lx_answer_bytes a;
    for (size_t i = 0; i < LX_ARRAY_LEN(extra); i++) {
        snprintf(buf, sizeof buf, "{%s}", extra[i]);
        assert_int_equal(lx_passthru_chunk(buf, strlen(buf), &a), LX_AGAIN);
        assert_int_equal(lx_passthru_completion(buf, strlen(buf), &a), LX_AGAIN);
    }
    const char *chunk_only[] = {
        ",\"error\":null,\"choices\":[]",                                   /* removed by the general path */
        ",\"error\":{\"message\":\"x\"},\"choices\":[]",                    /* an error event */
        ",\"choices\":[],\"choices\":[]",                                   /* jansson keeps the last */
        ",\"choices\":[{\"delta\":{\"r\\u006fle\":\"assistant\"}}]",         /* a key only jansson reads */
        ",\"choices\":[],\"choices\":\n[]",                                 /* not one line */
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(chunk_only); i++) {
        snprintf(buf, sizeof buf, "{%s%s}", full, chunk_only[i]);
        assert_int_equal(lx_passthru_chunk(buf, strlen(buf), &a), LX_AGAIN);
    }
    /* A completion needs choices and a usage object; an error body is the general path's. */
    snprintf(buf, sizeof buf, "{%s,\"choices\":[]}", full);
    assert_int_equal(lx_passthru_completion(buf, strlen(buf), &a), LX_AGAIN);
    snprintf(buf, sizeof buf, "{%s,\"choices\":[],\"usage\":{}}", full);
    assert_int_equal(lx_passthru_completion(buf, strlen(buf), &a), LX_OK);
    assert_int_equal(a.prompt_tokens, -1);
    const char *error = "{\"error\":{\"message\":\"quota\",\"type\":\"insufficient_quota\"}}";
    assert_int_equal(lx_passthru_completion(error, strlen(error), &a), LX_AGAIN);
    /* The preamble rule: role, null values and empty content only. */
    const char *pre[][2] = {
        {"[{\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}}]", "1"},
        {"[{\"delta\":{\"content\":\"x\"}}]", "0"},
        {"[{\"delta\":{},\"finish_reason\":\"stop\"}]", "0"},
        {"[{\"delta\":{\"tool_calls\":[]}}]", "0"},
        {"[1, {\"delta\":null}]", "1"},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(pre); i++) {
        snprintf(buf, sizeof buf, "{%s,\"choices\":%s}", full, pre[i][0]);
        assert_int_equal(lx_passthru_chunk(buf, strlen(buf), &a), LX_OK);
        assert_int_equal(a.preamble, pre[i][1][0] == '1');
    }
}

/* The upstream request: the client's bytes with the model replaced, the same fields as the general path's. */
static void test_request_body(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{\"model\":\"up/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{ \"messages\" : [{\"role\":\"user\",\"content\":\"é\"}], \"model\" : \"up/\\u0078\", \"stream\": true }",
        "{\"model\":\"up/x\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}",
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(bodies); i++) {
        for (int usage = 0; usage < 2; usage++) {
            json_t *body = json_loads(bodies[i], 0, NULL);
            struct lx_chat chat = {.body = body, .model = "x\"y", .stream = usage, .include_usage = usage};
            struct lx_http_request general = {0}, bytes = {0};
            struct lx_error err = {0};
            assert_int_equal(lx_openai_chat_request(&conf, &chat, &general, &err), LX_OK);
            assert_int_equal(lx_passthru_request(bodies[i], strlen(bodies[i]), &chat.bytes), LX_OK);
            assert_int_equal(lx_openai_chat_request(&conf, &chat, &bytes, &err), LX_OK);
            json_t *g = json_loadb(general.body, general.body_len, 0, NULL);
            json_t *b = json_loadb(bytes.body, bytes.body_len, 0, NULL);
            assert_non_null(b);
            assert_true(json_equal(g, b));
            assert_string_equal(json_string_value(json_object_get(b, "model")), "x\"y");
            lx_http_request_free(&general);
            lx_http_request_free(&bytes);
            json_decref(g);
            json_decref(b);
            json_decref(body);
        }
    }
    /* Its own stream_options without include_usage must be merged: left to the general path. */
    const char *own = "{\"model\":\"m\",\"stream_options\":{},\"messages\":[]}";
    struct lx_chat_bytes cb;
    struct lx_buf out = {0};
    assert_int_equal(lx_passthru_request(own, strlen(own), &cb), LX_OK);
    assert_int_equal(lx_passthru_request_body(&cb, "m", true, &out), LX_AGAIN);
    assert_int_equal(lx_passthru_request_body(&cb, "m", false, &out), LX_OK);
    lx_buf_free(&out);
    const char *twice = "{\"model\":\"a\",\"model\":\"b\",\"messages\":[]}";
    assert_int_equal(lx_passthru_request(twice, strlen(twice), &cb), LX_AGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_identical_on_both_paths),
        cmocka_unit_test(test_stream_usage_read_and_cut),
        cmocka_unit_test(test_completion_identical_on_both_paths),
        cmocka_unit_test(test_left_to_the_general_path),
        cmocka_unit_test(test_request_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
