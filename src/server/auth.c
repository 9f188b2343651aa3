/* Client keys: parsing auth.keys, finding a request's key by its SHA-256 digest in constant time, and the
 * per-key model patterns; the key's limits are ratelimit.c's. The secret never reaches a log line, an
 * error message or a metric: only the key's name does. */
#include "auth.h"
#include "conf.h"
#include "ratelimit.h"
#include "req.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"

#include <ctype.h>
#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void digest(const char *text, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(text, len, out, &n, EVP_sha256(), NULL);
}

/* ---- configuration ---- */

const char *const lx_auth_conf_keys[] = {"auth", NULL};

void lx_auth_conf_free(struct lx_config *c)
{
    struct lx_auth_conf *a = c->auth;
    if (!a)
        return;
    for (size_t i = 0; i < a->n_keys; i++) {
        free(a->keys[i].name);
        for (size_t j = 0; j < a->keys[i].n_models; j++)
            free(a->keys[i].models[j]);
        free(a->keys[i].models);
    }
    free(a->keys);
    free(a);
    c->auth = NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

static int parse_key(struct lx_auth_key *k, json_t *v, const char *path, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "key", "sha256", "models", "rpm", "tpm", "admin", NULL};
    if (!json_is_object(v)) {
        snprintf(err, errlen, "%s: expected an object with \"name\" and \"key\" or \"sha256\"", path);
        return LX_ERR;
    }
    if (lx_conf_unknown_keys(v, keys, path, err, errlen) != LX_OK)
        return LX_ERR;
    const char *name = json_string_value(json_object_get(v, "name"));
    if (!name || !valid_name(name)) {
        snprintf(err, errlen, "%s.name: expected 1 to 64 letters, digits, '.', '_' or '-'", path);
        return LX_ERR;
    }
    k->name = lx_strdup(name);
    json_t *key = json_object_get(v, "key"), *sha = json_object_get(v, "sha256");
    if ((key != NULL) == (sha != NULL)) {
        snprintf(err, errlen, "%s: give exactly one of \"key\" and \"sha256\"", path);
        return LX_ERR;
    }
    if (key) {
        /* Never echo the value: it is a secret. */
        if (!json_is_string(key) || json_string_length(key) < 8) {
            snprintf(err, errlen, "%s.key: expected a string of at least 8 characters", path);
            return LX_ERR;
        }
        digest(json_string_value(key), json_string_length(key), k->digest);
    } else {
        const char *hex = json_string_value(sha);
        if (!hex || strlen(hex) != 64) {
            snprintf(err, errlen, "%s.sha256: expected 64 hexadecimal digits (the SHA-256 of the key)", path);
            return LX_ERR;
        }
        for (int i = 0; i < 32; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "%s.sha256: expected 64 hexadecimal digits (the SHA-256 of the key)", path);
                return LX_ERR;
            }
            k->digest[i] = (unsigned char)(hi << 4 | lo);
        }
    }
    json_t *models = json_object_get(v, "models");
    if (models) {
        if (!json_is_array(models) || json_array_size(models) == 0) {
            snprintf(err, errlen, "%s.models: expected a non-empty list of model names or patterns", path);
            return LX_ERR;
        }
        k->models = lx_calloc(json_array_size(models), sizeof *k->models);
        size_t i;
        json_t *m;
        json_array_foreach(models, i, m) {
            if (!json_is_string(m) || json_string_length(m) == 0) {
                snprintf(err, errlen, "%s.models[%zu]: expected a model name or pattern", path, i);
                return LX_ERR;
            }
            k->models[k->n_models++] = lx_strdup(json_string_value(m));
        }
    }
    json_t *admin = json_object_get(v, "admin");
    if (admin && !json_is_boolean(admin)) {
        snprintf(err, errlen, "%s.admin: expected true or false", path);
        return LX_ERR;
    }
    k->admin = json_is_true(admin);
    if (lx_conf_long(v, "rpm", path, 0, 100000000, &k->rpm, err, errlen) != LX_OK ||
        lx_conf_long(v, "tpm", path, 0, 1000000000000L, &k->tpm, err, errlen) != LX_OK)
        return LX_ERR;
    return LX_OK;
}

int lx_auth_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    static const char *const keys[] = {"keys", "tpm_default_max_tokens", NULL};
    struct lx_auth_conf *c = cfg->auth = lx_calloc(1, sizeof *c);
    c->tpm_default_max_tokens = 1024;
    json_t *auth = json_object_get(root, "auth");
    if (!auth)
        return LX_OK;
    if (!json_is_object(auth)) {
        snprintf(err, errlen, "auth: expected an object");
        return LX_ERR;
    }
    if (lx_conf_unknown_keys(auth, keys, "auth", err, errlen) != LX_OK ||
        lx_conf_long(auth, "tpm_default_max_tokens", "auth", 0, 10000000, &c->tpm_default_max_tokens, err, errlen) !=
            LX_OK)
        return LX_ERR;
    json_t *list = json_object_get(auth, "keys");
    if (!list)
        return LX_OK;
    if (!json_is_array(list)) {
        snprintf(err, errlen, "auth.keys: expected a list of keys");
        return LX_ERR;
    }
    c->keys = lx_calloc(json_array_size(list) + 1, sizeof *c->keys);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        char path[64];
        snprintf(path, sizeof path, "auth.keys[%zu]", i);
        struct lx_auth_key *k = &c->keys[c->n_keys++];
        if (parse_key(k, v, path, err, errlen) != LX_OK)
            return LX_ERR;
        for (size_t j = 0; j + 1 < c->n_keys; j++) {
            if (strcmp(c->keys[j].name, k->name) == 0) {
                snprintf(err, errlen, "%s.name: '%s' is already the name of auth.keys[%zu]", path, k->name, j);
                return LX_ERR;
            }
            if (CRYPTO_memcmp(c->keys[j].digest, k->digest, 32) == 0) {
                snprintf(err, errlen, "%s: the same key as auth.keys[%zu] ('%s')", path, j, c->keys[j].name);
                return LX_ERR;
            }
        }
    }
    return LX_OK;
}

/* ---- requests ---- */

/* The presented key: "Authorization: Bearer KEY" (what the OpenAI SDKs send) or "x-api-key: KEY". */
static const char *presented_key(struct lx_req *req)
{
    const char *h = lx_req_header(req, "Authorization");
    if (h) {
        while (*h == ' ')
            h++;
        if (strncasecmp(h, "Bearer ", 7) == 0) {
            h += 7;
            while (*h == ' ')
                h++;
            if (*h)
                return h;
        }
    }
    h = lx_req_header(req, "x-api-key");
    return h && *h ? h : NULL;
}

/* Every configured digest is compared, whatever matches, so the time taken says nothing about the keys. */
static const struct lx_auth_key *find_key(const struct lx_auth_conf *c, const char *presented)
{
    unsigned char d[32];
    digest(presented, strlen(presented), d);
    const struct lx_auth_key *found = NULL;
    for (size_t i = 0; i < c->n_keys; i++)
        if (CRYPTO_memcmp(d, c->keys[i].digest, 32) == 0)
            found = &c->keys[i];
    return found;
}

int lx_auth_admit(struct lx_req *req, struct lx_error *err,
                  void (*then)(struct lx_req *req, const struct lx_error *refusal))
{
    const struct lx_auth_conf *c = req->cfg->auth;
    const struct lx_auth_key *k = NULL;
    if (c->n_keys) {
        const char *presented = presented_key(req);
        if (!presented) {
            lx_error_set(err, 401, "invalid_request_error", NULL, "missing_api_key",
                         "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'.");
            return LX_ERR;
        }
        k = find_key(c, presented);
        req->auth_key = k; /* named in the log line even when refused below */
        req->origin.key = k ? k->name : NULL;
        if (!k) {
            lx_error_set(err, 401, "invalid_request_error", NULL, "invalid_api_key",
                         "Incorrect API key provided.");
            return LX_ERR;
        }
    }
    return lx_ratelimit_admit(req, k, c->tpm_default_max_tokens, err, then);
}

bool lx_auth_model_ok(const struct lx_req *req, const char *model)
{
    const struct lx_auth_key *k = req->auth_key;
    if (!k || !k->models)
        return true;
    if (!model)
        return false;
    for (size_t i = 0; i < k->n_models; i++)
        if (fnmatch(k->models[i], model, 0) == 0)
            return true;
    return false;
}

int lx_auth_model(const struct lx_req *req, const char *model, struct lx_error *err)
{
    if (lx_auth_model_ok(req, model))
        return LX_OK;
    const struct lx_auth_key *k = req->auth_key;
    lx_error_set(err, 403, "permission_error", "model", "model_not_allowed",
                 "Key '%s' may not use model '%s'.", k->name, model ? model : "");
    return LX_ERR;
}

void lx_auth_finished_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    lx_ratelimit_finished(ev->request.req);
}

void lx_auth_shutdown(void)
{
    lx_ratelimit_shutdown();
}

bool lx_auth_is_admin(const struct lx_req *req)
{
    if (req->on_admin || req->cfg->auth->n_keys == 0)
        return true;
    return req->auth_key && req->auth_key->admin;
}

const char *lx_auth_key_name(const struct lx_req *req)
{
    const struct lx_auth_key *k = req->auth_key;
    return k ? k->name : NULL;
}
