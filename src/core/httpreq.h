/* An upstream HTTP request as plain data: what a provider builds and io/upstream sends. */
#ifndef LX_HTTPREQ_H
#define LX_HTTPREQ_H

#include <jansson.h>
#include <stddef.h>

/* Freed with lx_http_request_free. */
struct lx_http_request {
    const char *method; /* static string: "GET" or "POST" */
    char *url;          /* owned */
    char **headers;     /* owned: "Name: value" lines */
    size_t n_headers;
    char *body;         /* owned; NULL for GET */
    size_t body_len;
    char *dropped;      /* owned: comma-separated client parameters the provider ignored, or NULL */
};

/* Record that the client's parameter `name` was dropped (reported in x-llmux-dropped-params). */
void lx_http_request_drop(struct lx_http_request *r, const char *name);

void lx_http_request_add_header(struct lx_http_request *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void lx_http_request_free(struct lx_http_request *r);
/* Make r a POST of body (stolen, serialised compactly) to url (stolen), with Content-Type json. */
void lx_http_request_post_json(struct lx_http_request *r, char *url, json_t *body);
/* The same with a body that is JSON text already (stolen, len bytes). */
void lx_http_request_post_text(struct lx_http_request *r, char *url, char *body, size_t len);

#endif
