/* An incremental newline-delimited JSON decoder (Ollama's native stream): bytes may be split anywhere. */
#ifndef LX_NDJSON_H
#define LX_NDJSON_H

#include "buf.h"

#include <stddef.h>

/* Called once per non-empty line (without its line end, NUL-terminated). LX_OK goes on. */
typedef int (*lx_ndjson_line_cb)(void *ctx, const char *line, size_t len);

struct lx_ndjson_decoder {
    struct lx_buf line; /* owned: the partial line carried between feeds */
    size_t max_line;    /* 0 = 1 MiB */
    size_t lines;       /* lines dispatched so far */
};

/* LX_OK, or LX_ERR when a line exceeds max_line or cb stopped the feed. */
int lx_ndjson_feed(struct lx_ndjson_decoder *d, const char *p, size_t n, lx_ndjson_line_cb cb, void *ctx);
/* At the end of the body: dispatch a last line that had no newline. */
int lx_ndjson_finish(struct lx_ndjson_decoder *d, lx_ndjson_line_cb cb, void *ctx);
void lx_ndjson_decoder_free(struct lx_ndjson_decoder *d);

#endif
