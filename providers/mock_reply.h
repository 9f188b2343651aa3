/* What the mock provider answers to a chat request: text, tool calls or JSON, for each of n choices,
 * decided from the request alone (deterministic), plus the parameters it does not honour. The mock's
 * timing and streaming live in mock.c; this is its "model". */
#ifndef LX_MOCK_REPLY_H
#define LX_MOCK_REPLY_H

#include "../src/core/errors.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lx_mock_call {
    char *id;        /* owned: "call_mock_..." */
    char *name;      /* owned */
    char *arguments; /* owned: a JSON object as text, valid for the tool's parameters schema */
};

struct lx_mock_choice {
    char *content;             /* owned: the text (or JSON text); NULL when the choice calls tools */
    size_t content_len;
    struct lx_mock_call *calls; /* owned */
    size_t n_calls;
    const char *finish;        /* static: "stop", "length" or "tool_calls" */
};

struct lx_mock_reply {
    struct lx_mock_choice *choices; /* owned: n of them */
    size_t n;
    long prompt_tokens, completion_tokens; /* words, as the mock counts tokens */
    char *dropped;             /* owned: comma-separated parameters not honoured, or NULL */
};

/* Decide the answer to an OpenAI chat body (borrowed). seq makes the tool call ids unique. LX_OK, or
 * LX_ERR with a 400 in err naming the parameter (n out of range, tool_choice naming no tool, ...). */
int lx_mock_reply_build(json_t *body, uint64_t seq, struct lx_mock_reply *out, struct lx_error *err);
void lx_mock_reply_free(struct lx_mock_reply *r);

#endif
