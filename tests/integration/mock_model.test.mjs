// The built-in mock provider as an offline model, through real sockets: tool calls with arguments valid
// for each tool's schema (checked with a real JSON Schema validator), streamed in fragments; tool results
// quoted; JSON for response_format; n choices; dropped parameters; one id per completion; backpressure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Validator } from '@cfworker/json-schema';
import { startLlmux, postChat, userMsg, sseData, rawConnect, eventually } from './lib.mjs';

let gw;
before(async () => {
  gw = await startLlmux({
    providers: { m: { type: 'mock' }, bulk: { type: 'mock', chunk_delay_ms: 0 } },
    aliases: { fast: 'm/echo' },
  });
});
after(async () => { assert.equal((await gw.stop()).code, 0); });

const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: {
  type: 'object', additionalProperties: false, required: ['city', 'unit', 'days'],
  properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer', minimum: 1, maximum: 7 } } } } };
const clock = { type: 'function', function: { name: 'get_time', parameters: {
  type: 'object', required: ['zone'], properties: { zone: { type: 'string', format: 'date-time' } } } } };

function valid(schema, value) {
  const r = new Validator(schema, '2020-12', false).validate(value);
  assert.ok(r.valid, `${JSON.stringify(value)} does not validate: ${JSON.stringify(r.errors.slice(0, 3))}`);
}

async function chat(body, headers) {
  const r = await postChat(gw.base, { model: 'm/echo', ...body }, headers);
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null };
}

// Rebuild a streamed answer the way SDKs do: content and tool calls accumulated per choice index.
function accumulate(sseText) {
  const events = sseData(sseText);
  assert.equal(events.at(-1), '[DONE]');
  const choices = [];
  const ids = new Set();
  let argFragments = 0;
  for (const e of events.slice(0, -1)) {
    const c = JSON.parse(e);
    ids.add(c.id);
    for (const ch of c.choices) {
      const acc = (choices[ch.index] ||= { content: '', tool_calls: [], finish_reason: null });
      if (ch.delta.content) acc.content += ch.delta.content;
      for (const tc of ch.delta.tool_calls || []) {
        const t = (acc.tool_calls[tc.index] ||= { id: tc.id, name: tc.function?.name, arguments: '' });
        if (tc.function?.arguments) { t.arguments += tc.function.arguments; argFragments++; }
      }
      if (ch.finish_reason) acc.finish_reason = ch.finish_reason;
    }
  }
  return { choices, ids, argFragments };
}

test('tool_choice "required": a tool call whose arguments validate against the tool schema', async () => {
  const r = await chat({ messages: userMsg('What should I wear?'), tools: [weather], tool_choice: 'required' });
  assert.equal(r.status, 200);
  const ch = r.json.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.content, null);
  assert.equal(ch.message.tool_calls.length, 1);
  const call = ch.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.match(call.id, /^call_/);
  valid(weather.function.parameters, JSON.parse(call.function.arguments));
});

test('streamed tool calls come in fragments and add up to the same valid arguments', async () => {
  const r = await chat({ stream: true, messages: userMsg('What should I wear?'), tools: [weather], tool_choice: 'required' });
  assert.equal(r.status, 200);
  const { choices, argFragments } = accumulate(r.text);
  assert.ok(argFragments > 1, 'arguments arrive in several fragments');
  assert.equal(choices[0].finish_reason, 'tool_calls');
  assert.equal(choices[0].tool_calls[0].name, 'get_weather');
  valid(weather.function.parameters, JSON.parse(choices[0].tool_calls[0].arguments));
});

test('tool_choice "auto" calls the tools the prompt names, in parallel; parallel_tool_calls false calls one', async () => {
  const messages = userMsg('Use get_weather for Oslo and get time for the same place.');
  const r = await chat({ messages, tools: [weather, clock] });
  const calls = r.json.choices[0].message.tool_calls;
  assert.deepEqual(calls.map((c) => c.function.name), ['get_weather', 'get_time']);
  assert.notEqual(calls[0].id, calls[1].id);
  valid(clock.function.parameters, JSON.parse(calls[1].function.arguments));
  const one = await chat({ messages, tools: [weather, clock], parallel_tool_calls: false });
  assert.equal(one.json.choices[0].message.tool_calls.length, 1);
  const streamed = accumulate((await chat({ stream: true, messages, tools: [weather, clock] })).text);
  assert.deepEqual(streamed.choices[0].tool_calls.map((c) => c.name), ['get_weather', 'get_time']);
});

test('"auto" without a named tool answers in words; "none" never calls; a named function is called', async () => {
  const plain = await chat({ messages: userMsg('Tell me a story.'), tools: [weather] });
  assert.equal(plain.json.choices[0].finish_reason, 'stop');
  assert.match(plain.json.choices[0].message.content, /You said: Tell me a story\.$/);
  const none = await chat({ messages: userMsg('Use get_weather now.'), tools: [weather], tool_choice: 'none' });
  assert.equal(none.json.choices[0].message.tool_calls, undefined);
  const named = await chat({ messages: userMsg('Anything.'), tools: [weather, clock],
    tool_choice: { type: 'function', function: { name: 'get_time' } } });
  assert.deepEqual(named.json.choices[0].message.tool_calls.map((c) => c.function.name), ['get_time']);
});

test('with the tool results in the next turn it answers in words quoting them', async () => {
  const first = await chat({ messages: userMsg('Use get_weather please.'), tools: [weather] });
  const call = first.json.choices[0].message.tool_calls[0];
  const messages = [...userMsg('Use get_weather please.'), first.json.choices[0].message,
    { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21, "sky": "clear"}' }];
  const r = await chat({ messages, tools: [weather] });
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  assert.equal(r.json.choices[0].message.content, 'The tool get_weather returned: {"temp_c": 21, "sky": "clear"}');
  const s = accumulate((await chat({ stream: true, messages, tools: [weather] })).text);
  assert.equal(s.choices[0].content, r.json.choices[0].message.content);
});

const schemas = {
  person: { type: 'object', additionalProperties: false, required: ['name', 'age', 'email', 'tags', 'address', 'role'],
    properties: { name: { type: 'string', minLength: 2, maxLength: 20 }, age: { type: 'integer', minimum: 18, maximum: 99 },
      email: { type: 'string', format: 'email' }, tags: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 5 },
      address: { type: 'object', additionalProperties: false, required: ['city', 'zip'],
        properties: { city: { type: 'string' }, zip: { type: ['string', 'null'] } } },
      role: { type: 'string', enum: ['admin', 'user'] } } },
  // The shape zod and pydantic produce for shared and recursive types.
  tree: { type: 'object', required: ['root'], additionalProperties: false, $defs: {
    node: { type: 'object', additionalProperties: false, required: ['label', 'children', 'weight'],
      properties: { label: { type: 'string' }, weight: { anyOf: [{ type: 'number', exclusiveMinimum: 0, maximum: 1 }, { type: 'null' }] },
        children: { type: 'array', items: { $ref: '#/$defs/node' } } } } },
    properties: { root: { $ref: '#/$defs/node' } } },
  tuple: { type: 'array', prefixItems: [{ const: 'point' }, { type: 'number', multipleOf: 0.5 }], items: false, minItems: 2 },
};

for (const [name, schema] of Object.entries(schemas)) {
  test(`response_format json_schema (strict) "${name}": the content validates, streamed or not`, async () => {
    const response_format = { type: 'json_schema', json_schema: { name, strict: true, schema } };
    const r = await chat({ messages: userMsg('Make one up.'), response_format });
    assert.equal(r.status, 200);
    valid(schema, JSON.parse(r.json.choices[0].message.content));
    const s = accumulate((await chat({ stream: true, messages: userMsg('Make one up.'), response_format })).text);
    valid(schema, JSON.parse(s.choices[0].content));
  });
}

test('response_format json_object answers a JSON object; an unknown type is a 400 naming it', async () => {
  const r = await chat({ messages: userMsg('Reply in JSON'), response_format: { type: 'json_object' } });
  const obj = JSON.parse(r.json.choices[0].message.content);
  assert.equal(typeof obj, 'object');
  assert.match(obj.reply, /Reply in JSON/);
  const bad = await chat({ messages: userMsg('x'), response_format: { type: 'xml' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'response_format.type');
});

test('n gives n choices, streamed or not; n out of range is a 400 naming n', async () => {
  const r = await chat({ messages: userMsg('hello'), n: 3 });
  assert.deepEqual(r.json.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.json.choices) assert.match(c.message.content, /You said: hello$/);
  const s = accumulate((await chat({ stream: true, messages: userMsg('hello'), n: 3 })).text);
  assert.equal(s.choices.length, 3);
  for (const c of s.choices) assert.equal(c.finish_reason, 'stop');
  for (const n of [0, 129, 'two']) {
    const bad = await chat({ messages: userMsg('hello'), n });
    assert.equal(bad.status, 400, `n=${n}`);
    assert.equal(bad.json.error.param, 'n');
  }
});

test('tool_choice errors are 400s naming tool_choice', async () => {
  const unknown = await chat({ messages: userMsg('x'), tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json.error.param, 'tool_choice');
  const noTools = await chat({ messages: userMsg('x'), tool_choice: 'required' });
  assert.equal(noTools.status, 400);
  assert.equal(noTools.json.error.param, 'tool_choice');
});

test('parameters the mock does not honour are listed in X-Llmux-Dropped-Params; honoured ones are not', async () => {
  const r = await chat({ messages: userMsg('hi'), temperature: 0.3, top_p: 0.9, logprobs: true, top_logprobs: 2,
    seed: 7, n: 1, max_tokens: 50, stop: ['zzz'], user: 'u1', tools: [weather], tool_choice: 'none' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.headers.get('x-llmux-dropped-params').split(',').sort(), ['logprobs', 'temperature', 'top_logprobs', 'top_p']);
  const clean = await chat({ messages: userMsg('hi'), stream: true, stream_options: { include_usage: true } });
  assert.equal(clean.headers.get('x-llmux-dropped-params'), null);
});

test('stop cuts the answer at the first stop sequence', async () => {
  const r = await chat({ messages: userMsg('alpha beta gamma'), stop: ['gamma', 'beta'] });
  assert.equal(r.json.choices[0].message.content, 'This is the llmux mock provider. You said: alpha ');
  assert.equal(r.json.choices[0].finish_reason, 'stop');
});

test('every completion has its own id: batch items, fanout members, choices of one stream', async () => {
  const req = { model: 'm/echo', messages: userMsg('same') };
  const batch = await (await fetch(`${gw.base}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ requests: [req, req, req] }) })).json();
  const batchIds = batch.results.map((x) => x.response.id);
  assert.equal(new Set(batchIds).size, 3);
  const fan = await (await fetch(`${gw.base}/v1/fanout`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ models: ['m/echo', 'fast', 'm/echo'], messages: userMsg('same') }) })).json();
  const fanIds = fan.results.map((x) => x.response.id);
  assert.equal(new Set([...fanIds, ...batchIds]).size, 6);
  // One stream is one completion: all its chunks share one id.
  assert.equal(accumulate((await chat({ stream: true, messages: userMsg('a b c'), n: 2 })).text).ids.size, 1);
});

// A client that does not read must not make llmux buffer the whole answer: the mock pauses like a
// paused upstream. Each reply here is ~500k words (~100 MB of SSE); 4 of them unbuffered would be
// about 400 MB (34 MB with backpressure, 385 MB without, measured). Skipped under valgrind, and the
// memory check is skipped under ASan, whose quarantine keeps freed memory resident: their memory use
// says nothing about llmux's.
test('the mock honours backpressure: non-reading clients hold little memory, and a reader then gets everything', { skip: !!process.env.LLMUX_WRAP }, async (t) => {
  const rss = () => Number(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
  const words = 'word '.repeat(500000);
  const body = JSON.stringify({ model: 'bulk/echo', stream: true, messages: userMsg(words) });
  const base = rss();
  const socks = [];
  for (let i = 0; i < 4; i++) {
    const s = await rawConnect(gw.port);
    s.setNoDelay(true);
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let got = 0;
    s.pause();
    s.once('readable', () => { got = 1; }); // headers arrived: the answer is being produced
    socks.push({ s, seen: () => got });
  }
  await eventually(async () => socks.every((x) => x.seen()), (v) => v, 60000, 'every stream to start');
  // The answers have been produced as far as the clients let them; memory stays far below the answers' size.
  const grown = rss() - base;
  if (process.env.LLMUX_SANITIZED) t.diagnostic(`grew by ${Math.round(grown / 1048576)} MB (not checked under ASan)`);
  else assert.ok(grown < 200 * 1024 * 1024, `llmux grew by ${Math.round(grown / 1048576)} MB for 4 paused streams`);
  // One client now reads to the end: production resumes and the whole answer arrives.
  const reader = socks[0].s;
  let text = '';
  reader.setEncoding('utf8');
  reader.on('data', (d) => { text = (text + d).slice(-200); });
  reader.resume();
  await eventually(async () => text, (t) => t.includes('data: [DONE]'), 120000, 'the whole stream');
  for (const x of socks) x.s.destroy();
});
