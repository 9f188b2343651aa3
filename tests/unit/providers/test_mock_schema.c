/* Unit tests for providers/mock_schema.c: each schema keyword the generator claims to understand gives a
 * value that satisfies it. (The integration suite also validates answers with a real JSON Schema
 * validator and with zod through the SDKs.) */
#include "../unit.h"
#include "../../../providers/mock_schema.h"

#include <math.h>

static json_t *gen(const char *schema_text, const char *text)
{
    json_error_t jerr;
    json_t *schema = json_loads(schema_text, 0, &jerr);
    if (!schema)
        fail_msg("bad test schema: %s", jerr.text);
    json_t *v = lx_schema_instance(schema, text);
    json_decref(schema);
    assert_non_null(v);
    return v;
}

static void test_object_required_and_types(void **state)
{
    (void)state;
    json_t *v = gen("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},"
                    "\"metric\":{\"type\":\"boolean\"},\"ratio\":{\"type\":\"number\"},\"none\":{\"type\":\"null\"}},"
                    "\"required\":[\"city\",\"days\"],\"additionalProperties\":false}",
                    "Paris");
    assert_true(json_is_object(v));
    assert_string_equal(json_string_value(json_object_get(v, "city")), "Paris"); /* the user's words */
    assert_true(json_is_integer(json_object_get(v, "days")));
    assert_true(json_is_boolean(json_object_get(v, "metric")));
    assert_true(json_is_real(json_object_get(v, "ratio")));
    assert_true(json_is_null(json_object_get(v, "none")));
    assert_int_equal(json_object_size(v), 5); /* no key beyond properties */
    json_decref(v);
}

static void test_enum_const_and_type_lists(void **state)
{
    (void)state;
    json_t *v = gen("{\"type\":\"object\",\"properties\":{\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
                    "\"kind\":{\"const\":\"point\"},\"maybe\":{\"type\":[\"null\",\"integer\"]}},"
                    "\"required\":[\"unit\",\"kind\",\"maybe\"]}",
                    NULL);
    assert_string_equal(json_string_value(json_object_get(v, "unit")), "celsius");
    assert_string_equal(json_string_value(json_object_get(v, "kind")), "point");
    assert_true(json_is_integer(json_object_get(v, "maybe"))); /* nullable fields get a value */
    json_decref(v);
}

static void test_nested_arrays_and_bounds(void **state)
{
    (void)state;
    json_t *v = gen("{\"type\":\"object\",\"properties\":{\"steps\":{\"type\":\"array\",\"minItems\":3,\"maxItems\":4,"
                    "\"uniqueItems\":true,\"items\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
                    "\"minimum\":10,\"maximum\":20},\"tags\":{\"type\":\"array\",\"maxItems\":0,\"items\":{\"type\":\"string\"}}},"
                    "\"required\":[\"n\",\"tags\"]}}},\"required\":[\"steps\"]}",
                    "x");
    json_t *steps = json_object_get(v, "steps");
    assert_int_equal(json_array_size(steps), 3);
    json_int_t prev = -1;
    size_t i;
    json_t *it;
    json_array_foreach(steps, i, it) {
        json_int_t n = json_integer_value(json_object_get(it, "n"));
        assert_true(n >= 10 && n <= 20);
        assert_true(n != prev); /* uniqueItems: each item differs */
        prev = n;
        assert_int_equal(json_array_size(json_object_get(it, "tags")), 0);
    }
    json_decref(v);
}

static void test_number_keywords(void **state)
{
    (void)state;
    json_t *v = gen("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"exclusiveMinimum\":5},"
                    "\"b\":{\"type\":\"number\",\"minimum\":0.2,\"maximum\":0.4},\"c\":{\"type\":\"integer\",\"maximum\":-3},"
                    "\"d\":{\"type\":\"number\",\"multipleOf\":0.25,\"exclusiveMinimum\":1},"
                    "\"e\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"multipleOf\":7}}}",
                    NULL);
    assert_true(json_integer_value(json_object_get(v, "a")) > 5);
    double b = json_number_value(json_object_get(v, "b"));
    assert_true(b >= 0.2 && b <= 0.4);
    assert_true(json_integer_value(json_object_get(v, "c")) <= -3);
    double d = json_number_value(json_object_get(v, "d"));
    assert_true(d > 1 && fmod(d, 0.25) == 0);
    json_int_t e = json_integer_value(json_object_get(v, "e"));
    assert_true(e >= 1 && e <= 100 && e % 7 == 0);
    json_decref(v);
}

static void test_string_lengths_and_formats(void **state)
{
    (void)state;
    json_t *v = gen("{\"type\":\"object\",\"properties\":{\"short\":{\"type\":\"string\",\"maxLength\":4},"
                    "\"long\":{\"type\":\"string\",\"minLength\":40},\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
                    "\"mail\":{\"type\":\"string\",\"format\":\"email\"},\"id\":{\"type\":\"string\",\"format\":\"uuid\"}}}",
                    "h\xc3\xa9llo world");
    assert_string_equal(json_string_value(json_object_get(v, "short")), "h\xc3\xa9ll"); /* 4 code points */
    assert_true(json_string_length(json_object_get(v, "long")) >= 40);
    assert_string_equal(json_string_value(json_object_get(v, "when")), "2025-01-01T12:00:00Z");
    assert_non_null(strchr(json_string_value(json_object_get(v, "mail")), '@'));
    assert_int_equal(json_string_length(json_object_get(v, "id")), 36);
    json_decref(v);
}

static void test_refs_anyof_allof(void **state)
{
    (void)state;
    /* The shapes zod and pydantic emit: $defs with $ref, nullable anyOf, allOf composition, a recursive type. */
    json_t *v = gen("{\"type\":\"object\",\"$defs\":{\"Pt\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"}},"
                    "\"required\":[\"x\"]},\"Node\":{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":\"array\","
                    "\"items\":{\"$ref\":\"#/$defs/Node\"}}},\"required\":[\"kids\"]}},"
                    "\"properties\":{\"p\":{\"$ref\":\"#/$defs/Pt\"},\"q\":{\"anyOf\":[{\"type\":\"null\"},{\"$ref\":\"#/$defs/Pt\"}]},"
                    "\"r\":{\"allOf\":[{\"$ref\":\"#/$defs/Pt\"},{\"properties\":{\"y\":{\"type\":\"string\"}},\"required\":[\"y\"]}]},"
                    "\"tree\":{\"$ref\":\"#/$defs/Node\"},\"old\":{\"$ref\":\"#/definitions/Gone\"}},"
                    "\"required\":[\"p\",\"q\",\"r\",\"tree\"]}",
                    NULL);
    assert_true(json_is_number(json_object_get(json_object_get(v, "p"), "x")));
    assert_true(json_is_number(json_object_get(json_object_get(v, "q"), "x")));
    assert_true(json_is_number(json_object_get(json_object_get(v, "r"), "x")));
    assert_true(json_is_string(json_object_get(json_object_get(v, "r"), "y")));
    /* The recursion ends: deep enough, arrays fall to minItems (0). */
    json_t *t = json_object_get(v, "tree");
    int depth = 0;
    while (json_array_size(json_object_get(t, "kids")) > 0) {
        t = json_array_get(json_object_get(t, "kids"), 0);
        depth++;
    }
    assert_true(json_is_array(json_object_get(t, "kids")));
    assert_true(depth > 0 && depth < 30);
    json_decref(v);
}

static void test_untyped_and_empty(void **state)
{
    (void)state;
    json_t *v = gen("{}", NULL);
    assert_true(json_is_string(v));
    json_decref(v);
    v = gen("{\"properties\":{\"a\":{\"items\":{\"type\":\"boolean\"},\"minItems\":2}},\"minProperties\":3}", NULL);
    assert_true(json_is_object(v));
    assert_true(json_object_size(v) >= 3);
    assert_int_equal(json_array_size(json_object_get(v, "a")), 2);
    json_decref(v);
    v = lx_schema_instance(NULL, "t");
    assert_string_equal(json_string_value(v), "t");
    json_decref(v);
}

static void test_prefix_items(void **state)
{
    (void)state;
    json_t *v = gen("{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\",\"enum\":[\"a\"]}],"
                    "\"items\":false}",
                    NULL);
    assert_int_equal(json_array_size(v), 2);
    assert_true(json_is_integer(json_array_get(v, 0)));
    assert_string_equal(json_string_value(json_array_get(v, 1)), "a");
    json_decref(v);
}

/* Ten properties per level, each a $ref to the next level's ten: a million leaves if made in full. */
static void test_explosive_schema_is_bounded(void **state)
{
    (void)state;
    json_t *defs = json_object();
    for (int level = 0; level < 6; level++) {
        json_t *props = json_object();
        for (int k = 0; k < 10; k++) {
            char key[8];
            snprintf(key, sizeof key, "p%d", k);
            char ref[32];
            snprintf(ref, sizeof ref, "#/$defs/L%d", level + 1);
            json_object_set_new(props, key, level < 5 ? json_pack("{s:s}", "$ref", ref) : json_pack("{s:s,s:i}", "type", "string", "minLength", 1000000));
        }
        char name[8];
        snprintf(name, sizeof name, "L%d", level);
        json_object_set_new(defs, name, json_pack("{s:s,s:o}", "type", "object", "properties", props));
    }
    json_t *schema = json_pack("{s:s,s:o}", "$ref", "#/$defs/L0", "$defs", defs);
    json_t *v = lx_schema_instance(schema, NULL);
    char *text = json_dumps(v, JSON_COMPACT);
    assert_true(strlen(text) < 64u * 1024 * 1024);
    free(text);
    json_decref(v);
    json_decref(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_required_and_types), cmocka_unit_test(test_enum_const_and_type_lists),
        cmocka_unit_test(test_nested_arrays_and_bounds),  cmocka_unit_test(test_number_keywords),
        cmocka_unit_test(test_string_lengths_and_formats), cmocka_unit_test(test_refs_anyof_allof),
        cmocka_unit_test(test_untyped_and_empty),          cmocka_unit_test(test_prefix_items),
        cmocka_unit_test(test_explosive_schema_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
