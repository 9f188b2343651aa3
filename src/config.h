/* Building a configuration from its JSON file: ${ENV} expansion, validation with messages that name the
 * bad key, and the table of sections, each parsed by the layer that owns it. The result is the
 * reference-counted struct lx_config of src/core/conf.h that requests hold (so a reload can swap it). */
#ifndef LX_CONFIG_H
#define LX_CONFIG_H

#include <stddef.h>

struct lx_config;

/* Parse and validate. On failure returns NULL and writes "key.path: reason" into err. */
struct lx_config *lx_config_load_file(const char *path, char *err, size_t errlen);
struct lx_config *lx_config_load_buffer(const char *text, size_t len, char *err, size_t errlen);

#endif
