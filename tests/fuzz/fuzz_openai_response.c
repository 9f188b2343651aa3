/* Fuzz target for the openai provider's non-stream answer slots (providers/openai.c): the input is an
 * upstream body handed to chat_response, error_response and models_response as src/call.c and
 * src/models.c do. Each must either accept a well-formed answer or fail with a client-ready error. */
/* The provider under test: this file is also included, with other definitions, by the targets of the
 * providers that translate other dialects (fuzz_anthropic_*.c, fuzz_ollama_*.c). */
#ifndef FUZZ_PROVIDER
#define FUZZ_PROVIDER lx_provider_openai
#define FUZZ_NAME "fuzz_openai_response"
#endif

#include "../../providers/provider.h"
#include "../../src/core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lx_provider_conf conf = {
    .name = "oai", .type = &FUZZ_PROVIDER, .base_url = "http://up.example/v1", .api_key = "sk-fuzz",
};

/* Upstream statuses error_response sees; the input's first byte picks one, so seeds stay plain JSON. */
static const int statuses[] = {400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 520};

static void fail(const char *what)
{
    fprintf(stderr, FUZZ_NAME ": %s\n", what);
    abort();
}

static void check_error_json(const struct lx_error *e)
{
    json_t *ev = lx_error_json(e);
    json_t *inner = json_object_get(ev, "error");
    if (!json_is_string(json_object_get(inner, "message")) || !json_is_string(json_object_get(inner, "type")))
        fail("an error without a message or type string");
    char *text = json_dumps(ev, JSON_COMPACT);
    if (!text)
        fail("an error that does not serialize");
    free(text);
    json_decref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* src/call.c passes the body buffer's data, which is NULL while nothing was received. */
    const char *body = size ? (const char *)data : NULL;
    struct lx_chat chat = {.model = "gpt-fuzz", .req_id = 1};

    struct lx_error err = {0};
    json_t *completion = FUZZ_PROVIDER.chat_response(&conf, &chat, body, size, &err);
    if (completion) {
        if (lx_error_isset(&err))
            fail("chat_response accepted a body and set err");
        if (!json_is_object(completion) || !json_is_array(json_object_get(completion, "choices")))
            fail("chat_response accepted a body that is not a chat completion");
        /* Strict clients (the SDKs) need these even when a lax server left them out. */
        if (!json_is_string(json_object_get(completion, "id")) ||
            !json_is_string(json_object_get(completion, "object")) ||
            !json_is_integer(json_object_get(completion, "created")) ||
            !json_is_string(json_object_get(completion, "model")) ||
            !json_is_object(json_object_get(completion, "usage")))
            fail("chat_response returned a completion without id, object, created, model and usage");
        char *text = json_dumps(completion, JSON_COMPACT);
        if (!text)
            fail("chat_response returned a completion that does not serialize");
        free(text);
        json_decref(completion);
    } else {
        /* 502 for a body that is not the protocol; an error object in a 200 keeps the status its code or
         * type maps to (errors.c), which only an error object may get. */
        if (!err.message || err.status < 400 || err.status > 599)
            fail("chat_response refused a body without an error status and message");
        if (err.status != 502) {
            json_t *root = json_loadb(body ? body : "", size, 0, NULL);
            json_t *e = json_object_get(root, "error");
            bool error_object = json_is_object(e) || json_is_string(e);
            json_decref(root);
            if (!error_object)
                fail("chat_response refused a body that is not an error object without a 502");
        }
        check_error_json(&err);
    }
    lx_error_clear(&err);

    int status = statuses[(size ? data[0] : 0) % LX_ARRAY_LEN(statuses)];
    FUZZ_PROVIDER.error_response(&conf, status, body, size, &err);
    if (err.status != status || !err.message)
        fail("error_response did not keep the status or gave no message");
    check_error_json(&err);
    lx_error_clear(&err);

    json_t *ids = json_array();
    int rc = FUZZ_PROVIDER.models_response(&conf, body, size, ids);
    if (rc != LX_OK && rc != LX_ERR)
        fail("models_response returned something other than LX_OK or LX_ERR");
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        if (!json_is_string(id))
            fail("models_response appended a model id that is not a string");
    }
    json_decref(ids);
    return 0;
}
