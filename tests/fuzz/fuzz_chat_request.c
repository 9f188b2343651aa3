/* Fuzz target for a client's chat request: validation (the openai_chat dialect's parse) and, when it is
 * accepted, routing and translation into the upstream request by the openai provider, as
 * lx_chat_handle and lx_call_start do. The translation must send the client's body unchanged but for
 * "model", and must not modify the client's body. Input: the request body. */
#include "../../providers/provider.h"
#include "../../dialects/dialect.h"
#include "../../src/config.h"
#include "../../src/core/conf.h"
#include "../../src/core/common.h"
#include "../../src/core/passthru.h"
#include "../../src/engine/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Providers of every shape routing can meet: openai with a key and extra headers, one without, the mock
 * (local, so no translation), and one disabled by an unset variable; plus an alias. */
static const char config_text[] =
    "{\"providers\":{"
    "\"oai\":{\"type\":\"openai\",\"base_url\":\"http://up.example/v1/\",\"api_key\":\"sk-fuzz\","
    "\"headers\":{\"OpenAI-Organization\":\"org-fuzz\"}},"
    "\"local\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:8000/v1\"},"
    "\"mock\":{\"type\":\"mock\"},"
    "\"off\":{\"type\":\"openai\",\"api_key\":\"${LX_FUZZ_UNSET_KEY}\"}},"
    "\"aliases\":{\"fast\":\"oai/gpt-4.1-mini\"}}";

static struct lx_config *cfg; /* owned for the life of the process */

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_chat_request: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("LX_FUZZ_UNSET_KEY");
    char err[256];
    cfg = lx_config_load_buffer(config_text, strlen(config_text), err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "fuzz_chat_request: config: %s\n", err);
        abort();
    }
    return 0;
}

static bool has_header(const struct lx_http_request *r, const char *line)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i], line) == 0)
            return true;
    return false;
}

/* What went upstream is the client's body with only "model" replaced. */
static void check_request(const struct lx_provider_conf *p, const struct lx_chat *chat,
                          const struct lx_http_request *r)
{
    if (!r->method || strcmp(r->method, "POST") != 0)
        fail("the chat request is not a POST");
    char *url = lx_sprintf("%s/chat/completions", p->base_url);
    if (!r->url || strcmp(r->url, url) != 0)
        fail("the chat request goes to the wrong URL");
    free(url);
    if (!r->body || strlen(r->body) != r->body_len)
        fail("the request body is missing or its length is wrong");
    if (!has_header(r, "Content-Type: application/json") ||
        !has_header(r, chat->stream ? "Accept: text/event-stream" : "Accept: application/json"))
        fail("the request lacks its Content-Type or the Accept that matches stream");
    json_t *sent = json_loadb(r->body, r->body_len, 0, NULL);
    if (!json_is_object(sent))
        fail("the request body is not a JSON object");
    if (!json_is_string(json_object_get(sent, "model")) ||
        strcmp(json_string_value(json_object_get(sent, "model")), chat->model) != 0)
        fail("the request body does not carry the routed model");
    if (json_object_size(sent) != json_object_size(chat->body))
        fail("the request body gained or lost keys");
    const char *key;
    json_t *v;
    json_object_foreach(chat->body, key, v) {
        if (strcmp(key, "model") != 0 && !json_equal(v, json_object_get(sent, key)))
            fail("the request body changed a value other than model");
    }
    json_decref(sent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lx_error err = {0};
    struct lx_dialect_req rq = {0}, brq = {0};
    /* The check on the bytes alone (no tree) accepts only what parse accepts, and learns the same. */
    struct lx_chat_bytes bytes;
    bool by_bytes = lx_dialect_openai_chat.parse_bytes((const char *)data, size, &brq, &bytes) == LX_OK;
    json_t *body = lx_dialect_openai_chat.parse((const char *)data, size, &rq, &err);
    if (by_bytes && (!body || strcmp(brq.model, rq.model) != 0 || brq.stream != rq.stream ||
                     brq.include_usage != rq.include_usage))
        fail("parse_bytes accepted a body parse refuses, or learned something else from it");
    if (!by_bytes && brq.model)
        fail("parse_bytes filled the request it refused");
    struct lx_chat_bytes want;
    if (by_bytes && (lx_passthru_request((const char *)data, size, &want) != LX_OK || want.model_at != bytes.model_at ||
                     want.model_len != bytes.model_len || want.usage_asked != bytes.usage_asked ||
                     want.stream_options != bytes.stream_options))
        fail("parse_bytes found other pass-through facts than lx_passthru_request");
    lx_dialect_req_clear(&brq);
    lx_dialect_req_clear(&rq);
    if (!body) {
        if (err.status != 400 || !err.message || !err.code)
            fail("a refused request without a 400, a message and a code");
        json_t *ev = lx_error_json(&err);
        json_decref(ev);
        lx_error_clear(&err);
        return 0;
    }
    if (lx_error_isset(&err))
        fail("an accepted request with err set");

    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model)
        fail("an accepted request without a model string");
    char *client_model = lx_strdup(model);
    struct lx_plan plan;
    const struct lx_provider_conf *p;
    char *upstream_model;
    if (lx_route_plan(cfg->engine, model, &plan, &err) == LX_OK && lx_plan_target(&plan, 0)->provider->type == &lx_provider_openai) {
        p = lx_plan_target(&plan, 0)->provider;
        upstream_model = lx_strdup(lx_plan_target(&plan, 0)->model);
    } else {
        /* Not routable to an openai provider: the gateway would answer 404/503 (or the mock would), but
         * the translation is still worth fuzzing with every accepted body, so send it to "oai" as is. */
        if (!plan.lanes && !lx_error_isset(&err))
            fail("routing failed without err");
        lx_error_clear(&err);
        upstream_model = lx_strdup(model);
        p = lx_engine_provider(cfg->engine, "oai", 3);
    }
    lx_plan_free(&plan);

    struct lx_chat chat = {
        .body = body,
        .model = upstream_model,
        .stream = json_is_true(json_object_get(body, "stream")),
        .include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")),
        .req_id = 1,
    };
    struct lx_http_request r = {0};
    if (lx_provider_openai.chat_request(p, &chat, &r, &err) == LX_OK) {
        if (lx_error_isset(&err))
            fail("chat_request succeeded and set err");
        check_request(p, &chat, &r);
    } else if (err.status != 400 || !err.message) {
        fail("chat_request failed without a 400");
    }
    if (strcmp(json_string_value(json_object_get(body, "model")), client_model) != 0)
        fail("chat_request modified the client's body");

    lx_http_request_free(&r);
    lx_error_clear(&err);
    free(upstream_model);
    free(client_model);
    json_decref(body);
    return 0;
}
