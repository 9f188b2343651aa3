/* The configuration loader of the composition root: a table of sections, each parsed and freed by the
 * layer that reads it. The loader checks the keys no section claims, expands ${VAR} everywhere but where
 * a section does it itself, and runs the sections in order. Every message names the key path that is
 * wrong, like `nginx -t`; values are never echoed (they may be secrets). */
#include "config.h"
#include "api/conf.h"
#include "api/events.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/conf.h"
#include "core/confread.h"
#include "engine/conf.h"
#include "engine/store_conf.h"
#include "engine/mcp.h"
#include "io/otlp.h"
#include "io/webhook.h"
#include "io/redis.h"
#include "server/auth.h"
#include "server/conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lx_conf_section {
    /* The keys it reads: a top-level key, or "object.key" for a key of an object that several sections
     * share ("limits"). */
    const char *const *keys;
    /* Top-level keys whose ${VAR}s it expands itself; NULL: none. */
    const char *const *raw_keys;
    /* Fill the section's own member of c (allocated even on failure); LX_ERR with err set. */
    int (*parse)(struct lx_config *c, json_t *root, char *err, size_t errlen);
    void (*free)(struct lx_config *c);
};

/* In the order they are parsed and their errors reported. */
static const struct lx_conf_section lx_sections[] = {
    {lx_server_conf_keys, NULL, lx_server_conf_parse, lx_server_conf_free},
    {lx_auth_conf_keys, NULL, lx_auth_conf_parse, lx_auth_conf_free},
    {lx_engine_conf_keys, lx_engine_conf_raw_keys, lx_engine_conf_parse, lx_engine_conf_free},
    {lx_api_conf_keys, NULL, lx_api_conf_parse, lx_api_conf_free},
    {lx_state_conf_keys, NULL, lx_state_conf_parse, lx_state_conf_free},
    {lx_mcp_section_keys, lx_mcp_section_raw_keys, lx_mcp_section_parse, lx_mcp_section_free},
    {lx_events_conf_keys, NULL, lx_events_conf_parse, lx_events_conf_free},
    {lx_webhooks_conf_keys, NULL, lx_webhooks_conf_parse, lx_webhooks_conf_free},
    {lx_otlp_conf_keys, NULL, lx_otlp_conf_parse, lx_otlp_conf_free},
    {lx_redis_conf_keys, NULL, lx_redis_conf_section_parse, lx_redis_conf_section_free},
};

static void free_sections(struct lx_config *c)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_sections); i++)
        lx_sections[i].free(c);
}

/* Is key (of the object at prefix: "" for the root, else "limits") read by a section? For the root, a key
 * that only appears as the prefix of shared keys counts as known; *shared tells. */
static bool known(const char *prefix, const char *key, bool *shared)
{
    size_t plen = strlen(prefix), klen = strlen(key);
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_sections); i++) {
        for (const char *const *k = lx_sections[i].keys; *k; k++) {
            const char *name = *k;
            if (plen) {
                if (strncmp(name, prefix, plen) == 0 && name[plen] == '.' && strcmp(name + plen + 1, key) == 0)
                    return true;
                continue;
            }
            if (strcmp(name, key) == 0)
                return true;
            if (strncmp(name, key, klen) == 0 && name[klen] == '.') {
                *shared = true;
                return true;
            }
        }
    }
    return false;
}

static bool raw(const char *key)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_sections); i++)
        for (const char *const *k = lx_sections[i].raw_keys; k && *k; k++)
            if (strcmp(*k, key) == 0)
                return true;
    return false;
}

static int check_keys(json_t *root, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        bool shared = false;
        if (!known("", key, &shared)) {
            lx_conf_err(err, errlen, "%s: unknown key", key);
            return LX_ERR;
        }
        if (!shared || !json_is_object(v))
            continue; /* a shared key that is no object: its first section says so */
        const char *sub;
        json_t *sv;
        json_object_foreach(v, sub, sv) {
            if (!known(key, sub, &shared)) {
                lx_conf_err(err, errlen, "%s.%s: unknown key", key, sub);
                return LX_ERR;
            }
        }
    }
    return LX_OK;
}

static int parse_root(struct lx_config *c, json_t *root, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        lx_conf_err(err, errlen, "(root): expected a JSON object");
        return LX_ERR;
    }
    if (check_keys(root, err, errlen) != LX_OK)
        return LX_ERR;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (raw(key))
            continue;
        char *missing = NULL, *where = NULL;
        if (lx_conf_expand(v, key, &missing, &where) != LX_OK) {
            lx_conf_err(err, errlen, "%s: environment variable %s is not set", where, missing);
            free(missing);
            free(where);
            return LX_ERR;
        }
    }
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_sections); i++)
        if (lx_sections[i].parse(c, root, err, errlen) != LX_OK)
            return LX_ERR;
    return LX_OK;
}

struct lx_config *lx_config_load_buffer(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        lx_conf_err(err, errlen, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    struct lx_config *c = lx_config_new(free_sections);
    int rc = parse_root(c, root, err, errlen);
    json_decref(root);
    if (rc != LX_OK) {
        lx_config_unref(c);
        return NULL;
    }
    return c;
}

struct lx_config *lx_config_load_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        lx_conf_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct lx_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        lx_buf_append(&b, chunk, n);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        lx_buf_free(&b);
        lx_conf_err(err, errlen, "cannot read %s", path);
        return NULL;
    }
    struct lx_config *c = lx_config_load_buffer(b.data ? b.data : "", b.len, err, errlen);
    lx_buf_free(&b);
    return c;
}
