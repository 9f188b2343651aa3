/* A token estimate for an Anthropic Messages request: count_tokens for targets without their own
 * endpoint, and message_start's input_tokens before the target has said. The heuristic (documented in
 * docs/anthropic.md): one token per 4 bytes of text (system, text blocks, tool inputs and results, text
 * documents, tool names, descriptions and schemas), 3 per message, 1,600 per image (Anthropic's size
 * cap), 1 per 32 bytes of PDF (about 2,000 per 64 KB), 350 once when tools are given (Anthropic's
 * tool-use system prompt) and 10 per tool. Thinking blocks of earlier turns do not count: Anthropic
 * leaves them out of the context. An estimate, not a tokenizer: within tens of percent for prose. */
#include "anthropic_messages.h"

#include <stdlib.h>
#include <string.h>

#define TOKENS_PER_MESSAGE 3
#define TOKENS_PER_IMAGE 1600
#define PDF_BYTES_PER_TOKEN 32
#define TOKENS_FOR_TOOLS 350
#define TOKENS_PER_TOOL 10

static long text_tokens(size_t bytes)
{
    return (long)((bytes + 3) / 4);
}

static long string_tokens(json_t *s)
{
    return json_is_string(s) ? text_tokens(json_string_length(s)) : 0;
}

static long json_tokens(json_t *v)
{
    if (!v)
        return 0;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    long n = text ? text_tokens(strlen(text)) : 0;
    free(text);
    return n;
}

static long blocks_tokens(json_t *content);

static long block_tokens(json_t *b)
{
    const char *type = json_string_value(json_object_get(b, "type"));
    json_t *src = json_object_get(b, "source");
    if (!type)
        return 0;
    if (strcmp(type, "text") == 0)
        return string_tokens(json_object_get(b, "text"));
    if (strcmp(type, "image") == 0)
        return TOKENS_PER_IMAGE;
    if (strcmp(type, "document") == 0) {
        const char *st = json_string_value(json_object_get(src, "type"));
        if (st && strcmp(st, "base64") == 0)
            return (long)(json_string_length(json_object_get(src, "data")) * 3 / 4 / PDF_BYTES_PER_TOKEN) + 1;
        if (st && strcmp(st, "text") == 0)
            return string_tokens(json_object_get(src, "data"));
        if (st && strcmp(st, "content") == 0)
            return blocks_tokens(json_object_get(src, "content"));
        return TOKENS_PER_IMAGE; /* a URL or file: unseen, counted like one page */
    }
    if (strcmp(type, "tool_use") == 0)
        return string_tokens(json_object_get(b, "name")) + json_tokens(json_object_get(b, "input"));
    if (strcmp(type, "tool_result") == 0)
        return blocks_tokens(json_object_get(b, "content"));
    return 0; /* thinking of earlier turns and blocks only Anthropic runs */
}

/* A string or an array of blocks. */
static long blocks_tokens(json_t *content)
{
    if (json_is_string(content))
        return string_tokens(content);
    long n = 0;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
        n += block_tokens(b);
    return n;
}

long lx_anthropic_tokens_estimate(json_t *root)
{
    long n = blocks_tokens(json_object_get(root, "system"));
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(root, "messages"), i, m)
        n += TOKENS_PER_MESSAGE + blocks_tokens(json_object_get(m, "content"));
    json_t *tools = json_object_get(root, "tools");
    if (json_array_size(tools))
        n += TOKENS_FOR_TOOLS;
    json_t *t;
    json_array_foreach(tools, i, t)
        n += TOKENS_PER_TOOL + string_tokens(json_object_get(t, "name")) +
             string_tokens(json_object_get(t, "description")) + json_tokens(json_object_get(t, "input_schema"));
    return n > 0 ? n : 1;
}
