/* The JSON answers store backends build (src/store.c): shared so that every backend answers in the same
 * shapes. For backends only; endpoints see these values through struct lx_store_result. */
#ifndef LX_STORE_JSON_H
#define LX_STORE_JSON_H

#include "store.h"

#include <jansson.h>
#include <stdbool.h>

/* OpenAI's list page {"object":"list","data","first_id","last_id","has_more"}; data is stolen. */
json_t *lx_store_list_page(json_t *data, bool has_more);
/* {"id","object":"conversation","created_at","metadata"}; metadata borrowed (NULL: {}). */
json_t *lx_store_conversation_json(const char *id, long long created_at, json_t *metadata);

/* A list page of an in-memory array (a response's input items): page's order, after and limit. all is
 * borrowed (NULL: empty). */
struct lx_store_page;
json_t *lx_store_page_of(json_t *all, const struct lx_store_page *page);
/* Call a requester's callback with an operation's outcome: the message only when it failed, the value
 * (borrowed) only when it is OK. */
void lx_store_answer(lx_store_cb cb, void *arg, enum lx_store_status status, const char *message, json_t *value);

#endif
