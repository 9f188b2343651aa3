// The flows a newcomer tries first, through today's real clients with their default settings, against
// the built-in mock provider (`mock/echo`, as in conf/llmux.json): structured output and tool loops in
// openai-node, the Vercel AI SDK, LangChain and the OpenAI Agents SDK (chat-completions mode). The only
// settings given are the base URL and a key, plus the ones docs name as required (AI SDK `.chat()`,
// Agents SDK `setOpenAIAPI('chat_completions')`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import OpenAI from 'openai';
import { zodResponseFormat, zodFunction } from 'openai/helpers/zod';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, generateObject, streamText, Output, tool as aiTool, stepCountIs } from 'ai';
import { ChatOpenAI } from '@langchain/openai';
import { tool as lcTool } from '@langchain/core/tools';
import { run, setOpenAIAPI } from '@openai/agents';
import { startLlmux } from './lib.mjs';
import { weatherArgs, weatherOf, forecaster } from './flows.mjs';

globalThis.AI_SDK_LOG_WARNINGS = false; // the AI SDK's console notices, not test output

let gw, baseURL;
before(async () => {
  gw = await startLlmux({ providers: { mock: { type: 'mock', models: ['echo'] } } });
  baseURL = `${gw.base}/v1`;
});
after(async () => { assert.equal((await gw.stop()).code, 0); });

const Event = z.object({
  name: z.string(),
  date: z.string(),
  attendees: z.array(z.string()).min(1),
  kind: z.enum(['meeting', 'party']),
  seats: z.number().int().min(1).max(500),
});

test('openai-node: chat.completions.parse with a zod response_format', async () => {
  const client = new OpenAI({ baseURL, apiKey: 'unused' });
  const c = await client.chat.completions.parse({
    model: 'mock/echo',
    messages: [{ role: 'user', content: 'Alice and Bob meet on Friday.' }],
    response_format: zodResponseFormat(Event, 'event'),
  });
  const parsed = c.choices[0].message.parsed;
  assert.deepEqual(Event.parse(parsed), parsed);
  // The same, streamed: the SDK parses the accumulated fragments.
  const final = await client.chat.completions.stream({
    model: 'mock/echo',
    messages: [{ role: 'user', content: 'Alice and Bob meet on Friday.' }],
    response_format: zodResponseFormat(Event, 'event'),
  }).finalChatCompletion();
  assert.deepEqual(Event.parse(final.choices[0].message.parsed), final.choices[0].message.parsed);
});

test('openai-node: runTools calls the zod function and ends with text quoting its result', async () => {
  const client = new OpenAI({ baseURL, apiKey: 'unused' });
  const seen = [];
  const runner = client.chat.completions.runTools({
    model: 'mock/echo',
    messages: [{ role: 'user', content: 'What is the weather in Paris? Use get_weather.' }],
    tools: [zodFunction({ name: 'get_weather', parameters: weatherArgs, function: (args) => { seen.push(args); return weatherOf(args); } })],
  });
  const text = await runner.finalContent();
  const streamed = await client.chat.completions.runTools({
    model: 'mock/echo', stream: true,
    messages: [{ role: 'user', content: 'What is the weather in Paris? Use get_weather.' }],
    tools: [zodFunction({ name: 'get_weather', parameters: weatherArgs, function: (args) => { seen.push(args); return weatherOf(args); } })],
  }).finalContent();
  assert.equal(streamed, text);
  assert.equal(seen.length, 2);
  assert.deepEqual(weatherArgs.parse(seen[0]), seen[0]);
  assert.match(text, /get_weather returned: .*"temperature":21/);
});

test('Vercel AI SDK: generateText with a tool, then generateObject', async () => {
  const openai = createOpenAI({ baseURL, apiKey: 'unused' });
  const r = await generateText({
    model: openai.chat('mock/echo'),
    tools: { weather: aiTool({ description: 'Weather for a city', inputSchema: weatherArgs, execute: async (a) => weatherOf(a) }) },
    stopWhen: stepCountIs(2),
    prompt: 'Use the weather tool for Rome.',
  });
  assert.equal(r.steps[0].toolCalls[0].toolName, 'weather');
  assert.deepEqual(weatherArgs.parse(r.steps[0].toolCalls[0].input), r.steps[0].toolCalls[0].input);
  assert.equal(r.steps[0].toolResults[0].output.temperature, 21);
  assert.match(r.text, /weather returned: .*21/);

  const s = streamText({
    model: openai.chat('mock/echo'),
    tools: { weather: aiTool({ description: 'Weather for a city', inputSchema: weatherArgs, execute: async (a) => weatherOf(a) }) },
    stopWhen: stepCountIs(2),
    prompt: 'Use the weather tool for Rome.',
  });
  assert.equal(await s.text, r.text);

  const o = await generateObject({ model: openai.chat('mock/echo'), schema: Event, prompt: 'Plan a party.' });
  assert.deepEqual(Event.parse(o.object), o.object);
  // generateObject's successor in AI SDK 7: generateText with an output setting.
  const t = await generateText({ model: openai.chat('mock/echo'), output: Output.object({ schema: Event }), prompt: 'Plan a party.' });
  assert.deepEqual(Event.parse(t.output), t.output);
});

test('LangChain: bindTools and withStructuredOutput', async () => {
  const model = new ChatOpenAI({ model: 'mock/echo', apiKey: 'unused', configuration: { baseURL } });
  const weather = lcTool(async (a) => JSON.stringify(weatherOf(a)), { name: 'get_weather', description: 'Weather for a city', schema: weatherArgs });
  const msg = await model.bindTools([weather]).invoke('Call get_weather for Lisbon.');
  assert.equal(msg.tool_calls.length, 1);
  assert.equal(msg.tool_calls[0].name, 'get_weather');
  assert.deepEqual(weatherArgs.parse(msg.tool_calls[0].args), msg.tool_calls[0].args);

  const out = await model.withStructuredOutput(Event).invoke('Plan a meeting.');
  assert.deepEqual(Event.parse(out), out);
});

test('OpenAI Agents SDK: an agent with a function tool, in chat-completions mode', async () => {
  const calls = [];
  const agent = forecaster(baseURL, calls);
  setOpenAIAPI('chat_completions');
  const result = await run(agent, 'What is the weather in Oslo? Use get_weather.');
  assert.equal(calls.length, 1);
  assert.deepEqual(weatherArgs.parse(calls[0]), calls[0]);
  assert.match(result.finalOutput, /get_weather returned: .*"temperature":21/);
});
