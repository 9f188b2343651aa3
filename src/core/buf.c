/* Growable byte buffer. */
#include "buf.h"
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lx_buf_reserve(struct lx_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    /* Reclaim consumed space before growing. */
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        need = b->len + extra + 1;
        if (need <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = lx_realloc(b->data, cap);
    b->cap = cap;
}

void lx_buf_append(struct lx_buf *b, const void *p, size_t n)
{
    lx_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void lx_buf_puts(struct lx_buf *b, const char *s)
{
    lx_buf_append(b, s, strlen(s));
}

void lx_buf_printf(struct lx_buf *b, const char *fmt, ...)
{
    /* Format into the room the buffer has; only when that is too small, grow and format again. */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        if (b->data)
            b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        lx_buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void lx_buf_consume(struct lx_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) {
        b->off = 0;
        b->len = 0;
        if (b->data)
            b->data[0] = '\0';
    }
}

void lx_buf_reset(struct lx_buf *b)
{
    b->off = 0;
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void lx_buf_free(struct lx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->off = b->cap = 0;
}

void lx_buf_fit(struct lx_buf *b)
{
    if (!b->data)
        return;
    if (b->off) {
        memmove(b->data, b->data + b->off, b->len - b->off + 1);
        b->len -= b->off;
        b->off = 0;
    }
    /* Only when that frees a malloc chunk's worth (glibc splits a shrinking block in place, 32 bytes at least). */
    if (b->cap - (b->len + 1) >= 32) {
        b->data = lx_realloc(b->data, b->len + 1);
        b->cap = b->len + 1;
    }
}

char *lx_buf_steal(struct lx_buf *b, size_t *len)
{
    char *s;
    if (!b->data) {
        s = lx_strdup("");
        if (len)
            *len = 0;
        return s;
    }
    lx_buf_fit(b); /* what is stolen is kept: without the slack of its growth */
    if (len)
        *len = b->len;
    s = b->data;
    b->data = NULL;
    b->len = b->off = b->cap = 0;
    return s;
}
