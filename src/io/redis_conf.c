/* The "redis" configuration section and its URL: redis://[[user]:password@]host[:port][/db] and
 * unix:/path[?db=N]. A password never reaches a message or a log line. */
#include "redis.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lx_redis_target_free(struct lx_redis_target *t)
{
    free(t->host);
    free(t->path);
    free(t->user);
    free(t->password);
    memset(t, 0, sizeof *t);
}

void lx_redis_conf_free(struct lx_redis_conf *c)
{
    free(c->url);
    free(c->prefix);
    lx_redis_target_free(&c->target);
    memset(c, 0, sizeof *c);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decoding of a URL part; NULL when an escape is malformed or decodes to NUL. */
static char *decode(const char *s, size_t n)
{
    char *out = lx_malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = hi >= 0 ? hexval(s[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi << 4 | lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

static bool parse_number(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int url_err(struct lx_redis_target *t, char *err, size_t errlen, const char *msg)
{
    lx_redis_target_free(t);
    snprintf(err, errlen, "%s", msg);
    return LX_ERR;
}

static int parse_unix(const char *rest, struct lx_redis_target *t, char *err, size_t errlen)
{
    if (strncmp(rest, "//", 2) == 0)
        rest += 2; /* unix:///path */
    if (rest[0] != '/')
        return url_err(t, err, errlen, "expected unix:/absolute/path/to/redis.sock");
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t)(q - rest) : strlen(rest);
    if (plen < 2)
        return url_err(t, err, errlen, "expected unix:/absolute/path/to/redis.sock");
    t->path = lx_strndup(rest, plen);
    if (q) {
        if (strncmp(q, "?db=", 4) != 0 || !parse_number(q + 4, strlen(q + 4), 0, 100000, &t->db))
            return url_err(t, err, errlen, "the only query a unix: URL takes is ?db=N (a database number)");
    }
    return LX_OK;
}

int lx_redis_parse_url(const char *url, struct lx_redis_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (strncmp(url, "unix:", 5) == 0)
        return parse_unix(url + 5, t, err, errlen);
    if (strncmp(url, "rediss://", 9) == 0)
        return url_err(t, err, errlen,
                       "rediss:// (TLS) is not available with Debian 12's hiredis 0.14; reach Redis over a "
                       "private network, a unix socket, or a local TLS tunnel (stunnel) at redis://127.0.0.1");
    if (strncmp(url, "redis://", 8) != 0)
        return url_err(t, err, errlen, "expected redis://host:port/db or unix:/path/to/redis.sock");
    const char *p = url + 8;
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    /* userinfo: the last '@' before the path (a password may hold '@' only percent-encoded, but be kind) */
    const char *at = NULL;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return url_err(t, err, errlen, "a user name in the URL needs a password: redis://user:password@host");
        if (colon > p && !(t->user = decode(p, (size_t)(colon - p))))
            return url_err(t, err, errlen, "a malformed %-escape in the URL's user name");
        if (!(t->password = decode(colon + 1, (size_t)(at - colon - 1))))
            return url_err(t, err, errlen, "a malformed %-escape in the URL's password");
        if (!*t->password)
            return url_err(t, err, errlen, "an empty password in the URL");
        p = at + 1;
    }
    const char *host_end, *port_at = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || close == p + 1)
            return url_err(t, err, errlen, "an IPv6 address goes in brackets: redis://[::1]:6379/0");
        t->host = lx_strndup(p + 1, (size_t)(close - p - 1));
        host_end = close + 1;
        if (host_end < end && *host_end != ':')
            return url_err(t, err, errlen, "expected ':port' after the bracketed address");
        if (host_end < end)
            port_at = host_end + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon ? colon : end;
        if (host_end == p)
            return url_err(t, err, errlen, "the URL has no host: redis://host:6379/0");
        t->host = lx_strndup(p, (size_t)(host_end - p));
        if (colon)
            port_at = colon + 1;
    }
    for (const char *s = t->host; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".-_:", *s))
            return url_err(t, err, errlen, "the host may hold letters, digits, '.', '-', '_' (or an IPv6 address)");
    long port = 6379;
    if (port_at && !parse_number(port_at, (size_t)(end - port_at), 1, 65535, &port))
        return url_err(t, err, errlen, "the port must be a number from 1 to 65535");
    t->port = (int)port;
    if (slash && slash[1] && !parse_number(slash + 1, strlen(slash + 1), 0, 100000, &t->db))
        return url_err(t, err, errlen, "the path is the database number: redis://host:6379/0");
    return LX_OK;
}

char *lx_redis_url_redacted(const struct lx_redis_conf *c)
{
    const struct lx_redis_target *t = &c->target;
    if (t->path)
        return t->db ? lx_sprintf("unix:%s?db=%ld", t->path, t->db) : lx_sprintf("unix:%s", t->path);
    bool v6 = t->host && strchr(t->host, ':');
    return lx_sprintf("redis://%s%s%s%s%s%s:%d/%ld", t->user ? t->user : "", t->password ? ":***@" : "",
                      v6 ? "[" : "", t->host ? t->host : "", v6 ? "]" : "", "", t->port, t->db);
}

static int conf_str(json_t *obj, const char *key, bool nullable, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || (nullable && json_is_null(v)))
        return LX_OK;
    if (!json_is_string(v) || json_string_length(v) == 0) {
        snprintf(err, errlen, "redis.%s: expected a non-empty string", key);
        return LX_ERR;
    }
    *out = json_string_value(v);
    return LX_OK;
}

int lx_redis_conf_parse(json_t *root, struct lx_redis_conf *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"url",          "password", "prefix",   "timeout_ms", "connect_timeout_ms",
                                       "reconnect_max_ms", "lease_ms", "fail_mode", NULL};
    memset(out, 0, sizeof *out);
    json_t *o = json_object_get(root, "redis");
    if (!o || json_is_null(o))
        return LX_OK;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "redis: expected an object such as {\"url\": \"redis://127.0.0.1:6379/0\"}, or null");
        return LX_ERR;
    }
    if (lx_conf_unknown_keys(o, keys, "redis", err, errlen) != LX_OK)
        return LX_ERR;
    const char *url, *password, *prefix, *mode;
    if (conf_str(o, "url", false, &url, err, errlen) != LX_OK || conf_str(o, "password", true, &password, err, errlen) != LX_OK ||
        conf_str(o, "prefix", false, &prefix, err, errlen) != LX_OK ||
        conf_str(o, "fail_mode", false, &mode, err, errlen) != LX_OK)
        return LX_ERR;
    if (!url) {
        snprintf(err, errlen, "redis.url: required, e.g. \"redis://127.0.0.1:6379/0\" or \"unix:/run/redis/redis.sock\"");
        return LX_ERR;
    }
    char why[256];
    if (lx_redis_parse_url(url, &out->target, why, sizeof why) != LX_OK) {
        snprintf(err, errlen, "redis.url: %s", why);
        return LX_ERR;
    }
    out->url = lx_strdup(url);
    if (password) {
        free(out->target.password);
        out->target.password = lx_strdup(password);
    }
    if (prefix) {
        for (const char *s = prefix; *s; s++)
            if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f) {
                snprintf(err, errlen, "redis.prefix: expected printable characters without spaces");
                goto fail;
            }
        if (strlen(prefix) > 64) {
            snprintf(err, errlen, "redis.prefix: at most 64 characters");
            goto fail;
        }
    }
    out->prefix = lx_strdup(prefix ? prefix : "llmux:");
    out->timeout_ms = 50;
    out->connect_timeout_ms = 1000;
    out->reconnect_max_ms = 2000;
    out->lease_ms = 15000;
    if (lx_conf_long(o, "timeout_ms", "redis", 1, 60000, &out->timeout_ms, err, errlen) != LX_OK ||
        lx_conf_long(o, "connect_timeout_ms", "redis", 10, 600000, &out->connect_timeout_ms, err, errlen) != LX_OK ||
        lx_conf_long(o, "reconnect_max_ms", "redis", 100, 600000, &out->reconnect_max_ms, err, errlen) != LX_OK ||
        lx_conf_long(o, "lease_ms", "redis", 300, 3600000, &out->lease_ms, err, errlen) != LX_OK)
        goto fail;
    if (mode && strcmp(mode, "open") != 0 && strcmp(mode, "closed") != 0) {
        snprintf(err, errlen, "redis.fail_mode: expected \"open\" (fall back to this replica's own counters) or "
                              "\"closed\" (refuse with 503)");
        goto fail;
    }
    out->fail_closed = mode && strcmp(mode, "closed") == 0;
    return LX_OK;
fail:
    lx_redis_conf_free(out);
    return LX_ERR;
}

const char *const lx_redis_conf_keys[] = {"redis", NULL};

int lx_redis_conf_section_parse(struct lx_config *c, json_t *root, char *err, size_t errlen)
{
    c->redis = lx_calloc(1, sizeof *c->redis);
    return lx_redis_conf_parse(root, c->redis, err, errlen);
}

void lx_redis_conf_section_free(struct lx_config *c)
{
    if (!c->redis)
        return;
    lx_redis_conf_free(c->redis);
    free(c->redis);
    c->redis = NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool lx_redis_conf_same(const struct lx_redis_conf *a, const struct lx_redis_conf *b)
{
    const struct lx_redis_target *x = &a->target, *y = &b->target;
    return same_str(a->url, b->url) && same_str(a->prefix, b->prefix) && same_str(x->password, y->password) &&
           a->timeout_ms == b->timeout_ms && a->connect_timeout_ms == b->connect_timeout_ms &&
           a->reconnect_max_ms == b->reconnect_max_ms && a->lease_ms == b->lease_ms &&
           a->fail_closed == b->fail_closed;
}
