/* Unit tests for src/engine/store_cache.c: what is kept and found, for whom and until when, and what goes
 * first when it is full. */
#include "../unit.h"
#include "../../../src/engine/store_cache.h"

static json_t *items(int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:i}", "n", i));
    return a;
}

static void put(struct lx_hcache *c, const char *key, int n, int64_t valid_until)
{
    json_t *a = items(n);
    lx_hcache_put(c, key, "k", a, valid_until);
    json_decref(a);
}

static void test_get_put(void **state)
{
    (void)state;
    struct lx_hcache *c = lx_hcache_new(8, 100);
    assert_null(lx_hcache_get(c, "r:a", "k", 0, NULL));
    put(c, "r:a", 3, 0);
    int64_t vu = -1;
    json_t *got = lx_hcache_get(c, "r:a", "k", 1000, &vu);
    assert_int_equal(json_array_size(got), 3);
    assert_int_equal(vu, 0);
    /* Another owner finds nothing. */
    assert_null(lx_hcache_get(c, "r:a", "other", 1000, NULL));
    /* Replacing keeps one entry. */
    put(c, "r:a", 5, 0);
    struct lx_hcache_stats st;
    lx_hcache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.items, 5);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);
    /* Expiry: gone at valid_until. */
    put(c, "c:x", 2, 500);
    assert_non_null(lx_hcache_get(c, "c:x", "k", 499, NULL));
    assert_null(lx_hcache_get(c, "c:x", "k", 500, NULL));
    lx_hcache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    /* Dropping by key and by prefix. */
    put(c, "c:y", 1, 0);
    put(c, "r:b", 1, 0);
    lx_hcache_drop(c, "c:y");
    assert_null(lx_hcache_get(c, "c:y", "k", 0, NULL));
    lx_hcache_drop_prefix(c, "r:");
    assert_null(lx_hcache_get(c, "r:a", "k", 0, NULL));
    assert_null(lx_hcache_get(c, "r:b", "k", 0, NULL));
    lx_hcache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.items, 0);
    lx_hcache_free(c);
}

static void test_bounds(void **state)
{
    (void)state;
    struct lx_hcache *c = lx_hcache_new(3, 10);
    char key[16];
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "r:%d", i);
        put(c, key, 1, 0);
    }
    /* Three entries at most: the oldest two went. */
    assert_null(lx_hcache_get(c, "r:0", "k", 0, NULL));
    assert_null(lx_hcache_get(c, "r:1", "k", 0, NULL));
    assert_non_null(lx_hcache_get(c, "r:2", "k", 0, NULL)); /* now the most recent */
    put(c, "r:5", 1, 0);
    assert_null(lx_hcache_get(c, "r:3", "k", 0, NULL)); /* the least recently used went */
    assert_non_null(lx_hcache_get(c, "r:2", "k", 0, NULL));
    /* Ten item slots at most. */
    put(c, "r:big", 9, 0);
    struct lx_hcache_stats st;
    lx_hcache_stats(c, &st);
    assert_true(st.items <= 10);
    assert_non_null(lx_hcache_get(c, "r:big", "k", 0, NULL));
    /* Larger than the whole cache: not kept, nothing evicted for it. */
    put(c, "r:huge", 11, 0);
    assert_null(lx_hcache_get(c, "r:huge", "k", 0, NULL));
    assert_non_null(lx_hcache_get(c, "r:big", "k", 0, NULL));
    lx_hcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests_name("store_cache", tests, NULL, NULL);
}
