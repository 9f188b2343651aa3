/* A client key's limits: its rpm and tpm token buckets and limits.max_inflight_per_key, counted on this
 * replica, or fleet-wide through Redis (io/fleet.h) when the "redis" section is set; the x-ratelimit-*
 * answer headers; the tpm reservation. auth.c finds the key and hands the request here.
 *
 * Tokens are reserved, then settled: admission holds back an estimate (lx_ratelimit_reserve) and needs
 * it in the bucket (capped at the whole budget), the end of the request charges the real usage instead
 * (refunding or charging the difference). A stream already admitted is never cut.
 *
 * This replica's own buckets and counts are kept in every mode: they decide alone without Redis, and
 * with Redis they follow this replica's requests so that the fail-open fallback starts from its share. */
#ifndef LX_RATELIMIT_H
#define LX_RATELIMIT_H

#include "../core/errors.h"

#include <stdbool.h>

struct lx_auth_key;
struct lx_fleet;
struct lx_req;

/* Decide through f from now on (NULL: on this replica alone). main.c wires it. */
void lx_ratelimit_share(struct lx_fleet *f);

/* Admit req under key k (NULL: a client without a key, counted only for limits.max_inflight_per_key).
 * LX_OK: admitted now (then it counts until lx_ratelimit_finished). LX_ERR: refused, err says why (429,
 * or 503 when Redis cannot answer and fail_mode is "closed"). LX_AGAIN: Redis decides; then(req, NULL)
 * runs from the loop once admitted, or then(req, refusal) when refused: the caller answers it (in the
 * shape of its API), as it answers err after LX_ERR. */
int lx_ratelimit_admit(struct lx_req *req, const struct lx_auth_key *k, long default_max_tokens,
                       struct lx_error *err,
                       void (*then)(struct lx_req *req, const struct lx_error *refusal));
/* The request ended: settle its reserve against its real usage and give its in-flight unit back. */
void lx_ratelimit_finished(struct lx_req *req);
/* Free the live counters (at exit, after every request is gone). */
void lx_ratelimit_shutdown(void);

/* The tokens a request reserves at admission: its text (every string of the JSON body but data: URLs)
 * at 4 characters a token, plus the answer's budget: the max_tokens, max_completion_tokens or
 * max_output_tokens it names (summed when several, as in a batch), else default_max_tokens (0 for
 * /v1/embeddings, whose answer costs no completion tokens). A body that is not JSON reserves
 * default_max_tokens. */
long lx_ratelimit_reserve(const struct lx_req *req, long default_max_tokens);

/* "1s", "6m0s", "250ms": OpenAI's x-ratelimit-reset-* format. buf of at least 32 bytes. */
const char *lx_ratelimit_reset_str(long ms, char *buf, size_t len);

#endif
