/* The scanner (jscan.h): one validating pass over the whole text (lx_jscan), then cheap walks over spans
 * already known to be valid (lx_jscan_members, lx_jscan_next). The grammar is RFC 8259's, with jansson's
 * limits (no NUL in strings, UTF-8 as jansson checks it, surrogate escapes in pairs). */
#include "jscan.h"
#include "common.h"
#include "jsonout.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return LX_AGAIN;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return LX_AGAIN;
    }
    *out = v;
    return LX_OK;
}

/* Bytes a string holds as they are: printable ASCII but the quote and the backslash. */
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const unsigned char lx_jscan_plain[256] = {
    R16(0), R16(0),                                  /* controls */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 0x20-0x2f: '"' */
    R16(1), R16(1),                                  /* 0x30-0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* 0x50-0x5f: '\\' */
    R16(1), R16(1),                                  /* 0x60-0x7f */
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* UTF-8, checked apart */
};
#undef R16

/* A string starting at its opening quote; *next is past its closing quote. */
static int scan_string(const char *p, const char *end, const char **next)
{
    p++;
    while (p < end) {
        while (p < end && lx_jscan_plain[(unsigned char)*p])
            p++; /* one table look-up per byte for the common case */
        if (p >= end)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *next = p + 1;
            return LX_OK;
        }
        if (c < 0x20)
            return LX_AGAIN;
        if (c >= 0x80) {
            size_t n = lx_utf8_seq((const unsigned char *)p, (size_t)(end - p));
            if (!n)
                return LX_AGAIN;
            p += n;
            continue;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        if (end - p < 2)
            return LX_AGAIN;
        char e = p[1];
        if (e != 'u') {
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return LX_AGAIN;
            p += 2;
            continue;
        }
        unsigned u;
        if (hex4(p + 2, end, &u) != LX_OK || u == 0)
            return LX_AGAIN; /* \u0000: jansson refuses it unless told to allow NUL */
        p += 6;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return LX_AGAIN; /* a low surrogate alone */
        if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) != LX_OK || lo < 0xDC00 ||
                lo > 0xDFFF)
                return LX_AGAIN;
            p += 6;
        }
    }
    return LX_AGAIN;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int scan_number(const char *p, const char *end, const char **next, enum lx_jtype *type)
{
    const char *start = p;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return LX_AGAIN;
    if (*p == '0')
        p++;
    else
        while (p < end && is_digit(*p))
            p++;
    *type = LX_JINT;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return LX_AGAIN;
        while (p < end && is_digit(*p))
            p++;
        *type = LX_JREAL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *digits = p;
        while (p < end && is_digit(*p))
            p++;
        if (p == digits || p - digits > 2)
            return LX_AGAIN; /* no exponent, or one that may overflow a double: jansson judges */
        *type = LX_JREAL;
    }
    if (*type == LX_JINT && p - start - (*start == '-') > 18)
        return LX_AGAIN; /* may not fit jansson's integer */
    *next = p;
    return LX_OK;
}

static int scan_value(const char *p, const char *end, int depth, const char **next, enum lx_jtype *type);

static int scan_container(const char *p, const char *end, int depth, const char **next)
{
    bool object = *p == '{';
    char close = object ? '}' : ']';
    if (depth >= LX_JSCAN_MAX_DEPTH)
        return LX_AGAIN;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) {
        *next = p + 1;
        return LX_OK;
    }
    for (;;) {
        enum lx_jtype t;
        if (object) {
            if (p >= end || *p != '"' || scan_string(p, end, &p) != LX_OK)
                return LX_AGAIN;
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                return LX_AGAIN;
            p = skip_ws(p + 1, end);
        }
        if (scan_value(p, end, depth + 1, &p, &t) != LX_OK)
            return LX_AGAIN;
        p = skip_ws(p, end);
        if (p >= end)
            return LX_AGAIN;
        if (*p == close) {
            *next = p + 1;
            return LX_OK;
        }
        if (*p != ',')
            return LX_AGAIN;
        p = skip_ws(p + 1, end);
    }
}

static int scan_literal(const char *p, const char *end, const char *word, const char **next)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0)
        return LX_AGAIN;
    *next = p + n;
    return LX_OK;
}

static int scan_value(const char *p, const char *end, int depth, const char **next, enum lx_jtype *type)
{
    if (p >= end)
        return LX_AGAIN;
    switch (*p) {
    case '"':
        *type = LX_JSTRING;
        return scan_string(p, end, next);
    case '{':
        *type = LX_JOBJECT;
        return scan_container(p, end, depth, next);
    case '[':
        *type = LX_JARRAY;
        return scan_container(p, end, depth, next);
    case 't':
        *type = LX_JTRUE;
        return scan_literal(p, end, "true", next);
    case 'f':
        *type = LX_JFALSE;
        return scan_literal(p, end, "false", next);
    case 'n':
        *type = LX_JNULL;
        return scan_literal(p, end, "null", next);
    default:
        return scan_number(p, end, next, type);
    }
}

int lx_jscan(const char *p, size_t n, struct lx_jval *v)
{
    const char *end = p + n;
    const char *start = skip_ws(p, end);
    const char *next;
    if (scan_value(start, end, 0, &next, &v->type) != LX_OK || skip_ws(next, end) != end)
        return LX_AGAIN;
    v->p = start;
    v->len = (size_t)(next - start);
    return LX_OK;
}

/* --- walks over text already checked --- */

/* Valid text: the closing quote is the first quote after an even run of backslashes (none counts), and
 * the run stops at the opening quote at the latest. */
static const char *skip_string(const char *p)
{
    const char *q = p + 1;
    for (;;) {
        const char *e = rawmemchr(q, '"');
        const char *b = e;
        while (b[-1] == '\\')
            b--;
        if ((e - b) % 2 == 0)
            return e + 1;
        q = e + 1;
    }
}

/* Past the value at p (valid text), setting its type. */
static const char *skip_value(const char *p, enum lx_jtype *type)
{
    switch (*p) {
    case '"':
        *type = LX_JSTRING;
        return skip_string(p);
    case '{':
    case '[': {
        *type = *p == '{' ? LX_JOBJECT : LX_JARRAY;
        /* Valid text has no NUL and closes every bracket, so strpbrk finds the next one within it. */
        int depth = 0;
        for (;;) {
            p = strpbrk(p, "\"{}[]");
            if (*p == '"') {
                p = skip_string(p);
            } else if (*p == '{' || *p == '[') {
                depth++;
                p++;
            } else {
                p++;
                if (--depth == 0)
                    return p;
            }
        }
    }
    case 't':
        *type = LX_JTRUE;
        return p + 4;
    case 'f':
        *type = LX_JFALSE;
        return p + 5;
    case 'n':
        *type = LX_JNULL;
        return p + 4;
    default:
        *type = LX_JINT;
        while (*p == '-' || *p == '+' || is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E') {
            if (*p == '.' || *p == 'e' || *p == 'E')
                *type = LX_JREAL;
            p++;
        }
        return p;
    }
}

int lx_jscan_members(const struct lx_jval *obj, struct lx_jmember *want, size_t n_want, size_t *n_members)
{
    const char *base = obj->p, *end = obj->p + obj->len;
    const char *p = skip_ws(base + 1, end);
    const char *prev_end = NULL; /* just past the previous member's value */
    size_t count = 0;
    size_t lens[16]; /* the wanted keys' lengths, measured once rather than for every member */
    size_t n_lens = n_want < LX_ARRAY_LEN(lens) ? n_want : LX_ARRAY_LEN(lens);
    for (size_t i = 0; i < n_want; i++) {
        want[i].count = 0;
        if (i < n_lens)
            lens[i] = strlen(want[i].key);
    }
    while (*p == '"') {
        const char *key = p + 1;
        const char *key_end = skip_string(p) - 1;
        if (memchr(key, '\\', (size_t)(key_end - key)))
            return LX_AGAIN;
        p = skip_ws(key_end + 1, end);
        p = skip_ws(p + 1, end); /* the colon */
        struct lx_jval v = {.p = p};
        p = skip_value(p, &v.type);
        v.len = (size_t)(p - v.p);
        const char *member_end = p;
        p = skip_ws(p, end);
        bool comma = *p == ',';
        for (size_t i = 0; i < n_want; i++) {
            size_t klen = i < n_lens ? lens[i] : strlen(want[i].key);
            if ((size_t)(key_end - key) != klen || (klen && key[0] != want[i].key[0]) ||
                memcmp(key, want[i].key, klen) != 0)
                continue;
            want[i].count++;
            want[i].val = v;
            /* Cut with the comma before it, or for the first member the one after it. */
            const char *from = prev_end ? prev_end : key - 1;
            const char *to = prev_end ? member_end : (comma ? skip_ws(p + 1, end) : member_end);
            want[i].cut_at = (size_t)(from - base);
            want[i].cut_len = (size_t)(to - from);
        }
        count++;
        prev_end = member_end;
        if (!comma)
            break;
        p = skip_ws(p + 1, end);
    }
    if (n_members)
        *n_members = count;
    return LX_OK;
}

void lx_jscan_items(const struct lx_jval *arr, struct lx_jiter *it)
{
    it->end = arr->p + arr->len;
    it->p = skip_ws(arr->p + 1, it->end);
}

bool lx_jscan_next(struct lx_jiter *it, struct lx_jval *item)
{
    if (it->p >= it->end || *it->p == ']')
        return false;
    item->p = it->p;
    const char *p = skip_value(it->p, &item->type);
    item->len = (size_t)(p - item->p);
    p = skip_ws(p, it->end);
    if (*p == ',')
        p = skip_ws(p + 1, it->end);
    it->p = p;
    return true;
}

size_t lx_jscan_count(const struct lx_jval *arr)
{
    struct lx_jiter it;
    struct lx_jval v;
    size_t n = 0;
    lx_jscan_items(arr, &it);
    while (lx_jscan_next(&it, &v))
        n++;
    return n;
}

void lx_jscan_fields(const struct lx_jval *obj, struct lx_jiter *it)
{
    it->end = obj->p + obj->len;
    it->p = skip_ws(obj->p + 1, it->end);
}

bool lx_jscan_next_field(struct lx_jiter *it, struct lx_jval *key, struct lx_jval *val)
{
    if (it->p >= it->end || *it->p != '"')
        return false;
    key->type = LX_JSTRING;
    key->p = it->p;
    const char *p = skip_string(it->p);
    key->len = (size_t)(p - key->p);
    p = skip_ws(p, it->end);
    p = skip_ws(p + 1, it->end); /* the colon */
    val->p = p;
    p = skip_value(p, &val->type);
    val->len = (size_t)(p - val->p);
    p = skip_ws(p, it->end);
    if (*p == ',')
        p = skip_ws(p + 1, it->end);
    it->p = p;
    return true;
}

bool lx_jval_is(const struct lx_jval *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == LX_JSTRING && v->len == n + 2 && memcmp(v->p + 1, s, n) == 0;
}

bool lx_jval_int(const struct lx_jval *v, long long *out)
{
    if (v->type != LX_JINT)
        return false;
    const char *p = v->p, *end = v->p + v->len;
    bool neg = *p == '-';
    if (neg)
        p++;
    long long x = 0;
    for (; p < end; p++)
        x = x * 10 + (*p - '0'); /* at most 18 digits (lx_jscan): no overflow */
    *out = neg ? -x : x;
    return true;
}
