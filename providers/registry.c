/* The list of provider types. Adding a provider: its own file, and one line here. */
#include "provider.h"
#include "../src/core/common.h"

#include <stdio.h>
#include <string.h>

static const struct lx_provider_type *const lx_provider_types[] = {
    &lx_provider_openai,
    &lx_provider_anthropic,
    &lx_provider_ollama,
    &lx_provider_lmstudio,
    &lx_provider_mlx,
    &lx_provider_huggingface,
    &lx_provider_mock,
};

const struct lx_provider_type *lx_provider_type_find(const char *name)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_provider_types); i++)
        if (strcmp(lx_provider_types[i]->name, name) == 0)
            return lx_provider_types[i];
    return NULL;
}

const char *lx_provider_type_names(void)
{
    static char names[256];
    if (!names[0]) {
        size_t off = 0;
        for (size_t i = 0; i < LX_ARRAY_LEN(lx_provider_types); i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "",
                                    lx_provider_types[i]->name);
    }
    return names;
}
