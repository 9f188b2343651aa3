/* The mock provider's JSON Schema instance generator: walks a schema and builds the simplest plausible
 * value that satisfies it (see mock_schema.h for what is understood). */
#include "mock_schema.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this nesting only required properties and minItems items are made; past twice this, null: a
 * recursive schema whose recursion is required cannot be satisfied by a finite value anyway. */
#define LX_SCHEMA_DEPTH 12
/* Values made for one instance, and padding for one string: a schema whose every level multiplies the
 * values below it (or asks for huge lengths) gets nulls past this, not a hang. */
#define LX_SCHEMA_MAX_VALUES 4096
#define LX_SCHEMA_MAX_PAD 4096

struct gen {
    json_t *root;       /* borrowed: the whole document, for $ref */
    const char *text;   /* borrowed: the user's words for the first free-form string, or NULL */
    bool text_used;
    int depth;
    size_t made;        /* values made so far, against LX_SCHEMA_MAX_VALUES */
};

static json_t *gen_value(struct gen *g, json_t *s, const char *key, size_t salt);

/* "#", "#/$defs/X", "#/definitions/X", "#/properties/a/items"... in the same document; NULL otherwise. */
static json_t *resolve_ref(struct gen *g, const char *ref)
{
    if (ref[0] != '#')
        return NULL;
    json_t *cur = g->root;
    const char *p = ref + 1;
    while (*p == '/' && cur) {
        p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        struct lx_buf tok = {0};
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                lx_buf_append(&tok, p[i + 1] == '0' ? "~" : "/", 1);
                i++;
            } else {
                lx_buf_append(&tok, &p[i], 1);
            }
        }
        lx_buf_append(&tok, "", 1);
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok.data);
        } else if (json_is_array(cur)) {
            char *e;
            unsigned long idx = strtoul(tok.data, &e, 10);
            cur = *e ? NULL : json_array_get(cur, idx);
        } else {
            cur = NULL;
        }
        lx_buf_free(&tok);
        p += n;
    }
    return *p ? NULL : cur;
}

/* Fold one schema into a merged one: properties and required are united, other keys kept if absent. */
static void merge_into(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        json_t *have = json_object_get(dst, k);
        if (strcmp(k, "properties") == 0 && json_is_object(have) && json_is_object(v)) {
            json_t *props = json_deep_copy(have);
            json_object_update_missing(props, v);
            json_object_set_new(dst, k, props);
        } else if (strcmp(k, "required") == 0 && json_is_array(have) && json_is_array(v)) {
            json_t *req = json_copy(have);
            json_array_extend(req, v);
            json_object_set_new(dst, k, req);
        } else if (!have) {
            json_object_set(dst, k, v);
        }
    }
}

/* An anyOf/oneOf branch, preferring one that is not plain null (nullable fields get a value). */
static json_t *pick_branch(json_t *list)
{
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b) {
        json_t *t = json_object_get(b, "type");
        if (!(json_is_string(t) && strcmp(json_string_value(t), "null") == 0))
            return b;
    }
    return json_array_get(list, 0);
}

static const char *pick_type(json_t *s)
{
    json_t *t = json_object_get(s, "type");
    if (json_is_string(t))
        return json_string_value(t);
    if (json_is_array(t)) {
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e) if (json_is_string(e) && strcmp(json_string_value(e), "null") != 0) return
            json_string_value(e);
        if (json_array_size(t))
            return "null";
    }
    /* No usable type: inferred from the keywords present. */
    if (json_object_get(s, "properties") || json_object_get(s, "required") ||
        json_object_get(s, "additionalProperties") || json_object_get(s, "minProperties"))
        return "object";
    if (json_object_get(s, "items") || json_object_get(s, "prefixItems") || json_object_get(s, "minItems"))
        return "array";
    if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") ||
        json_object_get(s, "exclusiveMaximum") || json_object_get(s, "multipleOf"))
        return "number";
    return "string";
}

static bool get_num(json_t *s, const char *key, double *out)
{
    json_t *v = json_object_get(s, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* Bounds of a number schema as [lo, hi] with exclusivity (draft 4 booleans and draft 6+ numbers). */
struct bounds {
    bool has_lo, has_hi, lo_ex, hi_ex;
    double lo, hi;
};

static struct bounds number_bounds(json_t *s)
{
    struct bounds b = {0};
    double v;
    b.has_lo = get_num(s, "minimum", &b.lo);
    b.has_hi = get_num(s, "maximum", &b.hi);
    if (get_num(s, "exclusiveMinimum", &v) && (!b.has_lo || v >= b.lo)) {
        b.has_lo = b.lo_ex = true;
        b.lo = v;
    } else if (json_is_true(json_object_get(s, "exclusiveMinimum"))) {
        b.lo_ex = b.has_lo;
    }
    if (get_num(s, "exclusiveMaximum", &v) && (!b.has_hi || v <= b.hi)) {
        b.has_hi = b.hi_ex = true;
        b.hi = v;
    } else if (json_is_true(json_object_get(s, "exclusiveMaximum"))) {
        b.hi_ex = b.has_hi;
    }
    return b;
}

static json_t *gen_integer(json_t *s, size_t salt)
{
    struct bounds b = number_bounds(s);
    double lo = b.has_lo ? (b.lo_ex ? floor(b.lo) + 1 : ceil(b.lo)) : -INFINITY;
    double hi = b.has_hi ? (b.hi_ex ? ceil(b.hi) - 1 : floor(b.hi)) : INFINITY;
    double v = 1 + (double)salt;
    if (v < lo)
        v = lo + (double)salt;
    if (v > hi)
        v = hi;
    double m;
    if (get_num(s, "multipleOf", &m) && m > 0 && m == floor(m)) {
        double up = ceil(v / m) * m;
        v = up <= hi ? up : floor(hi / m) * m;
    }
    return json_integer((json_int_t)v);
}

static json_t *gen_number(json_t *s, size_t salt)
{
    struct bounds b = number_bounds(s);
    double v, m;
    if (get_num(s, "multipleOf", &m) && m > 0) {
        /* The first multiple inside the lower bound (or m itself), stepped by salt, kept under the upper. */
        v = b.has_lo ? ceil(b.lo / m) * m : m;
        if (b.lo_ex && v <= b.lo)
            v += m;
        v += m * (double)salt;
        if (b.has_hi && (v > b.hi || (b.hi_ex && v >= b.hi))) {
            v = floor(b.hi / m) * m;
            if (b.hi_ex && v >= b.hi)
                v -= m;
        }
        return json_real(v);
    }
    if (b.has_lo && b.has_hi)
        v = b.lo + (b.hi - b.lo) / (2.0 + (double)salt);
    else if (b.has_lo)
        v = b.lo + 1.5 + (double)salt;
    else if (b.has_hi)
        v = b.hi - 1.5 - (double)salt;
    else
        v = 1.5 + (double)salt;
    return json_real(v);
}

/* Code points in b (UTF-8). */
static size_t utf8_len(const struct lx_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += ((unsigned char)b->data[i] & 0xC0) != 0x80;
    return n;
}

/* Cut b to at most max code points. */
static void utf8_truncate(struct lx_buf *b, size_t max)
{
    size_t cps = 0, i = 0;
    for (; i < b->len; i++) {
        if (((unsigned char)b->data[i] & 0xC0) != 0x80 && cps++ == max)
            break;
    }
    b->len = i;
}

static const char *format_value(const char *fmt)
{
    static const struct { const char *fmt, *value; } formats[] = {
        {"date-time", "2025-01-01T12:00:00Z"}, {"date", "2025-01-01"},       {"time", "12:00:00"},
        {"email", "user@example.com"},         {"idn-email", "user@example.com"},
        {"uri", "https://example.com/"},       {"url", "https://example.com/"}, {"iri", "https://example.com/"},
        {"uri-reference", "https://example.com/"},
        {"uuid", "123e4567-e89b-42d3-a456-426614174000"},
        {"ipv4", "192.0.2.1"},                 {"ipv6", "2001:db8::1"},      {"hostname", "example.com"},
        {"idn-hostname", "example.com"},       {"duration", "P1D"},
    };
    for (size_t i = 0; fmt && i < LX_ARRAY_LEN(formats); i++)
        if (strcmp(fmt, formats[i].fmt) == 0)
            return formats[i].value;
    return NULL;
}

static json_t *gen_string(struct gen *g, json_t *s, const char *key, size_t salt)
{
    const char *fixed = format_value(json_string_value(json_object_get(s, "format")));
    if (fixed)
        return json_string(fixed);
    struct lx_buf b = {0};
    if (!g->text_used && g->text && *g->text) {
        g->text_used = true;
        lx_buf_puts(&b, g->text);
    } else {
        lx_buf_printf(&b, "example %s", key ? key : "text");
    }
    if (salt)
        lx_buf_printf(&b, " %zu", salt + 1);
    json_t *minl = json_object_get(s, "minLength"), *maxl = json_object_get(s, "maxLength");
    if (json_is_integer(maxl) && json_integer_value(maxl) >= 0)
        utf8_truncate(&b, (size_t)json_integer_value(maxl));
    if (json_is_integer(minl))
        for (json_int_t i = (json_int_t)utf8_len(&b); i < json_integer_value(minl) && i < LX_SCHEMA_MAX_PAD; i++)
            lx_buf_append(&b, ".", 1);
    json_t *out = json_stringn(b.data ? b.data : "", b.len);
    lx_buf_free(&b);
    return out;
}

static bool in_list(json_t *list, const char *key)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (json_is_string(v) && strcmp(json_string_value(v), key) == 0) return true;
    return false;
}

/* salt (an array item's index) goes to every property, so the items of one array differ. */
static json_t *gen_object(struct gen *g, json_t *s, size_t salt)
{
    json_t *out = json_object();
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *extra = json_object_get(s, "additionalProperties");
    bool shallow = g->depth > LX_SCHEMA_DEPTH;
    const char *k;
    json_t *sub;
    json_object_foreach(props, k, sub) {
        if (!shallow || in_list(req, k))
            json_object_set_new(out, k, gen_value(g, sub, k, salt));
    }
    size_t i;
    json_t *name;
    json_array_foreach(req, i, name) {
        if (json_is_string(name) && !json_object_get(out, json_string_value(name)))
            json_object_set_new(out, json_string_value(name),
                                gen_value(g, json_is_object(extra) ? extra : NULL, json_string_value(name), 0));
    }
    json_t *minp = json_object_get(s, "minProperties");
    for (size_t n = 1; json_is_integer(minp) && (json_int_t)json_object_size(out) < json_integer_value(minp) &&
                       !json_is_false(extra) && n < 1000;
         n++) {
        char extra_key[32];
        snprintf(extra_key, sizeof extra_key, "key%zu", n);
        if (!json_object_get(out, extra_key))
            json_object_set_new(out, extra_key, gen_value(g, json_is_object(extra) ? extra : NULL, extra_key, 0));
    }
    return out;
}

static json_t *gen_array(struct gen *g, json_t *s, const char *key)
{
    json_t *out = json_array();
    json_t *prefix = json_object_get(s, "prefixItems"), *items = json_object_get(s, "items");
    if (!prefix && json_is_array(items)) { /* draft 7 tuples */
        prefix = items;
        items = json_object_get(s, "additionalItems");
    }
    json_t *minv = json_object_get(s, "minItems"), *maxv = json_object_get(s, "maxItems");
    size_t min = json_is_integer(minv) && json_integer_value(minv) > 0 ? (size_t)json_integer_value(minv) : 0;
    size_t max = json_is_integer(maxv) && json_integer_value(maxv) >= 0 ? (size_t)json_integer_value(maxv) : 1000;
    size_t want = g->depth > LX_SCHEMA_DEPTH ? min : (min > 1 ? min : 1);
    if (json_array_size(prefix) > want)
        want = json_array_size(prefix);
    if (want > max)
        want = max;
    if (want > 1000)
        want = 1000;
    for (size_t i = 0; i < want; i++) {
        json_t *sub = i < json_array_size(prefix) ? json_array_get(prefix, i) : items;
        if (json_is_false(sub))
            break;
        json_array_append_new(out, gen_value(g, json_is_object(sub) ? sub : NULL, key, i));
    }
    return out;
}

static json_t *gen_value(struct gen *g, json_t *s, const char *key, size_t salt)
{
    if (g->depth > 2 * LX_SCHEMA_DEPTH || ++g->made > LX_SCHEMA_MAX_VALUES)
        return json_null();
    if (!json_is_object(s))
        return gen_string(g, NULL, key, salt);
    g->depth++;
    json_t *out = NULL;
    json_t *merged = NULL;
    json_t *ref = json_object_get(s, "$ref");
    json_t *any = json_object_get(s, "anyOf");
    if (!json_is_array(any))
        any = json_object_get(s, "oneOf");
    json_t *all = json_object_get(s, "allOf");
    if (json_is_string(ref)) {
        /* Siblings of $ref (2019-09+) refine the target: merge them in. */
        json_t *target = resolve_ref(g, json_string_value(ref));
        merged = json_deep_copy(s);
        json_object_del(merged, "$ref");
        if (json_is_object(target))
            merge_into(merged, target);
        out = gen_value(g, merged, key, salt);
    } else if (json_is_array(any) && json_array_size(any)) {
        merged = json_deep_copy(pick_branch(any));
        if (!json_is_object(merged)) {
            json_decref(merged);
            merged = json_object();
        }
        json_t *rest = json_deep_copy(s);
        json_object_del(rest, "anyOf");
        json_object_del(rest, "oneOf");
        merge_into(merged, rest);
        json_decref(rest);
        out = gen_value(g, merged, key, salt);
    } else if (json_is_array(all) && json_array_size(all)) {
        merged = json_deep_copy(s);
        json_object_del(merged, "allOf");
        size_t i;
        json_t *part;
        json_array_foreach(all, i, part) {
            json_t *r = json_object_get(part, "$ref");
            json_t *target = json_is_string(r) ? resolve_ref(g, json_string_value(r)) : part;
            if (json_is_object(target))
                merge_into(merged, target);
        }
        out = gen_value(g, merged, key, salt);
    } else if (json_object_get(s, "const")) {
        out = json_deep_copy(json_object_get(s, "const"));
    } else if (json_is_array(json_object_get(s, "enum")) && json_array_size(json_object_get(s, "enum"))) {
        json_t *e = json_object_get(s, "enum");
        out = json_deep_copy(json_array_get(e, salt % json_array_size(e)));
    } else {
        const char *t = pick_type(s);
        if (strcmp(t, "object") == 0)
            out = gen_object(g, s, salt);
        else if (strcmp(t, "array") == 0)
            out = gen_array(g, s, key);
        else if (strcmp(t, "integer") == 0)
            out = gen_integer(s, salt);
        else if (strcmp(t, "number") == 0)
            out = gen_number(s, salt);
        else if (strcmp(t, "boolean") == 0)
            out = json_boolean(salt % 2 == 0);
        else if (strcmp(t, "null") == 0)
            out = json_null();
        else
            out = gen_string(g, s, key, salt);
    }
    json_decref(merged);
    g->depth--;
    return out;
}

json_t *lx_schema_instance(json_t *schema, const char *text)
{
    struct gen g = {.root = schema, .text = text};
    return gen_value(&g, schema, NULL, 0);
}
