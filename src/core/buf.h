/* A growable byte buffer with a read offset: request bodies, response bodies and stream output queues. */
#ifndef LX_BUF_H
#define LX_BUF_H

#include <stddef.h>

struct lx_buf {
    char *data;  /* owned: freed in lx_buf_free; always NUL-terminated after data[len] once allocated */
    size_t len;  /* bytes written */
    size_t off;  /* bytes already consumed from the front */
    size_t cap;
};

void lx_buf_append(struct lx_buf *b, const void *p, size_t n);
void lx_buf_puts(struct lx_buf *b, const char *s);
void lx_buf_printf(struct lx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Unconsumed bytes. */
static inline size_t lx_buf_avail(const struct lx_buf *b) { return b->len - b->off; }
static inline const char *lx_buf_head(const struct lx_buf *b) { return b->data + b->off; }
/* Drop n bytes from the front; compacts when everything was consumed. */
void lx_buf_consume(struct lx_buf *b, size_t n);
void lx_buf_reset(struct lx_buf *b);
void lx_buf_free(struct lx_buf *b);
/* Compact b and give back its unused capacity (for a buffer kept as it is, such as a request body). */
void lx_buf_fit(struct lx_buf *b);
/* Hand the contents to the caller as a NUL-terminated string (owned by the caller); the buffer is left empty. */
char *lx_buf_steal(struct lx_buf *b, size_t *len);

#endif
