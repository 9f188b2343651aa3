/* Fuzz target for the anthropic provider's stream translation: the same checks as fuzz_openai_stream.c, on
 * anthropic's dialect. */
#define FUZZ_PROVIDER lx_provider_anthropic
#define FUZZ_NAME "fuzz_anthropic_stream"
#include "fuzz_openai_stream.c"
