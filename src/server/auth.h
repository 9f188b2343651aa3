/* Client keys (auth.keys): who may call, which models each key may use, and each key's request and token
 * rates and in-flight count. Keys are kept only as SHA-256 digests and compared in constant time. A key's
 * live counters belong to its name, not to a loaded config, so they survive a reload. */
#ifndef LX_AUTH_H
#define LX_AUTH_H

#include "../core/errors.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct lx_config;
struct lx_event;
struct lx_req;

/* A client key (auth.keys). The secret itself is not kept: only its SHA-256. */
struct lx_auth_key {
    char *name;                 /* owned: what logs and metrics show instead of the key */
    unsigned char digest[32];   /* SHA-256 of the key */
    char **models;              /* owned: glob patterns over the model name the client sends; NULL = any */
    size_t n_models;
    long rpm, tpm;              /* requests / tokens per minute; 0 = unlimited */
    bool admin;                 /* "admin": true: may watch GET /v1/events on the main address */
};

/* The auth section of the configuration. */
struct lx_auth_conf {
    struct lx_auth_key *keys;   /* owned: none = open (loopback only) */
    size_t n_keys;
    long tpm_default_max_tokens; /* the answer's budget a tpm reservation assumes when a request names none */
};

/* The keys this section reads (see src/config.c's table): "auth". */
extern const char *const lx_auth_conf_keys[];
/* Fill c->auth from root's "auth" object. LX_OK, or LX_ERR with "auth.keys[i].field: reason" in err. */
int lx_auth_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_auth_conf_free(struct lx_config *c);

/* Let a request in: find its key (401 when keys are configured and none matches), then check the key's
 * rpm and tpm (429 rate_limit_exceeded with Retry-After) and limits.max_inflight_per_key (429
 * too_many_inflight), fleet-wide when Redis is configured (server/ratelimit.h). LX_OK: in now, counted
 * as in flight until it finishes; LX_ERR: refused, err says why; LX_AGAIN: Redis decides, and then(req, NULL)
 * runs once it is in, or then(req, refusal) for the caller to answer. */
int lx_auth_admit(struct lx_req *req, struct lx_error *err,
                  void (*then)(struct lx_req *req, const struct lx_error *refusal));
/* May the request's key use `model` (the name the client sent)? LX_ERR with a 403 in err when not. */
int lx_auth_model(const struct lx_req *req, const char *model, struct lx_error *err);
bool lx_auth_model_ok(const struct lx_req *req, const char *model);
/* A "request finished" subscriber (core/bus.h): the request leaves its key's in-flight count, and its
 * tokens are charged to the key's tpm. */
void lx_auth_finished_cb(const struct lx_event *ev, void *arg);
/* May the request see the gateway's events (GET /v1/events)? On the admin address, or with no auth.keys
 * (loopback only), anyone; on the main address with keys, an admin key. */
bool lx_auth_is_admin(const struct lx_req *req);
/* The key's name for logs, or NULL. */
const char *lx_auth_key_name(const struct lx_req *req);
/* Free the live counters (at exit, after every request is gone). */
void lx_auth_shutdown(void);

#endif
