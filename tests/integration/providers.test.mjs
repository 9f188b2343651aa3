// Every provider type through real sockets with the official OpenAI SDK: text, streaming, a tool-call
// round trip with streamed deltas, usage, typed errors; plus /v1/providers and /v1/embeddings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startLlmux, postChat, userMsg, eventually } from './lib.mjs';

let mock, gw, client;
const TYPES = ['openai', 'anthropic', 'ollama', 'lmstudio', 'mlx', 'huggingface'];

before(async () => {
  mock = await startMock();
  const v1 = `${mock.url}/v1`;
  gw = await startLlmux({
    providers: {
      openai: { type: 'openai', base_url: v1, api_key: 'sk-o' },
      anthropic: { type: 'anthropic', base_url: mock.url, api_key: 'sk-ant-test' },
      ollama: { type: 'ollama', base_url: mock.url },
      lmstudio: { type: 'lmstudio', base_url: v1 },
      mlx: { type: 'mlx', base_url: v1 },
      huggingface: { type: 'huggingface', base_url: v1, api_key: 'hf-test' },
      local: { type: 'mock' },
    },
  });
  client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.base}/v1`, maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

const tools = [{ type: 'function', function: { name: 'lookup', description: 'look up', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

for (const type of TYPES) {
  test(`${type}: text`, async () => {
    const c = await client.chat.completions.create({ model: `${type}/m1`, messages: userMsg('hello there') });
    assert.equal(c.choices[0].message.content, 'echo: hello there');
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.object, 'chat.completion');
    assert.ok(c.id && c.created);
    assert.ok(c.usage.prompt_tokens > 0 && c.usage.completion_tokens > 0);
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  });

  test(`${type}: streaming with usage`, async () => {
    const stream = await client.chat.completions.create({ model: `${type}/m1;chunks=3`, messages: userMsg('stream this'), stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    let finish = null;
    let role = null;
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta;
      if (d?.role) role = d.role;
      text += d?.content ?? '';
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(role, 'assistant');
    assert.equal(text, 'echo: stream this');
    assert.equal(finish, 'stop');
    assert.ok(usage && usage.completion_tokens > 0);
  });

  test(`${type}: tool-call round trip with streamed deltas`, async () => {
    const messages = userMsg('weather in Paris');
    const first = await client.chat.completions.stream({ model: `${type}/m1;tool=1`, messages, tools }).finalChatCompletion();
    const msg = first.choices[0].message;
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    const call = msg.tool_calls[0];
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { q: 'weather in Paris' });
    assert.ok(call.id);
    messages.push(msg, { role: 'tool', tool_call_id: call.id, content: 'sunny' });
    const second = await client.chat.completions.create({ model: `${type}/m1`, messages, tools });
    assert.equal(second.choices[0].message.content, 'tool said: sunny');
  });

  test(`${type}: typed errors keep their status`, async () => {
    await assert.rejects(client.chat.completions.create({ model: `${type}/m1;status=429`, messages: userMsg('x') }), (e) => e instanceof OpenAI.RateLimitError);
    await assert.rejects(client.chat.completions.create({ model: `${type}/m1;status=401`, messages: userMsg('x') }), (e) => e instanceof OpenAI.AuthenticationError);
    await assert.rejects(client.chat.completions.create({ model: `${type}/m1;status=500`, messages: userMsg('x') }), (e) => e instanceof OpenAI.InternalServerError);
  });
}

test('anthropic: request reaches the upstream in its own dialect', async () => {
  await client.chat.completions.create({ model: 'anthropic/claude-x', messages: [{ role: 'system', content: 'be brief' }, ...userMsg('hi')], max_tokens: 50, stop: ['END'] });
  const last = await mock.last();
  assert.equal(last.path, '/v1/messages');
  assert.equal(last.headers['x-api-key'], 'sk-ant-test');
  assert.equal(last.headers['anthropic-version'], '2023-06-01');
  assert.equal(last.body.system, 'be brief');
  assert.equal(last.body.max_tokens, 50);
  assert.deepEqual(last.body.stop_sequences, ['END']);
});

test('anthropic: 529 overloaded keeps its status; a mid-stream error event ends the stream cleanly', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'anthropic/m;status=529', messages: userMsg('x') }), (e) => e.status === 529);
  const stream = await client.chat.completions.create({ model: 'anthropic/m;fault=stream_error', messages: userMsg('x'), stream: true });
  await assert.rejects(async () => { for await (const _ of stream); }, (e) => e instanceof OpenAI.APIError && /Overloaded/.test(e.message));
});

test('ollama: options, explicit stream flag, and a mid-stream error', async () => {
  await client.chat.completions.create({ model: 'ollama/llama3;chunks=2', messages: userMsg('x'), max_tokens: 7, temperature: 0.5 });
  const last = await mock.last();
  assert.equal(last.path, '/api/chat');
  assert.equal(last.body.stream, false);
  assert.equal(last.body.options.num_predict, 7);
  assert.equal(last.body.options.temperature, 0.5);
  const stream = await client.chat.completions.create({ model: 'ollama/m;fault=midstream_error', messages: userMsg('x'), stream: true });
  await assert.rejects(async () => { for await (const _ of stream); }, (e) => e instanceof OpenAI.APIError);
});

test('dropped parameters are listed in x-llmux-dropped-params', async () => {
  const res = await postChat(gw.base, { model: 'anthropic/m', messages: userMsg('x'), seed: 1, logit_bias: { 1: 2 } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-llmux-dropped-params'), 'seed,logit_bias');
  const ok = await postChat(gw.base, { model: 'openai/m', messages: userMsg('x'), seed: 1 });
  assert.equal(ok.headers.get('x-llmux-dropped-params'), null);
});

test('servers that omit id, created, object and usage still give strict clients whole answers', async () => {
  const c = await client.chat.completions.create({ model: 'lmstudio/m;sparse=1', messages: userMsg('sparse') });
  assert.ok(c.id && c.created && c.object === 'chat.completion' && c.usage);
  const stream = await client.chat.completions.create({ model: 'mlx/m;sparse=1', messages: userMsg('sparse'), stream: true, stream_options: { include_usage: true } });
  let usage = null;
  for await (const chunk of stream) {
    assert.ok(chunk.id && chunk.created && chunk.object === 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(usage, 'a usage chunk is supplied when the server sends none');
});

test('GET /v1/providers lists every type with capabilities and health', async () => {
  const res = await fetch(`${gw.base}/v1/providers`);
  assert.equal(res.status, 200);
  const { data } = await res.json();
  for (const type of [...TYPES, 'mock']) assert.ok(data.some((p) => p.type === type), type);
  const anth = data.find((p) => p.name === 'anthropic');
  assert.equal(anth.capabilities.embeddings, false);
  assert.equal(anth.capabilities.tools, true);
  const ol = data.find((p) => p.name === 'ollama');
  assert.equal(ol.health.reachable, true);
  assert.ok(ol.health.latency_ms >= 0);
  assert.equal(data.find((p) => p.name === 'openai').capabilities.embeddings, true);
});

test('POST /v1/embeddings for openai-family and ollama; 400 for a provider without', async () => {
  for (const model of ['openai/emb', 'lmstudio/emb', 'ollama/emb']) {
    const e = await client.embeddings.create({ model, input: ['one', 'two'] });
    assert.equal(e.object, 'list');
    assert.equal(e.data.length, 2);
    assert.equal(e.data[1].index, 1);
    assert.ok(e.data[0].embedding.length > 0);
    assert.notDeepEqual(e.data[0].embedding, e.data[1].embedding);
  }
  await assert.rejects(client.embeddings.create({ model: 'anthropic/x', input: 'a' }), (e) => e instanceof OpenAI.BadRequestError && /embeddings/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'local/echo', input: 'a' }), (e) => e instanceof OpenAI.BadRequestError);
});

test('models list includes the ollama tags', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.ok(ids.includes('ollama/llama-mock:latest'), ids.join(','));
  assert.ok(ids.includes('openai/mock-a'));
});
