/* Fuzz target for the SSE decoder (src/sse.c): the same bytes fed whole and in chunks cut where the input
 * says must give the same events, the same result and the same decoder state, and then the same events
 * again from lx_sse_flush at the end of the body. Input layout: byte 0 picks max_event, byte 1 stops the
 * feed after that many events (0: never), then a split plan (fuzz_split.h), then the stream. */
#include "fuzz_split.h"
#include "../../src/core/buf.h"
#include "../../src/core/common.h"
#include "../../src/core/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small limits reach the too-large paths inside the input sizes libFuzzer tries; 0 is the 1 MiB default. */
static const size_t max_events[] = {0, 8, 32, 256};

#define STOP_RC 7 /* what the callback returns to stop: must come back through cb_rc unchanged */

struct record {
    struct lx_buf log; /* every event, length-prefixed so that no two sequences print alike */
    size_t count;
    size_t stop_after;
};

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_sse: %s\n", what);
    abort();
}

static int record_event_cb(void *ctx, const char *event, const char *data, size_t len)
{
    struct record *r = ctx;
    size_t elen = strlen(event);
    if (elen >= 64)
        fail("event name longer than the decoder's buffer");
    if (data[len] != '\0')
        fail("event data is not NUL-terminated");
    lx_buf_printf(&r->log, "%zu:", elen);
    lx_buf_append(&r->log, event, elen);
    lx_buf_printf(&r->log, "|%zu:", len);
    lx_buf_append(&r->log, data, len);
    lx_buf_append(&r->log, "\n", 1);
    r->count++;
    return r->stop_after && r->count == r->stop_after ? STOP_RC : LX_OK;
}

static bool buf_equal(const struct lx_buf *a, const struct lx_buf *b)
{
    return lx_buf_avail(a) == lx_buf_avail(b) && (lx_buf_avail(a) == 0 || memcmp(lx_buf_head(a), lx_buf_head(b), lx_buf_avail(a)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_event = max_events[data[0] % LX_ARRAY_LEN(max_events)];
    size_t stop_after = data[1];
    data += 2;
    size -= 2;
    struct fuzz_split plan;
    fuzz_split_init(&plan, &data, &size);
    const char *p = (const char *)data;

    struct lx_sse_decoder whole = {.max_event = max_event};
    struct record rw = {.stop_after = stop_after};
    int cb_rc_whole = 0;
    int rc_whole = lx_sse_feed(&whole, p, size, record_event_cb, &rw, &cb_rc_whole);

    struct lx_sse_decoder split = {.max_event = max_event};
    struct record rs = {.stop_after = stop_after};
    int cb_rc_split = 0;
    int rc_split = LX_OK;
    size_t off = 0;
    do {
        size_t n = fuzz_split_next(&plan, size - off);
        rc_split = lx_sse_feed(&split, p + off, n, record_event_cb, &rs, &cb_rc_split);
        off += n;
    } while (rc_split == LX_OK && off < size);

    if (rc_whole != rc_split)
        fail("the result depends on where the stream was split");
    if (cb_rc_whole != cb_rc_split)
        fail("the callback's stop code depends on where the stream was split");
    if (rw.count != rs.count || !buf_equal(&rw.log, &rs.log))
        fail("the events depend on where the stream was split");
    if ((rw.stop_after && rw.count == rw.stop_after) != (cb_rc_whole == STOP_RC))
        fail("a stop from the callback was not reported through cb_rc");
    if (rc_whole == LX_OK) {
        /* Same bytes in, so the same partial line and event must be pending for the next feed. */
        if (whole.events != split.events || whole.events != rw.count)
            fail("the events counter is wrong");
        if (lx_sse_pending(&whole) != lx_sse_pending(&split) || whole.has_data != split.has_data ||
            whole.skip_lf != split.skip_lf || strcmp(whole.event, split.event) != 0 ||
            !buf_equal(&whole.line, &split.line) || !buf_equal(&whole.data, &split.data))
            fail("the decoder state depends on where the stream was split");

        /* End of body: whatever was pending becomes the last event, and nothing stays pending. */
        int frc_whole = lx_sse_flush(&whole, record_event_cb, &rw, &cb_rc_whole);
        int frc_split = lx_sse_flush(&split, record_event_cb, &rs, &cb_rc_split);
        if (frc_whole != frc_split || cb_rc_whole != cb_rc_split || rw.count != rs.count ||
            !buf_equal(&rw.log, &rs.log))
            fail("the flushed events depend on where the stream was split");
        if (frc_whole == LX_OK && (lx_sse_pending(&whole) || whole.events != rw.count))
            fail("a flush that succeeded left bytes pending or miscounted events");
    }

    lx_sse_decoder_free(&whole);
    lx_sse_decoder_free(&split);
    lx_buf_free(&rw.log);
    lx_buf_free(&rs.log);
    return 0;
}
