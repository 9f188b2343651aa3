// Every failure a client can meet, through real sockets: bad requests, unknown models and routes,
// oversized bodies, upstream error statuses, unreachable, broken and silent upstreams.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, startLlmux, upstreamProvider, postChat, userMsg, sseData, rawConnect } from './lib.mjs';

let mock, gw, closedPort;
before(async () => {
  mock = await startMock();
  // A port with nobody listening: bind, note, close.
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  closedPort = srv.address().port;
  await new Promise((r) => srv.close(r));
  gw = await startLlmux({
    limits: { max_body_bytes: 65536 },
    providers: {
      up: upstreamProvider(mock),
      quick: upstreamProvider(mock, { timeouts: { first_byte_ms: 300, idle_ms: 300 } }),
      capped: upstreamProvider(mock, { timeouts: { total_ms: 500 } }),
      dead: { type: 'openai', base_url: `http://127.0.0.1:${closedPort}/v1` },
      nokey: { type: 'openai', api_key: '${LX_TEST_SURELY_UNSET}' },
    },
  });
});
after(async () => {
  const { code } = await gw.stop();
  assert.equal(code, 0);
  await mock.stop();
});

async function expectError(res, status, { code, param, type, message } = {}) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const body = await res.json();
  assert.ok(body.error, 'OpenAI error shape');
  for (const k of ['message', 'type', 'param', 'code']) assert.ok(k in body.error, `error.${k} present`);
  assert.equal(typeof body.error.message, 'string');
  if (code !== undefined) assert.equal(body.error.code, code);
  if (param !== undefined) assert.equal(body.error.param, param);
  if (type !== undefined) assert.equal(body.error.type, type);
  if (message) assert.match(body.error.message, message);
  return body.error;
}

test('invalid JSON → 400', async () => {
  await expectError(await postChat(gw.base, '{"model": "up/x",'), 400, { code: 'invalid_json', type: 'invalid_request_error' });
});

test('missing or ill-typed model and messages → 400 naming the field', async () => {
  await expectError(await postChat(gw.base, { messages: userMsg('x') }), 400, { param: 'model' });
  await expectError(await postChat(gw.base, { model: 7, messages: userMsg('x') }), 400, { param: 'model' });
  await expectError(await postChat(gw.base, { model: 'up/x' }), 400, { param: 'messages' });
  await expectError(await postChat(gw.base, { model: 'up/x', messages: 'hi' }), 400, { param: 'messages' });
  await expectError(await postChat(gw.base, { model: 'up/x', messages: [{ content: 'x' }] }), 400, { param: 'messages[0].role' });
});

test('unknown provider or alias → 404 model_not_found', async () => {
  await expectError(await postChat(gw.base, { model: 'nobody/x', messages: userMsg('x') }), 404, { code: 'model_not_found', message: /nobody/ });
  await expectError(await postChat(gw.base, { model: 'gpt-4o', messages: userMsg('x') }), 404, { code: 'model_not_found' });
});

test('unknown route → 404, wrong method → 405 with Allow', async () => {
  await expectError(await fetch(`${gw.base}/v1/nothing`), 404, { code: 'unknown_url' });
  const res = await fetch(`${gw.base}/v1/chat/completions`);
  assert.equal(res.headers.get('allow'), 'POST');
  await expectError(res, 405);
  await expectError(await fetch(`${gw.base}/v1/models`, { method: 'DELETE' }), 405);
});

test('body over limits.max_body_bytes → 413 (Content-Length and chunked)', async () => {
  const big = JSON.stringify({ model: 'up/x', messages: userMsg('a'.repeat(70000)) });
  await expectError(await postChat(gw.base, big), 413, { code: 'request_too_large' });
  // Chunked upload with no Content-Length.
  const stream = new ReadableStream({ start(c) { for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('x'.repeat(10000))); c.close(); } });
  const res = await fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' } });
  await expectError(res, 413, { code: 'request_too_large' });
});

test('provider disabled for a missing variable → 404 (no SDK retries it) naming the variable and the config key', async () => {
  const res = await postChat(gw.base, { model: 'nokey/gpt-4o', messages: userMsg('x') });
  assert.equal(res.headers.get('x-should-retry'), 'false');
  const e = await expectError(res, 404, { code: 'provider_disabled', param: 'model' });
  assert.match(e.message, /environment variable LX_TEST_SURELY_UNSET is not set \(providers\.nokey\.api_key needs it\)/);
  assert.match(e.message, /enabled provider \(up, quick, capped, dead\)/);
});

test('deadline_exceeded carries X-Should-Retry: false (a retry would get the same budget and fail the same way)', async () => {
  const res = await postChat(gw.base, { model: 'up/x;latency=3000', messages: userMsg('x') }, { 'x-llmux-timeout-ms': '100' });
  assert.equal(res.headers.get('x-should-retry'), 'false');
  await expectError(res, 504, { code: 'deadline_exceeded' });
});

test('paths of APIs llmux does not serve → 404 saying what it serves and which client setting to use', async () => {
  const served = /llmux serves POST \/v1\/chat\/completions.*GET \/v1\/models, \/v1\/models\/\{id\}, \/v1\/providers, \/v1\/mcp\/servers, \/v1\/mcp\/tools and \/v1\/events/;
  const cases = [
    ['/v1/messages/batches', /^Unknown request URL: POST \/v1\/messages\/batches\. llmux serves/], // Anthropic's batches: not served
    ['/v1/completions', /legacy Completions API.*ChatOpenAI/],
    ['/v1/batches', /POST \/v1\/batch/],
    ['/v1/nothing', /^Unknown request URL: POST \/v1\/nothing\. llmux serves/],
  ];
  for (const [path, hint] of cases) {
    const e = await expectError(await fetch(`${gw.base}${path}`, { method: 'POST', body: '{}' }), 404, { code: 'unknown_url' });
    assert.match(e.message, hint, path);
    assert.match(e.message, served, path);
  }
});

test('upstream error statuses pass through with their message', async () => {
  const e401 = await expectError(await postChat(gw.base, { model: 'up/x;status=401', messages: userMsg('x') }), 401, { code: 'invalid_api_key' });
  assert.match(e401.message, /mock error 401/);
  const r429 = await postChat(gw.base, { model: 'up/x;status=429', messages: userMsg('x') });
  assert.equal(r429.headers.get('retry-after'), '1');
  await expectError(r429, 429, { code: 'rate_limit_exceeded' });
  await expectError(await postChat(gw.base, { model: 'up/x;status=500', messages: userMsg('x') }), 500, { message: /mock error 500/ });
  // Before any byte was streamed, a stream request gets the real status too.
  await expectError(await postChat(gw.base, { model: 'up/x;status=503', stream: true, messages: userMsg('x') }), 503);
});

test('upstream unreachable → 502', async () => {
  await expectError(await postChat(gw.base, { model: 'dead/x', messages: userMsg('x') }), 502, { code: 'upstream_unreachable' });
  await expectError(await postChat(gw.base, { model: 'dead/x', stream: true, messages: userMsg('x') }), 502, { code: 'upstream_unreachable' });
});

test('upstream answering something that is not its protocol → 502', async () => {
  for (const fault of ['garbage', 'html', 'http_garbage', 'refuse', 'reset_headers']) {
    await expectError(await postChat(gw.base, { model: `up/x;fault=${fault}`, messages: userMsg('x') }), 502);
    await expectError(await postChat(gw.base, { model: `up/x;fault=${fault}`, stream: true, messages: userMsg('x') }), 502);
  }
});

test('upstream silent before headers → 504 after first_byte_ms', async () => {
  await expectError(await postChat(gw.base, { model: 'quick/x;fault=stall_headers', messages: userMsg('x') }), 504, { code: 'upstream_timeout', message: /first_byte_ms/ });
  await expectError(await postChat(gw.base, { model: 'quick/x;fault=stall_headers', stream: true, messages: userMsg('x') }), 504, { code: 'upstream_timeout' });
});

async function streamEnding(model) {
  const res = await postChat(gw.base, { model, stream: true, messages: userMsg('one two three four') });
  assert.equal(res.status, 200);
  const events = sseData(await res.text());
  const last = JSON.parse(events.at(-1));
  assert.notEqual(events.at(-1), '[DONE]');
  assert.ok(events.length >= 2, 'chunks before the failure were delivered');
  return last.error;
}

test('stream that stalls after it began ends with an SSE error event (idle_ms)', async () => {
  const err = await streamEnding('quick/x;fault=stall_midstream');
  assert.equal(err.code, 'upstream_timeout');
  assert.match(err.message, /idle_ms/);
});

test('stream still flowing at total_ms ends with an SSE error event (total_ms), its idle limit rearmed by every chunk', async () => {
  // 40 chunks 50 ms apart take 2 s: every gap is far inside idle_ms, and the whole is past total_ms.
  const err = await streamEnding('capped/x;chunks=40;interval=50');
  assert.equal(err.code, 'upstream_timeout');
  assert.match(err.message, /total_ms of 500 ms/);
});

test('stream cut by the upstream ends with an SSE error event', async () => {
  const err = await streamEnding('up/x;fault=close_midstream');
  assert.equal(err.type, 'upstream_error');
});

test('upstream 10 MiB body is relayed whole (non-stream and stream)', async () => {
  const res = await postChat(gw.base, { model: 'up/x;fault=big', messages: userMsg('x') });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.choices[0].message.content.length, 10 * 1024 * 1024);
  const s = await postChat(gw.base, { model: 'up/x;fault=big', stream: true, messages: userMsg('x') });
  const events = sseData(await s.text());
  assert.equal(events.at(-1), '[DONE]');
  const total = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('').length;
  assert.equal(total, 10 * 1024 * 1024);
});

test('SSE lines split across reads at every byte position decode the same', async () => {
  const whole = sseData(await (await postChat(gw.base, { model: 'up/x;chunks=3', stream: true, messages: userMsg('split test') })).text());
  for (const k of [1, 2, 3, 7, 13]) {
    const got = sseData(await (await postChat(gw.base, { model: `up/x;chunks=3;split=${k}`, stream: true, messages: userMsg('split test') })).text());
    const strip = (evs) => evs.map((e) => (e === '[DONE]' ? e : JSON.parse(e).choices.map((c) => c.delta)));
    assert.deepEqual(strip(got), strip(whole), `split=${k}`);
  }
});

test('the gateway stays healthy after all of that', async () => {
  assert.equal((await fetch(`${gw.base}/healthz`)).status, 200);
  const res = await postChat(gw.base, { model: 'up/x', messages: userMsg('still here') });
  assert.equal((await res.json()).choices[0].message.content, 'echo: still here');
});

test('request headers cut off mid-way do not disturb others', async () => {
  const s = await rawConnect(gw.port);
  s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le');
  s.destroy();
  assert.equal((await fetch(`${gw.base}/healthz`)).status, 200);
});
