// Scale-out (docs/scale-out.md): two llmux processes share one real redis-server, and every limit holds
// across both. Client-key rpm and tpm (tpm from the answers' real usage), in-flight counts, a provider's
// max_concurrency seen from the upstream, the cooldown breaker, x-ratelimit-* headers, /metrics and
// /v1/providers; Redis killed mid-load and started again, under both fail modes. Counts come from the
// answers; no timing thresholds (refill during a test is computed from its elapsed time).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, eventually } from './lib.mjs';
import { startRedis } from './redis.mjs';

// Under valgrind (LLMUX_WRAP) llmux is tens of times slower: the outage tests' short timeouts grow.
const SLOW = !!process.env.LLMUX_WRAP;
let mock, redis;
before(async () => { mock = await startMock(); redis = await startRedis(); });
after(async () => { await redis.stop(); await mock.stop(); });
beforeEach(async () => { await mock.reset(); redis.cli('FLUSHALL'); });

const KEY = 'sk-fleet-team-0123456789';
const bearer = { authorization: `Bearer ${KEY}` };
const errOf = (r) => JSON.parse(r.text).error;

// A generous Redis timeout: a busy machine (or valgrind) must not turn these into fail-open tests.
function fleetConfig(more = {}, redisMore = {}) {
  return {
    providers: {
      up: upstreamProvider(mock, { retries: { max: 0 } }),
      capped: upstreamProvider(mock, { max_concurrency: 2, queue_timeout_ms: 120000 }),
      cool: upstreamProvider(mock, { retries: { max: 0 }, cooldown: { failures: 2, period_ms: 600000 } }),
    },
    redis: { url: redis.url, prefix: 'test:', timeout_ms: 5000, connect_timeout_ms: 10000, reconnect_max_ms: 200, ...redisMore },
    ...more,
  };
}

async function startPair(more, redisMore) {
  const cfg = fleetConfig(more, redisMore);
  const a = await startLlmux(cfg);
  const b = await startLlmux(cfg);
  await Promise.all([a, b].map((gw) => gw.waitLog(/redis: connected to unix:/, 20000)));
  return [a, b];
}

async function stopAll(...gws) {
  for (const gw of gws) assert.equal((await gw.stop()).code, 0);
}

const chat = (gw, model, extra = {}, headers = bearer) =>
  httpRequest(gw.port, { body: { model, messages: userMsg('hi'), ...extra }, headers });

const metric = async (gw, line) => {
  const text = (await httpRequest(gw.port, { method: 'GET', path: '/metrics' })).text;
  const m = text.match(new RegExp(`^${line.replace(/[{}"()]/g, '\\$&')} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

test('rpm N: N requests admitted across both replicas when 3N are spread over them, with fleet-wide x-ratelimit headers', async () => {
  const N = 5;
  const [a, b] = await startPair({ auth: { keys: [{ name: 'team', key: KEY, rpm: N }] } });
  const t0 = Date.now();
  const answers = [];
  for (let i = 0; i < 3 * N; i++) answers.push(await chat(i % 2 ? b : a, 'up/m'));
  const ok = answers.filter((r) => r.status === 200);
  const refused = answers.filter((r) => r.status === 429);
  assert.equal(ok.length + refused.length, 3 * N, answers.map((r) => r.status).join(','));
  const refill = Math.floor(((Date.now() - t0) / 60000) * N);
  assert.ok(Math.abs(ok.length - N) <= 1 + refill, `${ok.length} admitted for rpm ${N}`);
  assert.ok(answers.slice(0, N).every((r) => r.status === 200), 'the first N pass');
  // The remaining count goes down across replicas, not per replica.
  assert.deepEqual(answers.slice(0, N).map((r) => Number(r.headers['x-ratelimit-remaining-requests'])), [4, 3, 2, 1, 0]);
  assert.equal(answers[0].headers['x-ratelimit-limit-requests'], String(N));
  assert.match(answers[0].headers['x-ratelimit-reset-requests'], /^\d+(\.\d)?s$/);
  for (const r of refused) {
    assert.equal(errOf(r).code, 'rate_limit_exceeded');
    assert.ok(Number(r.headers['retry-after']) >= 1);
  }
  // Without Redis, each replica would have admitted N on its own: the control.
  const solo = await startLlmux({ ...fleetConfig({ auth: { keys: [{ name: 'team', key: KEY, rpm: N }] } }), redis: null });
  let soloOk = 0;
  for (let i = 0; i < N; i++) soloOk += (await chat(solo, 'up/m')).status === 200 ? 1 : 0;
  assert.equal(soloOk, N);
  await stopAll(a, b, solo);
});

// The reserve is documented (docs/scale-out.md): ceil(characters of every string of the body / 4) plus
// max_tokens. Requests are admitted while the fleet's bucket holds it, and each answer then charges its
// real usage instead, so the count follows from T, the reserve R and the usage U of one answer.
// Redis answers an admission after the request came in; its refusal still comes in the shape of the API
// the client speaks: Anthropic's on /v1/messages (what Claude Code and the Anthropic SDKs parse).
test('a fleet-wide refusal on /v1/messages is an Anthropic 429 rate_limit_error; on /v1/chat/completions an OpenAI one', async () => {
  const [a, b] = await startPair({ auth: { keys: [{ name: 'team', key: KEY, rpm: 1 }] } });
  const messages = (gw) => httpRequest(gw.port, {
    path: '/v1/messages',
    headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    body: { model: 'up/m', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
  });
  const first = await messages(a);
  assert.equal(first.status, 200, first.text);
  assert.equal(JSON.parse(first.text).type, 'message');
  const refused = await messages(b);
  assert.equal(refused.status, 429, refused.text);
  const body = JSON.parse(refused.text);
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'rate_limit_error');
  assert.match(body.error.message, /rate limit|requests per minute|rpm/i);
  assert.ok(Number(refused.headers['retry-after']) >= 1);
  const openai = await chat(a, 'up/m');
  assert.equal(openai.status, 429);
  assert.equal(errOf(openai).code, 'rate_limit_exceeded');
  await stopAll(a, b);
});

test('tpm from real usage: the fleet admits what the settled answers leave room for, on both replicas together', async () => {
  const T = 40;
  const [a, b] = await startPair({ auth: { keys: [{ name: 'team', key: KEY, tpm: T }] } });
  const body = { model: 'up/m', messages: userMsg('hi'), max_tokens: 2 };
  const strings = (v) => typeof v === 'string' ? v.length : Array.isArray(v) ? v.reduce((n, x) => n + strings(x), 0)
    : v && typeof v === 'object' ? Object.entries(v).reduce((n, [k, x]) => n + (k === 'max_tokens' ? 0 : strings(x)), 0) : 0;
  const R = Math.ceil(strings(body) / 4) + body.max_tokens;
  const t0 = Date.now();
  const answers = [];
  for (let i = 0; i < 30; i++) {
    const r = await httpRequest((i % 2 ? b : a).port, { body, headers: bearer });
    answers.push(r);
    if (r.status !== 200) break;
  }
  const ok = answers.filter((r) => r.status === 200);
  const U = JSON.parse(ok[0].text).usage.total_tokens;
  assert.ok(U > 0 && U !== R, `usage ${U} differs from the reserve ${R}, so settling matters`);
  const expected = Math.floor((T - R) / U) + 1;
  const refill = Math.ceil(((Date.now() - t0) / 60000) * T / U);
  assert.ok(ok.length >= expected - 1 && ok.length <= expected + 1 + refill, `${ok.length} admitted, expected ${expected} (T ${T}, R ${R}, U ${U})`);
  const last = answers[answers.length - 1];
  assert.equal(last.status, 429);
  assert.match(errOf(last).message, /tokens per minute/);
  // The tokens left, as the last admitted answer said, are the fleet's: T minus every earlier answer's usage
  // minus this reserve. An answer's settlement goes to Redis just after the answer (without waiting), so
  // the one before may still count as its reserve R rather than its usage U when the next is admitted on
  // the other replica (seen under the sanitizers): the lower bound allows that one.
  const rem = Number(ok[ok.length - 1].headers['x-ratelimit-remaining-tokens']);
  assert.ok(rem >= T - (ok.length - 1) * U - R - Math.max(0, R - U) && rem <= T - (ok.length - 1) * U - R + 1 + refill * U, `remaining ${rem}`);
  await stopAll(a, b);
});

test('limits.max_inflight_per_key holds fleet-wide: two slow requests in flight across both replicas, the others refused', async () => {
  const [a, b] = await startPair({ auth: { keys: [{ name: 'team', key: KEY }] }, limits: { max_inflight_per_key: 2 } });
  const slow = [chat(a, 'up/m;latency=3000'), chat(b, 'up/m;latency=3000')];
  await eventually(() => mock.stats(), (s) => s.active >= 2, 20000, 'two slow calls upstream');
  const more = await Promise.all([chat(a, 'up/m'), chat(b, 'up/m')]);
  for (const r of more) {
    assert.equal(r.status, 429);
    assert.equal(errOf(r).code, 'too_many_inflight');
  }
  assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200]);
  assert.equal((await mock.stats()).max_active, 2);
  assert.equal((await chat(b, 'up/m')).status, 200, 'free again once they finished');
  await stopAll(a, b);
});

test('a provider\'s max_concurrency 2 is never exceeded across both replicas (seen at the upstream), and waiters get their turn', async () => {
  const [a, b] = await startPair();
  const calls = [];
  for (let i = 0; i < 8; i++) calls.push(chat(i % 2 ? b : a, 'capped/m;latency=300', {}, {}));
  const answers = await Promise.all(calls);
  assert.deepEqual(answers.map((r) => r.status), Array(8).fill(200));
  const s = await mock.stats();
  assert.equal(s.requests, 8);
  assert.equal(s.max_active, 2, 'two at a time, fleet-wide');
  assert.equal(redis.cli('EXISTS', 'test:provider:capped:slots'), '0', 'every slot given back');
  await stopAll(a, b);
});

test('a cooldown started by failures on replica A is honoured by replica B without calling the upstream', async () => {
  const [a, b] = await startPair();
  for (let i = 0; i < 2; i++) assert.equal((await chat(a, 'cool/m;status=500', {}, {})).status, 500);
  await a.waitLog(/provider cool: 2 failures in a row across the fleet, cooling down/);
  const before = (await mock.stats()).requests;
  const r = await chat(b, 'cool/m', {}, {});
  assert.equal(r.status, 503);
  assert.equal(errOf(r).code, 'provider_cooldown');
  assert.ok(Number(r.headers['retry-after']) > 500);
  assert.equal((await mock.stats()).requests, before, 'B did not call the cooled provider');
  // B's /v1/providers shows the fleet's view, and the Redis connection.
  const p = JSON.parse((await httpRequest(b.port, { method: 'GET', path: '/v1/providers' })).text);
  assert.equal(p.redis.state, 'ready');
  assert.equal(p.redis.fail_mode, 'open');
  assert.equal(p.redis.url, redis.url);
  const cool = p.data.find((x) => x.name === 'cool');
  assert.ok(cool.fleet.cooling_ms > 0);
  assert.equal(p.data.find((x) => x.name === 'up').fleet, null, 'an unlimited provider has no fleet state');
  await stopAll(a, b);
});

test('/metrics shows Redis: up, command latency by operation, errors; /healthz stays up while Redis is away', async () => {
  const [a, b] = await startPair({ auth: { keys: [{ name: 'team', key: KEY, rpm: 1000 }] } });
  assert.equal((await chat(a, 'up/m')).status, 200);
  assert.equal(await metric(a, 'llmux_redis_up'), 1);
  assert.ok(await metric(a, 'llmux_redis_command_duration_seconds_count{op="admit"}') >= 1);
  assert.ok(await metric(a, 'llmux_redis_command_duration_seconds_count{op="function_load"}') >= 1);
  assert.equal(await metric(a, 'llmux_redis_errors_total{kind="timeout"}'), 0);
  assert.ok(await metric(a, 'llmux_fleet_replicas') >= 1);
  await redis.kill();
  await eventually(() => metric(a, 'llmux_redis_up'), (v) => v === 0, 20000, 'llmux_redis_up 0');
  assert.equal((await httpRequest(a.port, { method: 'GET', path: '/healthz' })).status, 200);
  await redis.start();
  await eventually(() => metric(a, 'llmux_redis_up'), (v) => v === 1, 20000, 'llmux_redis_up 1 again');
  await stopAll(a, b);
});

// Redis dies while requests flow and comes back empty: nothing crashes, nothing hangs, the configured
// fail mode is what clients see meanwhile, and the limits are fleet-wide again afterwards.
async function outage(mode) {
  const keys = [{ name: 'team', key: KEY, rpm: 100000 }, { name: 'small', key: 'sk-fleet-small-0123456789', rpm: 3 }];
  const [a, b] = await startPair({ auth: { keys } }, { fail_mode: mode, timeout_ms: SLOW ? 3000 : 300, connect_timeout_ms: SLOW ? 10000 : 1000 });
  let stop = false;
  const statuses = [];
  const load = async (gw) => { while (!stop) statuses.push((await chat(gw, 'up/m;latency=20')).status); };
  const loops = [load(a), load(b)];
  await eventually(async () => statuses.length, (n) => n >= 10, 20000, 'load before the outage');
  await redis.kill();
  const during = statuses.length;
  await eventually(async () => statuses.length, (n) => n >= during + 10, 30000, 'answers during the outage');
  const whileDown = statuses.slice(during + 2); /* the first few may have been decided just before */
  await redis.start();
  await Promise.all([a, b].map((gw) => eventually(() => metric(gw, 'llmux_redis_up'), (v) => v === 1, 30000, 'reconnect')));
  stop = true;
  await Promise.all(loops);
  if (mode === 'open') {
    assert.ok(whileDown.every((s) => s === 200), `fail open: ${whileDown.join(',')}`);
    assert.ok(await metric(a, 'llmux_redis_fail_open_total{feature="keys"}') > 0);
  } else {
    assert.ok(whileDown.length && whileDown.every((s) => s === 503 || s === 200), whileDown.join(','));
    assert.ok(whileDown.includes(503), 'fail closed: 503 while Redis is away');
  }
  await a.waitLog(mode === 'open' ? /falls back to its own counters/ : /refusing limited requests with 503/);
  // Sharing resumed: a key with rpm 3 gets 3 across both replicas, not 3 each.
  const small = { authorization: 'Bearer sk-fleet-small-0123456789' };
  const after = [];
  for (let i = 0; i < 6; i++) after.push((await chat(i % 2 ? b : a, 'up/m', {}, small)).status);
  assert.deepEqual(after.filter((s) => s === 200).length, 3, after.join(','));
  await stopAll(a, b);
}

test('Redis killed mid-load and restarted, fail_mode open: every request answered on local counters, then fleet-wide again', () => outage('open'));
test('Redis killed mid-load and restarted, fail_mode closed: limited requests get 503 meanwhile, then fleet-wide again', () => outage('closed'));
