/* Reading and writing OpenAI chat JSON as bytes (passthru.h). Each check mirrors what the general path
 * does with jansson: providers/openai.c's filling (lx_openai_fill: id, object, created and model when
 * missing; usage on a completion), its stream decoder (an "error" member; usage and finish_reason seen),
 * and exec.c's preamble and usage rules. */
#include "passthru.h"
#include "common.h"
#include "jscan.h"
#include "jsonout.h"

#include <stdlib.h>
#include <string.h>

int lx_passthru_request(const char *body, size_t len, struct lx_chat_bytes *out)
{
    struct lx_jval root;
    if (!body || lx_jscan(body, len, &root) != LX_OK || root.type != LX_JOBJECT)
        return LX_AGAIN;
    struct lx_jmember m[] = {{.key = "model"}, {.key = "stream_options"}};
    if (lx_jscan_members(&root, m, LX_ARRAY_LEN(m), NULL) != LX_OK)
        return LX_AGAIN;
    return lx_passthru_request_scanned(body, len, &m[0], &m[1], out);
}

int lx_passthru_request_scanned(const char *body, size_t len, const struct lx_jmember *model,
                                const struct lx_jmember *so, struct lx_chat_bytes *out)
{
    if (model->count != 1 || model->val.type != LX_JSTRING || so->count > 1)
        return LX_AGAIN;
    *out = (struct lx_chat_bytes){
        .data = body,
        .len = len,
        .model_at = (size_t)(model->val.p - body),
        .model_len = model->val.len,
        .stream_options = so->count == 1,
    };
    if (so->count == 1 && so->val.type == LX_JOBJECT) {
        struct lx_jmember iu = {.key = "include_usage"};
        if (lx_jscan_members(&so->val, &iu, 1, NULL) != LX_OK || iu.count > 1)
            return LX_AGAIN;
        out->usage_asked = iu.count == 1 && iu.val.type == LX_JTRUE;
    }
    return LX_OK;
}

bool lx_passthru_request_ok(const struct lx_chat_bytes *b, const char *model, bool add_usage)
{
    if (!b->data || !model || !lx_json_utf8_ok(model, strlen(model)))
        return false;
    if (add_usage && !b->usage_asked && b->stream_options)
        return false; /* its own stream_options must be merged: the general path does that */
    return memchr(b->data, '{', b->model_at) != NULL;
}

json_t *lx_passthru_tree(const struct lx_chat_bytes *b)
{
    if (!b->data)
        return NULL;
    json_t *root = json_loadb(b->data, b->len, 0, NULL);
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

int lx_passthru_request_body(const struct lx_chat_bytes *b, const char *model, bool add_usage, struct lx_buf *out)
{
    if (!lx_passthru_request_ok(b, model, add_usage))
        return LX_AGAIN;
    size_t mlen = strlen(model);
    const char *open = memchr(b->data, '{', b->model_at);
    size_t head = (size_t)(open + 1 - b->data);
    lx_buf_append(out, b->data, head);
    if (add_usage && !b->usage_asked)
        lx_buf_puts(out, "\"stream_options\":{\"include_usage\":true},");
    lx_buf_append(out, b->data + head, b->model_at - head);
    lx_jsonw_str(out, model, mlen);
    size_t after = b->model_at + b->model_len;
    lx_buf_append(out, b->data + after, b->len - after);
    return LX_OK;
}

/* The fields lx_openai_fill fills when missing, all there with the types it checks; and usage read. */
enum { F_ID, F_OBJECT, F_CREATED, F_MODEL, F_CHOICES, F_USAGE, F_ERROR, F_COUNT };

static int read_common(const char *data, size_t len, struct lx_jval *root, struct lx_jmember *m,
                       struct lx_answer_bytes *out)
{
    static const char *const keys[F_COUNT] = {"id", "object", "created", "model", "choices", "usage", "error"};
    for (int i = 0; i < F_COUNT; i++)
        m[i] = (struct lx_jmember){.key = keys[i]};
    if (lx_jscan(data, len, root) != LX_OK || root->type != LX_JOBJECT ||
        lx_jscan_members(root, m, F_COUNT, NULL) != LX_OK)
        return LX_AGAIN;
    for (int i = 0; i < F_COUNT; i++)
        if (m[i].count > 1)
            return LX_AGAIN; /* jansson would keep the last of them: let it */
    if (m[F_ID].count != 1 || m[F_ID].val.type != LX_JSTRING || m[F_OBJECT].count != 1 ||
        m[F_OBJECT].val.type != LX_JSTRING || m[F_CREATED].count != 1 || m[F_CREATED].val.type != LX_JINT ||
        m[F_MODEL].count != 1 || m[F_MODEL].val.type != LX_JSTRING)
        return LX_AGAIN;
    *out = (struct lx_answer_bytes){.data = root->p, .len = root->len, .prompt_tokens = -1, .completion_tokens = -1};
    const struct lx_jval *model = &m[F_MODEL].val;
    if (model->len >= 2 && !memchr(model->p, '\\', model->len)) {
        out->model_at = (size_t)(model->p + 1 - root->p);
        out->model_len = model->len - 2;
    }
    if (m[F_USAGE].count == 1) {
        out->has_usage = true;
        out->usage_at = m[F_USAGE].cut_at;
        out->usage_len = m[F_USAGE].cut_len;
        out->usage_object = m[F_USAGE].val.type == LX_JOBJECT;
        if (out->usage_object) {
            struct lx_jmember u[] = {{.key = "prompt_tokens"}, {.key = "completion_tokens"}};
            long long v;
            if (lx_jscan_members(&m[F_USAGE].val, u, 2, NULL) != LX_OK)
                return LX_AGAIN;
            if (u[0].count && lx_jval_int(&u[0].val, &v))
                out->prompt_tokens = (long)v;
            if (u[1].count && lx_jval_int(&u[1].val, &v))
                out->completion_tokens = (long)v;
        }
    }
    return LX_OK;
}

int lx_passthru_completion(const char *body, size_t len, struct lx_answer_bytes *out)
{
    struct lx_jval root;
    struct lx_jmember m[F_COUNT];
    if (!body || read_common(body, len, &root, m, out) != LX_OK)
        return LX_AGAIN;
    if (m[F_CHOICES].count != 1 || m[F_CHOICES].val.type != LX_JARRAY || m[F_USAGE].count != 1 ||
        m[F_USAGE].val.type != LX_JOBJECT)
        return LX_AGAIN;
    out->data = body; /* the whole body, whitespace around the object included: it goes out as it came */
    out->len = len;
    out->usage_at += (size_t)(root.p - body);
    out->model_at += (size_t)(root.p - body);
    return LX_OK;
}

/* Does this choice's delta carry nothing but the role or empty content (exec.c is_preamble)? LX_AGAIN
 * when a key has an escape, which jansson would read and this cannot. */
static int delta_is_preamble(const struct lx_jval *delta, bool *preamble)
{
    *preamble = true;
    if (delta->type != LX_JOBJECT)
        return LX_OK;
    struct lx_jiter it;
    struct lx_jval k, v;
    lx_jscan_fields(delta, &it);
    while (lx_jscan_next_field(&it, &k, &v)) {
        if (memchr(k.p, '\\', k.len))
            return LX_AGAIN;
        if (lx_jval_is(&k, "role") || v.type == LX_JNULL)
            continue;
        if (lx_jval_is(&k, "content") && v.type == LX_JSTRING && v.len == 2)
            continue;
        *preamble = false;
    }
    return LX_OK;
}

int lx_passthru_chunk(const char *data, size_t len, struct lx_answer_bytes *out)
{
    struct lx_jval root;
    struct lx_jmember m[F_COUNT];
    if (!data || memchr(data, '\n', len) || memchr(data, '\r', len) || read_common(data, len, &root, m, out) != LX_OK)
        return LX_AGAIN; /* a data line must stay one line */
    if (m[F_ERROR].count)
        return LX_AGAIN; /* an error event, or a lax server's "error": null to remove */
    out->data = root.p;
    out->len = root.len;
    const struct lx_jval *choices = &m[F_CHOICES].val;
    if (m[F_CHOICES].count == 0 || choices->type != LX_JARRAY)
        return LX_OK;
    struct lx_jiter it;
    struct lx_jval choice;
    size_t n = 0;
    bool preamble = true;
    lx_jscan_items(choices, &it);
    while (lx_jscan_next(&it, &choice)) {
        n++;
        if (choice.type != LX_JOBJECT)
            continue;
        struct lx_jmember c[] = {{.key = "finish_reason"}, {.key = "delta"}};
        if (lx_jscan_members(&choice, c, 2, NULL) != LX_OK || c[0].count > 1 || c[1].count > 1)
            return LX_AGAIN;
        if (c[0].count && c[0].val.type != LX_JNULL) {
            out->finish = true;
            preamble = false;
        }
        bool quiet = true;
        if (c[1].count && delta_is_preamble(&c[1].val, &quiet) != LX_OK)
            return LX_AGAIN;
        preamble = preamble && quiet;
    }
    out->usage_only = n == 0;
    out->preamble = n > 0 && preamble;
    return LX_OK;
}

void lx_answer_bytes_write(const struct lx_answer_bytes *a, struct lx_buf *out)
{
    if (!a->cut_len) {
        lx_buf_append(out, a->data, a->len);
        return;
    }
    lx_buf_append(out, a->data, a->cut_at);
    lx_buf_append(out, a->data + a->cut_at + a->cut_len, a->len - a->cut_at - a->cut_len);
}

json_t *lx_answer_bytes_json(const struct lx_answer_bytes *a)
{
    if (!a->cut_len)
        return json_loadb(a->data, a->len, 0, NULL);
    struct lx_buf b = {0};
    lx_answer_bytes_write(a, &b);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    lx_buf_free(&b);
    return j;
}

struct lx_answer_bytes *lx_answer_bytes_dup(const struct lx_answer_bytes *a)
{
    struct lx_answer_bytes *c = lx_malloc(sizeof *c + a->len + 1);
    char *data = (char *)(c + 1);
    memcpy(data, a->data, a->len);
    data[a->len] = '\0';
    *c = *a;
    c->data = data;
    return c;
}
