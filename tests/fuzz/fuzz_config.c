/* Fuzz target for configuration loading (src/config.c): lx_config_load_buffer with ${VAR} and
 * ${VAR:-default} expansion, then the lookups requests make on a loaded config, and lx_env_expand on the
 * raw input. A loaded config must hold what validation promised. Input: the config text. */
#include "../../providers/provider.h"
#include "../../src/config.h"
#include "../../src/api/conf.h"
#include "../../src/core/conf.h"
#include "../../src/engine/conf.h"
#include "../../src/server/conf.h"
#include "../../src/core/confread.h"
#include "../../src/core/common.h"
#include "../../src/engine/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
}

/* Set, empty (counts as unset) and unset variables, so every expansion path is one mutation away; the
 * seeds use these names. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    unsetenv("HF_TOKEN"); /* the huggingface type reads it: keep runs the same on every machine */
    (void)argc;
    (void)argv;
    setenv("LX_FUZZ_A", "value", 1);
    setenv("LX_FUZZ_KEY", "sk-fuzz-key", 1);
    setenv("LX_FUZZ_URL", "http://127.0.0.1:9/v1/", 1);
    setenv("LX_FUZZ_LISTEN", "127.0.0.1:8080", 1);
    setenv("LX_FUZZ_EMPTY", "", 1);
    setenv("LX_FUZZ_BRACES", "${LX_FUZZ_A}}", 1); /* expansion must not recurse into values */
    unsetenv("LX_FUZZ_UNSET");
    return 0;
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static void check_config(struct lx_config *c)
{
    if (c->refs != 1 || !c->server->listen)
        fail("a loaded config without one reference or a listen address");
    char *host;
    int port;
    if (lx_parse_listen(c->server->listen, &host, &port) != LX_OK)
        fail("a loaded config whose listen does not parse");
    free(host);
    if (c->server->limits.max_body_bytes == 0 || c->engine->timeouts.connect_ms <= 0 ||
        c->engine->timeouts.first_byte_ms <= 0 || c->engine->timeouts.idle_ms <= 0 ||
        c->engine->timeouts.total_ms <= 0 || c->api->models_timeout_ms <= 0 || c->server->shutdown_timeout_ms < 0)
        fail("a loaded config with a limit or timeout out of range");
    for (size_t i = 0; i < c->engine->n_providers; i++) {
        const struct lx_provider_conf *p = &c->engine->providers[i];
        if (!p->name || !*p->name || strchr(p->name, '/') || !p->type)
            fail("a provider without a valid name or type");
        if (lx_engine_provider(c->engine, p->name, strlen(p->name)) != p)
            fail("a provider that lookup does not find");
        if (p->timeouts.connect_ms <= 0 || p->timeouts.total_ms <= 0)
            fail("a provider with a timeout out of range");
        if (p->disabled_reason)
            continue;
        if (p->type->default_base_url && !p->base_url)
            fail("a network provider without a base_url");
        if (p->base_url) {
            size_t n = strlen(p->base_url);
            if (strncmp(p->base_url, "http://", 7) != 0 && strncmp(p->base_url, "https://", 8) != 0)
                fail("a base_url that is not http(s)");
            if (n && p->base_url[n - 1] == '/')
                fail("a base_url with a trailing '/'");
        }
        if (p->api_key && has_line_break(p->api_key))
            fail("an api_key with a line break (header injection)");
        for (size_t h = 0; h < p->n_headers; h++)
            if (!p->headers[h] || has_line_break(p->headers[h]) || !strstr(p->headers[h], ": "))
                fail("an upstream header line that is not one \"Name: value\" line");
        for (size_t m = 0; m < p->n_models; m++)
            if (!p->models[m] || !*p->models[m])
                fail("an empty model name");
        if (p->type->models_request) {
            struct lx_http_request r = {0};
            if (p->type->models_request(p, &r) == LX_OK && (!r.url || !r.method))
                fail("a models request without a method or URL");
            lx_http_request_free(&r);
        }
    }
    for (size_t i = 0; i < c->engine->n_aliases; i++) {
        const struct lx_alias *a = &c->engine->aliases[i];
        if (lx_engine_alias(c->engine, a->name) != a)
            fail("an alias that lookup does not find");
        /* Validation promised the alias names a configured provider: routing it must not say it is not
         * found (a disabled provider's 404 provider_disabled is fine). */
        struct lx_plan plan;
        struct lx_error err = {0};
        if (lx_route_plan(c->engine, a->name, &plan, &err) != LX_OK && err.code && strcmp(err.code, "model_not_found") == 0)
            fail("an alias whose provider routing does not find");
        if (a->n_targets == 0 || (plan.lanes && lx_plan_count(&plan) > a->n_targets))
            fail("an alias plan with more targets than the alias");
        lx_plan_free(&plan);
        lx_error_clear(&err);
    }
    struct lx_config *again = lx_config_ref(c);
    if (again != c || c->refs != 2)
        fail("lx_config_ref");
    lx_config_unref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct lx_config *c = lx_config_load_buffer((const char *)data, size, err, sizeof err);
    if (c) {
        check_config(c);
        lx_config_unref(c);
    } else if (!err[0]) {
        fail("a refused config without a message");
    }

    /* The expander on its own, on the input as one string (up to its first NUL). */
    char *text = lx_strndup((const char *)data, size);
    char *missing = NULL;
    char *out = lx_env_expand(text, &missing);
    if (!out == !missing)
        fail("lx_env_expand must give either a string or the missing variable");
    free(out);
    free(missing);
    free(text);
    return 0;
}
