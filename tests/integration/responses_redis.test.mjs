// The Responses and Conversations tests (responses.test.mjs) again with the store in a real redis-server
// ("store": {"backend": "redis"}): the Redis backend answers every verb as the SQLite one does. Not under
// valgrind (the whole file twice would cost minutes there): the plain and ASan runs cover it, and
// store_redis.test.mjs runs the Redis backend under valgrind too.
import { test } from 'node:test';

if (process.env.LLMUX_WRAP) {
  test('the Responses tests on the Redis store', { skip: 'under valgrind' }, () => {});
} else {
  process.env.LLMUX_TEST_STORE = 'redis';
  await import('./responses.test.mjs');
}
