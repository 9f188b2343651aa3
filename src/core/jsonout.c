/* Writing JSON text by hand, byte for byte as jansson's encoder writes it (jansson dump.c, utf.c). */
#include "jsonout.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t lx_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte first, an overlong lead (C0, C1) or beyond F4 */
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool lx_json_utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            if (p[i] == 0)
                return false;
            i++;
            continue;
        }
        size_t len = lx_utf8_seq(p + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

void lx_jsonw_str(struct lx_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    lx_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, written in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        lx_buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        lx_buf_append(b, esc, len);
    }
    lx_buf_append(b, s + run, n - run);
    lx_buf_append(b, "\"", 1);
}

void lx_jsonw_str_or(struct lx_buf *b, const char *s, const char *bad)
{
    if (!s) {
        lx_buf_append(b, "null", 4);
        return;
    }
    size_t n = strlen(s);
    if (lx_json_utf8_ok(s, n))
        lx_jsonw_str(b, s, n);
    else
        lx_jsonw_str(b, bad, strlen(bad));
}

void lx_jsonw_int(struct lx_buf *b, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    lx_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void lx_jsonw_real(struct lx_buf *b, double v, int precision)
{
    /* The common case of the access log's durations, tenths of a millisecond: k / 10 with k an integer of
     * fewer digits than the precision prints as "k/10.k%10", as "%.*g" would, without printf. */
    double tenths = v * 10.0;
    if (v >= 0 && tenths < 1e11 && precision >= 12 && precision <= 15 && (double)(long long)tenths == tenths) {
        long long k = (long long)tenths;
        lx_jsonw_int(b, k / 10);
        char frac[2] = {'.', (char)('0' + k % 10)};
        lx_buf_append(b, frac, 2);
        return;
    }
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp - 2, "%.*g", precision, v);
    if (n < 0 || (size_t)n >= sizeof tmp - 2)
        return;
    if (!strchr(tmp, '.') && !strchr(tmp, 'e')) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(tmp, 'e');
    if (e) {
        /* jansson drops the exponent's '+' and its leading zeros: 1e+05 -> 1e5 */
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            *to++ = *from++;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(tmp);
    }
    lx_buf_append(b, tmp, (size_t)n);
}
