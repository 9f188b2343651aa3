/* Fuzz target for the anthropic provider's response translation: the same checks as fuzz_openai_response.c, on
 * anthropic's dialect. */
#define FUZZ_PROVIDER lx_provider_anthropic
#define FUZZ_NAME "fuzz_anthropic_response"
#include "fuzz_openai_response.c"
