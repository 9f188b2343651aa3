/* A Redis client on the server's own loop (h2o's include/h2o/redis.h is the model): one connection with a
 * state, commands pipelined on it, each with its own deadline and one callback, and reconnect with
 * backoff. Built on hiredis 0.14's asynchronous API and its libevent adapter, which have neither command
 * timeouts nor reconnect: both are loop timers here. In src/io/: the only files that include hiredis/
 * are this module's (redis.c and the config section's redis_conf.c needs none).
 *
 * Threads: everything here is called on the loop thread. Callbacks run from the loop (from hiredis's read
 * handler, a timer, or a zero-delay timer), never from inside lx_redis_command. */
#ifndef LX_REDIS_H
#define LX_REDIS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The connection's life. DOWN → (RESOLVING →) CONNECTING → HANDSHAKE → READY, and from any of them back
 * to DOWN when the connection fails or times out (then a timer starts the next attempt); CLOSED once
 * lx_redis_free began. Only READY sends the caller's commands. */
enum lx_redis_state {
    LX_REDIS_DOWN,       /* not connected; the next attempt is scheduled */
    LX_REDIS_RESOLVING,  /* looking the host name up (evdns, on the loop) */
    LX_REDIS_CONNECTING, /* TCP or unix connect in progress */
    LX_REDIS_HANDSHAKE,  /* AUTH, SELECT and the owner's handshake commands in flight */
    LX_REDIS_READY,      /* commands flow */
    LX_REDIS_CLOSED,     /* being freed */
    LX_REDIS_STATE_COUNT
};
const char *lx_redis_state_name(enum lx_redis_state s);

/* How a command ended. */
enum lx_redis_status {
    LX_REDIS_OK,       /* answered; the reply may still be nil or an array of anything */
    LX_REDIS_EREPLY,   /* Redis answered with an error reply (the reply holds its text) */
    LX_REDIS_ETIMEOUT, /* no answer within the command's timeout (Redis may still run it) */
    LX_REDIS_ECONN,    /* the connection was lost with the command sent (Redis may or may not have run it) */
    LX_REDIS_EDOWN,    /* not connected: the command was not sent */
    LX_REDIS_STATUS_COUNT
};
const char *lx_redis_status_name(enum lx_redis_status s);

/* Where and how to connect, parsed from the "redis" section (lx_redis_conf_parse). */
struct lx_redis_target {
    char *host;     /* owned: TCP host name or address, or NULL for a unix socket */
    int port;
    char *path;     /* owned: unix socket path, or NULL */
    long db;        /* SELECTed after connecting when not 0 */
    char *user;     /* owned: ACL user name for AUTH, or NULL */
    char *password; /* owned: secret, never logged; NULL = no AUTH */
};

/* The "redis" configuration section. */
struct lx_redis_conf {
    char *url;                  /* owned: as configured (a password in it is never logged) */
    struct lx_redis_target target;
    char *prefix;               /* owned: every key llmux writes starts with it (default "llmux:") */
    long timeout_ms;            /* one command's budget on the request path (default 50) */
    long connect_timeout_ms;    /* connect + handshake budget; also how long a connection may answer
                                   nothing while commands wait before it is dropped (default 1000) */
    long reconnect_max_ms;      /* backoff ceiling between attempts (default 2000) */
    long lease_ms;              /* how long a replica's in-flight counts outlive its last heartbeat
                                   (default 15000) */
    bool fail_closed;           /* limits when Redis cannot answer: false = fall back to this replica's
                                   own counters (fail open, the default), true = refuse with 503 */
};

/* Parse root's "redis" object into *out (zeroed first). Absent or null: LX_OK with out->url NULL (Redis
 * off). LX_ERR with "redis.key: reason" in err. */
int lx_redis_conf_parse(json_t *root, struct lx_redis_conf *out, char *err, size_t errlen);
/* The same as a section of the configuration (src/config.c's table): c->redis, always allocated. */
extern const char *const lx_redis_conf_keys[];
struct lx_config;
int lx_redis_conf_section_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_redis_conf_section_free(struct lx_config *c);
/* Do two sections name the same Redis with the same settings? (A reload that changes them waits for a
 * restart.) */
bool lx_redis_conf_same(const struct lx_redis_conf *a, const struct lx_redis_conf *b);
/* Split a URL: redis://[[user]:password@]host[:port][/db], redis://[v6addr]:port/db, unix:/path,
 * unix:///path, each unix form optionally with ?db=N. LX_ERR with the reason (never the password) in err. */
int lx_redis_parse_url(const char *url, struct lx_redis_target *out, char *err, size_t errlen);
void lx_redis_target_free(struct lx_redis_target *t);
void lx_redis_conf_free(struct lx_redis_conf *c);
/* The URL with any password replaced by "***", for logs and /v1/providers (caller frees). */
char *lx_redis_url_redacted(const struct lx_redis_conf *c);

/* A reply, seen through accessors so that callers outside this module never include hiredis. Valid only
 * during the callback it was passed to. */
struct lx_redis_reply;
enum lx_redis_reply_type {
    LX_REDIS_REPLY_STRING,
    LX_REDIS_REPLY_ARRAY,
    LX_REDIS_REPLY_INTEGER,
    LX_REDIS_REPLY_NIL,
    LX_REDIS_REPLY_STATUS,
    LX_REDIS_REPLY_ERROR,
};
enum lx_redis_reply_type lx_redis_reply_type(const struct lx_redis_reply *r);
long long lx_redis_reply_integer(const struct lx_redis_reply *r);
/* String, status and error replies: the bytes (NUL-terminated) and their length; NULL for other types. */
const char *lx_redis_reply_str(const struct lx_redis_reply *r, size_t *len);
/* Arrays: the number of elements, and one of them (NULL past the end or for other types). */
size_t lx_redis_reply_count(const struct lx_redis_reply *r);
const struct lx_redis_reply *lx_redis_reply_at(const struct lx_redis_reply *r, size_t i);
/* An integer reply, or a string holding an integer (what Lua returns as text): *out, true. */
bool lx_redis_reply_long(const struct lx_redis_reply *r, long long *out);

struct lx_redis;
struct lx_redis_cmd; /* a command in flight: valid until its callback ran or it was cancelled */

/* st says how the command ended; reply is set for OK and EREPLY. */
typedef void (*lx_redis_cb)(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply);

/* A client for conf->target; it connects at once and keeps reconnecting until freed. conf is copied. */
struct lx_redis *lx_redis_new(const struct lx_redis_conf *conf);
/* Close the connection. Callbacks of commands still in flight are not called. Not from a callback of r. */
void lx_redis_free(struct lx_redis *r);

/* Send one command (argv[i] of argvlen[i] bytes; argvlen NULL: NUL-terminated strings), pipelined behind
 * the ones already sent. op names it for the latency histogram and must be a static string from a small
 * fixed set. timeout_ms 0 means the configured timeout_ms. cb may be NULL (nobody waits for the answer;
 * errors are still counted). Returns a handle for lx_redis_cancel, or NULL when cb is NULL. When r is not
 * READY the command is not sent: cb gets LX_REDIS_EDOWN on a later loop turn. */
struct lx_redis_cmd *lx_redis_command(struct lx_redis *r, const char *op, long timeout_ms, lx_redis_cb cb, void *arg,
                                      int argc, const char **argv, const size_t *argvlen);
/* The waiter is gone: cb will not be called. The command itself still runs or times out. */
void lx_redis_cancel(struct lx_redis_cmd *c);

/* The owner's part of every connection's handshake: fn runs each time a connection is being set up
 * (after AUTH and SELECT were queued) and sends its commands with lx_redis_handshake_command. The client
 * becomes READY once every handshake command succeeded; an error reply or a timeout drops the connection
 * and the next attempt follows the backoff. */
void lx_redis_set_handshake(struct lx_redis *r, void (*fn)(void *arg, struct lx_redis *r), void *arg);
/* Only from the handshake function. Timeout: connect_timeout_ms. cb (optional) sees the answer. */
void lx_redis_handshake_command(struct lx_redis *r, const char *op, lx_redis_cb cb, void *arg, int argc,
                                const char **argv, const size_t *argvlen);
/* A Redis function library (Lua source code, name for logs; both static) this client keeps loaded: FUNCTION
 * LOAD REPLACE is the first of the owner's handshake commands on every connection, and when a reply says
 * "Function not found" (someone flushed the functions) it is loaded again for the commands that follow.
 * Call before the first connection is made (right after lx_redis_new). */
void lx_redis_keep_library(struct lx_redis *r, const char *name, const char *code);
/* Called on every change of state (for logs, gauges and the owner's fail-over logic). */
void lx_redis_on_state(struct lx_redis *r, void (*fn)(void *arg, enum lx_redis_state s), void *arg);

enum lx_redis_state lx_redis_state(const struct lx_redis *r);
bool lx_redis_ready(const struct lx_redis *r);
const struct lx_redis_conf *lx_redis_conf(const struct lx_redis *r);

/* ---- for /metrics and /v1/providers ---- */

/* Upper bounds, in seconds, of the command latency histogram's buckets. */
extern const double lx_redis_latency_buckets[];
#define LX_REDIS_LATENCY_BUCKETS 14

/* One op's latency: from sending to the answer (timed-out commands count when their answer comes, so the
 * tail shows how slow Redis really was). */
struct lx_redis_latency {
    const char *op; /* borrowed: the static string commands were sent with */
    unsigned long long count;
    double sum_s;
    unsigned long long buckets[LX_REDIS_LATENCY_BUCKETS]; /* cumulative, like Prometheus's le buckets */
};

struct lx_redis_stats {
    enum lx_redis_state state;
    unsigned long long connects;        /* connections that reached READY */
    unsigned long long errors[LX_REDIS_STATUS_COUNT]; /* commands by how they failed ([LX_REDIS_OK] = 0) */
    unsigned long long handshake_failures;
    uint64_t state_since_ms;            /* lx_now_ms of the last change of state */
    const char *last_error;             /* borrowed until the next call into r; NULL when none yet */
    size_t pending;                     /* commands sent and not answered yet */
};
void lx_redis_stats(const struct lx_redis *r, struct lx_redis_stats *out);
/* The latency series, one per op seen so far; *n of them, borrowed until the next command. */
const struct lx_redis_latency *lx_redis_latencies(const struct lx_redis *r, size_t *n);

#endif
