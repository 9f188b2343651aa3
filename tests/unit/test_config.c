/* Unit tests for src/config.c: defaults, ${ENV} expansion, disabled providers, and error messages that
 * name the bad key. */
#include "unit.h"
#include "../../providers/provider.h"
#include "../../src/config.h"
#include "../../src/api/conf.h"
#include "../../src/core/conf.h"
#include "../../src/engine/conf.h"
#include "../../src/engine/store_conf.h"
#include "../../src/server/auth.h"
#include "../../src/server/conf.h"
#include "../../src/core/confread.h"
#include "../../src/core/common.h"

static struct lx_config *load(const char *json, char *err)
{
    return lx_config_load_buffer(json, strlen(json), err, 512);
}

static void expect_error(const char *json, const char *needle)
{
    char err[512] = "";
    struct lx_config *c = load(json, err);
    assert_null(c);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void test_defaults(void **state)
{
    (void)state;
    char err[512];
    struct lx_config *c = load("{}", err);
    assert_non_null(c);
    assert_string_equal(c->server->listen, "127.0.0.1:8080");
    assert_int_equal(c->server->limits.max_body_bytes, 4 * 1024 * 1024);
    assert_int_equal(c->engine->n_providers, 0);
    lx_config_unref(c);
}

static void test_shipped_config(void **state)
{
    (void)state;
    char err[512];
    unsetenv("OPENAI_API_KEY");
    struct lx_config *c = lx_config_load_file("conf/llmux.json", err, sizeof err);
    assert_non_null(c);
    const struct lx_provider_conf *mock = lx_engine_provider(c->engine, "mock", 4);
    assert_non_null(mock);
    assert_null(mock->disabled_reason);
    const struct lx_provider_conf *openai = lx_engine_provider(c->engine, "openai", 6);
    assert_non_null(openai);
    /* With no key set the shipped config still loads: the provider is disabled, naming the variable. */
    assert_non_null(openai->disabled_reason);
    assert_non_null(strstr(openai->disabled_reason, "OPENAI_API_KEY"));
    /* ... and the key that needs it, and still shows where it would go (GET /v1/providers). */
    assert_non_null(strstr(openai->disabled_reason, "providers.openai.api_key"));
    assert_string_equal(openai->base_url, "https://api.openai.com/v1");
    assert_int_equal(c->n_warnings, 1);
    lx_config_unref(c);
}

static void test_env_expansion(void **state)
{
    (void)state;
    char err[512];
    setenv("LX_TEST_KEY", "sk-test-123", 1);
    setenv("LX_TEST_PORT", "9999", 1);
    struct lx_config *c = load("{\"listen\":\"127.0.0.1:${LX_TEST_PORT}\",\"providers\":{\"o\":{\"type\":\"openai\","
                               "\"base_url\":\"http://h:1/v1/\",\"api_key\":\"${LX_TEST_KEY}\","
                               "\"headers\":{\"X-A\":\"${LX_TEST_UNSET:-dflt}\"}}}}", err);
    assert_non_null(c);
    assert_string_equal(c->server->listen, "127.0.0.1:9999");
    const struct lx_provider_conf *p = lx_engine_provider(c->engine, "o", 1);
    assert_string_equal(p->api_key, "sk-test-123");
    assert_string_equal(p->base_url, "http://h:1/v1"); /* trailing slash dropped */
    assert_int_equal(p->n_headers, 1);
    assert_string_equal(p->headers[0], "X-A: dflt");
    assert_null(p->disabled_reason);
    lx_config_unref(c);
}

static void test_env_expand_function(void **state)
{
    (void)state;
    char *missing;
    setenv("LX_A", "x", 1);
    unsetenv("LX_B");
    char *s = lx_env_expand("a${LX_A}b${LX_B:-y}c", &missing);
    assert_string_equal(s, "axbyc");
    free(s);
    assert_null(lx_env_expand("${LX_B}", &missing));
    assert_string_equal(missing, "LX_B");
    free(missing);
    s = lx_env_expand("no ${ closing", &missing);
    assert_string_equal(s, "no ${ closing");
    free(s);
}

static void test_missing_env_outside_providers(void **state)
{
    (void)state;
    unsetenv("LX_NOPE");
    expect_error("{\"listen\":\"${LX_NOPE}\"}", "listen: environment variable LX_NOPE is not set");
}

static void test_errors_name_the_key(void **state)
{
    (void)state;
    expect_error("{\"listn\":\"x\"}", "listn: unknown key");
    expect_error("{\"listen\":\"nope\"}", "listen:");
    expect_error("{\"listen\":\"1.2.3.4:99999\"}", "listen:");
    expect_error("{\"limits\":{\"max_body_bytes\":\"big\"}}", "limits.max_body_bytes");
    expect_error("{\"timeouts\":{\"idle_ms\":0}}", "timeouts.idle_ms");
    expect_error("{\"timeouts\":{\"idel_ms\":5}}", "timeouts.idel_ms: unknown key");
    expect_error("{\"providers\":{\"x\":{\"type\":\"nosuch\"}}}", "providers.x.type: unknown provider type");
    expect_error("{\"providers\":{\"x\":{}}}", "providers.x.type");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"base_url\":\"ftp://a\"}}}", "providers.x.base_url");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"base_url\":\"https://\"}}}", "providers.x.base_url");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"base_url\":\"http:///v1\"}}}", "providers.x.base_url");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"base_url\":\"http://a b\"}}}", "providers.x.base_url");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"bogus\":1}}}", "providers.x.bogus: unknown key");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"headers\":{\"A\":1}}}}", "providers.x.headers.A");
    expect_error("{\"providers\":{\"x\":{\"type\":\"openai\",\"models\":[1]}}}", "providers.x.models[0]");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\",\"latency_ms\":-1}}}", "providers.x.latency_ms");
    expect_error("{\"providers\":{\"a/b\":{\"type\":\"mock\"}}}", "no '/'");
    expect_error("{\"aliases\":{\"f\":\"nobody/m\"}}", "aliases.f: no provider named 'nobody'");
    expect_error("{\"aliases\":{\"f\":\"plain\"}}", "aliases.f");
    expect_error("[1]", "expected a JSON object");
    expect_error("{\"listen\":", "invalid JSON");
    expect_error("{\"listen\":\"a:1\",\"listen\":\"b:2\"}", "invalid JSON");
}

static void test_secret_not_in_errors(void **state)
{
    (void)state;
    char err[512];
    struct lx_config *c = load("{\"providers\":{\"x\":{\"type\":\"openai\",\"api_key\":\"sk-secret\\nx\"}}}", err);
    assert_null(c);
    assert_null(strstr(err, "sk-secret"));
    assert_non_null(strstr(err, "providers.x.api_key"));
}

static void test_listen_parse(void **state)
{
    (void)state;
    char *host;
    int port;
    assert_int_equal(lx_parse_listen("[::1]:8080", &host, &port), LX_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    free(host);
    assert_int_equal(lx_parse_listen(":0", &host, &port), LX_OK);
    assert_string_equal(host, "0.0.0.0");
    free(host);
    assert_int_equal(lx_parse_listen("host", &host, &port), LX_ERR);
    assert_int_equal(lx_parse_listen("h:x", &host, &port), LX_ERR);
}

static void test_provider_timeouts_override(void **state)
{
    (void)state;
    char err[512];
    struct lx_config *c = load("{\"timeouts\":{\"idle_ms\":111,\"connect_ms\":222},\"providers\":{\"o\":{\"type\":"
                               "\"openai\",\"timeouts\":{\"idle_ms\":5}}}}", err);
    assert_non_null(c);
    const struct lx_provider_conf *p = lx_engine_provider(c->engine, "o", 1);
    assert_int_equal(p->timeouts.idle_ms, 5);
    assert_int_equal(p->timeouts.connect_ms, 222);
    assert_string_equal(p->base_url, "https://api.openai.com/v1");
    lx_config_unref(c);
}

static void test_resilience_keys(void **state)
{
    (void)state;
    char err[512];
    struct lx_config *c = load("{\"retries\":{\"max\":4,\"base_delay_ms\":50},\"providers\":{\"o\":{\"type\":\"openai\","
                               "\"retries\":{\"max\":1},\"max_concurrency\":8,\"queue_timeout_ms\":0,\"passthrough\":false,\"cooldown\":"
                               "{\"failures\":3}},\"m\":{\"type\":\"mock\"}},\"aliases\":{\"l\":[\"o/a\",\"m/b\"],\"h\":"
                               "{\"models\":[\"o/a\",\"m/b\"],\"hedge_ms\":0},\"s\":\"m/c\"}}", err);
    assert_non_null(c);
    const struct lx_provider_conf *o = lx_engine_provider(c->engine, "o", 1), *m = lx_engine_provider(c->engine, "m", 1);
    assert_int_equal(o->retries.max, 1);
    assert_int_equal(o->retries.base_delay_ms, 50); /* the global value where the provider says nothing */
    assert_int_equal(o->retries.max_delay_ms, 20000);
    assert_int_equal(o->max_concurrency, 8);
    assert_int_equal(o->queue_timeout_ms, 0);
    assert_false(o->passthrough);
    assert_true(m->passthrough); /* the default */
    assert_int_equal(o->cooldown.failures, 3);
    assert_int_equal(o->cooldown.period_ms, 30000);
    assert_int_equal(m->retries.max, 4);
    assert_int_equal(m->max_concurrency, 0);
    assert_int_equal(m->queue_timeout_ms, 30000);
    assert_int_equal(m->cooldown.failures, 0);
    const struct lx_alias *l = lx_engine_alias(c->engine, "l"), *h = lx_engine_alias(c->engine, "h"), *s1 = lx_engine_alias(c->engine, "s");
    assert_int_equal(l->n_targets, 2);
    assert_int_equal(l->hedge_ms, -1);
    assert_string_equal(l->targets[1], "m/b");
    assert_int_equal(h->hedge_ms, 0);
    assert_int_equal(s1->n_targets, 1);
    assert_int_equal(c->api->fanout_max_models, 16);
    assert_int_equal(c->api->batch_max_concurrency, 1000);
    lx_config_unref(c);

    expect_error("{\"retries\":{\"max\":11}}", "retries.max");
    expect_error("{\"retries\":{\"tries\":1}}", "retries.tries: unknown key");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\",\"max_concurrency\":-1}}}", "providers.x.max_concurrency");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\",\"passthrough\":1}}}",
                 "providers.x.passthrough: expected true or false");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\",\"cooldown\":{\"after\":1}}}}",
                 "providers.x.cooldown.after: unknown key");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\"}},\"aliases\":{\"f\":[]}}", "aliases.f");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\"}},\"aliases\":{\"f\":[\"x/a\",\"y/b\"]}}",
                 "aliases.f[1]: no provider named 'y'");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\"}},\"aliases\":{\"f\":{\"models\":\"x/a\"}}}",
                 "aliases.f.models");
    expect_error("{\"providers\":{\"x\":{\"type\":\"mock\"}},\"aliases\":{\"f\":{\"models\":[\"x/a\"],\"hedge\":1}}}",
                 "aliases.f.hedge: unknown key");
    expect_error("{\"batch\":{\"default_concurrency\":20,\"max_concurrency\":10}}", "batch.default_concurrency");
    expect_error("{\"fanout\":{\"max_models\":0}}", "fanout.max_models");
}

static void test_upstream_body_limit(void **state)
{
    (void)state;
    char err[512];
    struct lx_config *c = load("{\"providers\":{\"p\":{\"type\":\"mock\"}}}", err);
    assert_non_null(c);
    assert_int_equal(c->engine->max_upstream_body_bytes, 16 * 1024 * 1024);
    assert_int_equal(c->engine->providers[0].max_upstream_body_bytes, 16 * 1024 * 1024);
    lx_config_unref(c);
    c = load("{\"limits\":{\"max_upstream_body_bytes\":65536},\"providers\":{\"p\":{\"type\":\"mock\"}}}", err);
    assert_non_null(c);
    assert_int_equal(c->engine->max_upstream_body_bytes, 65536);
    assert_int_equal(c->engine->providers[0].max_upstream_body_bytes, 65536); /* what call.c enforces */
    lx_config_unref(c);
    expect_error("{\"limits\":{\"max_upstream_body_bytes\":1023}}", "limits.max_upstream_body_bytes: expected an integer from 1024");
    expect_error("{\"limits\":{\"max_upstream_body_bytes\":2147483648}}", "limits.max_upstream_body_bytes");
    expect_error("{\"limits\":{\"max_upstream_body_bytes\":\"16M\"}}", "limits.max_upstream_body_bytes");
}

/* An alias named like another provider's model is warned about (it lets a key limited to that provider
 * reach another); one that stays within its provider, or has no provider prefix, is not. */
static void test_alias_named_like_other_provider(void **state)
{
    (void)state;
    char err[512];
    struct lx_config *c = load("{\"providers\":{\"mock\":{\"type\":\"mock\"},\"up\":{\"type\":\"mock\"}},"
                               "\"aliases\":{\"mock/x\":\"up/gpt\",\"mock/y\":\"mock/z\",\"fast\":\"up/a\","
                               "\"nobody/q\":\"up/b\",\"mock/list\":[\"mock/a\",\"up/b\"],"
                               "\"mockery/x\":\"up/c\"}}",
                               err);
    assert_non_null(c);
    assert_int_equal(c->n_warnings, 2);
    assert_non_null(strstr(c->warnings[0], "aliases.mock/x: named like a model of provider 'mock' but routes to 'up/gpt'"));
    assert_non_null(strstr(c->warnings[0], "a key limited to \"mock/*\" reaches 'up'"));
    assert_non_null(strstr(c->warnings[1], "aliases.mock/list:"));
    assert_non_null(strstr(c->warnings[1], "'up/b'"));
    lx_config_unref(c);
}

static void test_operations_keys(void **state)
{
    (void)state;
    char err[512];
    setenv("LX_TEST_CLIENT_KEY", "sk-client-key-1234", 1);
    struct lx_config *c = load("{\"admin_listen\":\"127.0.0.1:9090\",\"limits\":{\"max_connections\":5,"
                               "\"max_header_bytes\":4096,\"read_timeout_ms\":0,\"max_inflight_per_key\":2,"
                               "\"max_request_ms\":1000},\"auth\":{\"keys\":[{\"name\":\"app\",\"key\":"
                               "\"${LX_TEST_CLIENT_KEY}\",\"models\":[\"a/*\"],\"rpm\":10,\"tpm\":100},"
                               "{\"name\":\"ops\",\"sha256\":\"5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8\"}]}}",
                               err);
    assert_non_null(c);
    assert_string_equal(c->server->admin_listen, "127.0.0.1:9090");
    assert_int_equal(c->server->limits.max_connections, 5);
    assert_int_equal(c->server->limits.max_header_bytes, 4096);
    assert_int_equal(c->server->limits.read_timeout_ms, 0);
    assert_int_equal(c->server->limits.max_inflight_per_key, 2);
    assert_int_equal(c->server->limits.max_request_ms, 1000);
    assert_int_equal(c->auth->n_keys, 2);
    assert_string_equal(c->auth->keys[0].name, "app");
    assert_int_equal(c->auth->keys[0].n_models, 1);
    assert_int_equal(c->auth->keys[0].rpm, 10);
    assert_int_equal(c->auth->keys[0].tpm, 100);
    assert_int_equal(c->auth->keys[1].digest[0], 0x5e); /* sha256("password"), upper-case hex accepted */
    assert_int_equal(c->auth->keys[1].digest[31], 0xd8);
    assert_null(c->auth->keys[1].models);
    lx_config_unref(c);

    c = load("{}", err);
    assert_int_equal(c->server->limits.max_connections, 10000);
    assert_int_equal(c->server->limits.max_header_bytes, 32768);
    assert_int_equal(c->server->limits.read_timeout_ms, 30000);
    assert_int_equal(c->server->limits.max_inflight_per_key, 0);
    assert_int_equal(c->server->limits.max_request_ms, 0);
    assert_null(c->server->admin_listen);
    assert_int_equal(c->auth->n_keys, 0);
    lx_config_unref(c);

    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\"}]}}", "auth.keys[0]: give exactly one of");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a b\",\"key\":\"12345678\"}]}}", "auth.keys[0].name");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"key\":\"short\"}]}}", "auth.keys[0].key");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"sha256\":\"zz\"}]}}", "auth.keys[0].sha256");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"key\":\"12345678\"},{\"name\":\"a\",\"key\":"
                 "\"87654321\"}]}}", "auth.keys[1].name");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"key\":\"12345678\"},{\"name\":\"b\",\"key\":"
                 "\"12345678\"}]}}", "auth.keys[1]: the same key as auth.keys[0]");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"key\":\"12345678\",\"models\":[]}]}}",
                 "auth.keys[0].models");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"key\":\"12345678\",\"rpm\":-1}]}}", "auth.keys[0].rpm");
    expect_error("{\"auth\":{\"users\":[]}}", "auth.users: unknown key");
    expect_error("{\"auth\":{\"keys\":{}}}", "auth.keys: expected a list");
    expect_error("{\"auth\":{\"keys\":[{\"name\":\"a\",\"key\":\"${LX_TEST_UNSET_KEY}\"}]}}",
                 "LX_TEST_UNSET_KEY");
    expect_error("{\"admin_listen\":\"nowhere\"}", "admin_listen");
    expect_error("{\"limits\":{\"max_header_bytes\":10}}", "limits.max_header_bytes");
    expect_error("{\"limits\":{\"slow\":1}}", "limits.slow: unknown key");
}

/* state_dir and store: defaults (systemd's STATE_DIRECTORY first), paths, store: null, and the errors. */
static void test_state_keys(void **state)
{
    (void)state;
    char err[512];
    unsetenv("STATE_DIRECTORY");
    struct lx_config *c = load("{}", err);
    assert_string_equal(c->state->state_dir, "./var");
    assert_string_equal(c->state->path, "./var/llmux.db");
    assert_string_equal(c->state->store.path, c->state->path);
    assert_true(c->state->enabled);
    assert_int_equal(c->state->store.retention_days, 30);
    assert_int_equal(c->state->store.max_items_per_conversation, 10000);
    assert_false(c->state->store.synchronous_full);
    assert_int_equal(c->state->max_history_tokens, 100000);
    assert_false(c->state->redis); /* SQLite unless asked, even with a redis section */
    assert_int_equal(c->state->store.timeout_ms, 1000);
    lx_config_unref(c);
    c = load("{\"redis\":{\"url\":\"unix:/tmp/r.sock\"},\"store\":{\"backend\":\"redis\",\"timeout_ms\":250}}", err);
    assert_non_null(c);
    assert_true(c->state->redis);
    assert_int_equal(c->state->store.timeout_ms, 250);
    lx_config_unref(c);
    c = load("{\"redis\":{\"url\":\"unix:/tmp/r.sock\"},\"store\":{\"backend\":\"sqlite\"}}", err);
    assert_false(c->state->redis);
    lx_config_unref(c);
    setenv("STATE_DIRECTORY", "/var/lib/llmux:/var/lib/other", 1);
    c = load("{\"store\":{\"path\":\"conv.db\",\"retention_days\":0,\"max_items_per_conversation\":5,"
             "\"synchronous\":\"full\",\"max_history_tokens\":0}}", err);
    assert_non_null(c);
    assert_string_equal(c->state->state_dir, "/var/lib/llmux"); /* the first StateDirectory= */
    assert_string_equal(c->state->path, "/var/lib/llmux/conv.db");
    assert_int_equal(c->state->store.retention_days, 0);
    assert_int_equal(c->state->store.max_items_per_conversation, 5);
    assert_true(c->state->store.synchronous_full);
    assert_int_equal(c->state->max_history_tokens, 0);
    lx_config_unref(c);
    c = load("{\"state_dir\":\"/srv/x\",\"store\":{\"path\":\"/data/llmux.db\"}}", err);
    assert_string_equal(c->state->state_dir, "/srv/x");
    assert_string_equal(c->state->path, "/data/llmux.db");
    lx_config_unref(c);
    unsetenv("STATE_DIRECTORY");
    c = load("{\"store\":null}", err);
    assert_false(c->state->enabled);
    lx_config_unref(c);
    expect_error("{\"store\":5}", "store: expected an object, or null");
    expect_error("{\"store\":{\"pathh\":\"x\"}}", "store.pathh: unknown key");
    expect_error("{\"store\":{\"synchronous\":\"off\"}}", "store.synchronous: expected");
    expect_error("{\"store\":{\"backend\":\"postgres\"}}", "store.backend: expected \"sqlite\" or \"redis\"");
    expect_error("{\"store\":{\"timeout_ms\":0}}", "store.timeout_ms");
    expect_error("{\"store\":{\"retention_days\":-1}}", "store.retention_days");
    expect_error("{\"store\":{\"path\":\"\"}}", "store.path: expected a file name");
    expect_error("{\"state_dir\":\"\"}", "state_dir: expected a directory");
    expect_error("{\"state_dir\":7}", "state_dir: expected a string");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_shipped_config),
        cmocka_unit_test(test_env_expansion),     cmocka_unit_test(test_env_expand_function),
        cmocka_unit_test(test_missing_env_outside_providers), cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_secret_not_in_errors), cmocka_unit_test(test_listen_parse),
        cmocka_unit_test(test_provider_timeouts_override), cmocka_unit_test(test_resilience_keys),
        cmocka_unit_test(test_operations_keys),
        cmocka_unit_test(test_upstream_body_limit),
        cmocka_unit_test(test_alias_named_like_other_provider),
        cmocka_unit_test(test_state_keys),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
