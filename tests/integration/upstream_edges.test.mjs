// Upstream edge cases (issue 11), through real sockets against the mock upstream: a stream whose protocol
// ended while its HTTP body stays open, HTTP 200 answers that are error objects, the bound on a buffered
// upstream answer, /v1/embeddings parse errors, and aliases named like another provider's models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import OpenAI from 'openai';
import { startMock, startLlmux, writeConfig, postChat, userMsg, sseData, eventually, LLMUX_BIN } from './lib.mjs';

const LIMIT = 1048576; // limits.max_upstream_body_bytes of this file's gateway
// A hang guard for requests whose old behaviour was to wait for a long timeout (not a speed check).
const GUARD_MS = 60000;

let mock, gw;
before(async () => {
  mock = await startMock();
  // idle_ms is far beyond any hang guard here: an answer that waits for it fails the test instead of passing late.
  const slow = { timeouts: { idle_ms: 600000 } };
  gw = await startLlmux({
    limits: { max_upstream_body_bytes: LIMIT },
    providers: {
      up: { type: 'openai', base_url: `${mock.url}/v1`, ...slow },
      once: { type: 'openai', base_url: `${mock.url}/v1`, retries: { max: 0 } },
      ant: { type: 'anthropic', base_url: mock.url, api_key: 'sk-ant-test', ...slow },
      oll: { type: 'ollama', base_url: mock.url, ...slow },
    },
    aliases: { quota_then_ok: ['up/x;ok_error=insufficient_quota', 'once/x'] },
  });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

async function freshStats() {
  // Whatever an earlier test left open has closed before the counters restart.
  await eventually(() => mock.stats(), (s) => s.active === 0, GUARD_MS, 'no upstream response in progress');
  await mock.reset();
}

function chat(model, extra = {}) {
  return postChat(gw.base, { model, messages: userMsg('hi there'), ...extra }, {});
}

async function expectError(res, status, fields = {}) {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const { error } = await res.json();
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof RegExp) assert.match(error[k], v, `error.${k}`);
    else assert.equal(error[k], v, `error.${k}`);
  }
  return error;
}

// ---- the protocol's end ends the stream ----

for (const [provider, what] of [['up', 'data: [DONE]'], ['ant', 'message_stop'], ['oll', 'done:true']]) {
  test(`${provider}: after ${what} the stream ends with [DONE] at once and the held-open upstream connection is closed`, async () => {
    await freshStats();
    const res = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: `${provider}/x;fault=hold_open`, stream: true, stream_options: { include_usage: true }, messages: userMsg('hi there') }),
      signal: AbortSignal.timeout(GUARD_MS),
    });
    assert.equal(res.status, 200);
    const events = sseData(await res.text());
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.ok(chunks.every((c) => !c.error), 'no error event: the answer was whole');
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'echo: hi there');
    assert.equal(chunks.at(-1).usage.completion_tokens, 3, 'the usage chunk came before [DONE]');
    // The mock still holds the body open; llmux is the one that hangs up.
    const s = await eventually(() => mock.stats(), (v) => v.active === 0, GUARD_MS, 'the upstream connection to close');
    assert.equal(s.aborted, 1, 'the upstream saw its connection closed before its body ended');
  });
}

test('a stream whose body ends right after its end marker is read to the end (its connection stays reusable)', async () => {
  await freshStats();
  for (const provider of ['up', 'ant', 'oll']) {
    const events = sseData(await (await chat(`${provider}/x`, { stream: true })).text());
    assert.equal(events.at(-1), '[DONE]');
  }
  const s = await eventually(() => mock.stats(), (v) => v.active === 0, GUARD_MS, 'the responses to finish');
  assert.equal(s.aborted, 0, 'no upstream response was cut');
});

// ---- HTTP 200 with an error object ----

test('a 200 whose body is insufficient_quota is relayed as 429 with its message, type and code, and not retried', async () => {
  await freshStats();
  const e = await expectError(await chat('up/x;ok_error=insufficient_quota'), 429, {
    type: 'insufficient_quota', code: 'insufficient_quota', param: null, message: /exceeded your current quota/,
  });
  assert.ok(!/Provider 'up'/.test(e.message), 'the upstream\'s own words, not a generic 502');
  assert.equal((await mock.stats()).requests, 1, 'a spent quota is not retried on the same provider');
  // The official SDK sees the error type it knows.
  const client = new OpenAI({ apiKey: 'unused', baseURL: `${gw.base}/v1`, maxRetries: 0 });
  await assert.rejects(client.chat.completions.create({ model: 'up/x;ok_error=insufficient_quota', messages: userMsg('x') }),
    (err) => err instanceof OpenAI.RateLimitError && err.code === 'insufficient_quota' && err.type === 'insufficient_quota');
});

test('a spent quota falls back to the next model of an alias', async () => {
  const res = await chat('quota_then_ok');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-llmux-model'), 'once/x');
  assert.equal((await res.json()).choices[0].message.content, 'echo: hi there');
});

test('200-with-error statuses follow the error\'s code, then its type; unknown ones are 502', async () => {
  const cases = [
    ['rate_limit_exceeded', 429, 'tokens', 'rate_limit_exceeded'],
    ['invalid_api_key', 401, 'invalid_request_error', 'invalid_api_key'],
    ['model_not_found', 404, 'invalid_request_error', 'model_not_found'],
    ['context_length_exceeded', 400, 'invalid_request_error', 'context_length_exceeded'],
    ['server_error', 500, 'server_error', null],
    ['mystery', 502, 'mystery_error', 'mystery'],
  ];
  for (const [name, status, type, code] of cases) {
    await expectError(await chat(`once/x;ok_error=${name}`), status, { type, code });
  }
  const e = await expectError(await chat('once/x;ok_error=context_length_exceeded'), 400, {});
  assert.equal(e.param, 'messages');
});

test('a stream whose first event is an error object gets that error\'s status, not a 200 stream', async () => {
  await expectError(await chat('up/x;ok_error=insufficient_quota', { stream: true }), 429, { code: 'insufficient_quota', type: 'insufficient_quota' });
  await expectError(await chat('once/x;ok_error=invalid_api_key', { stream: true }), 401, { code: 'invalid_api_key' });
});

test('/v1/embeddings: a 200 error object is relayed the same way', async () => {
  const res = await fetch(`${gw.base}/v1/embeddings`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'up/e;ok_error=insufficient_quota', input: 'hello' }),
  });
  await expectError(res, 429, { code: 'insufficient_quota', message: /exceeded your current quota/ });
});

// ---- /v1/embeddings parse errors ----

test('/v1/embeddings JSON parse errors give line and column, in the same words as chat', async () => {
  const bad = '{"model": "up/e",\n  "input": [1,}';
  const post = (path) => fetch(`${gw.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bad });
  const emb = await expectError(await post('/v1/embeddings'), 400, { code: 'invalid_json', type: 'invalid_request_error', message: /line 2, column \d+/ });
  const chatErr = await expectError(await post('/v1/chat/completions'), 400, { code: 'invalid_json' });
  assert.equal(emb.message, chatErr.message);
  await expectError(await fetch(`${gw.base}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1]' }), 400, { code: 'invalid_json', message: /must be a JSON object/ });
});

// ---- limits.max_upstream_body_bytes ----

test('a non-stream answer over limits.max_upstream_body_bytes is a 502 at once, and its transfer is cut', async () => {
  await freshStats();
  // The mock sends the first half (2 MiB) and then stalls for ever: only llmux's own limit can end this.
  const res = await fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'up/x;content_bytes=4194304;fault=stall_midstream', messages: userMsg('x') }),
    signal: AbortSignal.timeout(GUARD_MS),
  });
  await expectError(res, 502, { type: 'upstream_error', code: 'upstream_response_too_large', message: new RegExp(`limits\\.max_upstream_body_bytes \\(${LIMIT} bytes\\)`) });
  const s = await eventually(() => mock.stats(), (v) => v.active === 0, GUARD_MS, 'the upstream connection to close');
  assert.equal(s.aborted, 1, 'the upstream saw its answer cut off');
  assert.equal(s.requests, 1, 'an oversized answer is not retried');
});

test('answers under the limit, and streams of any size, pass whole', async () => {
  const under = await chat('up/x;content_bytes=1000000');
  assert.equal(under.status, 200);
  assert.equal((await under.json()).choices[0].message.content.length, 1000000);
  const events = sseData(await (await chat('up/x;content_bytes=3000000', { stream: true })).text());
  assert.equal(events.at(-1), '[DONE]');
  const total = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('').length;
  assert.equal(total, 3000000, 'a stream is relayed as it comes, not held whole');
});

test('limits.max_upstream_body_bytes is validated', () => {
  for (const v of [0, 1023, 2 ** 31, '16MiB']) {
    const r = spawnSync(LLMUX_BIN, ['--check-config', '--config', writeConfig({ limits: { max_upstream_body_bytes: v } })], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /limits\.max_upstream_body_bytes: expected an integer from 1024 to 1073741824/);
  }
  const ok = spawnSync(LLMUX_BIN, ['--check-config', '--config', writeConfig({ limits: { max_upstream_body_bytes: 33554432 } })], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
});

// ---- aliases named like another provider's models ----

test('an alias named like PROVIDER/MODEL of another provider: warned by --check-config and at start-up; the alias wins', async () => {
  const cfg = {
    auth: { keys: [{ name: 'mock-only', key: 'sk-llmux-mock-only', models: ['local/*'] }] },
    providers: { local: { type: 'mock' }, up: { type: 'openai', base_url: `${mock.url}/v1` } },
    aliases: { 'local/x': 'up/gpt-x', 'local/y': 'local/z', fast: 'up/x' },
  };
  const r = spawnSync(LLMUX_BIN, ['--check-config', '--config', writeConfig(cfg)], { encoding: 'utf8' });
  assert.equal(r.status, 0, 'a warning, not an error');
  const warnings = r.stderr.split('\n').filter((l) => / warn /.test(l));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0], /aliases\.local\/x: named like a model of provider 'local' but routes to 'up\/gpt-x'/);
  assert.match(warnings[0], /a key limited to "local\/\*" reaches 'up'/);

  const g = await startLlmux(cfg);
  try {
    await g.waitLog(/warn aliases\.local\/x: named like a model of provider 'local'/);
    // Aliases are looked up before PROVIDER/MODEL: "local/x" is the alias, so this key reaches 'up'.
    const res = await postChat(g.base, { model: 'local/x', messages: userMsg('via alias') }, { authorization: 'Bearer sk-llmux-mock-only' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-llmux-model'), 'up/gpt-x');
    assert.equal((await res.json()).choices[0].message.content, 'echo: via alias');
    // A reload warns the same way.
    const file = g.proc.spawnargs[g.proc.spawnargs.indexOf('--config') + 1];
    writeFileSync(file, JSON.stringify({ ...cfg, aliases: { 'local/w': ['local/a', 'up/other'] } }));
    g.proc.kill('SIGHUP');
    await g.waitLog(/warn aliases\.local\/w: named like a model of provider 'local' but routes to 'up\/other'/);
    await g.waitLog(/reload: configuration .* applied/);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});
