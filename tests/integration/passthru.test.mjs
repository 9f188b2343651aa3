// The pass-through path (issue 14, docs/performance.md) through real sockets: an upstream that replays the
// recorded OpenAI bodies and streams of ../shared/fixtures. A chat request goes upstream as the client's
// bytes with only the model replaced; a complete answer comes back as the upstream's bytes; a stream's
// events come back byte for byte, with usage counted (and hidden when the client did not ask for it). The
// general path gives the same fields: provider `gen` is the same upstream with "passthrough": false, so
// llmux parses and rebuilds everything; and a /v1/batch item, which always builds its answer with jansson.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { startLlmux, postChat, sseData, httpRequest } from './lib.mjs';

const FIXTURES = process.env.LX_FIXTURES || new URL('../../../shared/fixtures/', import.meta.url).pathname;
const fixture = (name) => readFileSync(`${FIXTURES}/${name}`);

// The upstream: the model names the fixture to answer with; every request body it got is kept.
let upstream, gw;
const received = [];
before(async () => {
  upstream = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push(body);
      const { model } = JSON.parse(body);
      const bytes = fixture(model);
      const status = /_error_(\d{3})_/.exec(model);
      res.writeHead(status ? Number(status[1]) : 200, { 'content-type': model.endsWith('.sse') ? 'text/event-stream' : 'application/json' });
      res.end(bytes);
    });
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const base_url = `http://127.0.0.1:${upstream.address().port}/v1`;
  gw = await startLlmux({ providers: { rec: { type: 'openai', base_url }, gen: { type: 'openai', base_url, passthrough: false } },
    retries: { max: 0 } });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await new Promise((r) => upstream.close(r));
});

// The data payloads of a recorded stream, [DONE] left out.
function recordedEvents(name) {
  return sseData(fixture(name).toString()).filter((d) => d !== '[DONE]');
}

test('a non-stream answer comes back as the upstream sent it, and the request went up as the client sent it', async () => {
  const name = 'openai_chat_nonstream_tool_call.json';
  // Odd spacing and an escape in the client's body: they go upstream untouched, only the model changes.
  const body = `{ "messages" : [ {"role":"user", "content":"weather in \\u00c9dinburgh?"} ],\n "model": "rec/${name}", "temperature" : 0 }`;
  const before = received.length;
  const res = await postChat(gw.base, body, { 'x-request-id': 'pt-nonstream' });
  assert.equal(res.status, 200);
  const text = await res.text();
  const want = fixture(name).toString();
  assert.equal(text, want.endsWith('\n') ? want : `${want}\n`);
  assert.equal(received.length, before + 1);
  assert.equal(received.at(-1).toString(), body.replace(`"rec/${name}"`, `"${name}"`));
  const line = await gw.waitAccess((l) => l.request_id === 'pt-nonstream');
  assert.equal(line.prompt_tokens, 76);
  assert.equal(line.completion_tokens, 24);
  assert.equal(line.bytes_out, Buffer.byteLength(text));
});

test('the general path (a /v1/batch item) gives the same fields', async () => {
  const name = 'openai_chat_nonstream_tool_call.json';
  const fast = await (await postChat(gw.base, { model: `rec/${name}`, messages: [{ role: 'user', content: 'x' }] })).json();
  const res = await httpRequest(gw.port, { path: '/v1/batch', body: { requests: [{ model: `rec/${name}`, messages: [{ role: 'user', content: 'x' }] }] } });
  assert.equal(res.status, 200);
  const item = JSON.parse(res.text).results[0];
  assert.equal(item.status, 200);
  assert.deepEqual(item.response, fast);
});

for (const name of ['openai_chat_stream_text_with_usage.sse', 'openai_chat_stream_tool_call.sse', 'openai_chat_stream_refusal.sse',
  'openai_chat_stream_logprobs.sse', 'openai_chat_stream_finish_length.sse']) {
  for (const usage of [true, false]) {
    test(`${name}, usage ${usage ? 'asked for' : 'not asked for'}: every event as the upstream sent it, then [DONE]`, async () => {
      const id = `pt-${name}-${usage}`;
      const before = received.length;
      const res = await postChat(gw.base, { model: `rec/${name}`, stream: true, messages: [{ role: 'user', content: 'x' }],
        ...(usage ? { stream_options: { include_usage: true } } : {}) }, { 'x-request-id': id });
      assert.equal(res.status, 200);
      const events = sseData(await res.text());
      assert.equal(events.at(-1), '[DONE]');
      // llmux asks every upstream stream for usage, to count tokens.
      assert.equal(JSON.parse(received[before]).stream_options.include_usage, true);
      const recorded = recordedEvents(name);
      const usageChunk = (d) => JSON.parse(d).choices.length === 0;
      const want = usage ? recorded : recorded.filter((d) => !usageChunk(d));
      assert.deepEqual(events.slice(0, -1), want);
      const line = await gw.waitAccess((l) => l.request_id === id);
      const u = recorded.map((d) => JSON.parse(d).usage).find((x) => x);
      assert.equal(line.status, 200);
      assert.equal(line.prompt_tokens, u ? u.prompt_tokens : 0);
      assert.equal(line.completion_tokens, u ? u.completion_tokens : 0);
    });
  }
}

// The same request through both paths: what went upstream and what came back, with the access log line.
let calls = 0;
async function bothPaths(name, body) {
  const out = {};
  for (const p of ['rec', 'gen']) {
    const id = `both-${p}-${name}-${++calls}`;
    const before = received.length;
    const res = await postChat(gw.base, { ...body, model: `${p}/${name}` }, { 'x-request-id': id });
    const text = await res.text();
    assert.equal(received.length, before + 1); // one upstream call (retries are off)
    out[p] = { status: res.status, type: res.headers.get('content-type'), text, sent: JSON.parse(received.at(-1)),
      line: await gw.waitAccess((l) => l.request_id === id) };
  }
  return out;
}

function sameBookkeeping(a, b) {
  for (const k of ['status', 'prompt_tokens', 'completion_tokens', 'stream', 'error_type'])
    assert.deepEqual(a.line[k], b.line[k], `access log ${k}`);
}

test('pass-through and general path: the same request goes upstream and the same fields come back (non-stream)', async () => {
  const name = 'openai_chat_nonstream_tool_call.json';
  const { rec, gen } = await bothPaths(name, { messages: [{ role: 'user', content: 'weather in Édinburgh?' }], temperature: 0,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }] });
  assert.equal(rec.status, 200);
  assert.equal(gen.status, 200);
  assert.equal(rec.text, `${fixture(name).toString().trimEnd()}\n`); // the upstream's bytes
  assert.notEqual(gen.text, rec.text); // rebuilt by jansson: other whitespace...
  assert.deepEqual(JSON.parse(gen.text), JSON.parse(rec.text)); // ...the same fields
  assert.deepEqual(gen.sent, rec.sent);
  assert.equal(rec.type, gen.type);
  sameBookkeeping(rec, gen);
});

for (const name of ['openai_error_400_context_length.json', 'openai_error_401_invalid_api_key.json']) {
  test(`pass-through and general path: the same error answer for ${name}`, async () => {
    const { rec, gen } = await bothPaths(name, { messages: [{ role: 'user', content: 'x' }] });
    assert.equal(rec.status, Number(/_(\d{3})_/.exec(name)[1]));
    assert.equal(gen.status, rec.status);
    assert.deepEqual(JSON.parse(gen.text), JSON.parse(rec.text));
    assert.equal(JSON.parse(rec.text).error.message, JSON.parse(fixture(name)).error.message);
    sameBookkeeping(rec, gen);
  });
}

for (const name of ['openai_chat_stream_text_with_usage.sse', 'openai_chat_stream_tool_call.sse', 'openai_chat_stream_refusal.sse',
  'openai_chat_stream_logprobs.sse', 'openai_chat_stream_finish_length.sse']) {
  for (const usage of [true, false]) {
    test(`pass-through and general path: the same events for ${name}, usage ${usage ? 'asked for' : 'not asked for'}`, async () => {
      const { rec, gen } = await bothPaths(name, { stream: true, messages: [{ role: 'user', content: 'x' }],
        ...(usage ? { stream_options: { include_usage: true } } : {}) });
      assert.equal(rec.status, 200);
      assert.equal(gen.status, 200);
      assert.equal(rec.type, gen.type);
      assert.deepEqual(gen.sent, rec.sent);
      const fast = sseData(rec.text), general = sseData(gen.text);
      assert.equal(fast.at(-1), '[DONE]');
      assert.equal(general.at(-1), '[DONE]');
      assert.deepEqual(general.slice(0, -1).map((d) => JSON.parse(d)), fast.slice(0, -1).map((d) => JSON.parse(d)));
      // The pass-through events are the recorded ones byte for byte (usage left out unless asked for).
      const want = recordedEvents(name).filter((d) => usage || JSON.parse(d).choices.length > 0);
      assert.deepEqual(fast.slice(0, -1), want);
      sameBookkeeping(rec, gen);
    });
  }
}
