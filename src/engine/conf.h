/* The engine's section of the configuration: the providers, the aliases over them, and the timeouts and
 * retries they fall back to. Parsed from "providers", "aliases", "timeouts", "retries" and
 * limits.max_upstream_body_bytes (src/config.c calls the parser). */
#ifndef LX_ENGINE_CONF_H
#define LX_ENGINE_CONF_H

#include "../../providers/provider.h"

#include <jansson.h>
#include <stddef.h>

struct lx_config;

/* An alias: one "PROVIDER/MODEL", a fallback list (tried in order), or a hedged list (hedge_ms >= 0: the
 * next model starts when the previous has not answered within hedge_ms). */
struct lx_alias {
    char *name;      /* owned */
    char **targets;  /* owned: "PROVIDER/MODEL" each, validated against the providers */
    size_t n_targets;
    long hedge_ms;   /* -1: a plain fallback list */
    char **mcp;      /* owned: MCP servers whose tools the alias's requests get (mcp_servers names) */
    size_t n_mcp;
};

struct lx_engine_conf {
    struct lx_timeouts timeouts;        /* what providers fall back to */
    struct lx_retries retries;
    size_t max_upstream_body_bytes;     /* limits.max_upstream_body_bytes: one buffered upstream answer */
    struct lx_provider_conf *providers; /* owned */
    size_t n_providers;
    struct lx_alias *aliases;           /* owned */
    size_t n_aliases;
};

/* The keys this section reads, and those whose ${VAR}s it expands itself: a provider whose variable is
 * unset is disabled, not an error (see src/config.c's table). */
extern const char *const lx_engine_conf_keys[];
extern const char *const lx_engine_conf_raw_keys[];
/* Fill c->engine from root. LX_ERR with "key.path: reason" in err. */
int lx_engine_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_engine_conf_free(struct lx_config *c);

/* c takes effect (at start-up, and on each reload): the live state of its providers, kept by name, takes
 * its limits (engine/capacity.h). */
void lx_engine_conf_apply(const struct lx_engine_conf *c);

/* The provider named name[0..len), or NULL. */
const struct lx_provider_conf *lx_engine_provider(const struct lx_engine_conf *c, const char *name, size_t len);
const struct lx_alias *lx_engine_alias(const struct lx_engine_conf *c, const char *name);

#endif
