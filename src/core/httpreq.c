/* Building and freeing upstream HTTP requests. */
#include "httpreq.h"
#include "common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void lx_http_request_add_header(struct lx_http_request *r, const char *fmt, ...)
{
    /* Most lines are a literal, or a name and one string (a copy then, not a format: this runs for every
     * upstream request). */
    char *line;
    va_list ap;
    va_start(ap, fmt);
    const char *pct = strchr(fmt, '%');
    if (!pct) {
        line = lx_strdup(fmt);
    } else if (pct[1] == 's' && !pct[2]) {
        const char *v = va_arg(ap, const char *);
        size_t n = (size_t)(pct - fmt), vn = strlen(v);
        line = lx_malloc(n + vn + 1);
        memcpy(line, fmt, n);
        memcpy(line + n, v, vn + 1);
    } else {
        line = lx_vsprintf(fmt, ap);
    }
    va_end(ap);
    lx_strs_push(&r->headers, &r->n_headers, line);
}

void lx_http_request_drop(struct lx_http_request *r, const char *name)
{
    char *d = r->dropped ? lx_sprintf("%s,%s", r->dropped, name) : lx_strdup(name);
    free(r->dropped);
    r->dropped = d;
}

void lx_http_request_post_text(struct lx_http_request *r, char *url, char *body, size_t len)
{
    r->method = "POST";
    r->url = url;
    r->body = body;
    r->body_len = len;
    lx_http_request_add_header(r, "Content-Type: application/json");
}

void lx_http_request_post_json(struct lx_http_request *r, char *url, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    lx_http_request_post_text(r, url, text, strlen(text));
}

void lx_http_request_free(struct lx_http_request *r)
{
    free(r->url);
    free(r->dropped);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}
