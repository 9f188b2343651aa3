/* jansson's allocators, and the request-body parser every endpoint shares. */
#include "json.h"
#include "common.h"

#include <stdlib.h>

void lx_json_init(void)
{
    json_set_alloc_funcs(lx_malloc, free);
}

json_t *lx_json_parse_object(const char *body, size_t len, struct lx_error *err)
{
    if (len == 0) {
        lx_error_bad_request(err, NULL, "invalid_json", "Request body is empty; expected a JSON object.");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        lx_error_bad_request(err, NULL, "invalid_json",
                             "We could not parse the JSON body of your request (line %d, column %d: %s).", jerr.line,
                             jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        lx_error_bad_request(err, NULL, "invalid_json", "The request body must be a JSON object.");
        json_decref(root);
        return NULL;
    }
    return root;
}
