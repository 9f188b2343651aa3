// Operating llmux in front of paid keys, through real sockets: client keys (401/403/429, rpm, tpm,
// in-flight), the loopback rule, admin_listen, /metrics, the JSON access log with --log and SIGUSR1,
// X-Request-Id, and the limits (max_connections, max_header_bytes, read_timeout_ms against a slowloris
// client, max_request_ms).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startLlmux, upstreamProvider, httpRequest, postChat, userMsg, sseData, rawConnect, eventually, accessLines } from './lib.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock.stop(); });

const APP_KEY = 'sk-llmux-app-0123456789';
const OPS_KEY = 'sk-llmux-ops-abcdefghij';
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const bearer = (k) => ({ authorization: `Bearer ${k}` });
const chat = (port, model, headers = {}, extra = {}) => httpRequest(port, { body: { model, messages: userMsg('hi'), ...extra }, headers });
const errOf = (r) => JSON.parse(r.text).error;

function keyed(extraKeys = [], more = {}) {
  return {
    providers: { up: upstreamProvider(mock, { models: ['m1'] }), m: { type: 'mock', models: ['echo'] } },
    aliases: { fast: 'up/m1' },
    auth: { keys: [
      { name: 'app', key: '${LLMUX_TEST_APP_KEY}', models: ['fast', 'up/*'], rpm: 3 },
      { name: 'ops', sha256: sha256(OPS_KEY) },
      ...extraKeys,
    ] },
    ...more,
  };
}
const keyEnv = { env: { LLMUX_TEST_APP_KEY: APP_KEY } };

test('client keys: no key 401, unknown key 401, model not allowed 403, over rpm 429 with Retry-After', async () => {
  const gw = await startLlmux(keyed(), keyEnv);
  const none = await chat(gw.port, 'fast');
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  assert.equal(errOf(none).code, 'missing_api_key');
  assert.equal(errOf(none).type, 'invalid_request_error');
  const wrong = await chat(gw.port, 'fast', bearer('sk-not-a-key-at-all'));
  assert.equal(wrong.status, 401);
  assert.equal(errOf(wrong).code, 'invalid_api_key');

  // The sha256 form and x-api-key work; ops may use any model.
  assert.equal((await chat(gw.port, 'm/echo', { 'x-api-key': OPS_KEY })).status, 200);
  const denied = await chat(gw.port, 'm/echo', bearer(APP_KEY));
  assert.equal(denied.status, 403);
  assert.equal(errOf(denied).code, 'model_not_allowed');
  assert.equal(errOf(denied).type, 'permission_error');

  // rpm 3: the 403 above was admitted (it counts), so two more pass and the next is refused.
  assert.equal((await chat(gw.port, 'fast', bearer(APP_KEY))).status, 200);
  assert.equal((await chat(gw.port, 'up/m1', bearer(APP_KEY))).status, 200);
  const over = await chat(gw.port, 'fast', bearer(APP_KEY));
  assert.equal(over.status, 429);
  assert.equal(errOf(over).code, 'rate_limit_exceeded');
  assert.ok(Number(over.headers['retry-after']) >= 1, 'Retry-After in seconds');
  // Another key has its own budget.
  assert.equal((await chat(gw.port, 'fast', bearer(OPS_KEY))).status, 200);

  // Open without a key: /healthz and /metrics. /v1/models lists only what the key may use.
  assert.equal((await httpRequest(gw.port, { method: 'GET', path: '/healthz' })).status, 200);
  assert.equal((await httpRequest(gw.port, { method: 'GET', path: '/metrics' })).status, 200);
  assert.equal((await httpRequest(gw.port, { method: 'GET', path: '/v1/models' })).status, 401);
  const list = async (k) => JSON.parse((await httpRequest(gw.port, { method: 'GET', path: '/v1/models', headers: bearer(k) })).text).data.map((m) => m.id);
  const opsModels = await list(OPS_KEY);
  assert.ok(['fast', 'm/echo', 'up/m1'].every((id) => opsModels.includes(id)), 'ops sees everything');


  // Logs name keys, never show them.
  const lines = gw.access();
  assert.ok(lines.some((l) => l.key === 'app' && l.status === 429));
  assert.ok(lines.some((l) => l.key === 'ops' && l.status === 200));
  assert.ok(!gw.log().includes(APP_KEY) && !gw.log().includes(OPS_KEY), 'no key in the logs');
  assert.equal((await gw.stop()).code, 0);
});

test('fanout needs every model allowed; a batch answers a disallowed item with its own 403', async () => {
  const gw = await startLlmux(keyed([{ name: 'narrow', key: 'sk-narrow-key-000', models: ['fast'] }]), keyEnv);
  const h = bearer('sk-narrow-key-000');
  const f = await httpRequest(gw.port, { path: '/v1/fanout', body: { models: ['fast', 'm/echo'], messages: userMsg('x') }, headers: h });
  assert.equal(f.status, 403);
  assert.equal(errOf(f).code, 'model_not_allowed');
  const b = await httpRequest(gw.port, { path: '/v1/batch', headers: h, body: { requests: [
    { model: 'fast', messages: userMsg('a') }, { model: 'm/echo', messages: userMsg('b') }] } });
  assert.equal(b.status, 200);
  const results = JSON.parse(b.text).results;
  assert.deepEqual(results.map((r) => r.status), [200, 403]);
  const models = JSON.parse((await httpRequest(gw.port, { method: 'GET', path: '/v1/models', headers: h })).text);
  assert.deepEqual(models.data.map((m) => m.id), ['fast'], '/v1/models lists only what the key may use');
  assert.equal((await gw.stop()).code, 0);
});

test('tpm: a key over its token budget gets 429 until the bucket refills', async () => {
  const gw = await startLlmux(keyed([{ name: 'small', key: 'sk-small-tpm-key', tpm: 1 }]), keyEnv);
  const h = bearer('sk-small-tpm-key');
  const first = await chat(gw.port, 'up/m1', h);
  assert.equal(first.status, 200);
  assert.ok(JSON.parse(first.text).usage.total_tokens > 1, 'the first answer spends more than the budget');
  const second = await chat(gw.port, 'up/m1', h);
  assert.equal(second.status, 429);
  assert.match(errOf(second).message, /tokens per minute/);
  assert.ok(Number(second.headers['retry-after']) >= 1);
  assert.equal((await gw.stop()).code, 0);
});

test('limits.max_inflight_per_key: a second concurrent request of the key is refused, others pass', async () => {
  const gw = await startLlmux(keyed([], { limits: { max_inflight_per_key: 1 } }), keyEnv);
  const slow = chat(gw.port, 'up/m1;latency=1500', bearer(OPS_KEY));
  await eventually(() => mock.stats(), (s) => s.active >= 1, 10000, 'the slow request upstream');
  const second = await chat(gw.port, 'up/m1', bearer(OPS_KEY));
  assert.equal(second.status, 429);
  assert.equal(errOf(second).code, 'too_many_inflight');
  assert.equal((await chat(gw.port, 'up/m1', bearer(APP_KEY))).status, 200, 'another key is not affected');
  assert.equal((await slow).status, 200);
  assert.equal((await chat(gw.port, 'up/m1', bearer(OPS_KEY))).status, 200, 'free again once the first finished');
  assert.equal((await gw.stop()).code, 0);
});

test('without auth.keys a public listen address becomes loopback, with a warning; keys or --listen keep it', async () => {
  const cfg = { listen: '0.0.0.0:0', providers: { m: { type: 'mock' } } };
  const open = await startLlmux(cfg, { listen: false });
  assert.equal(open.host, '127.0.0.1');
  assert.match(open.log(), /no auth\.keys configured: listening on 127\.0\.0\.1:0 instead of 0\.0\.0\.0:0/);
  assert.equal((await open.stop()).code, 0);

  const explicit = await startLlmux(cfg, { listen: false, args: ['--listen', '0.0.0.0:0'] });
  assert.equal(explicit.host, '0.0.0.0');
  assert.match(explicit.log(), /no auth\.keys configured and --listen 0\.0\.0\.0:0 is not loopback/);
  assert.equal((await explicit.stop()).code, 0);

  const keyedCfg = { ...cfg, auth: { keys: [{ name: 'a', key: APP_KEY }] } };
  const gw = await startLlmux(keyedCfg, { listen: false });
  assert.equal(gw.host, '0.0.0.0');
  assert.ok(!/no auth\.keys/.test(gw.log()));
  // A reload that would drop the keys while the address is public is refused.
  const file = gw.proc.spawnargs[gw.proc.spawnargs.indexOf('--config') + 1];
  (await import('node:fs')).writeFileSync(file, JSON.stringify(cfg));
  gw.proc.kill('SIGHUP');
  await gw.waitLog(/reload: .* has no auth\.keys but llmux listens on 0\.0\.0\.0:0/);
  assert.equal((await httpRequest(gw.port, { body: { model: 'm/echo', messages: userMsg('x') } })).status, 401);
  assert.equal((await gw.stop()).code, 0);
});

test('admin_listen serves /healthz and /metrics alone; the main address no longer does', async () => {
  const gw = await startLlmux({ admin_listen: '127.0.0.1:0', providers: { m: { type: 'mock' } } });
  assert.ok(gw.adminPort > 0);
  assert.equal((await httpRequest(gw.adminPort, { method: 'GET', path: '/healthz' })).status, 200);
  const m = await httpRequest(gw.adminPort, { method: 'GET', path: '/metrics' });
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  assert.equal((await httpRequest(gw.port, { method: 'GET', path: '/metrics' })).status, 404);
  assert.equal((await httpRequest(gw.port, { method: 'GET', path: '/healthz' })).status, 404);
  assert.equal((await httpRequest(gw.adminPort, { body: { model: 'm/echo', messages: userMsg('x') } })).status, 404);
  assert.equal((await httpRequest(gw.port, { body: { model: 'm/echo', messages: userMsg('x') } })).status, 200);
  assert.equal((await gw.stop()).code, 0);
});

// The value of one series in a Prometheus text body (0 when absent).
function metric(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(/,(?=[a-z_]+=")/) : [];
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return 0;
}

test('/metrics counts requests, tokens, errors, retries and fallbacks by provider and bounded model', async () => {
  await mock.reset();
  const gw = await startLlmux({
    providers: { up: upstreamProvider(mock, { models: ['m1'], retries: { max: 2, base_delay_ms: 1 } }), m: { type: 'mock' } },
    aliases: { fb: ['up/m1;status=500', 'm/echo'] },
  });
  const scrape = async () => (await httpRequest(gw.port, { method: 'GET', path: '/metrics' })).text;
  const r1 = JSON.parse((await chat(gw.port, 'up/m1')).text);
  const s = await httpRequest(gw.port, { body: { model: 'up/m1', stream: true, messages: userMsg('one two three') } });
  const events = sseData(s.text).filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
  assert.ok(events.every((e) => !('usage' in e)), 'a client that did not ask for usage sees none');
  await chat(gw.port, 'up/other-model');
  await chat(gw.port, 'up/m1;fail=1');
  await chat(gw.port, 'fb');
  await chat(gw.port, 'nobody/x');
  const t = await scrape();
  assert.equal(metric(t, 'llmux_requests_total', { provider: 'up', model: 'm1', status: '200' }), 2);
  // "up/other-model" and "up/m1;fail=1" are not names the config lists.
  assert.equal(metric(t, 'llmux_requests_total', { provider: 'up', model: 'other', status: '200' }), 2, 'unlisted names are "other"');
  assert.equal(metric(t, 'llmux_requests_total', { provider: 'm', model: 'echo', status: '200' }), 1, 'the fallback answered');
  assert.ok(metric(t, 'llmux_tokens_total', { provider: 'up', model: 'm1', kind: 'prompt' }) >= r1.usage.prompt_tokens + 3,
    'prompt tokens of the plain and the streamed call');
  assert.ok(metric(t, 'llmux_tokens_total', { provider: 'up', model: 'm1', kind: 'completion' }) > r1.usage.completion_tokens);
  assert.equal(metric(t, 'llmux_retries_total'), 3, 'one for fail=1, two for the failing first target of fb');
  assert.equal(metric(t, 'llmux_fallbacks_total'), 1);
  assert.ok(metric(t, 'llmux_upstream_errors_total', { provider: 'up', reason: 'server_error' }) === 4);
  assert.equal(metric(t, 'llmux_http_requests_total', { route: '/v1/chat/completions', status: '404' }), 1);
  assert.equal(metric(t, 'llmux_request_duration_seconds_count', { provider: 'up', model: 'm1' }), 2);
  assert.equal(metric(t, 'llmux_time_to_first_token_seconds_count', { provider: 'up', model: 'm1' }), 2);
  assert.equal(metric(t, 'llmux_queue_depth', { provider: 'up' }), 0);
  assert.ok(t.includes('llmux_inflight_requests 1'), 'the scrape itself is in flight');
  assert.ok(!t.includes('nobody'), 'no raw client input becomes a label');
  assert.equal((await gw.stop()).code, 0);
});

test('X-Request-Id: kept when sane, generated otherwise, returned and sent upstream', async () => {
  const gw = await startLlmux({ providers: { up: upstreamProvider(mock) } });
  const a = await chat(gw.port, 'up/m1', { 'x-request-id': 'client-req:1234' });
  assert.equal(a.headers['x-request-id'], 'client-req:1234');
  assert.equal((await mock.last()).headers['x-request-id'], 'client-req:1234');
  const b = await chat(gw.port, 'up/m1', { 'x-request-id': 'no spaces allowed' });
  assert.match(b.headers['x-request-id'], /^[0-9a-f]{32}$/);
  assert.equal((await mock.last()).headers['x-request-id'], b.headers['x-request-id']);
  const line = await gw.waitAccess((l) => l.request_id === b.headers['x-request-id']);
  assert.equal(line.status, 200);
  assert.equal((await gw.stop()).code, 0);
});

test('--log FILE gets the access log; SIGUSR1 reopens it after a rotation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmux-log-'));
  const file = join(dir, 'access.log');
  const gw = await startLlmux({ providers: { m: { type: 'mock' } } }, { args: ['--log', file] });
  await chat(gw.port, 'm/echo', { 'x-request-id': 'before-rotate' });
  await eventually(async () => existsSync(file) && readFileSync(file, 'utf8'), (t) => t && t.includes('before-rotate'));
  renameSync(file, `${file}.1`);
  gw.proc.kill('SIGUSR1');
  await gw.waitLog(/reopened the log file/);
  await chat(gw.port, 'm/echo', { 'x-request-id': 'after-rotate' });
  await eventually(async () => existsSync(file) && readFileSync(file, 'utf8'), (t) => t && t.includes('after-rotate'));
  assert.deepEqual(accessLines(readFileSync(`${file}.1`, 'utf8')).map((l) => l.request_id), ['before-rotate']);
  assert.deepEqual(accessLines(readFileSync(file, 'utf8')).map((l) => l.request_id), ['after-rotate']);
  assert.equal(gw.access().length, 0, 'nothing on stderr');
  assert.equal((await gw.stop()).code, 0);
});

function raw(port) {
  return rawConnect(port).then((s) => {
    s.text = '';
    s.done = new Promise((r) => s.once('close', r));
    s.on('data', (d) => { s.text += d; });
    s.on('error', () => {});
    return s;
  });
}

test('limits.max_connections: an extra connection gets a 503 in OpenAI shape; a freed slot serves again', async () => {
  const gw = await startLlmux({ admin_listen: '127.0.0.1:0', limits: { max_connections: 2 }, providers: { m: { type: 'mock' } } });
  const conns = () => httpRequest(gw.adminPort, { method: 'GET', path: '/metrics' }).then((r) => metric(r.text, 'llmux_connections'));
  const a = await raw(gw.port);
  const b = await raw(gw.port);
  await eventually(conns, (n) => n === 2, 10000, 'two connections held');
  const c = await raw(gw.port);
  c.write('GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.done;
  assert.match(c.text, /^HTTP\/1\.1 503 /);
  assert.equal(JSON.parse(c.text.slice(c.text.indexOf('\r\n\r\n') + 4)).error.code, 'server_busy');
  a.destroy();
  await eventually(conns, (n) => n === 1, 10000, 'one connection left');
  const d = await chat(gw.port, 'm/echo');
  assert.equal(d.status, 200);
  b.destroy();
  assert.equal((await gw.stop()).code, 0);
});

test('limits.max_header_bytes: oversized headers get 431 request_header_too_large', async () => {
  const gw = await startLlmux({ limits: { max_header_bytes: 2048 }, providers: { m: { type: 'mock' } } });
  const r = await chat(gw.port, 'm/echo', { 'x-padding': 'p'.repeat(4000) });
  assert.equal(r.status, 431);
  assert.equal(errOf(r).code, 'request_header_too_large');
  assert.equal((await chat(gw.port, 'm/echo', { 'x-padding': 'p'.repeat(1000) })).status, 200);
  assert.equal((await gw.stop()).code, 0);
});

test('limits.read_timeout_ms: slowloris clients are dropped while others are served; idle keep-alive is not', async () => {
  const gw = await startLlmux({ limits: { read_timeout_ms: 400 }, providers: { m: { type: 'mock' } } });
  const hdr = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n';
  // One trickles its headers, one its body: a byte every 100 ms, so they never go silent.
  const slowHeaders = await raw(gw.port);
  const slowBody = await raw(gw.port);
  slowBody.write(`${hdr}\r\n{"model"`);
  let i = 0;
  const drip = setInterval(() => {
    if (!slowHeaders.destroyed) slowHeaders.write(hdr[i % hdr.length]);
    if (!slowBody.destroyed) slowBody.write(' ');
    i++;
  }, 100);
  // Meanwhile normal clients are answered.
  let served = 0;
  while (served < 5) {
    assert.equal((await chat(gw.port, 'm/echo')).status, 200);
    served++;
  }
  await Promise.all([slowHeaders.done, slowBody.done]);
  clearInterval(drip);
  assert.ok(i < 100, 'cut off well before they finished');
  await gw.waitAccess((l) => l.status === 408 && l.error === 'read_timeout');
  assert.ok(gw.log().match(/dropping a client connection that did not send a whole request within 400 ms/));

  // A kept-alive connection may sit idle longer than read_timeout_ms between requests.
  const ka = await raw(gw.port);
  const body = JSON.stringify({ model: 'm/echo', messages: userMsg('ka') });
  const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  ka.write(req);
  await eventually(async () => ka.text, (t) => t.includes('You said: ka'), 10000, 'first answer');
  await new Promise((r) => setTimeout(r, 1000));
  ka.write(req);
  await eventually(async () => ka.text, (t) => (t.match(/You said: ka/g) || []).length === 2, 10000, 'second answer on the same connection');
  ka.destroy();
  assert.equal((await gw.stop()).code, 0);
});

test('limits.max_request_ms: a long answer is cut with 504 request_timeout, a stream with an error event', async () => {
  await mock.reset();
  const gw = await startLlmux({ limits: { max_request_ms: 500 }, providers: { up: upstreamProvider(mock) } });
  const slow = await chat(gw.port, 'up/m1;latency=5000');
  assert.equal(slow.status, 504);
  assert.equal(errOf(slow).code, 'request_timeout');
  assert.equal(slow.headers['x-should-retry'], 'false'); // a retry would hit the same limit
  const s = await httpRequest(gw.port, { body: { model: 'up/m1;chunks=40;interval=100', stream: true, messages: userMsg('x') } });
  assert.equal(s.status, 200);
  const last = JSON.parse(sseData(s.text).at(-1));
  assert.equal(last.error.code, 'request_timeout');
  await eventually(() => mock.stats(), (st) => st.aborted >= 2 && st.active === 0, 10000, 'both upstream calls closed');
  assert.equal((await chat(gw.port, 'up/m1')).status, 200);
  assert.equal((await gw.stop()).code, 0);
});
