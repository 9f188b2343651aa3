/* Parsing the store's section: state_dir and store, with their defaults. */
#include "store_conf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"

#include <stdlib.h>
#include <string.h>

const char *const lx_state_conf_keys[] = {"state_dir", "store", NULL};

static int parse_store(struct lx_state_conf *c, json_t *s, char *err, size_t errlen)
{
    static const char *const keys[] = {"backend",     "path",      "retention_days", "max_items_per_conversation",
                                       "synchronous", "timeout_ms", "max_history_tokens", NULL};
    char *sync = NULL, *backend = NULL;
    if (lx_conf_unknown_keys(s, keys, "store", err, errlen) != LX_OK ||
        lx_conf_string(s, "path", "store", &c->path, err, errlen) != LX_OK ||
        lx_conf_long(s, "retention_days", "store", 0, 36500, &c->store.retention_days, err, errlen) != LX_OK ||
        lx_conf_long(s, "max_items_per_conversation", "store", 0, 100000000, &c->store.max_items_per_conversation,
                     err, errlen) != LX_OK ||
        lx_conf_long(s, "max_history_tokens", "store", 0, 100000000, &c->max_history_tokens, err, errlen) != LX_OK ||
        lx_conf_long(s, "timeout_ms", "store", 1, 600000, &c->store.timeout_ms, err, errlen) != LX_OK ||
        lx_conf_string(s, "synchronous", "store", &sync, err, errlen) != LX_OK ||
        lx_conf_string(s, "backend", "store", &backend, err, errlen) != LX_OK) {
        free(sync);
        free(backend);
        return LX_ERR;
    }
    if (backend && strcmp(backend, "sqlite") != 0 && strcmp(backend, "redis") != 0) {
        lx_conf_err(err, errlen, "store.backend: expected \"sqlite\" or \"redis\"");
        free(sync);
        free(backend);
        return LX_ERR;
    }
    c->redis = backend && strcmp(backend, "redis") == 0;
    free(backend);
    if (sync && strcmp(sync, "normal") != 0 && strcmp(sync, "full") != 0) {
        lx_conf_err(err, errlen, "store.synchronous: expected \"normal\" or \"full\"");
        free(sync);
        return LX_ERR;
    }
    c->store.synchronous_full = sync && strcmp(sync, "full") == 0;
    free(sync);
    if (c->path && !*c->path) {
        lx_conf_err(err, errlen, "store.path: expected a file name");
        return LX_ERR;
    }
    return LX_OK;
}

int lx_state_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    struct lx_state_conf *c = cfg->state = lx_calloc(1, sizeof *c);
    c->enabled = true;
    c->store.retention_days = 30;
    c->store.max_items_per_conversation = 10000;
    c->max_history_tokens = 100000;
    c->store.timeout_ms = 1000;
    if (lx_conf_string(root, "state_dir", "", &c->state_dir, err, errlen) != LX_OK)
        return LX_ERR;
    if (c->state_dir && !*c->state_dir) {
        lx_conf_err(err, errlen, "state_dir: expected a directory");
        return LX_ERR;
    }
    if (!c->state_dir) {
        /* systemd's StateDirectory= says where (and made it); from a checkout, ./var. */
        const char *sd = getenv("STATE_DIRECTORY");
        c->state_dir = lx_strdup(sd && *sd ? sd : "./var");
        char *colon = strchr(c->state_dir, ':'); /* several StateDirectory= entries: the first */
        if (colon)
            *colon = '\0';
    }
    json_t *s = json_object_get(root, "store");
    if (json_is_null(s)) {
        c->enabled = false;
    } else if (s) {
        if (!json_is_object(s)) {
            lx_conf_err(err, errlen, "store: expected an object, or null for no storage");
            return LX_ERR;
        }
        if (parse_store(c, s, err, errlen) != LX_OK)
            return LX_ERR;
    }
    const char *file = c->path ? c->path : "llmux.db";
    char *full = file[0] == '/' ? lx_strdup(file) : lx_sprintf("%s/%s", c->state_dir, file);
    free(c->path);
    c->path = full;
    c->store.path = c->path;
    return LX_OK;
}

void lx_state_conf_free(struct lx_config *cfg)
{
    struct lx_state_conf *c = cfg->state;
    if (!c)
        return;
    free(c->state_dir);
    free(c->path);
    free(c);
    cfg->state = NULL;
}
