/* The configuration in force: what a request runs under from its first byte to its last. A reload builds a
 * new one for the requests that start after it; those in flight keep theirs (reference counted).
 *
 * It is a set of sections. Each section is a type of the layer that reads it, parsed and freed by that
 * layer; src/config.c (the composition root) holds the table of sections and builds a configuration from
 * a file. The core only counts references and keeps the warnings worth logging. */
#ifndef LX_CORE_CONF_H
#define LX_CORE_CONF_H

#include <stddef.h>

struct lx_server_conf; /* server/conf.h: listen addresses, client limits, the drain at shutdown */
struct lx_auth_conf;   /* server/auth.h: client keys */
struct lx_engine_conf; /* engine/conf.h: providers, aliases, timeouts, retries */
struct lx_api_conf;    /* api/conf.h: fanout, batch, model listing */
struct lx_mcp_section; /* engine/mcp.h: MCP servers and the tool loop's limits */
struct lx_events_conf; /* api/events.h: the observers' ring and queue */
struct lx_webhooks_conf; /* io/webhook.h: webhook sinks */
struct lx_otlp_conf;   /* io/otlp.h: the OpenTelemetry trace exporter */
struct lx_redis_conf;  /* io/redis.h: the Redis that replicas share (url NULL: none) */
struct lx_state_conf;  /* engine/store_conf.h: state_dir and the conversation store */

struct lx_config {
    int refs;
    struct lx_server_conf *server; /* owned, like every section: freed by free_sections */
    struct lx_auth_conf *auth;
    struct lx_engine_conf *engine;
    struct lx_api_conf *api;
    struct lx_mcp_section *mcp;
    struct lx_events_conf *events;
    struct lx_webhooks_conf *webhooks;
    struct lx_otlp_conf *otlp;
    struct lx_redis_conf *redis;
    struct lx_state_conf *state;
    char **warnings;               /* owned: the config is valid but likely not what was meant */
    size_t n_warnings;
    void (*free_sections)(struct lx_config *c); /* set by whoever built it (src/config.c) */
};

/* An empty configuration (no section yet), one reference. */
struct lx_config *lx_config_new(void (*free_sections)(struct lx_config *c));
struct lx_config *lx_config_ref(struct lx_config *c);
void lx_config_unref(struct lx_config *c);
/* A start-up (and reload, and --check-config) warning. */
void lx_config_warn(struct lx_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
