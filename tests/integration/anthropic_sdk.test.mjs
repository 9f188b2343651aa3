// The official Anthropic SDK for Node (@anthropic-ai/sdk) with its base URL set to llmux, answered by the
// mock upstream's OpenAI-, Ollama- and Anthropic-type dialects and by the built-in mock provider: create,
// stream with its event helpers and finalMessage(), a tool round trip, countTokens, typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startLlmux, everyTargetType } from './lib.mjs';

let mock, gw, client;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    providers: everyTargetType(mock),
    aliases: { 'claude-sonnet-4-5': 'local/echo' },
    auth: { keys: [{ name: 'sdk', key: 'sk-llmux-client' }] },
  });
  client = new Anthropic({ apiKey: 'sk-llmux-client', baseURL: gw.base, maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

const TARGETS = ['oai/m', 'ol/m', 'ant/m'];
const textOf = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

for (const model of TARGETS) {
  test(`${model}: messages.create`, async () => {
    const m = await client.messages.create({ model, max_tokens: 100, messages: [{ role: 'user', content: 'hello sdk' }] });
    assert.equal(m.type, 'message');
    assert.equal(textOf(m), 'echo: hello sdk');
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
  });

  test(`${model}: messages.stream with its event helpers and finalMessage()`, async () => {
    const stream = client.messages.stream({ model: `${model};chunks=4`, max_tokens: 100, messages: [{ role: 'user', content: 'hello stream' }] });
    let deltas = '';
    let started = false;
    stream.on('text', (d) => { deltas += d; });
    stream.on('streamEvent', (ev) => { if (ev.type === 'message_start') started = true; });
    const final = await stream.finalMessage();
    assert.ok(started);
    assert.equal(deltas, 'echo: hello stream');
    assert.equal(textOf(final), 'echo: hello stream');
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(await stream.finalText(), 'echo: hello stream');
  });

  test(`${model}: a tool round trip`, async () => {
    const tools = [{ name: 'lookup', description: 'Look something up', input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } }];
    const messages = [{ role: 'user', content: 'llmux' }];
    const stream = client.messages.stream({ model: `${model};tool=1`, max_tokens: 100, tools, messages });
    const inputs = [];
    stream.on('inputJson', (_partial, snapshot) => { inputs.push(snapshot); });
    const first = await stream.finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.equal(use.name, 'lookup');
    assert.deepEqual(use.input, { q: 'llmux' });
    if (model !== 'ol/m') assert.ok(inputs.length >= 1); // Ollama sends whole calls: one fragment
    const second = await client.messages.create({
      model, max_tokens: 100, tools,
      messages: [...messages, { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'found it' }] }],
    });
    assert.equal(textOf(second), 'tool said: found it');
  });

  test(`${model}: countTokens`, async () => {
    const r = await client.messages.countTokens({ model, messages: [{ role: 'user', content: 'count these four words' }] });
    assert.ok(Number.isInteger(r.input_tokens) && r.input_tokens > 0);
  });
}

test('the built-in mock as a Claude model name: parallel tools through the SDK\'s stream', async () => {
  const tools = ['get_weather', 'get_time'].map((name) => ({ name, input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }));
  const final = await client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 200, tools,
    messages: [{ role: 'user', content: 'use get_weather and get_time for Paris' }] }).finalMessage();
  const uses = final.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(uses.map((u) => u.name), ['get_weather', 'get_time']);
  for (const u of uses) assert.equal(typeof u.input.city, 'string');
  assert.equal(final.stop_reason, 'tool_use');
});

test('typed errors', async () => {
  const bad = new Anthropic({ apiKey: 'wrong', baseURL: gw.base, maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: 'oai/m', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.error?.error?.type === 'authentication_error');
  await assert.rejects(client.messages.create({ model: 'nosuch/m', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404);
  await assert.rejects(client.messages.create({ model: 'oai/m', max_tokens: 5, messages: [] }),
    (e) => e instanceof Anthropic.BadRequestError && /messages/.test(e.message));
  await assert.rejects(client.messages.create({ model: 'ant/m;status=429', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.RateLimitError);
  await assert.rejects(client.messages.create({ model: 'ant/m;status=529', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.InternalServerError && e.status === 529);
  // mid-stream: the SDK raises the error event as an APIError of its type
  await assert.rejects(client.messages.stream({ model: 'ant/m;chunks=4;fault=stream_error', max_tokens: 50,
    messages: [{ role: 'user', content: 'x y z' }] }).finalMessage(), (e) => e instanceof Anthropic.APIError && /Overloaded/.test(e.message));
});

test('Bearer tokens work as well as x-api-key', async () => {
  const bearer = new Anthropic({ authToken: 'sk-llmux-client', apiKey: null, baseURL: gw.base, maxRetries: 0 });
  const m = await bearer.messages.create({ model: 'local/echo', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
  assert.match(textOf(m), /hi/);
});

test('models.list in Anthropic\'s shape', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('claude-sonnet-4-5'));
});
