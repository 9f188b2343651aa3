/* The list of provider types. Adding a provider: its own file, and one line here. */
#include "provider.h"
#include "../src/core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lx_provider_type *const lx_provider_types[] = {
    &lx_provider_openai,
    &lx_provider_anthropic,
    &lx_provider_ollama,
    &lx_provider_lmstudio,
    &lx_provider_mlx,
    &lx_provider_huggingface,
    &lx_provider_mock,
};

const struct lx_provider_type *lx_provider_type_find(const char *name)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_provider_types); i++)
        if (strcmp(lx_provider_types[i]->name, name) == 0)
            return lx_provider_types[i];
    return NULL;
}

const char *lx_provider_type_names(void)
{
    static char names[256];
    if (!names[0]) {
        size_t off = 0;
        for (size_t i = 0; i < LX_ARRAY_LEN(lx_provider_types); i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                    lx_provider_types[i]->name);
    }
    return names;
}

void lx_http_request_add_header(struct lx_http_request *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    if (vasprintf(&line, fmt, ap) < 0) {
        va_end(ap);
        abort();
    }
    va_end(ap);
    r->headers = lx_realloc(r->headers, (r->n_headers + 1) * sizeof *r->headers);
    r->headers[r->n_headers++] = line;
}

void lx_http_request_drop(struct lx_http_request *r, const char *name)
{
    char *d = r->dropped ? lx_sprintf("%s,%s", r->dropped, name) : lx_strdup(name);
    free(r->dropped);
    r->dropped = d;
}

void lx_http_request_post_json(struct lx_http_request *r, char *url, json_t *body)
{
    r->method = "POST";
    r->url = url;
    r->body = json_dumps(body, JSON_COMPACT);
    r->body_len = strlen(r->body);
    json_decref(body);
    lx_http_request_add_header(r, "Content-Type: application/json");
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
