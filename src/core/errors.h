/* The one builder of client-visible errors, in OpenAI's shape {"error":{"message","type","param","code"}}.
 * Handlers fill a struct lx_error and hand it to lx_req_respond_error or to the SSE error event writer;
 * nothing else writes error JSON. */
#ifndef LX_ERRORS_H
#define LX_ERRORS_H

#include <jansson.h>
#include <stdbool.h>

struct lx_error {
    int status;     /* HTTP status the client gets; 0 means "no error" */
    char *message;  /* owned: freed in lx_error_clear */
    char *type;     /* owned; NULL → derived from status */
    char *param;    /* owned; NULL → JSON null */
    char *code;     /* owned; NULL → JSON null */
    char *retry_after; /* owned; a Retry-After value to pass on, or NULL */
};

/* Set every field (replacing earlier ones). type/param/code may be NULL. */
void lx_error_set(struct lx_error *e, int status, const char *type, const char *param, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* A bad request: 400 invalid_request_error naming param (may be NULL) with code. */
void lx_error_bad_request(struct lx_error *e, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void lx_error_copy(struct lx_error *dst, const struct lx_error *src);
void lx_error_clear(struct lx_error *e);
static inline int lx_error_isset(const struct lx_error *e) { return e->status != 0; }

/* An error that asking again cannot fix although its status may look retryable (a deadline that passed)
 * or whose fix is configuration: answered with X-Should-Retry: false, which openai-node honours. */
bool lx_error_no_retry(const struct lx_error *e);

/* The OpenAI type string that goes with an HTTP status. */
const char *lx_error_type_for_status(int status);

/* {"error":{...}} as a new reference. */
json_t *lx_error_json(const struct lx_error *e);

/* Fill e from an upstream error body (OpenAI shape or the common variants: {"error":"text"},
 * {"message":...}, {"detail":...}); status is kept as given. Falls back to a generic message. */
void lx_error_from_upstream(struct lx_error *e, int status, const char *body, size_t len);

/* The HTTP status a provider pairs with an error's code or, failing that, its type (OpenAI's and
 * Anthropic's names: insufficient_quota → 429, invalid_api_key → 401, overloaded_error → 529, ...; the
 * table is in errors.c and docs/api.md), for errors that come without one: in a 200 body or a stream
 * event. dflt when neither is known. */
int lx_error_status_for_kind(const char *type, const char *code, int dflt);

/* When root, a parsed 2xx answer or stream event, is an error object ({"error":{...}} or
 * {"error":"text"}): fill e with its message, type, param and code, and the status
 * lx_error_status_for_kind gives them (502 when it knows neither), and return true. */
bool lx_error_from_answer(struct lx_error *e, json_t *root);

#endif
