/* The JSON answers store backends build (src/store.c): shared so that every backend answers in the same
 * shapes. For backends only; endpoints see these values through struct lx_store_result. */
#ifndef LX_STORE_JSON_H
#define LX_STORE_JSON_H

#include <jansson.h>
#include <stdbool.h>

/* OpenAI's list page {"object":"list","data","first_id","last_id","has_more"}; data is stolen. */
json_t *lx_store_list_page(json_t *data, bool has_more);
/* {"id","object":"conversation","created_at","metadata"}; metadata borrowed (NULL: {}). */
json_t *lx_store_conversation_json(const char *id, long long created_at, json_t *metadata);

#endif
