/* Request framing (RFC 9112): checking a request head, writing it in canonical form, and decoding a
 * chunked body. Strict where two parsers could disagree about where a request ends (nginx is the
 * yardstick): anything ambiguous is refused rather than guessed at. */
#include "reqhead.h"
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* At most this many header fields, and query parameters: MHD keeps a record of each in its connection
 * pool, and answers more than about a thousand with an HTML 431, or not at all (Apache's LimitRequestFields
 * has the same default). */
#define LX_REQHEAD_MAX_FIELDS 100

/* tchar (RFC 9110 section 5.6.2): what field names, methods and transfer-coding names are made of. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* VCHAR or obs-text: visible ASCII and every byte above 0x7F. */
static bool is_visible(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

/* What a field value may hold between its first and last visible byte. */
static bool is_field_char(unsigned char c)
{
    return c == ' ' || c == '\t' || is_visible(c);
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int refuse(struct lx_reqhead *h, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(struct lx_reqhead *h, int status, const char *code, const char *fmt, ...)
{
    h->status = status;
    h->code = code;
    /* Not in h: a refusal is answered at once, and a connection's head need not carry 200 bytes for it. */
    static char message[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    h->message = message;
    return LX_ERR;
}

size_t lx_reqhead_skip_empty(const char *buf, size_t n)
{
    size_t i = 0;
    while (i + 1 < n && buf[i] == '\r' && buf[i + 1] == '\n')
        i += 2;
    return i;
}

/* The line starting at pos ends with a CRLF at *eol. 1: found; 0: no CRLF within buf[0..limit) yet; -1: a
 * bare CR or LF (refused). Other control characters are for the callers to judge. */
static int find_eol(const char *buf, size_t limit, size_t pos, size_t *eol)
{
    for (size_t i = pos; i < limit; i++) {
        if (buf[i] == '\n')
            return -1;
        if (buf[i] == '\r') {
            if (i + 1 >= limit)
                return 0;
            if (buf[i + 1] != '\n')
                return -1;
            *eol = i;
            return 1;
        }
    }
    return 0;
}

/* A comma-separated list element at *p (up to end), with the whitespace around it trimmed; advances *p
 * past the comma. False when the list is done. */
static bool next_element(const char **p, const char *end, const char **el, size_t *len)
{
    if (*p > end)
        return false;
    const char *s = *p;
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *e = comma ? comma : end;
    *p = comma ? comma + 1 : end + 1;
    while (s < e && is_ows((unsigned char)*s))
        s++;
    while (e > s && is_ows((unsigned char)e[-1]))
        e--;
    *el = s;
    *len = (size_t)(e - s);
    return true;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

static bool has_token(const char *v, size_t vlen, const char *token)
{
    const char *p = v, *el;
    size_t len;
    while (next_element(&p, v + vlen, &el, &len))
        if (name_is(el, len, token))
            return true;
    return false;
}

/* Content-Length: 1*DIGIT, or a list of equal values ("65, 65"), each equal to what came before. */
static int parse_content_length(struct lx_reqhead *h, const char *v, size_t vlen, bool *seen)
{
    const char *p = v, *el;
    size_t len;
    while (next_element(&p, v + vlen, &el, &len)) {
        uint64_t n = 0;
        if (len == 0 || len > 19)
            return refuse(h, 400, "invalid_content_length", "Content-Length must be a decimal number of bytes.");
        for (size_t i = 0; i < len; i++) {
            if (el[i] < '0' || el[i] > '9')
                return refuse(h, 400, "invalid_content_length",
                              "Content-Length must be a decimal number of bytes.");
            n = n * 10 + (uint64_t)(el[i] - '0');
        }
        if (*seen && n != h->content_length)
            return refuse(h, 400, "invalid_content_length", "The request has conflicting Content-Length values.");
        h->content_length = n;
        *seen = true;
    }
    return LX_OK;
}

/* Transfer-Encoding: a list of codings whose last is chunked, which appears once. We decode no other. */
static int parse_transfer_encoding(struct lx_reqhead *h, const char *v, size_t vlen)
{
    const char *p = v, *el;
    size_t len;
    bool chunked_last = false, other = false;
    while (next_element(&p, v + vlen, &el, &len)) {
        size_t name = 0;
        while (name < len && is_tchar((unsigned char)el[name]))
            name++;
        if (name == 0 || (name < len && !is_ows((unsigned char)el[name]) && el[name] != ';'))
            return refuse(h, 400, "invalid_transfer_encoding", "Transfer-Encoding is not a list of codings.");
        if (chunked_last)
            return refuse(h, 400, "invalid_transfer_encoding", "chunked must be the last Transfer-Encoding.");
        if (name_is(el, name, "chunked")) {
            if (name != len)
                return refuse(h, 400, "invalid_transfer_encoding", "The chunked coding takes no parameters.");
            chunked_last = true;
        } else {
            other = true;
        }
    }
    if (!chunked_last)
        return refuse(h, 400, "invalid_transfer_encoding",
                      "The last Transfer-Encoding of a request must be chunked.");
    if (other)
        return refuse(h, 501, "unsupported_transfer_encoding",
                      "Only the chunked Transfer-Encoding is supported.");
    return LX_OK;
}

/* A Host value: reg-name, IPv4 or [IPv6] and an optional port, so nothing a router might split on. */
static bool valid_host(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-._~!$&'()*+,;=:[]%", c)))
            return false;
    }
    return true;
}

/* The request-target: origin-form, absolute-form (reduced to its path; *authority set) or "*" for
 * OPTIONS. Sets *path to what MHD is to see; *slash when a "/" must precede it. */
static int check_target(struct lx_reqhead *h, const char **path, size_t *path_len, bool *slash,
                        const char **authority, size_t *auth_len)
{
    const char *t = h->target;
    size_t len = h->target_len;
    *slash = false;
    *authority = NULL;
    *auth_len = 0;
    size_t params = 0;
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && t[i] == '%' && t[i + 1] == '0' && t[i + 2] == '0')
            return refuse(h, 400, "invalid_request_target", "The request target holds an encoded NUL (%%00).");
        params += t[i] == '&';
    }
    if (params >= LX_REQHEAD_MAX_FIELDS)
        return refuse(h, 414, "request_uri_too_long", "The request target has more than %d query parameters.",
                      LX_REQHEAD_MAX_FIELDS);
    if (t[0] == '/') {
        *path = t;
        *path_len = len;
        return LX_OK;
    }
    if (len == 1 && t[0] == '*' && name_is(h->method, h->method_len, "OPTIONS")) {
        *path = t;
        *path_len = len;
        return LX_OK;
    }
    size_t scheme = 0;
    if (len > 7 && strncasecmp(t, "http://", 7) == 0)
        scheme = 7;
    else if (len > 8 && strncasecmp(t, "https://", 8) == 0)
        scheme = 8;
    if (!scheme)
        return refuse(h, 400, "invalid_request_target",
                      "The request target must be a path (\"/v1/...\") or an absolute http(s) URL.");
    size_t a = scheme;
    while (a < len && t[a] != '/' && t[a] != '?')
        a++;
    if (a == scheme || !valid_host(t + scheme, a - scheme))
        return refuse(h, 400, "invalid_request_target", "The request target's authority is not a host[:port].");
    *authority = t + scheme;
    *auth_len = a - scheme;
    *path = t + a;
    *path_len = len - a;
    *slash = *path_len == 0 || t[a] == '?';
    return LX_OK;
}

static int parse_request_line(struct lx_reqhead *h, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= len || line[i] != ' ')
        return refuse(h, 400, "invalid_request_line", "The request line must be METHOD SP TARGET SP HTTP/1.1.");
    h->method = line;
    h->method_len = i;
    size_t t = ++i;
    while (i < len && line[i] != ' ') {
        if (!is_visible((unsigned char)line[i])) {
            h->target = line + t;
            h->target_len = i - t;
            return refuse(h, 400, "invalid_request_target", "The request target holds a control character.");
        }
        i++;
    }
    h->target = line + t;
    h->target_len = i - t;
    if (i == t || i >= len)
        return refuse(h, 400, "invalid_request_line", "The request line must be METHOD SP TARGET SP HTTP/1.1.");
    const char *v = line + i + 1;
    size_t vlen = len - i - 1;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
        v[7] > '9')
        return refuse(h, 400, "invalid_request_line", "The request line must end with HTTP/1.1 or HTTP/1.0.");
    if (v[5] != '1')
        return refuse(h, 505, "http_version_not_supported", "Only HTTP/1.1 and HTTP/1.0 are supported.");
    h->http10 = v[7] == '0';
    if (h->method_len > 15)
        return refuse(h, 501, "method_not_implemented", "The request method is not implemented.");
    return LX_OK;
}

/* What the header fields said, beyond struct lx_reqhead. */
struct fields {
    int hosts, authorizations, api_keys, transfer_encodings;
    bool content_length, keep_alive;
};

/* One field line [line, line+len). Appends it to canon unless it is a framing field or a dropped Host. */
static int parse_field(struct lx_reqhead *h, struct fields *f, const char *line, size_t len, bool drop_host,
                       struct lx_buf *canon)
{
    if (is_ows((unsigned char)line[0]))
        return refuse(h, 400, "invalid_header",
                      "A header line starts with whitespace (obs-fold line folding is not accepted).");
    size_t n = 0;
    while (n < len && is_tchar((unsigned char)line[n]))
        n++;
    if (n == 0 && line[0] == ':')
        return refuse(h, 400, "invalid_header", "A header line has an empty name.");
    if (n == len || line[n] != ':')
        return refuse(h, 400, "invalid_header", "Header name %.*s is followed by something other than a colon.",
                      (int)(n < 64 ? n : 64), line);
    const char *v = line + n + 1, *end = line + len;
    while (v < end && is_ows((unsigned char)*v))
        v++;
    while (end > v && is_ows((unsigned char)end[-1]))
        end--;
    for (const char *p = v; p < end; p++)
        if (!is_field_char((unsigned char)*p))
            return refuse(h, 400, "invalid_header", "Header %.*s holds a control character.", (int)(n < 64 ? n : 64),
                          line);
    size_t vlen = (size_t)(end - v);
    bool keep = true;
    if (name_is(line, n, "Host")) {
        if (++f->hosts > 1)
            return refuse(h, 400, "duplicate_header", "The request has more than one Host header.");
        if (!valid_host(v, vlen))
            return refuse(h, 400, "invalid_header", "The Host header is not a host[:port].");
        keep = !drop_host;
    } else if (name_is(line, n, "Content-Length")) {
        if (parse_content_length(h, v, vlen, &f->content_length) != LX_OK)
            return LX_ERR;
        keep = false;
    } else if (name_is(line, n, "Transfer-Encoding")) {
        if (++f->transfer_encodings > 1)
            return refuse(h, 400, "invalid_transfer_encoding", "The request has more than one Transfer-Encoding header.");
        if (h->http10)
            return refuse(h, 400, "invalid_transfer_encoding", "HTTP/1.0 requests cannot use Transfer-Encoding.");
        if (parse_transfer_encoding(h, v, vlen) != LX_OK)
            return LX_ERR;
        keep = false;
    } else if (name_is(line, n, "Authorization")) {
        if (++f->authorizations > 1)
            return refuse(h, 400, "duplicate_header", "The request has more than one Authorization header.");
    } else if (name_is(line, n, "x-api-key")) {
        if (++f->api_keys > 1)
            return refuse(h, 400, "duplicate_header", "The request has more than one x-api-key header.");
    } else if (name_is(line, n, "Connection")) {
        /* Only what it says about persistence matters, and lx_reqhead_finish writes that back. */
        h->close |= has_token(v, vlen, "close");
        f->keep_alive |= has_token(v, vlen, "keep-alive");
        keep = false;
    } else if (name_is(line, n, "Cookie")) {
        /* llmux uses no cookies, and MHD would keep a record of each in its connection pool. */
        keep = false;
    } else if (name_is(line, n, "Expect")) {
        /* The front answers 100-continue itself; MHD must not. */
        h->expect_continue |= name_is(v, vlen, "100-continue");
        keep = false;
    }
    if (keep && canon) {
        lx_buf_append(canon, line, n);
        lx_buf_append(canon, ": ", 2);
        lx_buf_append(canon, v, vlen);
        lx_buf_append(canon, "\r\n", 2);
    }
    return LX_OK;
}

static int too_large(struct lx_reqhead *h, bool in_request_line, size_t max)
{
    if (in_request_line)
        return refuse(h, 414, "request_uri_too_long",
                      "The request line is longer than the limit of %zu bytes (limits.max_header_bytes).", max);
    return refuse(h, 431, "request_header_too_large",
                  "The request line and headers are larger than the limit of %zu bytes (limits.max_header_bytes).", max);
}

static int parse_head(const char *buf, size_t n, size_t max, struct lx_reqhead *h, struct lx_buf *canon)
{
    size_t limit = n < max ? n : max;
    size_t pos = lx_reqhead_skip_empty(buf, limit), eol = 0;
    int found = find_eol(buf, limit, pos, &eol);
    if (found < 0)
        return refuse(h, 400, "invalid_request_line", "The request line holds a bare CR or LF.");
    if (found == 0)
        return n >= max ? too_large(h, true, max) : LX_AGAIN;
    if (parse_request_line(h, buf + pos, eol - pos) != LX_OK)
        return LX_ERR;
    const char *path = NULL, *authority = NULL;
    size_t path_len = 0, auth_len = 0;
    bool slash = false;
    if (check_target(h, &path, &path_len, &slash, &authority, &auth_len) != LX_OK)
        return LX_ERR;
    if (canon) {
        lx_buf_append(canon, h->method, h->method_len);
        lx_buf_append(canon, " ", 1);
        if (slash)
            lx_buf_append(canon, "/", 1);
        lx_buf_append(canon, path, path_len);
        lx_buf_puts(canon, h->http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
        if (authority) {
            /* RFC 9112 section 3.2.2: the target's authority replaces any Host the client sent. */
            lx_buf_puts(canon, "Host: ");
            lx_buf_append(canon, authority, auth_len);
            lx_buf_append(canon, "\r\n", 2);
        }
    }
    struct fields f = {0};
    int fields = 0;
    for (pos = eol + 2;; pos = eol + 2) {
        found = find_eol(buf, limit, pos, &eol);
        if (found < 0)
            return refuse(h, 400, "invalid_header", "A header line holds a bare CR or LF.");
        if (found == 0)
            return n >= max ? too_large(h, false, max) : LX_AGAIN;
        if (eol == pos)
            break;
        if (++fields > LX_REQHEAD_MAX_FIELDS)
            return refuse(h, 431, "request_header_too_large", "The request has more than %d header fields.",
                          LX_REQHEAD_MAX_FIELDS);
        /* A field is whole once the next line shows it is not folded onto (obs-fold). */
        if (eol + 2 >= limit)
            return n >= max ? too_large(h, false, max) : LX_AGAIN;
        if (is_ows((unsigned char)buf[eol + 2]))
            return refuse(h, 400, "invalid_header", "A header line is folded onto the next (obs-fold is not accepted).");
        if (parse_field(h, &f, buf + pos, eol - pos, authority != NULL, canon) != LX_OK)
            return LX_ERR;
    }
    h->len = pos + 2;
    if (!h->http10 && f.hosts == 0)
        return refuse(h, 400, "missing_host", "HTTP/1.1 requests must carry a Host header.");
    if (f.transfer_encodings) {
        h->body = LX_BODY_CHUNKED;
        /* Framed by Transfer-Encoding; a Content-Length beside it means a sender we cannot trust to
         * agree with us about where the next request starts. */
        h->close |= f.content_length;
        h->content_length = 0;
    } else if (f.content_length) {
        h->body = LX_BODY_LENGTH;
    }
    h->close |= h->http10 && !f.keep_alive;
    return LX_OK;
}

int lx_reqhead_parse(const char *buf, size_t n, size_t max, struct lx_reqhead *h, struct lx_buf *canon)
{
    *h = (struct lx_reqhead){0};
    size_t mark = canon ? canon->len : 0;
    int rc = parse_head(buf, n, max, h, canon);
    if (rc != LX_OK && canon && canon->data) {
        canon->len = mark;
        canon->data[mark] = '\0';
    }
    return rc;
}

void lx_reqhead_finish(struct lx_buf *canon, const struct lx_reqhead *h, uint64_t body_len)
{
    if (h->body != LX_BODY_NONE)
        lx_buf_printf(canon, "Content-Length: %llu\r\n", (unsigned long long)body_len);
    if (h->close)
        lx_buf_puts(canon, "Connection: close\r\n");
    else if (h->http10)
        lx_buf_puts(canon, "Connection: keep-alive\r\n");
    lx_buf_append(canon, "\r\n", 2);
}

/* --- chunked bodies --- */

enum {
    CH_SIZE,      /* hex digits of a chunk size */
    CH_EXT_BWS,   /* whitespace after the size: a ';' must follow */
    CH_EXT,       /* a chunk extension, skipped up to the CR */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,   /* the start of a trailer line, or the CR of the empty line that ends the body */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF,
    CH_DONE,
};

#define LX_CHUNK_LINE_MAX 4096 /* a size line with its extensions */

static int chunk_refuse(struct lx_chunked *c, int status, const char *code, const char *message)
{
    c->status = status;
    c->code = code;
    c->message = message;
    return LX_ERR;
}

static int bad_chunk(struct lx_chunked *c, const char *message)
{
    return chunk_refuse(c, 400, "invalid_chunked_body", message);
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int lx_chunked_feed(struct lx_chunked *c, const char *p, size_t n, size_t *used, struct lx_buf *out,
                    uint64_t max_body, size_t max_trailer)
{
    size_t i = 0;
    *used = 0;
    if (c->state == CH_DONE)
        return LX_OK;
    while (i < n) {
        unsigned char ch = (unsigned char)p[i];
        if (c->state == CH_DATA) {
            size_t take = n - i;
            if ((uint64_t)take > c->left)
                take = (size_t)c->left;
            if (out)
                lx_buf_append(out, p + i, take);
            c->left -= take;
            i += take;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        i++;
        if (c->state <= CH_EXT && ++c->line > LX_CHUNK_LINE_MAX)
            return bad_chunk(c, "A chunk size line is too long.");
        if (c->state >= CH_TRAILER && ++c->trailer_bytes > max_trailer)
            return chunk_refuse(c, 431, "request_header_too_large", "The chunked body's trailer section is too large.");
        switch (c->state) {
        case CH_SIZE:
            if (hexval(ch) >= 0) {
                if (++c->size_digits > 16)
                    return bad_chunk(c, "A chunk size is too large.");
                c->left = c->left << 4 | (uint64_t)hexval(ch);
                break;
            }
            if (c->size_digits == 0)
                return bad_chunk(c, "A chunk size must be hexadecimal digits.");
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == ';')
                c->state = CH_EXT;
            else if (is_ows(ch))
                c->state = CH_EXT_BWS;
            else
                return bad_chunk(c, "A chunk size must be hexadecimal digits.");
            break;
        case CH_EXT_BWS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (!is_ows(ch))
                return bad_chunk(c, "Only a chunk extension may follow a chunk size.");
            break;
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_field_char(ch))
                return bad_chunk(c, "A chunk extension holds a control character.");
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return bad_chunk(c, "A chunk size line must end with CRLF.");
            if (c->left > max_body - c->total) /* total never passes max_body */
                return chunk_refuse(c, 413, "request_too_large", "The chunked body is larger than the limit (limits.max_body_bytes).");
            c->total += c->left;
            c->line = 0;
            c->size_digits = 0;
            c->state = c->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA_CR:
            if (ch != '\r')
                return bad_chunk(c, "Chunk data must be followed by CRLF.");
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return bad_chunk(c, "Chunk data must be followed by CRLF.");
            c->state = CH_SIZE;
            break;
        case CH_TRAILER:
            if (ch == '\r')
                c->state = CH_END_LF;
            else if (is_tchar(ch))
                c->state = CH_TR_NAME;
            else
                return bad_chunk(c, "A trailer line must be NAME: VALUE.");
            break;
        case CH_TR_NAME:
            if (ch == ':')
                c->state = CH_TR_VALUE;
            else if (!is_tchar(ch))
                return bad_chunk(c, "A trailer line must be NAME: VALUE.");
            break;
        case CH_TR_VALUE:
            if (ch == '\r')
                c->state = CH_TR_LF;
            else if (!is_field_char(ch))
                return bad_chunk(c, "A trailer field holds a control character.");
            break;
        case CH_TR_LF:
            if (ch != '\n')
                return bad_chunk(c, "A trailer line must end with CRLF.");
            c->state = CH_TRAILER;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return bad_chunk(c, "A chunked body must end with CRLF.");
            c->state = CH_DONE;
            *used = i;
            return LX_OK;
        }
    }
    *used = i;
    return LX_AGAIN;
}
