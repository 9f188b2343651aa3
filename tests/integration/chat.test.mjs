// Chat completions through llmux to the project's mock upstream and to the built-in mock provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, postChat, userMsg, sseData } from './lib.mjs';

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    providers: {
      up: upstreamProvider(mock, { api_key: '${LX_TEST_UP_KEY}', headers: { 'X-Extra': 'extra-value' }, models: ['configured-model'] }),
      local: { type: 'mock', chunks: 3 },
    },
    aliases: { fast: 'up/gpt-alias', offline: 'local/echo' },
  }, { env: { LX_TEST_UP_KEY: 'sk-test-secret-abc123' } });
});
after(async () => {
  const { code } = await gw.stop();
  assert.equal(code, 0);
  await mock.stop();
});

test('non-stream answer is the upstream chat.completion', async () => {
  const res = await postChat(gw.base, { model: 'up/gpt-x', messages: userMsg('hello world') });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, 'echo: hello world');
  assert.equal(body.model, 'gpt-x');
  assert.ok(body.usage.total_tokens > 0);
});

test('upstream gets the model without the provider prefix, the key, extra headers and no Expect', async () => {
  await postChat(gw.base, { model: 'up/org/model-with/slashes', messages: userMsg('x') });
  const last = await mock.last();
  assert.equal(last.body.model, 'org/model-with/slashes');
  assert.equal(last.headers.authorization, 'Bearer sk-test-secret-abc123');
  assert.equal(last.headers['x-extra'], 'extra-value');
  assert.equal(last.headers.expect, undefined);
});

test('alias routes to its target', async () => {
  const res = await postChat(gw.base, { model: 'fast', messages: userMsg('via alias') });
  assert.equal(res.status, 200);
  assert.equal((await mock.last()).body.model, 'gpt-alias');
  assert.equal((await res.json()).choices[0].message.content, 'echo: via alias');
});

test('stream relays every event in order and ends with [DONE]', async () => {
  const res = await postChat(gw.base, { model: 'up/gpt-x;chunks=5', stream: true, messages: userMsg('stream me please') });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const events = sseData(await res.text());
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'echo: stream me please');
  assert.equal(chunks.filter((c) => c.choices[0]?.delta?.content).length, 5);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.ok(!chunks.some((c) => c.usage), 'no usage chunk unless asked');
});

test('stream_options.include_usage yields a final usage chunk', async () => {
  const res = await postChat(gw.base, { model: 'up/gpt-x', stream: true, stream_options: { include_usage: true }, messages: userMsg('count me') });
  const events = sseData(await res.text());
  assert.equal(events.at(-1), '[DONE]');
  const last = JSON.parse(events.at(-2));
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0);
  assert.equal((await mock.last()).body.stream_options.include_usage, true);
});

test('stream events reach the client as they are produced, not at the end', async () => {
  // 4 chunks 300 ms apart: the first chunk must be readable while the upstream is still producing.
  const res = await postChat(gw.base, { model: 'up/gpt-x;chunks=4;interval=300', stream: true, messages: userMsg('a b c d') });
  const reader = res.body.getReader();
  let first = '';
  while (!first.includes('\n\n')) first += new TextDecoder().decode((await reader.read()).value);
  const stats = await mock.stats();
  assert.equal(stats.active, 1, 'the upstream response is still in progress when the first event arrived');
  while (!(await reader.read()).done);
});

test('a lone model\'s stream opening reaches the client at once, before the upstream has any content', { timeout: 30000 }, async () => {
  // The second event comes a minute later: with one model only, nothing else could answer, so llmux has no
  // reason to hold the role chunk back until content arrives (with fallbacks it does, see resilience tests).
  const res = await postChat(gw.base, { model: 'up/gpt-x;chunks=2;interval=60000', stream: true, messages: userMsg('a b') });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-llmux-model'), 'up/gpt-x;chunks=2;interval=60000');
  const reader = res.body.getReader();
  let first = '';
  while (!first.includes('\n\n')) first += new TextDecoder().decode((await reader.read()).value);
  const chunk = JSON.parse(sseData(first)[0]);
  assert.equal(chunk.choices[0].delta.role, 'assistant');
  assert.ok(!chunk.choices[0].delta.content);
  await reader.cancel();
});

test('built-in mock provider answers offline, stream and non-stream', async () => {
  const res = await postChat(gw.base, { model: 'offline', messages: userMsg('no network needed') });
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.match(body.choices[0].message.content, /You said: no network needed$/);
  const s = await postChat(gw.base, { model: 'local/echo', stream: true, stream_options: { include_usage: true }, messages: userMsg('no network needed') });
  const events = sseData(await s.text());
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), body.choices[0].message.content);
  assert.equal(chunks.filter((c) => c.choices[0]?.delta?.content).length, 3);
  assert.deepEqual(chunks.at(-1).usage, body.usage);
});

test('mock provider honours max_tokens with finish_reason length', async () => {
  const body = await (await postChat(gw.base, { model: 'local/echo', max_tokens: 3, messages: userMsg('x') })).json();
  assert.equal(body.choices[0].message.content.split(' ').length, 3);
  assert.equal(body.choices[0].finish_reason, 'length');
});

test('healthz answers 200', async () => {
  const res = await fetch(`${gw.base}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('the upstream key never appears in responses or logs', async () => {
  const res = await postChat(gw.base, { model: 'up/gpt-x;status=401', messages: userMsg('x') });
  const text = await res.text();
  assert.ok(!text.includes('sk-test-secret-abc123'));
  assert.ok(!gw.log().includes('sk-test-secret-abc123'));
});

test('one JSON access-log line per request with id, route, model, provider, status, timings, tokens and bytes', async () => {
  const res = await postChat(gw.base, { model: 'up/log-check', messages: userMsg('x') }, { 'x-request-id': 'trace-42.a' });
  const body = await res.json();
  assert.equal(res.headers.get('x-request-id'), 'trace-42.a');
  const line = await gw.waitAccess((l) => l.request_id === 'trace-42.a');
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/v1/chat/completions');
  assert.equal(line.model, 'up/log-check');
  assert.equal(line.provider, 'up/log-check');
  assert.equal(line.status, 200);
  assert.equal(line.key, null);
  assert.equal(line.error, null);
  assert.ok(line.duration_ms >= 0 && line.ttfb_ms >= 0 && line.ttfb_ms <= line.duration_ms + 0.1);
  assert.equal(line.prompt_tokens, body.usage.prompt_tokens);
  assert.equal(line.completion_tokens, body.usage.completion_tokens);
  assert.ok(line.bytes_in > 0 && line.bytes_out > 0);
  assert.equal(line.calls, 1, 'one model call');
  assert.ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(line.time));
});

test('streams reuse the connections earlier streams left open, and open new ones only when all are busy', async () => {
  // llmux asks curl for a fresh connection when none to the upstream is known to be idle (curl's own search
  // walks every connection it has): rounds of 5 streams at once still need 5 connections in all.
  const before = await mock.stats();
  for (let round = 0; round < 3; round++) {
    const texts = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
      const res = await postChat(gw.base, { model: 'up/reuse;chunks=3;interval=20', stream: true, messages: userMsg(`r${round} s${i}`) });
      assert.equal(res.status, 200);
      return res.text();
    }));
    for (const t of texts) assert.equal(sseData(t).at(-1), '[DONE]');
  }
  const after = await mock.stats();
  assert.equal(after.requests - before.requests, 15);
  // 5 for the streams, plus one for each stats request.
  assert.ok(after.connections_total - before.connections_total <= 5 + 2, `new upstream connections: ${after.connections_total - before.connections_total}`);
});

test('upstream connections are reused across requests (keep-alive)', async () => {
  const before = await mock.stats();
  for (let i = 0; i < 20; i++) {
    const res = await postChat(gw.base, { model: 'up/keepalive', messages: userMsg(`n${i}`) });
    assert.equal(res.status, 200);
    await res.text();
  }
  const after = await mock.stats();
  assert.equal(after.requests - before.requests, 20);
  // The stats requests themselves open at most one connection each; llmux's 20 requests share one.
  assert.ok(after.connections_total - before.connections_total <= 2, `new upstream connections: ${after.connections_total - before.connections_total}`);
});
