/* Random identifiers: 24 bytes from the kernel's CSPRNG (OpenSSL's when getrandom has no entropy yet). */
#include "ids.h"
#include "common.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void random_bytes(unsigned char *p, size_t n)
{
    /* GRND_NONBLOCK: never wait for the entropy pool (only possible at early boot); OpenSSL seeds itself. */
    if (getrandom(p, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    if (RAND_bytes(p, (int)n) == 1)
        return;
    fprintf(stderr, "llmux: no random bytes for an identifier\n");
    abort();
}

char *lx_id_new(const char *prefix)
{
    unsigned char r[LX_ID_HEX / 2];
    random_bytes(r, sizeof r);
    size_t plen = strlen(prefix);
    char *id = lx_malloc(plen + 1 + LX_ID_HEX + 1);
    memcpy(id, prefix, plen);
    id[plen] = '_';
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        id[plen + 1 + 2 * i] = hex[r[i] >> 4];
        id[plen + 2 + 2 * i] = hex[r[i] & 15];
    }
    id[plen + 1 + LX_ID_HEX] = '\0';
    return id;
}

bool lx_id_valid(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (!s || strncmp(s, prefix, plen) != 0 || s[plen] != '_' || strlen(s) != plen + 1 + LX_ID_HEX)
        return false;
    for (const char *p = s + plen + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
