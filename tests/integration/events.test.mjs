// GET /v1/events through real sockets: an observer sees a request's decisions live and in order (retries,
// the fallback, who answered), filters by type and model, resumes with Last-Event-ID, needs an admin key,
// and a stalled observer is cut (and counted) while the gateway's requests go on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, rawConnect, eventually } from './lib.mjs';
import { observe, metric } from './observe.mjs';

const SLOW = !!process.env.LLMUX_WRAP;
let mock, gw;
const cfg = (mockRef) => ({
  retries: { max: 2, base_delay_ms: 5 },
  providers: {
    up: upstreamProvider(mockRef),
    once: upstreamProvider(mockRef, { retries: { max: 2, base_delay_ms: 5 } }),
    cool: upstreamProvider(mockRef, { retries: { max: 0 }, cooldown: { failures: 1, period_ms: 300 } }),
    one: upstreamProvider(mockRef, { max_concurrency: 1, queue_timeout_ms: 100 }),
  },
  aliases: {
    smart: ['once/a;status=503', 'up/b'],
    hedged: { models: ['up/slow;latency=2000', 'up/fast'], hedge_ms: 50 },
  },
});

before(async () => {
  mock = await startMock();
  gw = await startLlmux(cfg(mock));
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

// The events of one request to 'smart': its first target answers 503 three times (two retries), then the
// fallback answers.
const SMART_EVENTS = [
  'request.started',
  'call.started', 'call.finished', 'call.retry',
  'call.started', 'call.finished', 'call.retry',
  'call.started', 'call.finished', 'call.fallback',
  'call.started', 'request.first_token', 'call.finished',
  'request.finished',
];

const chat = (model, rid, extra = {}) =>
  httpRequest(gw.port, { body: { model, messages: userMsg('hi'), ...extra }, headers: { 'x-request-id': rid } });

test('an observer sees, in order, a request that retried twice and then fell back, with each decision\'s fields', async () => {
  const o = await observe(gw.port);
  assert.equal(o.status, 200);
  assert.match(o.headers['content-type'], /^text\/event-stream/);
  const r = await chat('smart', 'order-1');
  assert.equal(r.status, 200, r.text);
  await o.until((evs) => evs.some((e) => e.data.request_id === 'order-1' && e.event === 'request.finished'));
  const evs = o.ofRequest('order-1');
  assert.deepEqual(evs.map((e) => e.event), SMART_EVENTS);
  for (const e of evs) {
    assert.equal(e.data.type, e.event);
    assert.equal(e.data.id, e.id, 'each event has its id, in the SSE id: line and the data');
    assert.equal(e.data.model, 'smart');
    assert.equal(e.data.key, null);
    assert.ok(!Number.isNaN(Date.parse(e.data.time)));
  }
  const ids = evs.map((e) => BigInt(e.id));
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'ids increase');
  const starts = evs.filter((e) => e.event === 'call.started').map((e) => e.data);
  assert.deepEqual(starts.map((s) => [s.target, s.attempt, s.fallback_index]),
    [['once/a;status=503', 0, 0], ['once/a;status=503', 1, 0], ['once/a;status=503', 2, 0], ['up/b', 0, 1]]);
  assert.equal(starts[3].provider, 'up');
  assert.equal(starts[3].provider_type, 'openai');
  assert.equal(starts[3].upstream_model, 'b');
  const retries = evs.filter((e) => e.event === 'call.retry').map((e) => e.data);
  assert.deepEqual(retries.map((x) => [x.attempt, x.max, x.status, x.reason, x.target]),
    [[1, 2, 503, 'server_error', 'once/a;status=503'], [2, 2, 503, 'server_error', 'once/a;status=503']]);
  for (const x of retries) assert.ok(Number.isInteger(x.delay_ms) && x.delay_ms >= 0 && x.delay_ms <= 20, JSON.stringify(x));
  const fb = evs.find((e) => e.event === 'call.fallback').data;
  assert.equal(fb.from, 'once/a;status=503');
  assert.equal(fb.to, 'up/b');
  assert.equal(fb.status, 503);
  const ends = evs.filter((e) => e.event === 'call.finished').map((e) => e.data);
  assert.deepEqual(ends.map((x) => [x.outcome, x.status, x.won]),
    [['error', 503, false], ['error', 503, false], ['error', 503, false], ['ok', 200, true]]);
  assert.equal(ends[3].response_model, 'b');
  assert.equal(ends[3].completion_tokens, JSON.parse(r.text).usage.completion_tokens);
  assert.equal(evs.find((e) => e.event === 'request.first_token').data.answered_by, 'up/b');
  const fin = evs.at(-1).data;
  assert.equal(fin.status, 200);
  assert.equal(fin.answered_by, 'up/b');
  assert.equal(fin.retries, 2);
  assert.equal(fin.fallbacks, 1);
  assert.equal(fin.route, '/v1/chat/completions');
  assert.equal(fin.prompt_tokens, JSON.parse(r.text).usage.prompt_tokens);
  assert.ok(fin.bytes_out > 0 && fin.duration_ms >= 0);
  o.close();
});

test('a request on Anthropic\'s /v1/messages has its calls on the bus like a chat completion', async () => {
  const o = await observe(gw.port);
  const r = await httpRequest(gw.port, {
    path: '/v1/messages',
    headers: { 'x-request-id': 'messages-ev-1', 'anthropic-version': '2023-06-01' },
    body: { model: 'smart', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.equal(r.status, 200, r.text);
  await o.until((evs) => evs.some((e) => e.data.request_id === 'messages-ev-1' && e.event === 'request.finished'));
  o.close();
  assert.deepEqual(o.ofRequest('messages-ev-1').map((e) => e.event), SMART_EVENTS);
});

test('?types= and ?model= filter the stream; an unknown type is a 400', async () => {
  const retriesOnly = await observe(gw.port, { path: '/v1/events?types=call.retry,call.fallback' });
  const aboutB = await observe(gw.port, { path: '/v1/events?model=up/b' });
  const aboutOther = await observe(gw.port, { path: '/v1/events?model=nothing-like-it&types=request.finished' });
  assert.equal((await chat('smart', 'filter-1')).status, 200);
  assert.equal((await chat('up/plain', 'filter-2')).status, 200);
  await retriesOnly.until((evs) => evs.some((e) => e.event === 'call.fallback' && e.data.request_id === 'filter-1'));
  await aboutB.until((evs) => evs.some((e) => e.event === 'call.finished' && e.data.request_id === 'filter-1'));
  assert.deepEqual(retriesOnly.ofRequest('filter-1').map((e) => e.event), ['call.retry', 'call.retry', 'call.fallback']);
  assert.ok(retriesOnly.events.every((e) => ['call.retry', 'call.fallback'].includes(e.event)));
  // up/b is where the fallback went and the call it made; nothing about filter-2's model (up/plain).
  assert.deepEqual(aboutB.ofRequest('filter-1').map((e) => e.event), ['call.fallback', 'call.started', 'call.finished']);
  assert.equal(aboutB.ofRequest('filter-2').length, 0);
  // The request-level events carry the model asked for: a filter on it keeps them.
  const aboutSmart = await observe(gw.port, { path: '/v1/events?model=smart&types=request.started,request.finished' });
  assert.equal((await chat('smart', 'filter-3')).status, 200);
  await aboutSmart.until((evs) => evs.some((e) => e.event === 'request.finished'));
  assert.deepEqual(aboutSmart.ofRequest('filter-3').map((e) => e.event), ['request.started', 'request.finished']);
  assert.equal(aboutOther.events.length, 0);
  for (const o of [retriesOnly, aboutB, aboutOther, aboutSmart]) o.close();
  const bad = await httpRequest(gw.port, { method: 'GET', path: '/v1/events?types=call.retry,call.nope' });
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.text).error.code, 'unknown_event_type');
  assert.match(JSON.parse(bad.text).error.message, /call\.nope/);
});

test('a reconnect with Last-Event-ID replays what came after that event, then goes on live', async () => {
  const first = await observe(gw.port);
  assert.equal((await chat('smart', 'replay-1')).status, 200);
  await first.until((evs) => evs.some((e) => e.event === 'request.finished' && e.data.request_id === 'replay-1'));
  const seen = first.ofRequest('replay-1');
  first.close(); // the observer "disconnects" after the fourth event
  const lastSeen = seen[3];
  assert.equal((await chat('up/after', 'replay-2')).status, 200); // while nobody watches
  const again = await observe(gw.port, { headers: { 'Last-Event-ID': lastSeen.id } });
  await again.until((evs) => evs.some((e) => e.event === 'request.finished' && e.data.request_id === 'replay-2'));
  const replayed = again.ofRequest('replay-1');
  assert.deepEqual(replayed.map((e) => e.id), seen.slice(4).map((e) => e.id), 'exactly the events after Last-Event-ID');
  assert.deepEqual(replayed.map((e) => e.data), seen.slice(4).map((e) => e.data));
  assert.equal(again.ofRequest('replay-2')[0].event, 'request.started');
  // ... and live ones follow.
  assert.equal((await chat('up/live', 'replay-3')).status, 200);
  await again.until((evs) => evs.some((e) => e.event === 'request.finished' && e.data.request_id === 'replay-3'));
  again.close();
  const bad = await httpRequest(gw.port, { method: 'GET', path: '/v1/events', headers: { 'last-event-id': 'yesterday' } });
  assert.equal(bad.status, 400);
});

test('a stream cut by its upstream after it began ends in request.failed, and the access log names the error', async () => {
  const o = await observe(gw.port, { path: '/v1/events?types=request.finished,request.failed' });
  const r = await chat('up/x;chunks=6;fault=close_midstream', 'cut-1', { stream: true });
  assert.equal(r.status, 200);
  const end = await o.until((evs) => evs.find((e) => e.data.request_id === 'cut-1'));
  assert.equal(end.event, 'request.failed');
  assert.equal(end.data.status, 200, 'the status had gone out');
  assert.equal(end.data.error, 'bad_upstream_response');
  const line = await gw.waitAccess((l) => l.request_id === 'cut-1');
  assert.equal(line.error, 'bad_upstream_response');
  o.close();
});

test('hedges, cooldowns and capacity queues are events too', async () => {
  const o = await observe(gw.port, { path: '/v1/events?types=call.hedge,provider.cooldown,queue.waiting,queue.timeout,call.finished' });
  assert.equal((await chat('hedged', 'hedge-1')).status, 200);
  const hedge = await o.until((evs) => evs.find((e) => e.event === 'call.hedge'));
  assert.equal(hedge.data.target, 'up/fast');
  assert.equal(hedge.data.lane, 1);
  assert.equal(hedge.data.hedge_ms, 50);
  const lost = await o.until((evs) => evs.find((e) => e.event === 'call.finished' && e.data.request_id === 'hedge-1' && e.data.outcome === 'cancelled'));
  assert.equal(lost.data.target, 'up/slow;latency=2000');
  assert.equal(lost.data.status, 499);
  // One failure cools "cool" down for 300 ms: entered, then left.
  assert.equal((await chat('cool/x;status=500', 'cool-1')).status, 500);
  const entered = await o.until((evs) => evs.find((e) => e.event === 'provider.cooldown' && e.data.state === 'entered'));
  assert.equal(entered.data.provider, 'cool');
  assert.equal(entered.data.failures, 1);
  assert.equal(entered.data.request_id, undefined, 'a provider event belongs to no request');
  await o.until((evs) => evs.find((e) => e.event === 'provider.cooldown' && e.data.state === 'left'));
  // "one" takes one call at a time: a second waits for the slot and times out after 100 ms.
  const long = chat('one/x;latency=1000', 'queue-1');
  await eventually(() => mock.stats(), (s) => s.active >= 1);
  assert.equal((await chat('one/y', 'queue-2')).status, 429);
  const waiting = await o.until((evs) => evs.find((e) => e.event === 'queue.waiting'));
  assert.deepEqual([waiting.data.provider, waiting.data.request_id, waiting.data.limit, waiting.data.timeout_ms, waiting.data.depth], ['one', 'queue-2', 1, 100, 1]);
  await o.until((evs) => evs.find((e) => e.event === 'queue.timeout' && e.data.request_id === 'queue-2'));
  assert.equal((await long).status, 200);
  o.close();
});

test('a stalled observer is cut with a final event counting what it lost, and the requests keep completing', { skip: SLOW && 'valgrind: the plain and ASan runs cover it' }, async () => {
  const gw2 = await startLlmux({
    events: { ring_size: 400, observer_queue: 200 },
    providers: { m: { type: 'mock' } },
  });
  try {
    const stalled = await rawConnect(gw2.port);
    stalled.pause(); // never reads: its socket buffers, then llmux's output queue, fill up
    stalled.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n');
    const watcher = await observe(gw2.port, { path: '/v1/events?types=request.finished' });
    let done = 0;
    const batch = () => httpRequest(gw2.port, {
      path: '/v1/batch',
      body: { requests: Array.from({ length: 200 }, (_, i) => ({ model: 'm/echo', messages: userMsg(`item ${i} ${'x'.repeat(200)}`) })) },
    });
    let dropped = 0;
    for (let round = 0; round < 400 && dropped === 0; round++) {
      const r = await batch();
      assert.equal(r.status, 200, r.text.slice(0, 500));
      assert.ok(JSON.parse(r.text).results.every((x) => x.status === 200), 'every item answered');
      done++;
      dropped = metric(await (await fetch(`${gw2.base}/metrics`)).text(), 'llmux_events_dropped_total{sink="sse"}');
    }
    assert.ok(dropped > 0, 'the stalled observer was cut');
    // A watcher that reads saw every batch request finish meanwhile.
    await watcher.until((evs) => evs.filter((e) => e.data.route === '/v1/batch').length === done);
    // More requests still complete after the cut.
    assert.equal((await batch()).status, 200);
    // The stalled observer, read at last, ends with observer.cut saying what it lost.
    let text = '';
    stalled.setEncoding('utf8');
    stalled.on('data', (d) => { text += d; });
    stalled.resume();
    await eventually(async () => text, (t) => t.includes('\r\n0\r\n\r\n'), 20000, 'the cut stream to end');
    const m = text.match(/event: observer\.cut\r?\ndata: (.*)\r?\n/);
    assert.ok(m, text.slice(-2000));
    const cut = JSON.parse(m[1]);
    assert.equal(cut.type, 'observer.cut');
    assert.equal(cut.dropped, dropped);
    assert.match(cut.reason, /Last-Event-ID/);
    stalled.destroy();
    watcher.close();
  } finally {
    assert.equal((await gw2.stop()).code, 0);
  }
});

test('/v1/events needs an admin key on the main address; the admin address serves it; reload and drain are events', async () => {
  const keys = { keys: [{ name: 'ops', key: 'sk-ops-123456', admin: true }, { name: 'app', key: 'sk-app-123456' }] };
  const config = { auth: keys, admin_listen: '127.0.0.1:0', providers: { up: upstreamProvider(mock) }, events: { keepalive_ms: 100 } };
  const gw3 = await startLlmux(config);
  let terminated = false;
  try {
    const denied = await httpRequest(gw3.port, { method: 'GET', path: '/v1/events', headers: { authorization: 'Bearer sk-app-123456' } });
    assert.equal(denied.status, 403);
    assert.equal(JSON.parse(denied.text).error.code, 'admin_key_required');
    assert.equal((await httpRequest(gw3.port, { method: 'GET', path: '/v1/events' })).status, 401);
    const ops = await observe(gw3.port, { headers: { authorization: 'Bearer sk-ops-123456' } });
    assert.equal(ops.status, 200);
    const admin = await observe(gw3.adminPort); // no key on the admin address
    assert.equal(admin.status, 200);
    const r = await httpRequest(gw3.port, { body: { model: 'up/x', messages: userMsg('hi') }, headers: { authorization: 'Bearer sk-app-123456', 'x-request-id': 'keyed-1' } });
    assert.equal(r.status, 200);
    const fin = await admin.until((evs) => evs.find((e) => e.event === 'request.finished' && e.data.request_id === 'keyed-1'));
    assert.equal(fin.data.key, 'app', 'the key\'s name, never the key');
    assert.ok(!ops.raw.includes('sk-app') && !admin.raw.includes('sk-app'));
    await eventually(async () => ops.raw, (t) => t.includes('\n: keepalive\n'), 10000, 'a keep-alive comment');
    // A reload is an event; so is a rejected one.
    const file = gw3.proc.spawnargs[gw3.proc.spawnargs.indexOf('--config') + 1];
    writeFileSync(file, JSON.stringify({ ...config, aliases: { a: 'up/x' } }));
    gw3.proc.kill('SIGHUP');
    const reloaded = await ops.until((evs) => evs.find((e) => e.event === 'config.reloaded'));
    assert.deepEqual([reloaded.data.providers, reloaded.data.aliases], [1, 1]);
    writeFileSync(file, '{"providers": {"up": {"type": "nope"}}}');
    gw3.proc.kill('SIGHUP');
    const rejected = await ops.until((evs) => evs.find((e) => e.event === 'config.rejected'));
    assert.match(rejected.data.reason, /providers\.up\.type/);
    // SIGTERM: observers get server.draining, then their streams end, so the drain does not wait for them.
    gw3.proc.kill('SIGTERM');
    terminated = true;
    const draining = await ops.until((evs) => evs.find((e) => e.event === 'server.draining'));
    assert.equal(draining.data.signal, 'SIGTERM');
    await ops.until((evs) => evs.find((e) => e.event === 'observer.closed'));
    await eventually(async () => ops.ended && admin.ended, Boolean, 10000, 'the streams to end');
  } finally {
    // After the test's own SIGTERM the drain is under way: a second one would stop llmux at once.
    assert.equal((await gw3.stop({ signal: !terminated && 'SIGTERM' })).code, 0);
  }
});

test('limits.max_request_ms ends an observer\'s stream with observer.closed, which it can resume from', async () => {
  const gw4 = await startLlmux({ limits: { max_request_ms: 300 }, providers: { up: upstreamProvider(mock) } });
  try {
    const o = await observe(gw4.port);
    const closed = await o.until((evs) => evs.find((e) => e.event === 'observer.closed'));
    assert.match(closed.data.reason, /max_request_ms/);
    await eventually(async () => o.ended, Boolean, 10000, 'the stream to end');
  } finally {
    assert.equal((await gw4.stop()).code, 0);
  }
});
