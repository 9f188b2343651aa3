/* Parsing the server's section: listen addresses, client limits, the shutdown drain. */
#include "../core/conf.h"
#include "conf.h"
#include "../core/common.h"
#include "../core/confread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LX_DEFAULT_MAX_BODY (4u * 1024 * 1024)

const char *const lx_server_conf_keys[] = {
    "listen", "admin_listen", "shutdown_timeout_ms", "limits.max_body_bytes", "limits.max_connections",
    "limits.max_header_bytes", "limits.read_timeout_ms", "limits.max_inflight_per_key", "limits.max_request_ms",
    NULL,
};

int lx_parse_listen(const char *s, char **host, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return LX_ERR;
        h = s + 1;
        hlen = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return LX_ERR;
        hlen = (size_t)(colon - s);
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return LX_ERR;
    *host = hlen ? lx_strndup(h, hlen) : lx_strdup("0.0.0.0");
    *port = (int)p;
    return LX_OK;
}

static int parse_limits(struct lx_limits *l, json_t *root, char *err, size_t errlen)
{
    json_t *limits;
    if (lx_conf_object(root, "limits", "", &limits, err, errlen) != LX_OK)
        return LX_ERR;
    if (!limits)
        return LX_OK;
    long mb = (long)l->max_body_bytes;
    if (lx_conf_long(limits, "max_body_bytes", "limits", 1, 1L << 30, &mb, err, errlen) != LX_OK ||
        lx_conf_long(limits, "max_connections", "limits", 1, 1000000, &l->max_connections, err, errlen) != LX_OK ||
        lx_conf_long(limits, "max_header_bytes", "limits", 1024, 1L << 20, &l->max_header_bytes, err, errlen) !=
            LX_OK ||
        lx_conf_long(limits, "read_timeout_ms", "limits", 0, 3600000, &l->read_timeout_ms, err, errlen) != LX_OK ||
        lx_conf_long(limits, "max_inflight_per_key", "limits", 0, 1000000, &l->max_inflight_per_key, err, errlen) !=
            LX_OK ||
        lx_conf_long(limits, "max_request_ms", "limits", 0, 86400000, &l->max_request_ms, err, errlen) != LX_OK)
        return LX_ERR;
    l->max_body_bytes = (size_t)mb;
    return LX_OK;
}

/* A "HOST:PORT" key; example is what the message suggests. */
static int parse_address(json_t *root, const char *key, char **out, const char *example, char *err, size_t errlen)
{
    if (lx_conf_string(root, key, "", out, err, errlen) != LX_OK)
        return LX_ERR;
    char *host;
    int port;
    if (*out && lx_parse_listen(*out, &host, &port) != LX_OK) {
        lx_conf_err(err, errlen, "%s: expected HOST:PORT, for example %s", key, example);
        return LX_ERR;
    }
    if (*out)
        free(host);
    return LX_OK;
}

int lx_server_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen)
{
    struct lx_server_conf *s = c->server = lx_calloc(1, sizeof *s);
    s->listen = lx_strdup("127.0.0.1:8080");
    s->limits = (struct lx_limits){.max_body_bytes = LX_DEFAULT_MAX_BODY, .max_connections = 10000,
                                   .max_header_bytes = 32768, .read_timeout_ms = 30000};
    s->shutdown_timeout_ms = 10000;
    if (parse_address(root, "listen", &s->listen, "127.0.0.1:8080", err, errlen) != LX_OK ||
        parse_limits(&s->limits, root, err, errlen) != LX_OK ||
        parse_address(root, "admin_listen", &s->admin_listen, "127.0.0.1:9090", err, errlen) != LX_OK ||
        lx_conf_long(root, "shutdown_timeout_ms", "", 0, 3600000, &s->shutdown_timeout_ms, err, errlen) != LX_OK)
        return LX_ERR;
    return LX_OK;
}

void lx_server_conf_free(struct lx_config *c)
{
    struct lx_server_conf *s = c->server;
    if (!s)
        return;
    free(s->listen);
    free(s->admin_listen);
    free(s);
    c->server = NULL;
}
