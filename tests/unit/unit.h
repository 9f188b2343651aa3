/* Shared helpers for the cmocka unit tests: cmocka's includes, fixture loading. */
#ifndef LX_UNIT_H
#define LX_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read a recorded upstream body from ../shared/fixtures (or $LX_FIXTURES). Caller frees. */
static char *read_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("LX_FIXTURES") ? getenv("LX_FIXTURES") : "../shared/fixtures";
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("fixture %s is missing (set LX_FIXTURES)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

#endif
