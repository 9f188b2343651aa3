/* Fuzz target for the ollama provider's response translation: the same checks as fuzz_openai_response.c, on
 * ollama's dialect. */
#define FUZZ_PROVIDER lx_provider_ollama
#define FUZZ_NAME "fuzz_ollama_response"
#include "fuzz_openai_response.c"
