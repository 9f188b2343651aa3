/* The JSON writer: a comma is due before an item when its container already has one (a bit per depth,
 * which bounds nesting at 32, far more than events need). */
#include "jsonw.h"

#include <stdio.h>
#include <string.h>

bool lx_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t len;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) < len)
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false; /* overlong, out of range, or a surrogate */
        p += len;
    }
    return true;
}

static void quoted(struct lx_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!lx_utf8_valid(s, n)) {
        lx_buf_puts(b, "\"(not UTF-8)\"");
        return;
    }
    lx_buf_append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        lx_buf_append(b, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"': lx_buf_puts(b, "\\\""); break;
        case '\\': lx_buf_puts(b, "\\\\"); break;
        case '\n': lx_buf_puts(b, "\\n"); break;
        case '\r': lx_buf_puts(b, "\\r"); break;
        case '\t': lx_buf_puts(b, "\\t"); break;
        default: lx_buf_printf(b, "\\u%04x", c); break;
        }
    }
    lx_buf_append(b, run, strlen(run));
    lx_buf_append(b, "\"", 1);
}

/* The comma and the key before an item. */
static void item(struct lx_jw *w, const char *key)
{
    if (w->depth) {
        uint32_t bit = 1u << (w->depth - 1);
        if (w->items & bit)
            lx_buf_append(w->b, ",", 1);
        w->items |= bit;
    }
    if (key) {
        quoted(w->b, key);
        lx_buf_append(w->b, ":", 1);
    }
}

void lx_jw_open(struct lx_jw *w, const char *key, char bracket)
{
    item(w, key);
    lx_buf_append(w->b, &bracket, 1);
    w->depth++;
    w->items &= ~(1u << (w->depth - 1));
}

void lx_jw_close(struct lx_jw *w, char bracket)
{
    lx_buf_append(w->b, &bracket, 1);
    w->depth--;
}

void lx_jw_str(struct lx_jw *w, const char *key, const char *s)
{
    if (!s)
        return;
    item(w, key);
    quoted(w->b, s);
}

/* v in decimal, without printf's cost (events are mostly integers). */
static void decimal(struct lx_buf *b, long long v)
{
    char d[24], *p = d + sizeof d;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    lx_buf_append(b, p, (size_t)(d + sizeof d - p));
}

void lx_jw_int(struct lx_jw *w, const char *key, long long v)
{
    item(w, key);
    decimal(w->b, v);
}

void lx_jw_int_str(struct lx_jw *w, const char *key, long long v)
{
    item(w, key);
    lx_buf_append(w->b, "\"", 1);
    decimal(w->b, v);
    lx_buf_append(w->b, "\"", 1);
}

void lx_jw_ms(struct lx_jw *w, const char *key, double ms)
{
    item(w, key);
    if (ms < 0) {
        lx_buf_puts(w->b, "null");
        return;
    }
    long long tenths = (long long)(ms * 10.0 + 0.5);
    decimal(w->b, tenths / 10);
    char frac[2] = {'.', (char)('0' + tenths % 10)};
    lx_buf_append(w->b, frac, 2);
}

void lx_jw_bool(struct lx_jw *w, const char *key, bool v)
{
    item(w, key);
    lx_buf_puts(w->b, v ? "true" : "false");
}

void lx_jw_null(struct lx_jw *w, const char *key)
{
    item(w, key);
    lx_buf_puts(w->b, "null");
}

void lx_jw_raw(struct lx_jw *w, const char *key, const char *json)
{
    item(w, key);
    lx_buf_puts(w->b, json);
}
