/* Unit tests for src/core/otlp.c: which events make spans, their ids, parents, kinds, times, GenAI
 * attributes and error status, and the ExportTraceServiceRequest around them. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/otlp.h"

#include <jansson.h>

static struct lx_ev_origin origin(bool sampled, bool parent)
{
    struct lx_ev_origin o = {.request_id = "r-1", .key = "team", .model = "smart"};
    o.trace.valid = true;
    o.trace.sampled = sampled;
    o.trace.has_parent = parent;
    for (int i = 0; i < 16; i++)
        o.trace.trace_id[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 8; i++) {
        o.trace.span_id[i] = (uint8_t)(0x10 + i);
        o.trace.parent_id[i] = (uint8_t)(0xf0 + i);
    }
    return o;
}

static const char *attr(json_t *span, const char *key, const char *kind)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
            return json_string_value(json_object_get(json_object_get(a, "value"), kind));
    return NULL;
}

static json_t *span_of(const struct lx_event *ev)
{
    char *s = lx_otlp_span(ev);
    if (!s)
        return NULL;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(j);
    return j;
}

static void test_request_span(void **state)
{
    (void)state;
    struct lx_ev_origin o = origin(true, true);
    struct lx_event ev = {.type = LX_EV_REQUEST_FINISHED, .time_ns = 2000000000, .origin = &o,
                          .request = {.method = "POST", .path = "/v1/chat/completions", .route = "/v1/chat/completions",
                                      .status = 200, .answered_by = "up/b", .prompt_tokens = 7,
                                      .completion_tokens = 9, .retries = 2, .start_ns = 1000000000}};
    json_t *s = span_of(&ev);
    assert_string_equal(json_string_value(json_object_get(s, "traceId")), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    assert_string_equal(json_string_value(json_object_get(s, "spanId")), "1011121314151617");
    assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")), "f0f1f2f3f4f5f6f7");
    assert_string_equal(json_string_value(json_object_get(s, "name")), "POST /v1/chat/completions");
    assert_int_equal(json_integer_value(json_object_get(s, "kind")), 2);
    assert_string_equal(json_string_value(json_object_get(s, "startTimeUnixNano")), "1000000000");
    assert_string_equal(json_string_value(json_object_get(s, "endTimeUnixNano")), "2000000000");
    assert_string_equal(attr(s, "gen_ai.operation.name", "stringValue"), "chat");
    assert_string_equal(attr(s, "gen_ai.request.model", "stringValue"), "smart");
    assert_string_equal(attr(s, "gen_ai.usage.input_tokens", "intValue"), "7");
    assert_string_equal(attr(s, "gen_ai.usage.output_tokens", "intValue"), "9");
    assert_string_equal(attr(s, "http.response.status_code", "intValue"), "200");
    assert_string_equal(attr(s, "llmux.key", "stringValue"), "team");
    assert_null(json_object_get(s, "status"));
    json_decref(s);
    /* A 5xx is an error of this span; a 4xx is the client's (error.type only); no parent without one. */
    o = origin(true, false);
    ev.type = LX_EV_REQUEST_FAILED;
    ev.request.status = 502;
    ev.request.error = "bad_upstream_response";
    s = span_of(&ev);
    assert_null(json_object_get(s, "parentSpanId"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "status"), "code")), 2);
    assert_string_equal(attr(s, "error.type", "stringValue"), "bad_upstream_response");
    json_decref(s);
    ev.request.status = 404;
    ev.request.error = NULL;
    ev.request.route = "other";
    s = span_of(&ev);
    assert_null(json_object_get(s, "status"));
    assert_string_equal(attr(s, "error.type", "stringValue"), "404");
    assert_string_equal(json_string_value(json_object_get(s, "name")), "POST");
    assert_null(attr(s, "gen_ai.operation.name", "stringValue"));
    json_decref(s);
    /* Not sampled, no origin, or an event that ends no span: nothing. */
    o = origin(false, false);
    assert_null(lx_otlp_span(&ev));
    ev.origin = NULL;
    assert_null(lx_otlp_span(&ev));
    o = origin(true, false);
    struct lx_event started = {.type = LX_EV_REQUEST_STARTED, .origin = &o};
    assert_null(lx_otlp_span(&started));
}

static void test_call_and_tool_spans(void **state)
{
    (void)state;
    struct lx_ev_origin o = origin(true, true);
    struct lx_event ev = {.type = LX_EV_CALL_FINISHED, .time_ns = 50, .origin = &o,
                          .call = {.provider = "up", .provider_type = "openai", .model = "gpt-4o", .label = "up/gpt-4o",
                                   .operation = "chat", .attempt = 1, .span_id = {1, 2, 3, 4, 5, 6, 7, 8},
                                   .start_ns = 10, .outcome = "ok", .status = 200, .response_model = "gpt-4o-2024",
                                   .prompt_tokens = 3, .completion_tokens = 4, .won = true}};
    json_t *s = span_of(&ev);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "chat gpt-4o");
    assert_int_equal(json_integer_value(json_object_get(s, "kind")), 3);
    assert_string_equal(json_string_value(json_object_get(s, "spanId")), "0102030405060708");
    assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")), "1011121314151617");
    assert_string_equal(attr(s, "gen_ai.provider.name", "stringValue"), "openai");
    assert_string_equal(attr(s, "gen_ai.request.model", "stringValue"), "gpt-4o");
    assert_string_equal(attr(s, "gen_ai.response.model", "stringValue"), "gpt-4o-2024");
    assert_string_equal(attr(s, "gen_ai.usage.output_tokens", "intValue"), "4");
    assert_string_equal(attr(s, "llmux.attempt", "intValue"), "1");
    assert_null(attr(s, "error.type", "stringValue"));
    json_decref(s);
    ev.call.outcome = "error";
    ev.call.status = 504;
    ev.call.error = "upstream_timeout";
    ev.call.error_type = "upstream_error";
    ev.call.won = false;
    s = span_of(&ev);
    assert_string_equal(attr(s, "error.type", "stringValue"), "upstream_timeout");
    assert_null(attr(s, "gen_ai.usage.output_tokens", "intValue"));
    json_t *st = json_object_get(s, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "message")), "upstream_error");
    json_decref(s);

    struct lx_event tool = {.type = LX_EV_TOOL_FINISHED, .time_ns = 90, .origin = &o,
                            .tool = {.server = "files", .tool = "read", .outcome = "timeout", .error = "no answer",
                                     .span_id = {9, 9, 9, 9, 9, 9, 9, 9}, .start_ns = 80}};
    s = span_of(&tool);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "execute_tool read");
    assert_int_equal(json_integer_value(json_object_get(s, "kind")), 1);
    assert_string_equal(attr(s, "gen_ai.operation.name", "stringValue"), "execute_tool");
    assert_string_equal(attr(s, "gen_ai.tool.name", "stringValue"), "read");
    assert_string_equal(attr(s, "error.type", "stringValue"), "timeout");
    json_decref(s);
}

static void test_export_request(void **state)
{
    (void)state;
    char *spans[] = {"{\"name\":\"a\"}", "{\"name\":\"b\"}"};
    struct lx_buf b = {0};
    lx_otlp_request(&b, "my \"gw\"", spans, 2);
    json_t *r = json_loads(b.data, 0, NULL);
    assert_non_null(r);
    json_t *rs = json_array_get(json_object_get(r, "resourceSpans"), 0);
    json_t *a0 = json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "key")), "service.name");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a0, "value"), "stringValue")), "my \"gw\"");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")), "llmux");
    assert_int_equal(json_array_size(json_object_get(ss, "spans")), 2);
    json_decref(r);
    lx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_request_span), cmocka_unit_test(test_call_and_tool_spans),
                                       cmocka_unit_test(test_export_request)};
    return cmocka_run_group_tests_name("otlp", tests, NULL, NULL);
}
