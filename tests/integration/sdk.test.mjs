// The official OpenAI SDK for Node, with its base URL set to llmux, against an OpenAI-compatible upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startLlmux, upstreamProvider, eventually } from './lib.mjs';

let mock, gw, client;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({ providers: { up: upstreamProvider(mock, { models: ['configured'] }), local: { type: 'mock' } } });
  client = new OpenAI({ apiKey: 'unused-by-llmux', baseURL: `${gw.base}/v1`, maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

const messages = [{ role: 'user', content: 'hello sdk' }];

test('create', async () => {
  const c = await client.chat.completions.create({ model: 'up/gpt-x', messages });
  assert.equal(c.choices[0].message.content, 'echo: hello sdk');
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.ok(c.usage.total_tokens > 0);
});

test('streaming with for await', async () => {
  const stream = await client.chat.completions.create({ model: 'up/gpt-x;chunks=4', messages, stream: true });
  let text = '';
  let n = 0;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    n++;
  }
  assert.equal(text, 'echo: hello sdk');
  assert.ok(n >= 6);
});

test('stream_options.include_usage', async () => {
  const stream = await client.chat.completions.create({ model: 'up/gpt-x', messages, stream: true, stream_options: { include_usage: true } });
  let usage = null;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  assert.ok(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens);
});

test('.stream() helper and finalChatCompletion()', async () => {
  const runner = client.chat.completions.stream({ model: 'up/gpt-x;chunks=3', messages });
  const deltas = [];
  runner.on('content', (delta) => deltas.push(delta));
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'echo: hello sdk');
  assert.equal(deltas.join(''), 'echo: hello sdk');
});

test('tool calls, non-stream and streamed', async () => {
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  const c = await client.chat.completions.create({ model: 'up/gpt-x;tool=1', messages, tools });
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  const call = c.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'lookup');
  assert.deepEqual(JSON.parse(call.function.arguments), { q: 'hello sdk' });
  const final = await client.chat.completions.stream({ model: 'up/gpt-x;tool=1', messages, tools }).finalChatCompletion();
  const scall = final.choices[0].message.tool_calls[0];
  assert.equal(scall.function.name, 'lookup');
  assert.deepEqual(JSON.parse(scall.function.arguments), { q: 'hello sdk' });
});

test('models.list()', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const id of ['up/mock-a', 'up/mock-b', 'up/configured', 'local/echo']) assert.ok(ids.includes(id), id);
});

test('typed errors: NotFoundError, RateLimitError, AuthenticationError, BadRequestError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nobody/x', messages }), (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: 'up/x;status=429', messages }), (e) => e instanceof OpenAI.RateLimitError && e.status === 429);
  await assert.rejects(client.chat.completions.create({ model: 'up/x;status=401', messages }), (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: 'up/x', messages: [] }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
});

test('an error after the stream began surfaces as an APIError in the iterator', async () => {
  const stream = await client.chat.completions.create({ model: 'up/x;fault=close_midstream', messages, stream: true });
  await assert.rejects(async () => { for await (const _ of stream); }, (e) => e instanceof OpenAI.APIError);
});

test('aborting a stream closes the upstream connection', async () => {
  const before = (await mock.stats()).aborted;
  const stream = await client.chat.completions.create({ model: 'up/x;chunks=100;interval=100', messages, stream: true });
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) break; // leaving the loop aborts the request
  }
  await eventually(() => mock.stats(), (s) => s.aborted === before + 1 && s.active === 0, 10000, 'upstream closed');
});
