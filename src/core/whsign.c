/* Standard Webhooks signing over OpenSSL's HMAC and base64 (EVP_EncodeBlock / EVP_DecodeBlock). */
#include "whsign.h"
#include "buf.h"
#include "common.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lx_whsec_decode(const char *secret, unsigned char **key, size_t *len)
{
    if (strncmp(secret, "whsec_", 6) == 0)
        secret += 6;
    size_t n = strlen(secret);
    if (n == 0 || n % 4 != 0)
        return LX_ERR;
    unsigned char *out = lx_malloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(out, (const unsigned char *)secret, (int)n);
    if (got < 0) {
        free(out);
        return LX_ERR;
    }
    /* EVP_DecodeBlock counts the padding's zero bytes too. */
    if (secret[n - 1] == '=')
        got--;
    if (secret[n - 2] == '=')
        got--;
    if (got < 16) {
        free(out);
        return LX_ERR;
    }
    *key = out;
    *len = (size_t)got;
    return LX_OK;
}

void lx_webhook_sign(const unsigned char *key, size_t keylen, const char *id, int64_t timestamp, const char *body,
                     size_t len, char out[LX_WHSIG_LEN])
{
    struct lx_buf msg = {0};
    lx_buf_printf(&msg, "%s.%lld.", id, (long long)timestamp);
    lx_buf_append(&msg, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg.data, msg.len, mac, &maclen);
    lx_buf_free(&msg);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
}
