/* Provider type "mock": answers on its own, with no network and no key, so a new user gets replies
 * offline. The reply is derived from the last user message, so it is deterministic; latency_ms delays
 * the answer, chunks sets how many content pieces a stream has (0: one per word), chunk_delay_ms paces
 * them. max_tokens/max_completion_tokens cut the reply to that many words (finish_reason "length"). */
#include "provider.h"
#include "../src/buf.h"
#include "../src/call.h"
#include "../src/common.h"
#include "../src/loop.h"

#include <stdlib.h>
#include <string.h>

static const char *const mock_keys[] = {"type", "models", "latency_ms", "chunks", "chunk_delay_ms", NULL};

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

/* Text of a message's content: a string, or the text parts of an array. */
static void content_text(json_t *content, struct lx_buf *out)
{
    if (json_is_string(content)) {
        lx_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        if (json_is_string(text)) {
            if (out->len)
                lx_buf_append(out, " ", 1);
            lx_buf_append(out, json_string_value(text), json_string_length(text));
        }
    }
}

static size_t count_words(const char *s, size_t len)
{
    size_t n = 0;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        bool sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

struct mock_call {
    struct lx_call *call;     /* borrowed: the call owns us */
    const struct mock_conf *conf;
    struct lx_timer *timer;   /* owned */
    char *id;                 /* owned */
    char *model;              /* owned */
    char *text;               /* owned: the whole reply */
    size_t text_len;
    size_t pos;               /* bytes of text already streamed */
    size_t pieces_left;
    const char *finish;       /* "stop" or "length" */
    bool stream, include_usage, started;
    long prompt_tokens, completion_tokens;
};

static json_t *usage_json(const struct mock_call *m)
{
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", (json_int_t)m->prompt_tokens, "completion_tokens",
                     (json_int_t)m->completion_tokens, "total_tokens",
                     (json_int_t)(m->prompt_tokens + m->completion_tokens));
}

static json_t *chunk_json(const struct mock_call *m, json_t *delta, const char *finish)
{
    json_t *choice = json_pack("{s:i,s:o,s:o}", "index", 0, "delta", delta, "finish_reason",
                               finish ? json_string(finish) : json_null());
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", m->id, "object", "chat.completion.chunk", "created",
                          (json_int_t)lx_wall_s(), "model", m->model, "choices", choice);
    if (m->include_usage)
        json_object_set_new(c, "usage", json_null());
    return c;
}

static void emit(struct mock_call *m, json_t *chunk)
{
    lx_call_local_chunk(m->call, chunk);
    json_decref(chunk);
}

/* Length of the next piece: a word with its leading spaces, or an equal share when chunks is set;
 * never splitting a UTF-8 sequence. */
static size_t next_piece(const struct mock_call *m)
{
    size_t left = m->text_len - m->pos;
    size_t n;
    if (m->conf->chunks > 0) {
        n = m->pieces_left > 1 ? (left + m->pieces_left - 1) / m->pieces_left : left;
    } else {
        const char *s = m->text + m->pos;
        n = 0;
        while (n < left && s[n] == ' ')
            n++;
        while (n < left && s[n] != ' ')
            n++;
    }
    while (m->pos + n < m->text_len && ((unsigned char)m->text[m->pos + n] & 0xC0) == 0x80)
        n++;
    return n;
}

static void mock_step_cb(void *arg)
{
    struct mock_call *m = arg;
    if (!m->stream) {
        json_t *msg = json_pack("{s:s,s:s%}", "role", "assistant", "content", m->text, m->text_len);
        json_t *completion = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:o}", "id", m->id, "object",
                                       "chat.completion", "created", (json_int_t)lx_wall_s(), "model", m->model,
                                       "choices", "index", 0, "message", msg, "finish_reason", m->finish,
                                       "usage", usage_json(m));
        lx_call_local_done(m->call, completion, NULL);
        return;
    }
    for (;;) {
        if (!m->started) {
            m->started = true;
            emit(m, chunk_json(m, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL));
        } else if (m->pos < m->text_len) {
            size_t n = next_piece(m);
            emit(m, chunk_json(m, json_pack("{s:s%}", "content", m->text + m->pos, n), NULL));
            m->pos += n;
            if (m->pieces_left > 0)
                m->pieces_left--;
        } else {
            emit(m, chunk_json(m, json_object(), m->finish));
            if (m->include_usage) {
                json_t *u = chunk_json(m, json_object(), NULL);
                json_object_set_new(u, "choices", json_array());
                json_object_set_new(u, "usage", usage_json(m));
                emit(m, u);
            }
            lx_call_local_done(m->call, NULL, NULL);
            return;
        }
        if (m->conf->chunk_delay_ms > 0 && m->pos > 0) {
            lx_timer_start(m->timer, m->conf->chunk_delay_ms);
            return;
        }
    }
}

static void *mock_local_start(const struct lx_provider_conf *p, const struct lx_chat *chat, struct lx_call *call)
{
    struct mock_call *m = lx_calloc(1, sizeof *m);
    m->call = call;
    m->conf = p->state;
    m->id = lx_sprintf("chatcmpl-mock-%llu", (unsigned long long)chat->req_id);
    m->model = lx_strdup(chat->model);
    m->stream = chat->stream;
    m->include_usage = chat->include_usage;

    struct lx_buf prompt = {0}, last_user = {0};
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(chat->body, "messages"), i, msg) {
        json_t *content = json_object_get(msg, "content");
        content_text(content, &prompt);
        lx_buf_append(&prompt, " ", 1);
        if (strcmp(json_string_value(json_object_get(msg, "role")), "user") == 0) {
            lx_buf_reset(&last_user);
            content_text(content, &last_user);
        }
    }
    m->prompt_tokens = (long)count_words(prompt.data ? prompt.data : "", prompt.len);
    lx_buf_free(&prompt);

    struct lx_buf text = {0};
    lx_buf_puts(&text, "This is the llmux mock provider. You said: ");
    lx_buf_append(&text, last_user.data ? last_user.data : "", last_user.len);
    lx_buf_free(&last_user);
    m->text = lx_buf_steal(&text, &m->text_len);
    m->finish = "stop";

    json_t *max = json_object_get(chat->body, "max_completion_tokens");
    if (!json_is_integer(max))
        max = json_object_get(chat->body, "max_tokens");
    if (json_is_integer(max) && json_integer_value(max) >= 0) {
        json_int_t limit = json_integer_value(max);
        json_int_t words = 0;
        bool in = false;
        for (size_t k = 0; k < m->text_len; k++) {
            bool sp = m->text[k] == ' ' || m->text[k] == '\n';
            if (!sp && !in && ++words > limit) {
                m->text_len = k;
                while (m->text_len > 0 && m->text[m->text_len - 1] == ' ')
                    m->text_len--;
                m->text[m->text_len] = '\0';
                m->finish = "length";
                break;
            }
            in = !sp;
        }
    }
    m->completion_tokens = (long)count_words(m->text, m->text_len);
    m->pieces_left = m->conf->chunks > 0 ? (size_t)m->conf->chunks : 0;
    m->timer = lx_timer_new(mock_step_cb, m);
    lx_timer_start(m->timer, m->conf->latency_ms);
    return m;
}

static void mock_local_cancel(void *state)
{
    struct mock_call *m = state;
    lx_timer_free(m->timer);
    free(m->id);
    free(m->model);
    free(m->text);
    free(m);
}

const struct lx_provider_type lx_provider_mock = {
    .name = "mock",
    .caps = {.chat = true, .streaming = true},
    .config_keys = mock_keys,
    .configure = mock_configure,
    .free_state = mock_free_state,
    .local_start = mock_local_start,
    .local_cancel = mock_local_cancel,
};
