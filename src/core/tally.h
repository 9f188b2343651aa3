/* What a client request's model calls added up to: the engine adds each call's tokens, retries and
 * answerer; the access log writes it and the key's tpm is charged with it. Plain data, so the request
 * (server/) can hold it and the engine fill it without either including the other. */
#ifndef LX_TALLY_H
#define LX_TALLY_H

#include <stdlib.h>
#include <string.h>

struct lx_tally {
    long prompt_tokens, completion_tokens;
    int calls, retries, fallbacks;
    int tool_calls, tool_errors; /* MCP tool calls the tool loop made, and those that did not answer "ok" */
    char *answered_by; /* owned: the "PROVIDER/MODEL" that answered last, or NULL */
};

static inline void lx_tally_clear(struct lx_tally *t)
{
    free(t->answered_by);
    memset(t, 0, sizeof *t);
}

#endif
