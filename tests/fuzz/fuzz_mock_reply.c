/* Fuzz target for the mock provider's "model" (providers/mock_reply.c and mock_schema.c): a chat body
 * that validation accepts, with any tools, tool_choice, response_format and schemas, must give an
 * answer or a 400, never a crash, a leak or a hang; every tool call's arguments must be a JSON object.
 * Input: the request body. */
#include "../../providers/mock_reply.h"
#include "../../dialects/dialect.h"
#include "../../src/core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_mock_reply: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lx_error err = {0};
    struct lx_dialect_req rq = {0};
    json_t *body = lx_dialect_openai_chat.parse((const char *)data, size, &rq, &err);
    lx_dialect_req_clear(&rq);
    if (!body) {
        lx_error_clear(&err);
        return 0;
    }
    struct lx_mock_reply r;
    if (lx_mock_reply_build(body, 1, &r, &err) != LX_OK) {
        if (err.status != 400 || !err.param)
            fail("a refusal that is not a 400 naming its parameter");
    } else {
        if (r.n < 1)
            fail("an answer without choices");
        for (size_t i = 0; i < r.n; i++) {
            const struct lx_mock_choice *ch = &r.choices[i];
            if ((ch->content == NULL) == (ch->n_calls == 0))
                fail("a choice with both text and tool calls, or neither");
            for (size_t k = 0; k < ch->n_calls; k++) {
                json_t *args = json_loads(ch->calls[k].arguments, 0, NULL);
                if (!json_is_object(args))
                    fail("tool arguments that are not a JSON object");
                json_decref(args);
            }
        }
    }
    lx_mock_reply_free(&r);
    lx_error_clear(&err);
    json_decref(body);
    return 0;
}
