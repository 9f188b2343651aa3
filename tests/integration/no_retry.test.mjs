// Errors that a retry cannot fix reach the user at once through real clients with their default retry
// settings: a disabled provider (404, retried by none), and deadlines (X-Should-Retry: false, which
// openai-node honours; the AI SDK and LangChain need maxRetries: 0 for those, as the docs say).
// Each request the gateway served is an access-log line: a retry would be a second one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText } from 'ai';
import { ChatOpenAI } from '@langchain/openai';
import { startLlmux } from './lib.mjs';

let gw, baseURL;
before(async () => {
  gw = await startLlmux({
    providers: { slow: { type: 'mock', latency_ms: 5000 }, nokey: { type: 'openai', api_key: '${LX_NO_RETRY_UNSET}' } },
  });
  baseURL = `${gw.base}/v1`;
});
after(async () => { assert.equal((await gw.stop()).code, 0); });

// How many requests for `model` the gateway answered, once everything before this call is logged: a
// marker request is answered after any retry the client made, so its log line comes after theirs.
let markers = 0;
async function served(model) {
  const marker = `marker-${++markers}`;
  await fetch(`${gw.base}/healthz`, { headers: { 'x-request-id': marker } });
  await gw.waitAccess((l) => l.request_id === marker);
  return gw.access().filter((l) => l.model === model).length;
}

const messages = [{ role: 'user', content: 'hi' }];

test('a disabled provider: one request through openai-node, the AI SDK and LangChain, with the fix in the message', async () => {
  const fix = /LX_NO_RETRY_UNSET is not set \(providers\.nokey\.api_key needs it\)/;
  const client = new OpenAI({ baseURL, apiKey: 'unused' });
  await assert.rejects(client.chat.completions.create({ model: 'nokey/a', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'provider_disabled' && fix.test(e.message));
  assert.equal(await served('nokey/a'), 1);

  const openai = createOpenAI({ baseURL, apiKey: 'unused' });
  await assert.rejects(generateText({ model: openai.chat('nokey/b'), prompt: 'hi' }), (e) => e.statusCode === 404 && fix.test(e.message));
  assert.equal(await served('nokey/b'), 1);

  const lc = new ChatOpenAI({ model: 'nokey/c', apiKey: 'unused', configuration: { baseURL } });
  await assert.rejects(lc.invoke('hi'), (e) => fix.test(e.message));
  assert.equal(await served('nokey/c'), 1);
});

test('deadline_exceeded: openai-node (default retries) asks once; the AI SDK with maxRetries: 0 asks once', async () => {
  const headers = { 'x-llmux-timeout-ms': '100' };
  const client = new OpenAI({ baseURL, apiKey: 'unused' });
  await assert.rejects(client.chat.completions.create({ model: 'slow/a', messages }, { headers }),
    (e) => e.status === 504 && e.code === 'deadline_exceeded');
  assert.equal(await served('slow/a'), 1);

  const openai = createOpenAI({ baseURL, apiKey: 'unused', headers });
  await assert.rejects(generateText({ model: openai.chat('slow/b'), prompt: 'hi', maxRetries: 0 }), (e) => e.statusCode === 504);
  assert.equal(await served('slow/b'), 1);

  const lc = new ChatOpenAI({ model: 'slow/c', apiKey: 'unused', maxRetries: 0, configuration: { baseURL, defaultHeaders: headers } });
  await assert.rejects(lc.invoke('hi'), (e) => /deadline/.test(e.message));
  assert.equal(await served('slow/c'), 1);
});
