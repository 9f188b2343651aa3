/* What every store backend shares: names for logs, and the JSON shapes of the answers (list pages and
 * conversation objects) so that the SQLite and Redis backends answer alike. Thread-safe (no state). */
#include "store.h"
#include "store_json.h"

#include <string.h>

const char *lx_store_verb_name(enum lx_store_verb v)
{
    static const char *const names[LX_STORE_VERB_COUNT] = {
        [LX_STORE_TURN_BEGIN] = "turn_begin",
        [LX_STORE_TURN_FINISH] = "turn_finish",
        [LX_STORE_TURN_ABORT] = "turn_abort",
        [LX_STORE_RESPONSE_GET] = "response_get",
        [LX_STORE_RESPONSE_DELETE] = "response_delete",
        [LX_STORE_RESPONSE_INPUT_ITEMS] = "response_input_items",
        [LX_STORE_CONVERSATION_CREATE] = "conversation_create",
        [LX_STORE_CONVERSATION_GET] = "conversation_get",
        [LX_STORE_CONVERSATION_UPDATE] = "conversation_update",
        [LX_STORE_CONVERSATION_DELETE] = "conversation_delete",
        [LX_STORE_ITEMS_ADD] = "items_add",
        [LX_STORE_ITEMS_LIST] = "items_list",
        [LX_STORE_ITEM_GET] = "item_get",
        [LX_STORE_ITEM_DELETE] = "item_delete",
    };
    return (unsigned)v < LX_STORE_VERB_COUNT && names[v] ? names[v] : "unknown";
}

const char *lx_store_status_name(enum lx_store_status s)
{
    switch (s) {
    case LX_STORE_OK: return "ok";
    case LX_STORE_NOT_FOUND: return "not_found";
    case LX_STORE_BUSY: return "busy";
    case LX_STORE_UNAVAILABLE: return "unavailable";
    case LX_STORE_ERROR: return "error";
    }
    return "unknown";
}

json_t *lx_store_list_page(json_t *data, bool has_more)
{
    size_t n = json_array_size(data);
    json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : NULL;
    json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : NULL;
    /* "o" steals data; the ids are copied (O) since data owns them. */
    return json_pack("{s:s,s:o,s:O,s:O,s:b}", "object", "list", "data", data, "first_id",
                     first ? first : json_null(), "last_id", last ? last : json_null(), "has_more", has_more);
}

json_t *lx_store_conversation_json(const char *id, long long created_at, json_t *metadata)
{
    return json_pack("{s:s,s:s,s:I,s:o}", "id", id, "object", "conversation", "created_at", (json_int_t)created_at,
                     "metadata", metadata ? json_incref(metadata) : json_object());
}

json_t *lx_store_page_of(json_t *all, const struct lx_store_page *page)
{
    size_t n = json_array_size(all), start = 0;
    json_t *ordered = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(ordered, json_array_get(all, page->desc ? n - 1 - i : i));
    if (page->after) {
        for (size_t i = 0; i < n; i++) {
            const char *id = json_string_value(json_object_get(json_array_get(ordered, i), "id"));
            if (id && strcmp(id, page->after) == 0) {
                start = i + 1;
                break;
            }
            if (i == n - 1)
                start = n; /* an unknown cursor gives an empty page */
        }
    }
    json_t *data = json_array();
    for (size_t i = start; i < n && (long)(i - start) < page->limit; i++)
        json_array_append(data, json_array_get(ordered, i));
    bool more = start + json_array_size(data) < n;
    json_decref(ordered);
    return lx_store_list_page(data, more);
}

void lx_store_answer(lx_store_cb cb, void *arg, enum lx_store_status status, const char *message, json_t *value)
{
    struct lx_store_result res = {
        .status = status,
        .message = status == LX_STORE_OK ? NULL : message,
        .value = status == LX_STORE_OK ? value : NULL,
    };
    cb(arg, &res);
}
