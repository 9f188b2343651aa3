// Real clients of the Responses and Conversations APIs pointed at llmux with their default settings (only
// a base URL and a key): openai-node (responses.create / stream / retrieve / inputItems, conversations.*),
// the OpenAI Agents SDK in its default Responses mode (an agent with one function tool, two turns), and the
// Vercel AI SDK's default OpenAI provider (createOpenAI({ baseURL })(model): the Responses API) with
// generateText and streamText; against the built-in mock provider and an Anthropic-type provider on the
// project's mock upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool as aiTool, stepCountIs } from 'ai';
import { run, setOpenAIAPI } from '@openai/agents';
import { startLlmux, startMock } from './lib.mjs';
import { weatherArgs, weatherOf, forecaster } from './flows.mjs';

globalThis.AI_SDK_LOG_WARNINGS = false; // the AI SDK's console notices, not test output

let gw, mock, client, baseURL;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    providers: {
      mock: { type: 'mock', models: ['echo'] },
      anth: { type: 'anthropic', base_url: mock.url, api_key: 'sk-ant-test' },
    },
  });
  baseURL = `${gw.base}/v1`;
  client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

for (const model of ['mock/echo', 'anth/claude-x']) {
  test(`openai-node ${model}: responses.create twice with previous_response_id, retrieve, inputItems`, async () => {
    const r1 = await client.responses.create({ model, input: 'Say hello.', instructions: 'Be short.' });
    assert.equal(r1.status, 'completed');
    assert.ok(r1.output_text.length > 0);
    const r2 = await client.responses.create({ model, input: 'And again.', previous_response_id: r1.id });
    assert.equal(r2.previous_response_id, r1.id);
    if (model.startsWith('anth')) {
      assert.equal(r2.output_text, 'echo: And again.');
      const sent = (await mock.last()).body.messages;
      assert.equal(sent.length, 3); // the first turn's question and answer, then this one
    }
    const got = await client.responses.retrieve(r2.id);
    assert.equal(got.id, r2.id);
    assert.equal(got.output_text, r2.output_text);
    const items = [];
    for await (const item of client.responses.inputItems.list(r2.id)) items.push(item);
    assert.deepEqual(items.map((i) => i.content[0].text), ['And again.']);
    await client.responses.delete(r1.id);
    await assert.rejects(client.responses.retrieve(r1.id), (e) => e instanceof OpenAI.NotFoundError);
  });

  test(`openai-node ${model}: responses.stream gives the text as it comes and the final response`, async () => {
    const deltas = [];
    const stream = client.responses.stream({ model: model.startsWith('anth') ? `${model};chunks=3` : model, input: 'Stream a short answer.' });
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(final.status, 'completed');
    assert.equal(deltas.join(''), final.output_text);
    assert.ok(deltas.length >= 1);
    const again = await client.responses.retrieve(final.id);
    assert.equal(again.output_text, final.output_text);
  });
}

test('openai-node: a stream that fails mid-way rejects with the upstream error (the error event)', async () => {
  const stream = client.responses.stream({ model: 'anth/m;fault=stream_error', input: 'x' });
  await assert.rejects(stream.finalResponse(), (e) => e instanceof OpenAI.APIError && /Overloaded/.test(e.message));
});

test('openai-node: conversations.create / retrieve / update / items.* / delete, and turns on it', async () => {
  const conv = await client.conversations.create({ metadata: { topic: 'demo' }, items: [{ type: 'message', role: 'user', content: 'My name is Ada.' }] });
  assert.match(conv.id, /^conv_/);
  assert.deepEqual((await client.conversations.retrieve(conv.id)).metadata, { topic: 'demo' });
  assert.deepEqual((await client.conversations.update(conv.id, { metadata: { topic: 'renamed' } })).metadata, { topic: 'renamed' });
  const r = await client.responses.create({ model: 'anth/m', input: 'What is my name?', conversation: conv.id });
  // The conversation's item went first: the Anthropic provider joins the two user turns, the mock echoes both.
  assert.equal(r.output_text, 'echo: My name is Ada. What is my name?');
  const added = await client.conversations.items.create(conv.id, { items: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Note this.' }] }] });
  assert.equal(added.data.length, 1);
  const all = [];
  for await (const item of client.conversations.items.list(conv.id, { order: 'asc' })) all.push(item);
  assert.deepEqual(all.map((i) => i.content[0].text), ['My name is Ada.', 'What is my name?', 'echo: My name is Ada. What is my name?', 'Note this.']);
  const one = await client.conversations.items.retrieve(added.data[0].id, { conversation_id: conv.id });
  assert.equal(one.id, added.data[0].id);
  await client.conversations.items.delete(added.data[0].id, { conversation_id: conv.id });
  const deleted = await client.conversations.delete(conv.id);
  assert.equal(deleted.deleted, true);
  await assert.rejects(client.conversations.retrieve(conv.id), (e) => e instanceof OpenAI.NotFoundError);
});

test('OpenAI Agents SDK (Responses mode): an agent with one function tool, two turns', async () => {
  const calls = [];
  const agent = forecaster(baseURL, calls);
  setOpenAIAPI('responses');
  const first = await run(agent, 'What is the weather in Oslo? Use get_weather.');
  assert.equal(calls.length, 1);
  assert.deepEqual(weatherArgs.parse(calls[0]), calls[0]);
  assert.match(first.finalOutput, /get_weather returned: .*"temperature":21/);
  assert.match(first.lastResponseId, /^resp_/);
  // The second turn continues on the server's copy of the first.
  const second = await run(agent, 'Thanks. Say goodbye.', { previousResponseId: first.lastResponseId });
  assert.ok(second.finalOutput.length > 0);
  const stored = await client.responses.retrieve(second.lastResponseId);
  assert.ok(stored.previous_response_id, 'the second turn was chained on the server');
});

test('OpenAI Agents SDK (Responses mode) on an Anthropic-type upstream: the tool reaches it, two turns chained on the server', async () => {
  const calls = [];
  const agent = forecaster(baseURL, calls, 'anth/claude-x');
  setOpenAIAPI('responses');
  const first = await run(agent, 'Hello from Oslo.');
  assert.equal(first.finalOutput, 'echo: Hello from Oslo.');
  const sent1 = (await mock.last()).body;
  assert.equal(sent1.system, 'Answer weather questions with the tool.');
  assert.deepEqual(sent1.tools.map((t) => t.name), ['get_weather']);
  assert.deepEqual(Object.keys(sent1.tools[0].input_schema.properties), ['city', 'unit']);
  const second = await run(agent, 'Goodbye.', { previousResponseId: first.lastResponseId });
  assert.equal(second.finalOutput, 'echo: Goodbye.');
  // The upstream got the first turn from llmux's store, not from the SDK.
  assert.deepEqual((await mock.last()).body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.equal((await client.responses.retrieve(second.lastResponseId)).previous_response_id, first.lastResponseId);
  assert.equal(calls.length, 0);
});

for (const model of ['mock/echo', 'anth/claude-x']) {
  test(`Vercel AI SDK default provider (${model}): generateText and streamText over the Responses API`, async () => {
    const openai = createOpenAI({ baseURL, apiKey: 'unused' });
    const r = await generateText({ model: openai(model), prompt: 'Say something short.' });
    assert.ok(r.text.length > 0);
    assert.match(r.response.id, /^resp_/);
    assert.ok(r.usage.outputTokens > 0);
    const s = streamText({ model: openai(model), prompt: 'Say something short.' });
    const parts = [];
    for await (const p of s.textStream) parts.push(p);
    assert.equal(parts.join(''), await s.text);
    assert.ok((await s.text).length > 0);
    if (model === 'mock/echo') {
      // A tool step and the answer after it.
      const t = await generateText({
        model: openai(model),
        tools: { weather: aiTool({ description: 'Weather for a city', inputSchema: weatherArgs, execute: async (a) => weatherOf(a) }) },
        stopWhen: stepCountIs(2),
        prompt: 'Use the weather tool for Rome.',
      });
      assert.equal(t.steps[0].toolCalls[0].toolName, 'weather');
      assert.match(t.text, /weather returned: .*21/);
    }
  });
}
