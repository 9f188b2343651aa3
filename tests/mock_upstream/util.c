/* util.c: the mock upstream's small helpers: allocation that aborts on out of memory, string and buffer
 * building, and the pieces model replies are made of (word counts, stop conditions, embeddings, base64,
 * timestamps). Nothing here knows about connections or dialects. */

#include "mock.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- allocation: a mock that half-works under memory pressure would make test failures lie ---- */

void oom(void)
{
    fputs("mock-upstream: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        oom();
    return d;
}

json_t *must(json_t *j)
{
    if (!j) {
        fputs("mock-upstream: jansson failed\n", stderr);
        abort();
    }
    return j;
}

struct evbuffer *new_buf(void)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        oom();
    return b;
}

void buf_add(struct evbuffer *b, const void *data, size_t n)
{
    if (n && evbuffer_add(b, data, n) != 0)
        oom();
}

void buf_move(struct evbuffer *dst, struct evbuffer *src)
{
    if (evbuffer_add_buffer(dst, src) != 0)
        oom();
}

void sb_add(struct strbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sb_add_json(struct strbuf *b, json_t *str)
{
    if (json_is_string(str))
        sb_add(b, json_string_value(str), json_string_length(str));
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Header values and request targets are arbitrary bytes; jansson only takes UTF-8. */
json_t *json_string_lossy(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = must(json_string(copy));
    free(copy);
    return j;
}

char *dump_json(json_t *j, size_t flags)
{
    char *s = json_dumps(j, flags | JSON_ENCODE_ANY);
    if (!s)
        oom();
    return s;
}

/* ---- reply text ---- */

long long count_words(const char *s, size_t n)
{
    long long words = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        int space = isspace((unsigned char)s[i]);
        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    return words;
}

/* Cuts s into at most `pieces` nearly equal non-empty byte ranges, moving each cut forward past UTF-8
 * continuation bytes so no piece splits a character. Returns pieces + 1 offsets; *count gets the number
 * of ranges. */
size_t *cut_utf8(const char *s, size_t len, size_t pieces, size_t *count)
{
    size_t *cuts = xmalloc((pieces + 1) * sizeof *cuts);
    size_t k = 0;
    cuts[0] = 0;
    for (size_t i = 1; i <= pieces; i++) {
        size_t b = i == pieces ? len : (size_t)((unsigned long long)len * i / pieces);
        while (b < len && ((unsigned char)s[b] & 0xC0) == 0x80)
            b++;
        if (b > cuts[k])
            cuts[++k] = b;
    }
    *count = k;
    return cuts;
}

/* The length of s's first max words, without the space after the last one; n when s has no more. */
static size_t first_words(const char *s, size_t n, long long max)
{
    long long words = 0;
    size_t end = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        int space = isspace((unsigned char)s[i]);
        if (!space && !in_word) {
            if (words == max)
                return end;
            words++;
        }
        if (!space)
            end = i + 1;
        in_word = !space;
    }
    return n;
}

static void earliest_stop(const char *s, size_t n, json_t *stop, size_t *at, const char **matched)
{
    const char *t = json_string_value(stop);
    size_t tn = json_string_length(stop);
    if (!t || tn == 0 || tn > n)
        return;
    for (size_t i = 0; i + tn <= n && i < *at; i++)
        if (memcmp(s + i, t, tn) == 0) {
            *at = i;
            *matched = t;
            return;
        }
}

size_t reply_cut(const char *s, size_t n, json_t *stops, long long max_words, enum reply_cut *why,
                 const char **matched)
{
    size_t at = n;
    *matched = NULL;
    *why = REPLY_WHOLE;
    if (json_is_array(stops)) {
        size_t i;
        json_t *stop;
        json_array_foreach(stops, i, stop)
            earliest_stop(s, n, stop, &at, matched);
    } else {
        earliest_stop(s, n, stops, &at, matched);
    }
    if (*matched)
        *why = REPLY_STOP_SEQUENCE;
    if (max_words >= 0) {
        size_t words = first_words(s, at, max_words);
        if (words < at) {
            at = words;
            *why = REPLY_WORD_LIMIT;
            *matched = NULL;
        }
    }
    return at;
}

/* ---- embeddings ---- */

/* Newton's method: the mock links no libm. */
static double square_root(double x)
{
    if (x <= 0)
        return 0;
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 64; i++)
        r = 0.5 * (r + x / r);
    return r;
}

/* The double closest to f's shortest decimal form, which %.9g then prints as that form. */
static double shortest_float(float f)
{
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        double d = strtod(text, NULL);
        if ((float)d == f)
            return d;
    }
    return (double)f;
}

void embed_vector(const char *s, size_t n, double out[EMBED_DIMS])
{
    double norm = 0;
    for (int k = 0; k < EMBED_DIMS; k++) {
        uint64_t h = 14695981039346656037ULL ^ ((uint64_t)(k + 1) * 0x9E3779B97F4A7C15ULL);
        for (size_t i = 0; i < n; i++) {
            h ^= (unsigned char)s[i];
            h *= 1099511628211ULL;
        }
        h ^= h >> 29; /* FNV's low bits alone vary little between short inputs */
        out[k] = (double)(h % 2000001) / 1000000.0 - 1.0;
        norm += out[k] * out[k];
    }
    norm = square_root(norm);
    for (int k = 0; k < EMBED_DIMS; k++)
        out[k] = shortest_float((float)(norm > 0 ? out[k] / norm : 0.5));
}

json_t *embed_json(const double v[EMBED_DIMS])
{
    json_t *a = must(json_array());
    for (int k = 0; k < EMBED_DIMS; k++)
        if (json_array_append_new(a, must(json_real(v[k]))) != 0)
            oom();
    return a;
}

/* ---- base64 ---- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const unsigned char *p, size_t n)
{
    char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = b64_alphabet[v >> 18 & 63];
        *o++ = b64_alphabet[v >> 12 & 63];
        *o++ = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Standard padded base64, as Go's base64.StdEncoding reads it (which skips CR and LF). */
long base64_bad_byte(const char *s)
{
    size_t n = 0, pad = 0, i;
    for (i = 0; s[i]; i++) {
        char ch = s[i];
        if (ch == '\r' || ch == '\n')
            continue;
        if (ch == '=') {
            if (n % 4 < 2 || ++pad > 2)
                return (long)i;
        } else if (pad || !strchr(b64_alphabet, ch)) {
            return (long)i;
        }
        n++;
    }
    return n % 4 ? (long)i : -1;
}

/* ---- time ---- */

void rfc3339_now(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char frac[16];
    snprintf(frac, sizeof frac, ".%09ld", ts.tv_nsec);
    size_t f = strlen(frac);
    while (f > 1 && frac[f - 1] == '0') /* RFC3339Nano drops trailing zeros, and the dot with them */
        frac[--f] = '\0';
    if (f == 1)
        frac[0] = '\0';
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s%sZ", date, frac);
}
