/* Provider type "huggingface": Hugging Face's inference router, or a Text Generation Inference endpoint
 * (set its base_url). OpenAI-compatible wire with its own defaults; the translation (and the filling-in
 * of fields such servers omit) is providers/openai.c's. */
#include "openai.h"

const struct lx_provider_type lx_provider_huggingface = {
    .name = "huggingface",
    .caps = LX_OPENAI_CAPS,
    .default_base_url = "https://router.huggingface.co/v1",
    .api_key_env = "HF_TOKEN", /* used when the config sets no api_key */
    LX_OPENAI_SLOTS,
};
