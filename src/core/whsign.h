/* Standard Webhooks signatures (standardwebhooks.com, symmetric scheme): the secret is "whsec_" followed
 * by the base64 of the key's bytes, and a message is signed as
 * "v1," base64(HMAC-SHA256(key, msg_id "." timestamp "." body)). */
#ifndef LX_WHSIGN_H
#define LX_WHSIGN_H

#include <stddef.h>
#include <stdint.h>

#define LX_WHSIG_LEN 48 /* "v1," + 44 characters of base64 for 32 bytes, with room for the NUL */

/* The key inside secret ("whsec_BASE64", or bare base64): *key is owned by the caller. LX_ERR when the
 * secret is not base64 or its key is shorter than 16 bytes. */
int lx_whsec_decode(const char *secret, unsigned char **key, size_t *len);
/* The webhook-signature value of body sent as id at timestamp (unix seconds). */
void lx_webhook_sign(const unsigned char *key, size_t keylen, const char *id, int64_t timestamp, const char *body,
                     size_t len, char out[LX_WHSIG_LEN]);

#endif
