/* Provider type "mlx": mlx_lm.server (Apple MLX). OpenAI-compatible wire with its own
 * defaults; the translation (and the filling-in of fields such servers omit) is providers/openai.c's. */
#include "openai.h"

const struct lx_provider_type lx_provider_mlx = {
    .name = "mlx",
    .caps = LX_OPENAI_CAPS,
    .default_base_url = "http://127.0.0.1:8080/v1",
    .api_key_env = NULL,
    LX_OPENAI_SLOTS,
};
