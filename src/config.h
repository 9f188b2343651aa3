/* The JSON configuration: loading, ${ENV} expansion, validation with messages that name the bad key,
 * and the parsed, immutable lx_config that requests hold a reference to (so a reload can swap it). */
#ifndef LX_CONFIG_H
#define LX_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct lx_provider_type;

struct lx_timeouts {
    long connect_ms;    /* TCP (and TLS) connect */
    long first_byte_ms; /* request sent → first body byte */
    long idle_ms;       /* longest silence between two body reads of a stream */
    long total_ms;      /* whole upstream exchange */
};

/* Retries of one upstream call before any byte reached the client (see exec.c). */
struct lx_retries {
    long max;           /* retries after the first attempt */
    long base_delay_ms; /* backoff: a random delay in [0, base * 2^n), full jitter */
    long max_delay_ms;  /* cap on one delay, a Retry-After included */
};

/* The breaker: after `failures` failed calls in a row the provider is skipped for period_ms. */
struct lx_cooldown {
    long failures; /* 0 = never */
    long period_ms;
};

struct lx_capacity;

struct lx_provider_conf {
    char *name;                          /* owned */
    const struct lx_provider_type *type; /* static, from the registry */
    char *base_url;                      /* owned; no trailing '/'; NULL for local types */
    char *api_key;                       /* owned; secret: never logged or echoed */
    char **headers;                      /* owned: "Name: value" lines sent upstream */
    size_t n_headers;
    char **models;                       /* owned: configured model names (without provider prefix) */
    size_t n_models;
    struct lx_timeouts timeouts;         /* provider's own, falling back to the global ones */
    struct lx_retries retries;           /* provider's own, falling back to the global ones */
    size_t max_upstream_body_bytes;      /* limits.max_upstream_body_bytes: most bytes of one buffered
                                          * (non-stream or error) answer */
    long max_concurrency;                /* calls in flight at once; 0 = unlimited */
    long queue_timeout_ms;               /* longest wait for a free slot */
    struct lx_cooldown cooldown;
    struct lx_capacity *cap;             /* owned: the live counters (in flight, queue, failures) */
    char *disabled_reason;               /* owned; non-NULL when the provider cannot be used */
    void *state;                         /* owned by the type: freed by type->free_state */
};

/* An alias: one "PROVIDER/MODEL", a fallback list (tried in order), or a hedged list (hedge_ms >= 0: the
 * next model starts when the previous has not answered within hedge_ms). */
struct lx_alias {
    char *name;      /* owned */
    char **targets;  /* owned: "PROVIDER/MODEL" each, validated against the providers */
    size_t n_targets;
    long hedge_ms;   /* -1: a plain fallback list */
};

/* A client key (auth.keys). The secret itself is not kept: only its SHA-256. */
struct lx_auth_key {
    char *name;                 /* owned: what logs and metrics show instead of the key */
    unsigned char digest[32];   /* SHA-256 of the key */
    char **models;              /* owned: glob patterns over the model name the client sends; NULL = any */
    size_t n_models;
    long rpm, tpm;              /* requests / tokens per minute; 0 = unlimited */
};

/* Client-side limits (the "limits" object); 0 means "no limit" where noted. */
struct lx_limits {
    size_t max_body_bytes;
    long max_connections;       /* open client connections on the main address */
    long max_header_bytes;      /* request line and headers together */
    long read_timeout_ms;       /* to receive one whole request; 0 = none */
    long max_inflight_per_key;  /* 0 = unlimited */
    long max_request_ms;        /* a whole request, streaming included; 0 = none */
    size_t max_upstream_body_bytes; /* one non-stream (or error) upstream answer, held whole to translate */
};

struct lx_config {
    int refs;
    char *listen;               /* owned: "HOST:PORT" */
    char *admin_listen;         /* owned: "HOST:PORT" for /healthz and /metrics, or NULL */
    bool listen_explicit;       /* listen came from --listen, not the file */
    struct lx_limits limits;
    struct lx_auth_key *keys;   /* owned: auth.keys; none = open (loopback only) */
    size_t n_keys;
    struct lx_timeouts timeouts;
    struct lx_retries retries;
    long fanout_max_models;     /* most entries in a /v1/fanout "models" list */
    long batch_max_requests;    /* most items in one /v1/batch */
    long batch_default_concurrency;
    long batch_max_concurrency;
    long models_timeout_ms;     /* budget for fetching upstream model lists in GET /v1/models */
    long shutdown_timeout_ms;   /* drain budget on SIGTERM */
    struct lx_provider_conf *providers; /* owned */
    size_t n_providers;
    struct lx_alias *aliases;   /* owned */
    size_t n_aliases;
    char **warnings;            /* owned: start-up warnings (disabled providers) */
    size_t n_warnings;
};

/* Parse and validate. On failure returns NULL and writes "key.path: reason" into err. */
struct lx_config *lx_config_load_file(const char *path, char *err, size_t errlen);
struct lx_config *lx_config_load_buffer(const char *text, size_t len, char *err, size_t errlen);

struct lx_config *lx_config_ref(struct lx_config *c);
void lx_config_unref(struct lx_config *c);

const struct lx_provider_conf *lx_config_provider(const struct lx_config *c, const char *name, size_t len);
const struct lx_alias *lx_config_alias(const struct lx_config *c, const char *name);

/* Split "HOST:PORT" / "[V6]:PORT" (port 0..65535). host is owned by the caller. */
int lx_parse_listen(const char *s, char **host, int *port);


#endif
