/* NDJSON decoding: one JSON document per line; CRLF tolerated, blank lines skipped. */
#include "ndjson.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

static size_t nd_max(const struct lx_ndjson_decoder *d)
{
    return d->max_line ? d->max_line : (1u << 20);
}

static int nd_dispatch(struct lx_ndjson_decoder *d, const char *line, size_t len, lx_ndjson_line_cb cb, void *ctx)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return LX_OK;
    d->lines++;
    char *copy = lx_strndup(line + i, len - i);
    int rc = cb(ctx, copy, len - i);
    free(copy);
    return rc == LX_OK ? LX_OK : LX_ERR;
}

int lx_ndjson_feed(struct lx_ndjson_decoder *d, const char *p, size_t n, lx_ndjson_line_cb cb, void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            if (d->line.len + n > nd_max(d))
                return LX_ERR;
            lx_buf_append(&d->line, p, n);
            return LX_OK;
        }
        size_t take = (size_t)(nl - p);
        int rc;
        if (d->line.len) {
            if (d->line.len + take > nd_max(d))
                return LX_ERR;
            lx_buf_append(&d->line, p, take);
            rc = nd_dispatch(d, d->line.data, d->line.len, cb, ctx);
            lx_buf_reset(&d->line);
        } else {
            if (take > nd_max(d))
                return LX_ERR;
            rc = nd_dispatch(d, p, take, cb, ctx);
        }
        if (rc != LX_OK)
            return rc;
        p = nl + 1;
        n -= take + 1;
    }
    return LX_OK;
}

int lx_ndjson_finish(struct lx_ndjson_decoder *d, lx_ndjson_line_cb cb, void *ctx)
{
    if (!d->line.len)
        return LX_OK;
    int rc = nd_dispatch(d, d->line.data, d->line.len, cb, ctx);
    lx_buf_reset(&d->line);
    return rc;
}

void lx_ndjson_decoder_free(struct lx_ndjson_decoder *d)
{
    lx_buf_free(&d->line);
}
