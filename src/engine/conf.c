/* Parsing the engine's section: providers (each with its type's own keys), aliases, and the timeouts,
 * retries and answer-size limit providers fall back to. Every message names the key path, like
 * `nginx -t`; values are never echoed (they may be secrets). */
#include "../core/conf.h"
#include "conf.h"
#include "capacity.h"
#include "../core/common.h"
#include "../core/confread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A non-stream answer is held whole (and parsed: jansson's tree takes a few times its size) to be
 * translated. 16 MiB is 16 times the longest chat completion (128k output tokens is about 1 MiB of JSON)
 * and fits an embeddings answer of about 750 inputs of 1,536 dimensions as floats, or 2,000 as base64;
 * bigger embedding batches need the key raised (docs/configuration.md). */
#define LX_DEFAULT_MAX_UPSTREAM_BODY (16u * 1024 * 1024)

const char *const lx_engine_conf_keys[] = {"providers", "aliases", "timeouts", "retries",
                                           "limits.max_upstream_body_bytes", NULL};
const char *const lx_engine_conf_raw_keys[] = {"providers", NULL};

static int parse_timeouts(json_t *obj, const char *path, struct lx_timeouts *t, char *err, size_t errlen)
{
    static const char *const keys[] = {"connect_ms", "first_byte_ms", "idle_ms", "total_ms", NULL};
    json_t *to;
    if (lx_conf_object(obj, "timeouts", path, &to, err, errlen) != LX_OK)
        return LX_ERR;
    if (!to)
        return LX_OK;
    char *sub = lx_sprintf("%s%stimeouts", path, *path ? "." : "");
    int rc = LX_ERR;
    if (lx_conf_unknown_keys(to, keys, sub, err, errlen) == LX_OK &&
        lx_conf_long(to, "connect_ms", sub, 1, 3600000, &t->connect_ms, err, errlen) == LX_OK &&
        lx_conf_long(to, "first_byte_ms", sub, 1, 86400000, &t->first_byte_ms, err, errlen) == LX_OK &&
        lx_conf_long(to, "idle_ms", sub, 1, 86400000, &t->idle_ms, err, errlen) == LX_OK &&
        lx_conf_long(to, "total_ms", sub, 1, 86400000, &t->total_ms, err, errlen) == LX_OK)
        rc = LX_OK;
    free(sub);
    return rc;
}

static int parse_retries(json_t *obj, const char *path, struct lx_retries *r, char *err, size_t errlen)
{
    static const char *const keys[] = {"max", "base_delay_ms", "max_delay_ms", NULL};
    json_t *ro;
    if (lx_conf_object(obj, "retries", path, &ro, err, errlen) != LX_OK)
        return LX_ERR;
    if (!ro)
        return LX_OK;
    char *sub = lx_sprintf("%s%sretries", path, *path ? "." : "");
    int rc = LX_ERR;
    if (lx_conf_unknown_keys(ro, keys, sub, err, errlen) == LX_OK &&
        lx_conf_long(ro, "max", sub, 0, 10, &r->max, err, errlen) == LX_OK &&
        lx_conf_long(ro, "base_delay_ms", sub, 1, 60000, &r->base_delay_ms, err, errlen) == LX_OK &&
        lx_conf_long(ro, "max_delay_ms", sub, 1, 600000, &r->max_delay_ms, err, errlen) == LX_OK)
        rc = LX_OK;
    free(sub);
    return rc;
}

/* The keys every provider type accepts besides its own (resilience; see docs/concurrency.md). */
static const char *const lx_provider_common_keys[] = {"retries", "max_concurrency", "queue_timeout_ms", "cooldown",
                                                      "passthrough", NULL};

static int parse_resilience(json_t *obj, const char *path, struct lx_provider_conf *p, char *err, size_t errlen)
{
    if (parse_retries(obj, path, &p->retries, err, errlen) != LX_OK ||
        lx_conf_long(obj, "max_concurrency", path, 0, 1000000, &p->max_concurrency, err, errlen) != LX_OK ||
        lx_conf_long(obj, "queue_timeout_ms", path, 0, 3600000, &p->queue_timeout_ms, err, errlen) != LX_OK ||
        lx_conf_bool(obj, "passthrough", path, &p->passthrough, err, errlen) != LX_OK)
        return LX_ERR;
    json_t *cd;
    if (lx_conf_object(obj, "cooldown", path, &cd, err, errlen) != LX_OK)
        return LX_ERR;
    if (cd) {
        static const char *const keys[] = {"failures", "period_ms", NULL};
        char *sub = lx_sprintf("%s.cooldown", path);
        int rc = lx_conf_unknown_keys(cd, keys, sub, err, errlen) == LX_OK &&
                         lx_conf_long(cd, "failures", sub, 0, 1000000, &p->cooldown.failures, err, errlen) == LX_OK &&
                         lx_conf_long(cd, "period_ms", sub, 1, 86400000, &p->cooldown.period_ms, err, errlen) == LX_OK
                     ? LX_OK
                     : LX_ERR;
        free(sub);
        if (rc != LX_OK)
            return LX_ERR;
    }
    return LX_OK;
}

/* Unknown keys of a provider object: neither the type's own nor the common ones. */
static int provider_unknown_keys(json_t *obj, const struct lx_provider_type *t, const char *path, char *err,
                                 size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; t->config_keys[i] && !ok; i++)
            ok = strcmp(t->config_keys[i], key) == 0;
        for (size_t i = 0; lx_provider_common_keys[i] && !ok; i++)
            ok = strcmp(lx_provider_common_keys[i], key) == 0;
        if (!ok) {
            lx_conf_err(err, errlen, "%s.%s: unknown key", path, key);
            return LX_ERR;
        }
    }
    return LX_OK;
}

/* Keep p, disabled, with a reason that names the fix: the variable to set and the key that needs it. */
static void disable_provider(struct lx_config *cfg, struct lx_provider_conf *p, const char *var, const char *where)
{
    free(p->disabled_reason);
    p->disabled_reason = lx_sprintf("environment variable %s is not set (%s needs it); set it in llmux's "
                                    "environment and restart llmux", var, where);
    lx_config_warn(cfg, "provider '%s' is disabled: %s", p->name, p->disabled_reason);
}

/* The base URL of a disabled provider, for /v1/providers: the configured one when it does not depend on
 * the missing variable, else the type's default (or none). */
static void disabled_base_url(struct lx_provider_conf *p, json_t *obj)
{
    const char *v = json_string_value(json_object_get(obj, "base_url"));
    char *missing = NULL;
    p->base_url = v ? lx_env_expand(v, &missing) : NULL;
    free(missing);
    if (!v && p->type->default_base_url)
        p->base_url = lx_strdup(p->type->default_base_url);
    for (size_t n = p->base_url ? strlen(p->base_url) : 0; n > 0 && p->base_url[n - 1] == '/'; n--)
        p->base_url[n - 1] = '\0';
}

/* One entry of "providers". The object was already env-expanded, or is marked disabled. */
static int parse_provider(struct lx_config *cfg, struct lx_provider_conf *p, const char *name, json_t *obj,
                          const char *missing, const char *where, char *err, size_t errlen)
{
    char path[300];
    snprintf(path, sizeof path, "providers.%s", name);
    struct lx_engine_conf *c = cfg->engine;
    p->name = lx_strdup(name);
    p->max_upstream_body_bytes = c->max_upstream_body_bytes;
    p->timeouts = c->timeouts;
    p->retries = c->retries;
    p->queue_timeout_ms = 30000;
    p->passthrough = true;
    p->cooldown = (struct lx_cooldown){.failures = 0, .period_ms = 30000};
    if (!json_is_object(obj)) {
        lx_conf_err(err, errlen, "%s: expected an object", path);
        return LX_ERR;
    }
    json_t *type = json_object_get(obj, "type");
    if (!json_is_string(type)) {
        lx_conf_err(err, errlen, "%s.type: expected one of: %s", path, lx_provider_type_names());
        return LX_ERR;
    }
    p->type = lx_provider_type_find(json_string_value(type));
    if (!p->type) {
        lx_conf_err(err, errlen, "%s.type: unknown provider type (known: %s)", path, lx_provider_type_names());
        return LX_ERR;
    }
    if (strchr(name, '/') || !*name) {
        lx_conf_err(err, errlen, "%s: a provider name must be non-empty and contain no '/'", path);
        return LX_ERR;
    }
    if (provider_unknown_keys(obj, p->type, path, err, errlen) != LX_OK ||
        parse_resilience(obj, path, p, err, errlen) != LX_OK)
        return LX_ERR;
    if (missing) {
        /* The variable is unset: keep the provider, disabled, so requests get a clear error. Shape
         * errors are still reported above. */
        disable_provider(cfg, p, missing, where);
        disabled_base_url(p, obj);
        return LX_OK;
    }
    if (lx_conf_string(obj, "base_url", path, &p->base_url, err, errlen) != LX_OK ||
        lx_conf_string(obj, "api_key", path, &p->api_key, err, errlen) != LX_OK ||
        lx_conf_strings(obj, "models", path, &p->models, &p->n_models, err, errlen) != LX_OK ||
        parse_timeouts(obj, path, &p->timeouts, err, errlen) != LX_OK)
        return LX_ERR;
    if (!p->base_url && p->type->default_base_url)
        p->base_url = lx_strdup(p->type->default_base_url);
    if (!p->api_key && p->type->api_key_env) {
        const char *v = getenv(p->type->api_key_env);
        if (!v || !*v) {
            char *key = lx_sprintf("%s.api_key, which defaults to $%s,", path, p->type->api_key_env);
            disable_provider(cfg, p, p->type->api_key_env, key);
            free(key);
            return LX_OK;
        }
        p->api_key = lx_strdup(v);
    }
    if (p->base_url) {
        const char *rest = strncmp(p->base_url, "http://", 7) == 0    ? p->base_url + 7
                           : strncmp(p->base_url, "https://", 8) == 0 ? p->base_url + 8
                                                                       : NULL;
        if (!rest || !*rest || *rest == '/' || strpbrk(p->base_url, " \t\r\n")) {
            lx_conf_err(err, errlen, "%s.base_url: must be an http:// or https:// URL with a host", path);
            return LX_ERR;
        }
        size_t n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
            p->base_url[--n] = '\0';
    }
    if (p->api_key && !lx_conf_header_part(p->api_key, false)) {
        lx_conf_err(err, errlen, "%s.api_key: must not contain line breaks", path);
        return LX_ERR;
    }
    json_t *headers;
    if (lx_conf_object(obj, "headers", path, &headers, err, errlen) != LX_OK)
        return LX_ERR;
    if (headers) {
        const char *hk;
        json_t *hv;
        p->headers = lx_calloc(json_object_size(headers), sizeof *p->headers);
        json_object_foreach(headers, hk, hv) {
            if (!json_is_string(hv) || !lx_conf_header_part(hk, true) || !lx_conf_header_part(json_string_value(hv), false)) {
                lx_conf_err(err, errlen, "%s.headers.%s: expected a header name and a string value without line breaks",
                        path, hk);
                return LX_ERR;
            }
            p->headers[p->n_headers++] = lx_sprintf("%s: %s", hk, json_string_value(hv));
        }
    }
    if (p->type->configure && p->type->configure(p, obj, path, err, errlen) != LX_OK)
        return LX_ERR;
    return LX_OK;
}

static void free_provider(struct lx_provider_conf *p)
{
    free(p->name);
    free(p->base_url);
    free(p->api_key);
    for (size_t i = 0; i < p->n_headers; i++)
        free(p->headers[i]);
    free(p->headers);
    for (size_t i = 0; i < p->n_models; i++)
        free(p->models[i]);
    free(p->models);
    free(p->disabled_reason);
    if (p->state && p->type && p->type->free_state)
        p->type->free_state(p->state);
}

/* "P/M" naming a configured provider; writes the error for path otherwise. */
static int check_target(const struct lx_engine_conf *c, json_t *v, const char *path, char *err, size_t errlen)
{
    const char *t = json_string_value(v);
    const char *slash = t ? strchr(t, '/') : NULL;
    if (!slash || slash == t || !slash[1]) {
        lx_conf_err(err, errlen, "%s: expected \"PROVIDER/MODEL\"", path);
        return LX_ERR;
    }
    if (!lx_engine_provider(c, t, (size_t)(slash - t))) {
        lx_conf_err(err, errlen, "%s: no provider named '%.*s'", path, (int)(slash - t), t);
        return LX_ERR;
    }
    return LX_OK;
}

/* An alias is "P/M", ["P/M", ...] (fallbacks in order) or {"models": [...], "hedge_ms": N, "mcp": [...]}
 * (the MCP servers whose tools its requests get; checked against mcp_servers by that section). */
static int parse_alias(const struct lx_engine_conf *c, struct lx_alias *a, json_t *v, char *err, size_t errlen)
{
    char path[300];
    snprintf(path, sizeof path, "aliases.%s", a->name);
    a->hedge_ms = -1;
    json_t *list = v;
    if (json_is_object(v)) {
        static const char *const keys[] = {"models", "hedge_ms", "mcp", NULL};
        if (lx_conf_unknown_keys(v, keys, path, err, errlen) != LX_OK ||
            lx_conf_long(v, "hedge_ms", path, 0, 3600000, &a->hedge_ms, err, errlen) != LX_OK ||
            lx_conf_strings(v, "mcp", path, &a->mcp, &a->n_mcp, err, errlen) != LX_OK)
            return LX_ERR;
        list = json_object_get(v, "models");
        snprintf(path, sizeof path, "aliases.%s.models", a->name);
        if (!json_is_array(list)) {
            lx_conf_err(err, errlen, "%s: expected an array of \"PROVIDER/MODEL\" strings", path);
            return LX_ERR;
        }
    }
    if (json_is_string(v)) {
        if (check_target(c, v, path, err, errlen) != LX_OK)
            return LX_ERR;
        a->targets = lx_calloc(1, sizeof *a->targets);
        a->targets[a->n_targets++] = lx_strdup(json_string_value(v));
        return LX_OK;
    }
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 16) {
        lx_conf_err(err, errlen, "%s: expected \"PROVIDER/MODEL\", a list of 1 to 16 of them, or {\"models\": [...], "
                "\"hedge_ms\": N}", path);
        return LX_ERR;
    }
    a->targets = lx_calloc(json_array_size(list), sizeof *a->targets);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        char ipath[340];
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
        if (check_target(c, item, ipath, err, errlen) != LX_OK)
            return LX_ERR;
        a->targets[a->n_targets++] = lx_strdup(json_string_value(item));
    }
    return LX_OK;
}

/* An alias named like "P/M" of a configured provider P that reaches another provider. Aliases take
 * precedence over PROVIDER/MODEL and keys' model globs match the name the client sends, so a key whose
 * globs allow only P's models reaches the other provider through it: allowed (it may be meant), but said. */
static void warn_alias_named_like_model(struct lx_config *cfg, const struct lx_alias *a)
{
    const char *slash = strchr(a->name, '/');
    const struct lx_provider_conf *p = slash ? lx_engine_provider(cfg->engine, a->name, (size_t)(slash - a->name)) : NULL;
    if (!p)
        return;
    size_t plen = strlen(p->name);
    for (size_t i = 0; i < a->n_targets; i++) {
        const char *t = a->targets[i];
        if (strncmp(t, p->name, plen) == 0 && t[plen] == '/')
            continue;
        lx_config_warn(cfg,
                    "aliases.%s: named like a model of provider '%s' but routes to '%s'; aliases take precedence "
                    "over PROVIDER/MODEL, so a key limited to \"%s/*\" reaches '%.*s' through it (name the "
                    "alias without the '%s/' prefix unless that is meant)",
                    a->name, p->name, t, p->name, (int)strcspn(t, "/"), t, p->name);
        return;
    }
}

int lx_engine_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    struct lx_engine_conf *c = cfg->engine = lx_calloc(1, sizeof *c);
    c->timeouts = (struct lx_timeouts){.connect_ms = 10000, .first_byte_ms = 300000, .idle_ms = 120000,
                                       .total_ms = 600000};
    c->retries = (struct lx_retries){.max = 2, .base_delay_ms = 250, .max_delay_ms = 20000};
    long mub = LX_DEFAULT_MAX_UPSTREAM_BODY;
    json_t *limits = json_object_get(root, "limits"); /* the server's section reports a non-object */
    if (json_is_object(limits) &&
        lx_conf_long(limits, "max_upstream_body_bytes", "limits", 1024, 1L << 30, &mub, err, errlen) != LX_OK)
        return LX_ERR;
    c->max_upstream_body_bytes = (size_t)mub;
    if (parse_timeouts(root, "", &c->timeouts, err, errlen) != LX_OK ||
        parse_retries(root, "", &c->retries, err, errlen) != LX_OK)
        return LX_ERR;

    const char *key;
    json_t *v;
    json_t *providers;
    if (lx_conf_object(root, "providers", "", &providers, err, errlen) != LX_OK)
        return LX_ERR;
    if (providers) {
        c->providers = lx_calloc(json_object_size(providers), sizeof *c->providers);
        json_object_foreach(providers, key, v) {
            /* A provider whose variable is unset stays, disabled: requests to it get a clear error. */
            char *missing = NULL, *where = NULL;
            char *path = lx_sprintf("providers.%s", key);
            lx_conf_expand(v, path, &missing, &where);
            free(path);
            struct lx_provider_conf *p = &c->providers[c->n_providers++];
            int rc = parse_provider(cfg, p, key, v, missing, where, err, errlen);
            free(missing);
            free(where);
            if (rc != LX_OK)
                return LX_ERR;
        }
    }

    json_t *aliases;
    if (lx_conf_object(root, "aliases", "", &aliases, err, errlen) != LX_OK)
        return LX_ERR;
    if (aliases) {
        c->aliases = lx_calloc(json_object_size(aliases), sizeof *c->aliases);
        json_object_foreach(aliases, key, v) {
            struct lx_alias *a = &c->aliases[c->n_aliases++];
            a->name = lx_strdup(key);
            if (parse_alias(c, a, v, err, errlen) != LX_OK)
                return LX_ERR;
            warn_alias_named_like_model(cfg, a);
        }
    }
    return LX_OK;
}

void lx_engine_conf_free(struct lx_config *cfg)
{
    struct lx_engine_conf *c = cfg->engine;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_providers; i++)
        free_provider(&c->providers[i]);
    free(c->providers);
    for (size_t i = 0; i < c->n_aliases; i++) {
        free(c->aliases[i].name);
        for (size_t j = 0; j < c->aliases[i].n_targets; j++)
            free(c->aliases[i].targets[j]);
        free(c->aliases[i].targets);
        for (size_t j = 0; j < c->aliases[i].n_mcp; j++)
            free(c->aliases[i].mcp[j]);
        free(c->aliases[i].mcp);
    }
    free(c->aliases);
    free(c);
    cfg->engine = NULL;
}

void lx_engine_conf_apply(const struct lx_engine_conf *c)
{
    for (size_t i = 0; i < c->n_providers; i++)
        lx_capacity_apply(&c->providers[i]);
}

const struct lx_provider_conf *lx_engine_provider(const struct lx_engine_conf *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n_providers; i++)
        if (strlen(c->providers[i].name) == len && memcmp(c->providers[i].name, name, len) == 0)
            return &c->providers[i];
    return NULL;
}

const struct lx_alias *lx_engine_alias(const struct lx_engine_conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_aliases; i++)
        if (strcmp(c->aliases[i].name, name) == 0)
            return &c->aliases[i];
    return NULL;
}
