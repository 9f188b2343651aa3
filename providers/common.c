/* Small helpers the translating providers share: reading OpenAI message content and parameters. */
#include "../src/core/common.h"
#include "provider.h"

void lx_content_text(json_t *content, struct lx_buf *out)
{
    if (json_is_string(content)) {
        lx_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    bool first = true;
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text))
            continue;
        if (!first)
            lx_buf_append(out, "\n", 1);
        lx_buf_append(out, json_string_value(text), json_string_length(text));
        first = false;
    }
}

json_int_t lx_chat_max_tokens(json_t *body, json_int_t dflt)
{
    json_t *v = json_object_get(body, "max_completion_tokens");
    if (!json_is_integer(v))
        v = json_object_get(body, "max_tokens");
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

void lx_copy_if_present(json_t *dst, json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (v && !json_is_null(v))
        json_object_set(dst, key, v);
}

int lx_collect_ids(const char *body, size_t len, const char *list_key, const char *id_key, const char *alt_key,
                   json_t *ids)
{
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    json_t *list = json_object_get(root, list_key);
    if (!json_is_array(list)) {
        json_decref(root);
        return LX_ERR;
    }
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        json_t *id = json_object_get(m, id_key);
        if (!json_is_string(id) && alt_key)
            id = json_object_get(m, alt_key);
        if (json_is_string(id))
            json_array_append(ids, id);
    }
    json_decref(root);
    return LX_OK;
}
