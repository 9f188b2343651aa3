/* Provider type "lmstudio": LM Studio's local server. OpenAI-compatible wire with its own
 * defaults; the translation (and the filling-in of fields such servers omit) is providers/openai.c's. */
#include "openai.h"

const struct lx_provider_type lx_provider_lmstudio = {
    .name = "lmstudio",
    .caps = LX_OPENAI_CAPS,
    .default_base_url = "http://127.0.0.1:1234/v1",
    .api_key_env = NULL,
    LX_OPENAI_SLOTS,
};
