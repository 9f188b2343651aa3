// Retries, fallbacks, hedging, timeouts, capacity queues, cooldown and the end-to-end deadline, scripted by
// the mock upstream (fail=N, status=, retry_after=, latency=, stall faults) and checked through real sockets:
// what the client gets, and what the upstream saw (calls made, connections aborted).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, httpRequest, postChat, userMsg, sseData, eventually } from './lib.mjs';

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    retries: { max: 2, base_delay_ms: 5 },
    providers: {
      up: upstreamProvider(mock),
      once: upstreamProvider(mock, { retries: { max: 0 } }),
      ra: upstreamProvider(mock, { retries: { max: 1, base_delay_ms: 1, max_delay_ms: 5000 } }),
      slow: upstreamProvider(mock, { timeouts: { first_byte_ms: 300 } }),
      one: upstreamProvider(mock, { max_concurrency: 1, queue_timeout_ms: 60000 }),
      busy: upstreamProvider(mock, { max_concurrency: 1, queue_timeout_ms: 50 }),
      cool: upstreamProvider(mock, { retries: { max: 0 }, cooldown: { failures: 2, period_ms: 600000 } }),
    },
    aliases: {
      smart: ['once/a;status=503', 'up/b'],
      picky: ['once/a;status=400', 'up/b'],
      hang_then_up: ['slow/a;fault=stall_headers', 'up/b'],
      hedged: { models: ['up/slow;latency=30000', 'up/fast'], hedge_ms: 100 },
      cooled: ['cool/c;status=500', 'up/d'],
    },
  });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});
beforeEach(async () => { await mock.reset(); });

const chat = (model, extra = {}, headers = {}) => httpRequest(gw.port, { body: { model, messages: userMsg('hi'), ...extra }, headers });
const idle = () => eventually(() => mock.stats(), (s) => s.active === 0, 10000, 'the upstream to be idle');

test('a provider failing its first two calls with 503 answers the third time, with no error reaching the client', async () => {
  const r = await chat('up/x;fail=2');
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).choices[0].message.content, 'echo: hi');
  assert.equal(r.headers['x-llmux-model'], 'up/x;fail=2');
  assert.equal((await mock.stats()).requests, 3);
  await gw.waitLog(/retry 2\/2 of up\/x;fail=2 in \d+ ms after 503/);
});

test('retries stop at retries.max and the last upstream error passes through', async () => {
  const r = await chat('up/x;status=503');
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.text).error.message, 'mock error 503');
  assert.equal((await mock.stats()).requests, 3);
});

test('connect errors are retried', async () => {
  const r = await chat('up/x;fail=1;fault=refuse');
  assert.equal(r.status, 200, r.text);
  assert.equal((await mock.stats()).requests, 2);
});

test('a 4xx answer is not retried', async () => {
  const r = await chat('up/x;status=400');
  assert.equal(r.status, 400);
  assert.equal((await mock.stats()).requests, 1);
});

test('Retry-After from the upstream sets the retry delay', async () => {
  const r = await chat('ra/x;fail=1;status=429;retry_after=1');
  assert.equal(r.status, 200, r.text);
  await gw.waitLog(/retry 1\/1 of ra\/x;fail=1;status=429;retry_after=1 in 1000 ms after 429/);
});

test('a stream that fails before its first token is retried invisibly', async () => {
  const r = await chat('up/x;fail=1', { stream: true });
  assert.equal(r.status, 200);
  const ev = sseData(r.text);
  assert.equal(ev.at(-1), '[DONE]');
  assert.equal(ev.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join(''), 'echo: hi');
  assert.equal(ev.filter((e) => e.includes('"role"')).length, 1, 'one beginning only');
});

test('a stream is never retried after it began: the client gets an SSE error event', async () => {
  const r = await chat('up/x;chunks=6;fault=close_midstream', { stream: true });
  assert.equal(r.status, 200);
  const ev = sseData(r.text);
  assert.ok(JSON.parse(ev.at(-1)).error, r.text);
  assert.equal((await mock.stats()).requests, 1);
});

test('a hanging provider gives 504 at first_byte_ms, without retrying, and its connection is closed', async () => {
  const r = await chat('slow/x;fault=stall_headers');
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.text).error.code, 'upstream_timeout');
  assert.match(JSON.parse(r.text).error.message, /first_byte_ms of 300 ms/);
  const st = await eventually(() => mock.stats(), (s) => s.aborted === 1 && s.active === 0);
  assert.equal(st.requests, 1);
});

test('a fallback list tries the next model on a retryable error and names who answered', async () => {
  const r = await chat('smart');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-llmux-model'], 'up/b');
  assert.equal(JSON.parse(r.text).model, 'b');
  await gw.waitLog(/falling back from once\/a;status=503 to up\/b after 503/);
});

test('a fallback list does not hide a client error', async () => {
  const r = await chat('picky');
  assert.equal(r.status, 400);
  assert.equal((await mock.stats()).requests, 1);
});

test('a hanging provider falls back to the next model at first_byte_ms', async () => {
  const r = await chat('hang_then_up');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-llmux-model'], 'up/b');
  await eventually(() => mock.stats(), (s) => s.aborted === 1 && s.active === 0);
});

test('hedging starts the next model after hedge_ms; the first answer wins and the other is cancelled', async () => {
  for (const stream of [false, true]) {
    await mock.reset();
    const r = await chat('hedged', { stream });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-llmux-model'], 'up/fast');
    const st = await eventually(() => mock.stats(), (s) => s.aborted === 1 && s.active === 0, 10000, 'the slow call to be cancelled');
    assert.equal(st.requests, 2);
  }
  await gw.waitLog(/no answer within hedge_ms=100, also starting up\/fast/);
});

test('max_concurrency queues calls in order; the queue only lets one through at a time', async () => {
  const first = chat('one/x;latency=400');
  await eventually(() => mock.stats(), (s) => s.active === 1);
  const rest = [chat('one/y'), chat('one/z')];
  // While the first call holds the only slot, the others wait in llmux, not at the upstream.
  assert.equal((await mock.stats()).requests, 1);
  const all = await Promise.all([first, ...rest]);
  all.forEach((r) => assert.equal(r.status, 200, r.text));
  assert.equal((await mock.stats()).requests, 3);
});

test('a full provider answers 429 with Retry-After after queue_timeout_ms', async () => {
  const holder = chat('busy/x;latency=1000');
  await eventually(() => mock.stats(), (s) => s.active === 1);
  const r = await chat('busy/y');
  assert.equal(r.status, 429);
  assert.equal(JSON.parse(r.text).error.code, 'provider_at_capacity');
  assert.ok(Number(r.headers['retry-after']) >= 1);
  assert.equal((await holder).status, 200);
  assert.equal((await mock.stats()).requests, 1);
});

test('cooldown: after N failures in a row the provider is skipped and fallbacks go to the next', async () => {
  assert.equal((await chat('cool/a;status=500')).status, 500);
  assert.equal((await chat('cool/a;status=500')).status, 500);
  const r = await chat('cool/a');
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.text).error.code, 'provider_cooldown');
  assert.ok(Number(r.headers['retry-after']) > 0);
  assert.equal((await mock.stats()).requests, 2, 'a cooled-down provider gets no calls');
  const f = await chat('cooled');
  assert.equal(f.status, 200);
  assert.equal(f.headers['x-llmux-model'], 'up/d');
  assert.equal((await mock.stats()).requests, 3);
});

test('x-llmux-timeout-ms: 504 when it passes, and the upstream call is cancelled', async () => {
  const r = await chat('up/x;latency=30000', {}, { 'x-llmux-timeout-ms': '200' });
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.text).error.code, 'deadline_exceeded');
  await eventually(() => mock.stats(), (s) => s.aborted === 1 && s.active === 0);
});

test('x-llmux-timeout-ms spans retries: no retry is started past it', async () => {
  const r = await chat('ra/x;status=429;retry_after=5', {}, { 'x-llmux-timeout-ms': '2000' });
  assert.equal(r.status, 429, 'the upstream error, not a wait of 5 s past the deadline');
  assert.equal((await mock.stats()).requests, 1);
});

test('x-llmux-timeout-ms after a stream began ends it with an SSE error event', async () => {
  const r = await chat('up/x;chunks=50;interval=100', { stream: true }, { 'x-llmux-timeout-ms': '400' });
  assert.equal(r.status, 200);
  const ev = sseData(r.text);
  assert.equal(JSON.parse(ev.at(-1)).error.code, 'deadline_exceeded');
  assert.ok(ev.length > 1);
  await idle();
});

test('a malformed x-llmux-timeout-ms is a 400 naming the header', async () => {
  for (const v of ['abc', '0', '-5', '12ms']) {
    const r = await chat('up/x', {}, { 'x-llmux-timeout-ms': v });
    assert.equal(r.status, 400, v);
    assert.equal(JSON.parse(r.text).error.param, 'x-llmux-timeout-ms');
  }
});

test('a client that leaves during a retry backoff cancels the pending retry', async () => {
  const ac = new AbortController();
  // p retries once after 3 s; the aborted request would have retried after 2 s, before p ends.
  const p = postChat(gw.base, { model: 'ra/x;status=429;retry_after=3', messages: userMsg('hi') });
  const r = fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'ra/y;status=429;retry_after=2', messages: userMsg('hi') }) }).catch((e) => e);
  await eventually(() => mock.stats(), (s) => s.requests >= 2);
  ac.abort();
  await r;
  assert.equal((await p).status, 429);
  // The aborted request's retry never reached the upstream; the other one retried once.
  assert.equal((await mock.stats()).requests, 3);
});

test('a client that leaves while queued for capacity gives up its place: its call never reaches the upstream', async () => {
  const holder = chat('one/x;latency=500');
  await eventually(() => mock.stats(), (s) => s.active === 1);
  const ac = new AbortController();
  const queued = fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'one/queued', messages: userMsg('hi') }) }).catch((e) => e);
  const after = chat('one/after');
  await new Promise((r) => setTimeout(r, 50)); // let both reach the queue (ordering only; nothing is timed)
  ac.abort();
  await queued;
  assert.equal((await holder).status, 200);
  const r = await after;
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.text).model, 'after');
  const st = await mock.stats();
  assert.equal(st.requests, 2, 'the holder and the request queued after the one that left');
  const last = await mock.last();
  assert.equal(last.body.model, 'after');
});
