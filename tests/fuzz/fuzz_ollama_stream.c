/* Fuzz target for the ollama provider's stream translation: the same checks as fuzz_openai_stream.c, on
 * ollama's dialect. */
#define FUZZ_PROVIDER lx_provider_ollama
#define FUZZ_NAME "fuzz_ollama_stream"
#include "fuzz_openai_stream.c"
