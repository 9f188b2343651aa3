/* OpenAI-shaped error objects: building, copying and reading them from upstream bodies. */
#include "errors.h"
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? lx_strdup(s) : NULL;
}

void lx_error_clear(struct lx_error *e)
{
    free(e->message);
    free(e->type);
    free(e->param);
    free(e->code);
    free(e->retry_after);
    memset(e, 0, sizeof *e);
}

void lx_error_set(struct lx_error *e, int status, const char *type, const char *param, const char *code,
                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lx_error_clear(e);
    e->status = status;
    e->message = lx_strdup(msg);
    e->type = dup_or_null(type);
    e->param = dup_or_null(param);
    e->code = dup_or_null(code);
}

void lx_error_bad_request(struct lx_error *e, const char *param, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lx_error_set(e, 400, "invalid_request_error", param, code, "%s", msg);
}

void lx_error_copy(struct lx_error *dst, const struct lx_error *src)
{
    if (dst == src)
        return;
    lx_error_clear(dst);
    dst->status = src->status;
    dst->message = dup_or_null(src->message);
    dst->type = dup_or_null(src->type);
    dst->param = dup_or_null(src->param);
    dst->code = dup_or_null(src->code);
    dst->retry_after = dup_or_null(src->retry_after);
}

bool lx_error_no_retry(const struct lx_error *e)
{
    static const char *const codes[] = {"provider_disabled", "deadline_exceeded", "request_timeout"};
    for (size_t i = 0; e->code && i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(e->code, codes[i]) == 0)
            return true;
    return false;
}

const char *lx_error_type_for_status(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 502:
    case 504: return "upstream_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *lx_error_json(const struct lx_error *e)
{
    json_t *inner = json_object();
    /* json_object_set_new steals each value reference. */
    json_object_set_new(inner, "message", json_string(e->message ? e->message : "unknown error"));
    json_object_set_new(inner, "type", json_string(e->type ? e->type : lx_error_type_for_status(e->status)));
    json_object_set_new(inner, "param", str_or_null(e->param));
    json_object_set_new(inner, "code", str_or_null(e->code));
    json_t *root = json_object();
    json_object_set_new(root, "error", inner);
    return root;
}

/* A JSON scalar as text for the type/param/code fields (some servers send numbers). */
static char *scalar_text(json_t *v)
{
    if (json_is_string(v))
        return lx_strdup(json_string_value(v));
    if (json_is_integer(v))
        return lx_sprintf("%lld", (long long)json_integer_value(v));
    return NULL;
}

/* Fill e from a parsed error body (see lx_error_from_upstream). */
static void error_from_json(struct lx_error *e, int status, json_t *root)
{
    json_t *obj = NULL;
    const char *msg = NULL;
    if (json_is_object(root)) {
        json_t *err = json_object_get(root, "error");
        if (json_is_object(err)) {
            obj = err;
            msg = json_string_value(json_object_get(err, "message"));
        } else if (json_is_string(err)) {
            msg = json_string_value(err);
        }
        if (!msg)
            msg = json_string_value(json_object_get(root, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(root, "detail"));
    }
    if (msg)
        lx_error_set(e, status, NULL, NULL, NULL, "%s", msg);
    else
        lx_error_set(e, status, NULL, NULL, NULL, "upstream answered HTTP %d", status);
    if (obj) {
        e->type = scalar_text(json_object_get(obj, "type"));
        e->param = scalar_text(json_object_get(obj, "param"));
        e->code = scalar_text(json_object_get(obj, "code"));
    }
}

void lx_error_from_upstream(struct lx_error *e, int status, const char *body, size_t len)
{
    json_t *root = body && len ? json_loadb(body, len, JSON_DECODE_ANY, NULL) : NULL;
    error_from_json(e, status, root);
    json_decref(root);
}

/* What each provider answers these codes and types with (OpenAI's error-codes guide, Anthropic's errors
 * page). Codes are looked up first: OpenAI's invalid_api_key comes with type invalid_request_error. */
static const struct {
    const char *kind;
    int status;
} lx_kind_status[] = {
    {"insufficient_quota", 429},     {"rate_limit_exceeded", 429},    {"rate_limit_error", 429},
    {"tokens", 429},                 {"requests", 429},               {"invalid_api_key", 401},
    {"invalid_authentication", 401}, {"authentication_error", 401},   {"billing_error", 402},
    {"permission_error", 403},       {"unsupported_country_region_territory", 403},
    {"model_not_found", 404},        {"not_found_error", 404},        {"request_too_large", 413},
    {"context_length_exceeded", 400}, {"invalid_request_error", 400}, {"timeout_error", 504},
    {"overloaded_error", 529},       {"server_error", 500},           {"api_error", 500},
};

static int kind_status(const char *kind)
{
    for (size_t i = 0; kind && i < LX_ARRAY_LEN(lx_kind_status); i++)
        if (strcmp(lx_kind_status[i].kind, kind) == 0)
            return lx_kind_status[i].status;
    return 0;
}

int lx_error_status_for_kind(const char *type, const char *code, int dflt)
{
    int status = kind_status(code);
    if (!status)
        status = kind_status(type);
    return status ? status : dflt;
}

bool lx_error_from_answer(struct lx_error *e, json_t *root)
{
    json_t *err = json_object_get(root, "error");
    if (!json_is_object(err) && !json_is_string(err))
        return false;
    error_from_json(e, 502, root);
    e->status = lx_error_status_for_kind(e->type, e->code, 502);
    return true;
}
