/* Typed readers of configuration JSON, and ${VAR} expansion. Messages name the key path and never echo a
 * value: it may be a secret. */
#include "confread.h"
#include "buf.h"
#include "common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lx_conf_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *lx_env_expand(const char *s, char **missing)
{
    struct lx_buf out = {0};
    const char *p = s;
    *missing = NULL;
    while (*p) {
        const char *open = strstr(p, "${");
        if (!open) {
            lx_buf_puts(&out, p);
            break;
        }
        const char *close = strchr(open + 2, '}');
        if (!close) {
            lx_buf_puts(&out, p);
            break;
        }
        lx_buf_append(&out, p, (size_t)(open - p));
        char *name = lx_strndup(open + 2, (size_t)(close - open - 2));
        char *def = strstr(name, ":-");
        if (def) {
            *def = '\0';
            def += 2;
        }
        const char *val = getenv(name);
        if (val && *val) {
            lx_buf_puts(&out, val);
        } else if (def) {
            lx_buf_puts(&out, def);
        } else {
            *missing = lx_strdup(name);
            free(name);
            lx_buf_free(&out);
            return NULL;
        }
        free(name);
        p = close + 1;
    }
    return lx_buf_steal(&out, NULL);
}

int lx_conf_expand(json_t *v, const char *path, char **missing, char **where)
{
    if (json_is_string(v)) {
        char *s = lx_env_expand(json_string_value(v), missing);
        if (!s) {
            *where = lx_strdup(path);
            return LX_ERR;
        }
        json_string_set(v, s);
        free(s);
        return LX_OK;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) {
            char *sub = lx_sprintf("%s%s%s", path, *path ? "." : "", key);
            int rc = lx_conf_expand(child, sub, missing, where);
            free(sub);
            if (rc != LX_OK)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            char *sub = lx_sprintf("%s[%zu]", path, i);
            int rc = lx_conf_expand(child, sub, missing, where);
            free(sub);
            if (rc != LX_OK)
                return rc;
        }
    }
    return LX_OK;
}

int lx_conf_unknown_keys(json_t *obj, const char *const *allowed, const char *path, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                ok = true;
        if (!ok) {
            lx_conf_err(err, errlen, "%s%s%s: unknown key", path, *path ? "." : "", key);
            return LX_ERR;
        }
    }
    return LX_OK;
}

int lx_conf_long(json_t *obj, const char *key, const char *path, long min, long max, long *out, char *err,
                 size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return LX_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        lx_conf_err(err, errlen, "%s%s%s: expected an integer from %ld to %ld", path, *path ? "." : "", key, min, max);
        return LX_ERR;
    }
    *out = (long)json_integer_value(v);
    return LX_OK;
}

int lx_conf_bool(json_t *obj, const char *key, const char *path, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return LX_OK;
    if (!json_is_boolean(v)) {
        lx_conf_err(err, errlen, "%s%s%s: expected true or false", path, *path ? "." : "", key);
        return LX_ERR;
    }
    *out = json_is_true(v);
    return LX_OK;
}

int lx_conf_string(json_t *obj, const char *key, const char *path, char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return LX_OK;
    if (!json_is_string(v)) {
        lx_conf_err(err, errlen, "%s%s%s: expected a string", path, *path ? "." : "", key);
        return LX_ERR;
    }
    free(*out);
    *out = lx_strdup(json_string_value(v));
    return LX_OK;
}

int lx_conf_object(json_t *obj, const char *key, const char *path, json_t **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return LX_OK;
    if (!json_is_object(v)) {
        lx_conf_err(err, errlen, "%s%s%s: expected an object", path, *path ? "." : "", key);
        return LX_ERR;
    }
    *out = v;
    return LX_OK;
}

int lx_conf_strings(json_t *obj, const char *key, const char *path, char ***out, size_t *n, char *err,
                    size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return LX_OK;
    if (!json_is_array(v)) {
        lx_conf_err(err, errlen, "%s.%s: expected an array of strings", path, key);
        return LX_ERR;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_string(item) || json_string_length(item) == 0) {
            lx_conf_err(err, errlen, "%s.%s[%zu]: expected a non-empty string", path, key, i);
            return LX_ERR;
        }
    }
    *out = lx_calloc(json_array_size(v), sizeof **out);
    json_array_foreach(v, i, item) (*out)[i] = lx_strdup(json_string_value(item));
    *n = json_array_size(v);
    return LX_OK;
}

bool lx_conf_header_part(const char *s, bool name)
{
    if (name && !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n' || (name && (c == ':' || c <= ' ')))
            return false;
    }
    return true;
}
