/* Split plans for the stream fuzz targets: the input's first bytes say where the rest is cut, so the
 * fuzzer explores chunk boundaries (a CRLF, a multi-byte line, an event split anywhere) along with content. */
#ifndef LX_FUZZ_SPLIT_H
#define LX_FUZZ_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_SPLIT_MAX_SIZES 16

struct fuzz_split {
    const uint8_t *sizes; /* borrowed from the input: chunk lengths, used in turn and then again */
    size_t n_sizes;
    size_t next;
    bool bytewise;        /* no size byte, or all were 0: one byte per chunk */
};

/* Read the plan from the front of the input and advance *data past it: one byte n (taken mod 17), then n
 * chunk lengths of 0..255. A 0 length feeds an empty chunk, which a decoder must take as a no-op. */
static inline void fuzz_split_init(struct fuzz_split *s, const uint8_t **data, size_t *size)
{
    *s = (struct fuzz_split){0};
    if (*size == 0) {
        s->bytewise = true;
        return;
    }
    size_t n = (*data)[0] % (FUZZ_SPLIT_MAX_SIZES + 1);
    (*data)++;
    (*size)--;
    if (n > *size)
        n = *size;
    s->sizes = *data;
    s->n_sizes = n;
    *data += n;
    *size -= n;
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= s->sizes[i] != 0;
    s->bytewise = !any; /* all-zero sizes would never make progress */
}

/* Length of the next chunk, at most left (may be 0 for an empty feed). */
static inline size_t fuzz_split_next(struct fuzz_split *s, size_t left)
{
    size_t n = 1;
    if (!s->bytewise) {
        n = s->sizes[s->next];
        s->next = (s->next + 1) % s->n_sizes;
    }
    return n < left ? n : left;
}

#endif
