/* SSE decoding per the WHATWG event-stream rules (CR, LF or CRLF line ends; data lines joined; comments
 * and unknown fields ignored) and SSE encoding. */
#include "sse.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

#define LX_SSE_DEFAULT_MAX (1u << 20)
#define LX_SSE_ID_MAX 128 /* an id this long or longer is dropped */

static size_t sse_max(const struct lx_sse_decoder *d)
{
    return d->max_event ? d->max_event : LX_SSE_DEFAULT_MAX;
}

/* One complete line (without its terminator). */
static int sse_line(struct lx_sse_decoder *d, const char *line, size_t len, lx_sse_event_cb cb, void *ctx,
                    int *cb_rc)
{
    if (len == 0) {
        if (d->has_data) {
            int rc = cb(ctx, d->event, d->data.data ? d->data.data : "", d->data.len);
            d->events++;
            lx_buf_free(&d->data); /* a stream may idle for minutes between events: hold nothing */
            d->has_data = false;
            d->event[0] = '\0';
            if (rc != LX_OK) {
                if (cb_rc)
                    *cb_rc = rc;
                return LX_ERR;
            }
        }
        d->event[0] = '\0';
        return LX_OK;
    }
    if (line[0] == ':')
        return LX_OK; /* comment */
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *val = colon ? colon + 1 : line + len;
    size_t vlen = colon ? len - flen - 1 : 0;
    if (vlen && val[0] == ' ') {
        val++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        if (d->has_data)
            lx_buf_append(&d->data, "\n", 1);
        if (d->data.len + vlen > sse_max(d))
            return LX_ERR;
        lx_buf_append(&d->data, val, vlen);
        d->has_data = true;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = vlen < sizeof d->event - 1 ? vlen : sizeof d->event - 1;
        memcpy(d->event, val, n);
        d->event[n] = '\0';
    } else if (flen == 2 && memcmp(line, "id", 2) == 0) {
        /* An id holding NUL is ignored (WHATWG); one too long to keep whole is dropped, not cut. */
        if (!memchr(val, '\0', vlen) && vlen < LX_SSE_ID_MAX) {
            free(d->last_id);
            d->last_id = vlen ? lx_strndup(val, vlen) : NULL;
        }
    } else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
        long ms = 0;
        size_t k = 0;
        while (k < vlen && val[k] >= '0' && val[k] <= '9' && ms < 100000000)
            ms = ms * 10 + (val[k++] - '0');
        if (vlen > 0 && k == vlen)
            d->retry_ms = ms; /* only ASCII digits count */
    }
    /* Unknown fields carry nothing. */
    return LX_OK;
}

int lx_sse_feed(struct lx_sse_decoder *d, const char *p, size_t n, lx_sse_event_cb cb, void *ctx, int *cb_rc)
{
    size_t i = 0;
    if (d->skip_lf && n > 0) {
        d->skip_lf = false;
        if (p[0] == '\n')
            i = 1;
    }
    while (i < n) {
        /* Find the next line end in the rest of the input. */
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        if (j == n) {
            if (d->line.len + (n - i) > sse_max(d))
                return LX_ERR;
            lx_buf_append(&d->line, p + i, n - i);
            return LX_OK;
        }
        int rc;
        if (d->line.len) {
            if (d->line.len + (j - i) > sse_max(d))
                return LX_ERR;
            lx_buf_append(&d->line, p + i, j - i);
            rc = sse_line(d, d->line.data, d->line.len, cb, ctx, cb_rc);
            lx_buf_reset(&d->line);
        } else {
            if (j - i > sse_max(d))
                return LX_ERR;
            rc = sse_line(d, p + i, j - i, cb, ctx, cb_rc);
        }
        if (rc != LX_OK)
            return rc;
        if (p[j] == '\r') {
            if (j + 1 < n) {
                if (p[j + 1] == '\n')
                    j++;
            } else {
                d->skip_lf = true;
            }
        }
        i = j + 1;
    }
    return LX_OK;
}

int lx_sse_flush(struct lx_sse_decoder *d, lx_sse_event_cb cb, void *ctx, int *cb_rc)
{
    d->skip_lf = false;
    if (d->line.len) {
        struct lx_buf line = d->line;
        d->line = (struct lx_buf){0};
        int rc = sse_line(d, line.data, line.len, cb, ctx, cb_rc);
        lx_buf_free(&line);
        if (rc != LX_OK)
            return rc;
    }
    return sse_line(d, "", 0, cb, ctx, cb_rc);
}

void lx_sse_decoder_init(struct lx_sse_decoder *d)
{
    memset(d, 0, sizeof *d);
    d->retry_ms = -1;
}

bool lx_sse_pending(const struct lx_sse_decoder *d)
{
    return d->has_data || d->line.len > 0;
}

void lx_sse_decoder_free(struct lx_sse_decoder *d)
{
    lx_buf_free(&d->line);
    lx_buf_free(&d->data);
    free(d->last_id);
    d->last_id = NULL;
}

void lx_sse_write_data(struct lx_buf *out, const char *payload, size_t len)
{
    lx_buf_append(out, "data: ", 6);
    lx_buf_append(out, payload, len);
    lx_buf_append(out, "\n\n", 2);
}
