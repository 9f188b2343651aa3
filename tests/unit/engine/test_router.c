/* Unit tests for src/router.c: aliases, PROVIDER/MODEL with slashes, unknown and disabled providers. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/router.h"
#include "../../../src/config.h"
#include "../../../src/core/conf.h"

static struct lx_config *cfg;

static int setup(void **state)
{
    (void)state;
    char err[512];
    unsetenv("LX_ROUTER_UNSET");
    const char *json = "{\"providers\":{\"m\":{\"type\":\"mock\"},\"or\":{\"type\":\"openai\",\"base_url\":"
                       "\"http://x/v1\"},\"off\":{\"type\":\"openai\",\"api_key\":\"${LX_ROUTER_UNSET}\"}},"
                       "\"aliases\":{\"fast\":\"m/echo\",\"deep\":\"or/meta/llama-3\",\"chain\":[\"off/a\",\"or/b\",\"m/c\"],"
                       "\"hedged\":{\"models\":[\"m/a\",\"or/b\"],\"hedge_ms\":200},\"dead\":[\"off/a\",\"off/b\"]}}";
    cfg = lx_config_load_buffer(json, strlen(json), err, sizeof err);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lx_config_unref(cfg);
    return 0;
}

static void route_ok(const char *name, const char *provider, const char *model)
{
    struct lx_plan r;
    struct lx_error e = {0};
    assert_int_equal(lx_route_plan(cfg->engine, name, &r, &e), LX_OK);
    assert_int_equal(r.n_lanes, 1);
    assert_int_equal(r.lanes[0].n, 1);
    assert_int_equal(r.hedge_ms, -1);
    assert_string_equal(r.lanes[0].targets[0].provider->name, provider);
    assert_string_equal(r.lanes[0].targets[0].model, model);
    lx_plan_free(&r);
}

static void route_err(const char *name, int status, const char *code)
{
    struct lx_plan r;
    struct lx_error e = {0};
    assert_int_equal(lx_route_plan(cfg->engine, name, &r, &e), LX_ERR);
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    lx_error_clear(&e);
}

static void test_routes(void **state)
{
    (void)state;
    route_ok("m/echo", "m", "echo");
    route_ok("or/meta-llama/llama-3.1-8b", "or", "meta-llama/llama-3.1-8b");
    route_ok("fast", "m", "echo");
    route_ok("deep", "or", "meta/llama-3");
}

static void test_route_errors(void **state)
{
    (void)state;
    route_err("gpt-4o", 404, "model_not_found");
    route_err("nobody/x", 404, "model_not_found");
    route_err("m/", 404, "model_not_found");
    route_err("/x", 404, "model_not_found");
    route_err("off/gpt-4o", 404, "provider_disabled");
}

/* A fallback list keeps its order and leaves out disabled providers while others remain. */
static void test_fallback_list(void **state)
{
    (void)state;
    struct lx_plan r;
    struct lx_error e = {0};
    assert_int_equal(lx_route_plan(cfg->engine, "chain", &r, &e), LX_OK);
    assert_int_equal(r.n_lanes, 1);
    assert_int_equal(r.hedge_ms, -1);
    assert_int_equal(r.lanes[0].n, 2);
    assert_string_equal(r.lanes[0].targets[0].label, "or/b");
    assert_string_equal(r.lanes[0].targets[1].label, "m/c");
    assert_int_equal(lx_plan_count(&r), 2);
    assert_string_equal(lx_plan_target(&r, 1)->model, "c");
    assert_null(lx_plan_target(&r, 2));
    lx_plan_free(&r);
    route_err("dead", 404, "provider_disabled");
}

static void test_hedged_and_race(void **state)
{
    (void)state;
    struct lx_plan r;
    struct lx_error e = {0};
    assert_int_equal(lx_route_plan(cfg->engine, "hedged", &r, &e), LX_OK);
    assert_int_equal(r.n_lanes, 2);
    assert_int_equal(r.hedge_ms, 200);
    assert_string_equal(r.lanes[1].targets[0].label, "or/b");
    lx_plan_free(&r);

    const char *names[] = {"m/x", "chain", "hedged"};
    assert_int_equal(lx_route_race(cfg->engine, names, 3, &r, &e), LX_OK);
    assert_int_equal(r.n_lanes, 3);
    assert_int_equal(r.hedge_ms, 0);
    assert_int_equal(r.lanes[0].n, 1);
    assert_int_equal(r.lanes[1].n, 2);
    assert_int_equal(r.lanes[2].n, 2); /* a hedged alias races as its models in order */
    assert_string_equal(r.lanes[2].targets[1].label, "or/b");
    lx_plan_free(&r);

    const char *bad[] = {"m/x", "nobody/y"};
    assert_int_equal(lx_route_race(cfg->engine, bad, 2, &r, &e), LX_ERR);
    assert_int_equal(e.status, 404);
    assert_null(r.lanes);
    lx_error_clear(&e);
}

static void test_disabled_message_names_variable(void **state)
{
    (void)state;
    struct lx_plan r;
    struct lx_error e = {0};
    lx_route_plan(cfg->engine, "off/x", &r, &e);
    /* The fix: the variable, the key that needs it, and what else would answer. */
    assert_non_null(strstr(e.message, "LX_ROUTER_UNSET"));
    assert_non_null(strstr(e.message, "providers.off."));
    assert_non_null(strstr(e.message, "enabled provider ("));
    lx_error_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_fallback_list),
        cmocka_unit_test(test_hedged_and_race),
        cmocka_unit_test(test_disabled_message_names_variable),
    };
    return cmocka_run_group_tests_name("router", tests, setup, teardown);
}
