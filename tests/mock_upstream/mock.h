/* mock.h: what the mock upstream's files share: the connection model the HTTP core (mock_upstream.c) drives,
 * the directive script every model endpoint reads (call.c), small helpers (util.c), and each dialect's
 * entry points (openai.c, anthropic.c, ollama.c). */
#ifndef MOCK_UPSTREAM_MOCK_H
#define MOCK_UPSTREAM_MOCK_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#define MAX_BODY_BYTES (64 * 1024 * 1024)
#define MAX_DIRECTIVE_MS (24L * 3600 * 1000)
#define SPLIT_PACE_MS 1
#define EMBED_DIMS 4
#define MAX_TOOL_CALLS 3 /* tool=N: that many calls at once, of the first N tools (the first again when fewer) */

/* ---- allocation and buffers (util.c): out of memory aborts ---- */

void oom(void);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
json_t *must(json_t *j); /* aborts on NULL: jansson's allocation failure or a bad pack format */
struct evbuffer *new_buf(void);
void buf_add(struct evbuffer *b, const void *data, size_t n);
void buf_move(struct evbuffer *dst, struct evbuffer *src);

struct strbuf {
    char *s; /* owned; always NUL-terminated once anything was added */
    size_t len, cap;
};

void sb_add(struct strbuf *b, const char *p, size_t n);
void sb_add_json(struct strbuf *b, json_t *str); /* a JSON string's bytes; anything else adds nothing */

long long now_ms(void);
json_t *json_string_lossy(const char *s);
char *dump_json(json_t *j, size_t flags); /* json_dumps that aborts on failure; caller frees */

/* ---- what model replies are made of (util.c) ---- */

long long count_words(const char *s, size_t n);
size_t *cut_utf8(const char *s, size_t len, size_t pieces, size_t *count);

enum reply_cut { REPLY_WHOLE, REPLY_STOP_SEQUENCE, REPLY_WORD_LIMIT };

/* Shortens a reply the way a model's stop conditions would: before the earliest of the stop strings (a JSON
 * string or array of strings, may be NULL), then to at most max_words words (< 0: no limit). Returns the kept
 * length; *matched gets the stop string that applied (borrowed from stops) or NULL. */
size_t reply_cut(const char *s, size_t n, json_t *stops, long long max_words, enum reply_cut *why,
                 const char **matched);

/* A small unit-length vector that depends only on the text's bytes, so equal inputs embed equally. Each
 * value is a float32 rounded to its shortest decimal form, as real servers print them. */
void embed_vector(const char *s, size_t n, double out[EMBED_DIMS]);
/* The vector as JSON numbers; dump with EMBED_DUMP_FLAGS so they print short. */
json_t *embed_json(const double v[EMBED_DIMS]);
#define EMBED_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

char *base64_encode(const unsigned char *p, size_t n);
long base64_bad_byte(const char *s); /* offset of the first byte that makes s invalid base64, or -1 */
void rfc3339_now(char *out, size_t len); /* UTC wall clock with nanoseconds, as Go's RFC3339Nano prints */

/* ---- the connection model (mock_upstream.c) ---- */

enum conn_state {
    CONN_READING,   /* parsing a request */
    CONN_DELAYING,  /* request read, response held back by latency= or --models-delay */
    CONN_WRITING,   /* response going out piece by piece */
    CONN_STALLED,   /* deliberately silent until the peer leaves (stall_* faults) */
    CONN_RESETTING, /* partial headers flushed, RST follows after RESET_DELAY_MS */
    CONN_STATE_COUNT
};

enum parse_state { PARSE_HEAD, PARSE_BODY, PARSE_CHUNK_SIZE, PARSE_CHUNK_DATA, PARSE_CHUNK_CRLF, PARSE_TRAILER };

enum end_action { END_KEEP_ALIVE, END_CLOSE, END_RESET };
enum stop_action { STOP_CLOSE, STOP_STALL };
enum doom { DOOM_NONE, DOOM_CLOSE, DOOM_RESET, DOOM_LOST };

/* A streamed body made one event at a time, so interval= paces between events and the midstream faults
 * stop between them. Each dialect's stream struct starts with this. */
struct event_source;

struct event_source_ops {
    /* Appends event number `step` (0 <= step < count) to dst. */
    void (*emit)(struct event_source *src, size_t step, struct evbuffer *dst);
    /* Frees the source and everything it owns. */
    void (*free)(struct event_source *src);
};

struct event_source {
    const struct event_source_ops *ops; /* borrowed: a static table */
    size_t count;                       /* events in the whole stream */
    size_t step;                        /* the next event to emit */
};

int source_next(struct event_source *src, struct evbuffer *dst); /* 0 once every event was emitted */
void source_free(struct event_source *src);                       /* NULL is fine */

struct request {
    enum parse_state parse;
    char *method;   /* owned */
    char *target;   /* owned */
    int http_minor;
    int keep_alive;
    int chunked;
    int conn_close, conn_keep_alive, expect_continue;
    long long content_length;      /* -1 when absent */
    unsigned long long chunk_left;
    json_t *headers;               /* owned: lowercased name -> value, repeats joined with ", " */
    struct evbuffer *body;         /* owned */
};

struct response {
    struct evbuffer *head;     /* owned: status line and headers, or a fault's raw bytes */
    struct evbuffer *body;     /* owned: prebuilt body; NULL when it streams from gen */
    struct event_source *gen;  /* owned: streamed body; NULL for prebuilt bodies */
    int chunked;
    size_t split;              /* write the body in pieces of this many bytes; 0 = whole */
    long pace_ms;              /* delay between body pieces */
    long stop_after;           /* body pieces to write before `stop`; -1 = never */
    enum stop_action stop;
    enum end_action end;
    long pieces_sent;
    int body_done;             /* the last piece (and chunked terminator) has been queued */
    long delay_ms;             /* wait before the first byte */
    long retry_after_s;        /* > 0: the head carries "Retry-After: N" (retry_after=) */
};

struct conn {
    struct conn *prev, *next;
    struct bufferevent *bev; /* owned: closes the socket when freed */
    struct event *timer;     /* owned: latency, pacing and reset delays */
    enum conn_state state;
    enum doom doom;
    int chat_active;         /* a model call's response is in progress: counted in stats.active */
    struct request req;
    struct response resp;
};

struct server {
    struct event_base *base;          /* owned */
    struct evconnlistener *listener;  /* owned */
    struct event *accept_retry;       /* owned */
    struct event *sig_term, *sig_int; /* owned */
    const char *require_key;          /* borrowed from argv */
    long models_delay_ms;
    struct conn *conns;               /* every open connection, for shutdown */
    json_t *last_call;                /* owned: snapshot served by /debug/last */
    json_t *fail_counts;              /* owned: model string -> calls seen, for fail=N; reset by /debug/reset */
    unsigned long long next_id;
    struct {
        long long requests, active, aborted, last_abort_ms, connections_total, connections_open;
        long long max_active; /* the most model calls in progress at once since the last reset */
    } stats;
};

extern struct server srv;

/* Reply builders: each queues a whole response head (and body) on c->resp, which reply_prepare cleared.
 * length < 0 in put_head: the body streams (chunked, or close-delimited for HTTP/1.0). extra holds whole
 * header lines ("Name: value\r\n"), or NULL. */
void put_head(struct conn *c, int status, const char *ctype, long long length, const char *extra);
void reply_raw(struct conn *c, int status, const char *ctype, const char *body, int chunked);
void reply_json(struct conn *c, int status, json_t *obj /* stolen */, const char *extra);
void reply_json_as(struct conn *c, int status, const char *ctype, json_t *obj /* stolen */, size_t flags,
                   const char *extra);
/* The OpenAI error shape, also used for HTTP-level failures of every dialect. code may be NULL. */
void reply_error(struct conn *c, int status, const char *message, const char *type, const char *code);

/* ---- directives and the shared model-call flow (call.c) ---- */

enum fault {
    FAULT_NONE, FAULT_REFUSE, FAULT_RESET_HEADERS, FAULT_CLOSE_MIDSTREAM, FAULT_STALL_HEADERS,
    FAULT_STALL_MIDSTREAM, FAULT_GARBAGE, FAULT_HTTP_GARBAGE, FAULT_BIG, FAULT_HTML, FAULT_STREAM_ERROR,
    FAULT_MIDSTREAM_ERROR, FAULT_HOLD_OPEN, FAULT_COUNT
};

/* Faults that act on the HTTP exchange alone, so every model endpoint has them. */
#define TRANSPORT_FAULTS                                                                                     \
    ((1u << FAULT_REFUSE) | (1u << FAULT_RESET_HEADERS) | (1u << FAULT_CLOSE_MIDSTREAM) |                    \
     (1u << FAULT_STALL_HEADERS) | (1u << FAULT_STALL_MIDSTREAM) | (1u << FAULT_GARBAGE) |                   \
     (1u << FAULT_HTTP_GARBAGE) | (1u << FAULT_HTML))

enum directive {
    DIRECTIVE_LATENCY = 1u << 0,
    DIRECTIVE_INTERVAL = 1u << 1,
    DIRECTIVE_CHUNKS = 1u << 2,
    DIRECTIVE_STATUS = 1u << 3,
    DIRECTIVE_SPLIT = 1u << 4,
    DIRECTIVE_TOOL = 1u << 5,
    DIRECTIVE_FAULT = 1u << 6,
    DIRECTIVE_SPARSE = 1u << 7,
    DIRECTIVE_FAIL = 1u << 8,
    DIRECTIVE_RETRY_AFTER = 1u << 9,
    DIRECTIVE_OK_ERROR = 1u << 10,
    DIRECTIVE_CONTENT_BYTES = 1u << 11,
    DIRECTIVE_CALLS = 1u << 12,
    DIRECTIVE_ROUNDS = 1u << 13,
    DIRECTIVE_NARRATE = 1u << 14,
};

#define CHAT_DIRECTIVES                                                                                      \
    (DIRECTIVE_LATENCY | DIRECTIVE_INTERVAL | DIRECTIVE_CHUNKS | DIRECTIVE_STATUS | DIRECTIVE_SPLIT |        \
     DIRECTIVE_TOOL | DIRECTIVE_FAULT | DIRECTIVE_FAIL | DIRECTIVE_RETRY_AFTER)
#define EMBED_DIRECTIVES                                                                                     \
    (DIRECTIVE_LATENCY | DIRECTIVE_INTERVAL | DIRECTIVE_STATUS | DIRECTIVE_SPLIT | DIRECTIVE_FAULT |          \
     DIRECTIVE_FAIL | DIRECTIVE_RETRY_AFTER)

/* What the model string asked for. */
struct script {
    long latency_ms;
    long interval_ms;
    long chunks;
    long status; /* 0 = answer normally */
    enum fault fault;
    int tool;   /* tool=N: answer with N tool calls (0: text) */
    int sparse;
    long split; /* body piece size in bytes; 0 = no splitting */
    long fail;        /* > 0: only the first `fail` calls with this model string get status/fault */
    long retry_after; /* > 0: error replies carry Retry-After: N */
    char ok_error[32];  /* ok_error=NAME: HTTP 200 whose body (or first stream event) is that error; "" = none */
    long content_bytes; /* > 0: the reply's content is this many bytes of 'a' instead of the echo */
    char calls[256];    /* calls=A+B: call the tools named A and B at once (a tool named X or ending in
                         * "__X"), for `rounds` rounds, then answer with the results; "" = none */
    long rounds;        /* rounds=N: how many rounds of calls= (default 1) */
    int narrate;        /* narrate=1: a calls= turn also has text, "calling A+B (round N)" */
};

enum call_error {
    CALL_ERR_AUTH,      /* the credentials do not match --require-key (401) */
    CALL_ERR_JSON,      /* the body is not a JSON object (400) */
    CALL_ERR_DIRECTIVE, /* the model string's directives are wrong (400); message says why */
    CALL_ERR_STATUS,    /* status=CODE asked for this error */
    CALL_ERR_INVALID,   /* the dialect's own request checks failed; message says why */
};

/* One model endpoint's wire dialect: the shared flow (call_handle) does accounting, /debug/last, auth,
 * directives and transport faults, and asks the dialect for everything whose shape is its own. */
struct dialect {
    const char *name;           /* names the endpoint in directive errors */
    unsigned directives;        /* DIRECTIVE_* bits the model string may use */
    unsigned faults;            /* 1u << FAULT_* values that fault= may name */
    const char *stream_type;    /* Content-Type of streamed answers; NULL: the endpoint never streams */
    const char *stream_garbage; /* the body fault=garbage sends when a stream was asked for */
    /* 1 when the request's credentials pass; called only when --require-key is set. */
    int (*authorized)(const struct request *q);
    /* Queues an error reply in this dialect's shape. message is NULL for CALL_ERR_AUTH, CALL_ERR_JSON and
     * CALL_ERR_STATUS, whose wording is the dialect's own. */
    void (*error)(struct conn *c, int status, enum call_error why, const char *message);
    /* 1 when the body (a JSON object) asks for a streamed answer. */
    int (*wants_stream)(json_t *body);
    /* Queues the answer (a prebuilt body or an event source in c->resp.gen), or an error for a body it
     * rejects. Faults other than the transport ones are the dialect's to act on. */
    void (*answer)(struct conn *c, json_t *body, const struct script *sc, int stream);
};

int parse_number(const char *s, long min, long max, long *out);
void call_handle(struct conn *c, const struct dialect *d);
int bearer_authorized(const struct request *q); /* Authorization: Bearer <--require-key> */
const char *header_value(const struct request *q, const char *name); /* lowercase name; NULL if absent */
unsigned long long next_id(void);

/* ---- the dialects ---- */

extern const struct dialect openai_chat_dialect;       /* POST /v1/chat/completions (openai.c) */
extern const struct dialect openai_embeddings_dialect; /* POST /v1/embeddings (openai.c) */
extern const struct dialect anthropic_messages_dialect; /* POST /v1/messages (anthropic.c) */
extern const struct dialect anthropic_count_dialect;    /* POST /v1/messages/count_tokens (anthropic.c) */
extern const struct dialect ollama_chat_dialect;       /* POST /api/chat (ollama.c) */
extern const struct dialect ollama_embed_dialect;      /* POST /api/embed (ollama.c) */

void openai_models(struct conn *c); /* GET /v1/models */
void ollama_tags(struct conn *c);   /* GET /api/tags */

#endif
