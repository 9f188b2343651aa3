/* Provider type "mock": answers on its own, with no network and no key, so a new user, a demo or an
 * app's tests get an OpenAI-shaped model offline. What it answers (text, tool calls, JSON, n choices)
 * is decided in mock_reply.c; this file cuts it into a stream like a real upstream's and says when each
 * piece is due: latency_ms before the answer, content in word pieces (or `chunks` equal pieces) and tool
 * arguments in fragments, chunk_delay_ms apart. The engine waits and pauses (while the client is not
 * reading) between the pieces. */
#include "mock_reply.h"
#include "provider.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"
#include "../src/core/confread.h"

#include <stdlib.h>
#include <string.h>

static const char *const mock_keys[] = {"type", "models", "latency_ms", "chunks", "chunk_delay_ms", NULL};

#define LX_MOCK_ARG_PIECE 12 /* most bytes of tool arguments per stream fragment */

struct mock_conf {
    long latency_ms;
    long chunks;
    long chunk_delay_ms;
};

static int mock_configure(struct lx_provider_conf *p, json_t *obj, const char *path, char *err, size_t errlen)
{
    struct mock_conf *mc = lx_calloc(1, sizeof *mc);
    p->state = mc;
    if (lx_conf_long(obj, "latency_ms", path, 0, 3600000, &mc->latency_ms, err, errlen) != LX_OK ||
        lx_conf_long(obj, "chunks", path, 0, 10000, &mc->chunks, err, errlen) != LX_OK ||
        lx_conf_long(obj, "chunk_delay_ms", path, 0, 600000, &mc->chunk_delay_ms, err, errlen) != LX_OK)
        return LX_ERR;
    if (p->n_models == 0) {
        p->models = lx_calloc(1, sizeof *p->models);
        p->models[0] = lx_strdup("echo");
        p->n_models = 1;
    }
    return LX_OK;
}

static void mock_free_state(void *state)
{
    free(state);
}

/* Where a stream is: each choice in turn gets its role chunk, its content pieces or its tool calls
 * (a header, then argument fragments), and its finish chunk; then the usage chunk. */
enum mock_phase { PH_ROLE, PH_CONTENT, PH_CALL_HEAD, PH_CALL_ARGS, PH_FINISH, PH_USAGE, PH_DONE };

struct mock_call {
    const struct mock_conf *conf;
    char *id;                   /* owned: this completion's own id */
    char *model;                /* owned */
    struct lx_mock_reply reply; /* owned */
    struct lx_error error;      /* a request the mock refuses: answered on the first timer */
    bool stream, include_usage;
    enum mock_phase phase;
    size_t choice, tool, pos;   /* the cursor: choice, tool call within it, byte within its text */
    size_t pieces_left;         /* with `chunks`: content pieces still to send for this choice */
};

static json_t *usage_json(const struct mock_call *m)
{
    const struct lx_mock_reply *r = &m->reply;
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)r->prompt_tokens, "completion_tokens",
                     (json_int_t)r->completion_tokens, "total_tokens",
                     (json_int_t)(r->prompt_tokens + r->completion_tokens));
}

static json_t *chunk_json(const struct mock_call *m, json_t *choices)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", m->id, "object", "chat.completion.chunk", "created",
                          (json_int_t)lx_wall_s(), "model", m->model, "choices", choices);
    if (m->include_usage)
        json_object_set_new(c, "usage", json_null());
    return c;
}

static json_t *choice_delta(size_t index, json_t *delta, const char *finish)
{
    return json_pack("[{s:I,s:o,s:o,s:n}]", "index", (json_int_t)index, "delta", delta, "finish_reason",
                     finish ? json_string(finish) : json_null(), "logprobs");
}

/* Length of the next content piece: a word with its leading spaces, or an equal share when chunks is
 * set; never splitting a UTF-8 sequence. */
static size_t next_piece(const struct mock_call *m, const struct lx_mock_choice *ch)
{
    size_t left = ch->content_len - m->pos;
    size_t n;
    if (m->conf->chunks > 0) {
        n = m->pieces_left > 1 ? (left + m->pieces_left - 1) / m->pieces_left : left;
    } else {
        const char *s = ch->content + m->pos;
        n = 0;
        while (n < left && s[n] == ' ')
            n++;
        while (n < left && s[n] != ' ')
            n++;
    }
    while (m->pos + n < ch->content_len && ((unsigned char)ch->content[m->pos + n] & 0xC0) == 0x80)
        n++;
    return n;
}

/* The next argument fragment: up to and including a ',' or ':' (roughly a token), at most
 * LX_MOCK_ARG_PIECE bytes, never splitting a UTF-8 sequence. */
static size_t next_arg_piece(const char *args, size_t pos)
{
    size_t len = strlen(args), n = 0;
    while (pos + n < len && n < LX_MOCK_ARG_PIECE) {
        char c = args[pos + n++];
        if (c == ',' || c == ':')
            break;
    }
    while (pos + n < len && ((unsigned char)args[pos + n] & 0xC0) == 0x80)
        n++;
    return n;
}

static void start_choice(struct mock_call *m)
{
    m->phase = m->choice < m->reply.n ? PH_ROLE : (m->include_usage ? PH_USAGE : PH_DONE);
    m->pos = 0;
    m->tool = 0;
    m->pieces_left = m->conf->chunks > 0 ? (size_t)m->conf->chunks : 0;
}

/* The next stream chunk (new reference), advancing the cursor; NULL once everything was sent. */
static json_t *next_chunk(struct mock_call *m)
{
    const struct lx_mock_choice *ch = m->choice < m->reply.n ? &m->reply.choices[m->choice] : NULL;
    switch (m->phase) {
    case PH_ROLE:
        m->phase = ch->n_calls ? PH_CALL_HEAD : (ch->content_len ? PH_CONTENT : PH_FINISH);
        return chunk_json(m, choice_delta(m->choice,
                                          json_pack("{s:s,s:o}", "role", "assistant", "content",
                                                    ch->n_calls ? json_null() : json_string("")),
                                          NULL));
    case PH_CONTENT: {
        size_t n = next_piece(m, ch);
        json_t *c = chunk_json(m, choice_delta(m->choice, json_pack("{s:s%}", "content", ch->content + m->pos, n), NULL));
        m->pos += n;
        if (m->pieces_left > 0)
            m->pieces_left--;
        if (m->pos >= ch->content_len)
            m->phase = PH_FINISH;
        return c;
    }
    case PH_CALL_HEAD: {
        const struct lx_mock_call *tc = &ch->calls[m->tool];
        m->phase = PH_CALL_ARGS;
        m->pos = 0;
        json_t *call = json_pack("{s:I,s:s,s:s,s:{s:s,s:s}}", "index", (json_int_t)m->tool, "id", tc->id, "type",
                                 "function", "function", "name", tc->name, "arguments", "");
        return chunk_json(m, choice_delta(m->choice, json_pack("{s:[o]}", "tool_calls", call), NULL));
    }
    case PH_CALL_ARGS: {
        const struct lx_mock_call *tc = &ch->calls[m->tool];
        size_t n = next_arg_piece(tc->arguments, m->pos);
        json_t *call = json_pack("{s:I,s:{s:s%}}", "index", (json_int_t)m->tool, "function", "arguments",
                                 tc->arguments + m->pos, n);
        m->pos += n;
        if (!tc->arguments[m->pos]) {
            m->tool++;
            m->phase = m->tool < ch->n_calls ? PH_CALL_HEAD : PH_FINISH;
        }
        return chunk_json(m, choice_delta(m->choice, json_pack("{s:[o]}", "tool_calls", call), NULL));
    }
    case PH_FINISH: {
        json_t *c = chunk_json(m, choice_delta(m->choice, json_object(), ch->finish));
        m->choice++;
        start_choice(m);
        return c;
    }
    case PH_USAGE: {
        json_t *c = chunk_json(m, json_array());
        json_object_set_new(c, "usage", usage_json(m));
        m->phase = PH_DONE;
        return c;
    }
    case PH_DONE:
        break;
    }
    return NULL;
}

static json_t *completion_json(const struct mock_call *m)
{
    json_t *choices = json_array();
    for (size_t i = 0; i < m->reply.n; i++) {
        const struct lx_mock_choice *ch = &m->reply.choices[i];
        json_t *msg = json_pack("{s:s,s:o,s:n}", "role", "assistant", "content",
                                ch->content ? json_stringn(ch->content, ch->content_len) : json_null(), "refusal");
        if (ch->n_calls) {
            json_t *calls = json_array();
            for (size_t k = 0; k < ch->n_calls; k++)
                json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", ch->calls[k].id, "type",
                                                       "function", "function", "name", ch->calls[k].name,
                                                       "arguments", ch->calls[k].arguments));
            json_object_set_new(msg, "tool_calls", calls);
        }
        json_array_append_new(choices, json_pack("{s:I,s:o,s:s,s:n}", "index", (json_int_t)i, "message", msg,
                                                 "finish_reason", ch->finish, "logprobs"));
    }
    return json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", m->id, "object", "chat.completion", "created",
                     (json_int_t)lx_wall_s(), "model", m->model, "choices", choices, "usage", usage_json(m));
}

static int mock_local_next(void *state, json_t **out, long *delay_ms, struct lx_error *err)
{
    struct mock_call *m = state;
    *out = NULL;
    *delay_ms = 0;
    if (lx_error_isset(&m->error)) {
        lx_error_copy(err, &m->error);
        return LX_ERR;
    }
    if (!m->stream) {
        *out = completion_json(m);
        return LX_DONE;
    }
    bool first = m->phase == PH_ROLE && m->choice == 0;
    *out = next_chunk(m);
    if (!*out)
        return LX_DONE;
    if (m->conf->chunk_delay_ms > 0 && !first && m->phase != PH_DONE)
        *delay_ms = m->conf->chunk_delay_ms;
    return LX_OK;
}

/* Every completion gets its own id, even the items of one batch or fanout (one request id). */
static uint64_t mock_seq;

static void *mock_local_start(const struct lx_provider_conf *p, const struct lx_chat *chat, long *delay_ms,
                              const char **dropped)
{
    struct mock_call *m = lx_calloc(1, sizeof *m);
    m->conf = p->state;
    uint64_t seq = ++mock_seq;
    m->id = lx_sprintf("chatcmpl-mock-%llu-%llu", (unsigned long long)chat->req_id, (unsigned long long)seq);
    m->model = lx_strdup(chat->model);
    m->stream = chat->stream;
    m->include_usage = chat->include_usage;
    if (lx_mock_reply_build(chat->body, seq, &m->reply, &m->error) == LX_OK)
        *dropped = m->reply.dropped;
    start_choice(m);
    *delay_ms = lx_error_isset(&m->error) ? 0 : m->conf->latency_ms;
    return m;
}

static void mock_local_free(void *state)
{
    struct mock_call *m = state;
    lx_mock_reply_free(&m->reply);
    lx_error_clear(&m->error);
    free(m->id);
    free(m->model);
    free(m);
}

const struct lx_provider_type lx_provider_mock = {
    .name = "mock",
    .caps = {.chat = true, .streaming = true, .tools = true, .json_mode = true},
    .config_keys = mock_keys,
    .configure = mock_configure,
    .free_state = mock_free_state,
    .local_start = mock_local_start,
    .local_next = mock_local_next,
    .local_free = mock_local_free,
};
