/* Opaque random identifiers for stored objects and output items ("resp_…", "conv_…", "msg_…"), shaped
 * like OpenAI's: a prefix, an underscore and 48 hex digits (192 random bits), so an id says nothing
 * about when, where or by whom it was made and cannot be guessed. */
#ifndef LX_IDS_H
#define LX_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define LX_ID_HEX 48

/* A new id "<prefix>_<48 hex digits>" (owned by the caller). Safe on any thread. */
char *lx_id_new(const char *prefix);
/* True when s looks like an id made by lx_id_new with this prefix (cheap check before a store lookup;
 * ids from elsewhere, e.g. a client's own item ids, need not pass it). */
bool lx_id_valid(const char *s, const char *prefix);

#endif
