// The Responses and Conversations tests (responses.test.mjs) again with the store in a real redis-server
// ("store": {"backend": "redis"}): the Redis backend answers every verb as the SQLite one does.
process.env.LLMUX_TEST_STORE = 'redis';
await import('./responses.test.mjs');
