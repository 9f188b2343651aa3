/* The server's section of the configuration: the listen addresses, the client-side limits, and the drain
 * at shutdown. Parsed from "listen", "admin_listen", "shutdown_timeout_ms" and the client keys of
 * "limits" (src/config.c calls the parser; the engine reads limits.max_upstream_body_bytes itself). */
#ifndef LX_SERVER_CONF_H
#define LX_SERVER_CONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct lx_config;

/* Client-side limits (the "limits" object); 0 means "no limit" where noted. */
struct lx_limits {
    size_t max_body_bytes;
    long max_connections;       /* open client connections on the main address */
    long max_header_bytes;      /* request line and headers together */
    long read_timeout_ms;       /* to receive one whole request; 0 = none */
    long max_inflight_per_key;  /* 0 = unlimited */
    long max_request_ms;        /* a whole request, streaming included; 0 = none */
};

struct lx_server_conf {
    char *listen;               /* owned: "HOST:PORT" */
    char *admin_listen;         /* owned: "HOST:PORT" for /healthz and /metrics, or NULL */
    bool listen_explicit;       /* listen came from --listen, not the file */
    struct lx_limits limits;
    long shutdown_timeout_ms;   /* drain budget on SIGTERM */
};

/* The keys this section reads (see src/config.c's table). */
extern const char *const lx_server_conf_keys[];
/* Fill c->server from root. LX_ERR with "key.path: reason" in err. */
int lx_server_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_server_conf_free(struct lx_config *c);

/* Split "HOST:PORT" / "[V6]:PORT" (port 0..65535). host is owned by the caller. */
int lx_parse_listen(const char *s, char **host, int *port);

#endif
