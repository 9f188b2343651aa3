/* The store's section of the configuration: where llmux keeps state ("state_dir") and the conversation
 * store's settings ("store": {"backend", "path", "retention_days", "max_items_per_conversation",
 * "synchronous", "timeout_ms", "max_history_tokens"}, or null for no storage). src/config.c calls the parser. */
#ifndef LX_STORE_CONF_H
#define LX_STORE_CONF_H

#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct lx_config;

struct lx_state_conf {
    char *state_dir;          /* owned: "state_dir", else $STATE_DIRECTORY (systemd's StateDirectory=), else ./var */
    bool enabled;             /* false with "store": null: nothing is stored */
    bool redis;               /* "backend": "redis": the store lives in the top-level redis section's Redis */
    char *path;               /* owned: the database file: store.path (relative ones under state_dir) */
    struct lx_store_conf store; /* its path is the one above */
    long max_history_tokens;  /* a turn's history budget, estimated tokens (0: none), what truncation keeps to */
};

/* The keys this section reads (see src/config.c's table). */
extern const char *const lx_state_conf_keys[];
/* Fill c->state from root. LX_ERR with "key.path: reason" in err. */
int lx_state_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_state_conf_free(struct lx_config *c);

#endif
