// POST /v1/fanout and POST /v1/batch through real sockets: results and their order, statuses, streaming
// shapes, validation errors, and that cancelled upstream calls really close (the mock counts aborts).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, sseData, eventually } from './lib.mjs';

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    fanout: { max_models: 4 },
    batch: { max_requests: 50, default_concurrency: 4, max_concurrency: 10 },
    providers: { up: upstreamProvider(mock, { retries: { max: 0 } }), m: { type: 'mock' } },
    aliases: { fast: 'up/aliased' },
  });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});
beforeEach(async () => { await mock.reset(); });

const fanout = (body, headers = {}) => httpRequest(gw.port, { path: '/v1/fanout', body: { messages: userMsg('hi'), ...body }, headers });
const batch = (body, headers = {}) => httpRequest(gw.port, { path: '/v1/batch', body, headers });
const text = (events) => events.map((e) => e.choices[0]?.delta?.content ?? '').join('');

test('fanout all: every model answers, in the order of models, failures beside successes', async () => {
  const r = await fanout({ models: ['up/a;latency=200', 'up/b;status=500', 'nobody/x', 'fast'] });
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.object, 'fanout');
  assert.deepEqual(body.results.map((x) => [x.model, x.status]),
    [['up/a;latency=200', 200], ['up/b;status=500', 500], ['nobody/x', 404], ['fast', 200]]);
  assert.equal(body.results[0].response.choices[0].message.content, 'echo: hi');
  assert.equal(body.results[0].response.object, 'chat.completion');
  assert.equal(body.results[1].error.message, 'mock error 500');
  assert.equal(body.results[2].error.code, 'model_not_found');
  assert.equal(body.results[3].answered_by, 'up/aliased');
  for (const x of body.results) assert.equal(typeof x.latency_ms, 'number');
});

test('fanout first: the fastest answer wins and the slower upstream connections are closed', async () => {
  const r = await fanout({ mode: 'first', models: ['up/slow;latency=1000', 'up/fast;latency=100', 'up/mid;latency=500'] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['x-llmux-model'], 'up/fast;latency=100');
  const body = JSON.parse(r.text);
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.model, 'fast;latency=100');
  // A call the mock finished is not an abort: two aborts mean llmux closed both losers.
  const st = await eventually(() => mock.stats(), (s) => s.active === 0);
  assert.equal(st.aborted, 2);
  assert.equal(st.requests, 3);
});

test('fanout first: a failure does not win; when all fail the last error comes back with its status', async () => {
  const r = await fanout({ mode: 'first', models: ['up/a;status=503', 'up/b;latency=100'] });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-llmux-model'], 'up/b;latency=100');
  const bad = await fanout({ mode: 'first', models: ['up/a;status=500', 'up/b;status=429;latency=100'] });
  assert.equal(bad.status, 429);
  assert.equal(JSON.parse(bad.text).error.message, 'mock error 429');
});

test('fanout all, streaming: chunks interleave tagged with model_index, errors are events, one [DONE]', async () => {
  const r = await fanout({ stream: true, models: ['up/a;chunks=5;interval=20', 'm/b', 'up/c;status=500'] });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/event-stream/);
  const ev = sseData(r.text);
  assert.equal(ev.at(-1), '[DONE]');
  assert.equal(ev.filter((e) => e === '[DONE]').length, 1);
  const objs = ev.slice(0, -1).map((e) => JSON.parse(e));
  const of = (i) => objs.filter((o) => o.model_index === i && !o.error);
  assert.equal(text(of(0)), 'echo: hi');
  assert.match(text(of(1)), /You said: hi/);
  assert.equal(of(2).length, 0);
  const err = objs.find((o) => o.error);
  assert.equal(err.model_index, 2);
  assert.equal(err.error.message, 'mock error 500');
  for (const o of objs) assert.ok(o.model_index >= 0 && o.model_index <= 2);
});

test('fanout first, streaming: the first model to send a token is streamed, the others cancelled', async () => {
  const r = await fanout({ mode: 'first', stream: true, models: ['up/slow;latency=2000', 'up/fast;chunks=3;interval=30'] });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-llmux-model'], 'up/fast;chunks=3;interval=30');
  const ev = sseData(r.text);
  assert.equal(ev.at(-1), '[DONE]');
  const objs = ev.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(text(objs), 'echo: hi');
  assert.ok(objs.every((o) => o.model_index === undefined && o.model === 'fast;chunks=3;interval=30'));
  const st = await eventually(() => mock.stats(), (s) => s.active === 0);
  assert.equal(st.aborted, 1);
});

test('fanout validation: models, mode and model are checked with clear 400s', async () => {
  const cases = [
    [{ model: 'up/a' }, 'model'],
    [{}, 'models'],
    [{ models: [] }, 'models'],
    [{ models: ['a/1', 'a/2', 'a/3', 'a/4', 'a/5'] }, 'models'],
    [{ models: ['up/a', 7] }, 'models[1]'],
    [{ models: ['up/a'], mode: 'fastest' }, 'mode'],
    [{ models: ['up/a'], messages: [] }, 'messages'],
  ];
  for (const [body, param] of cases) {
    const r = await httpRequest(gw.port, { path: '/v1/fanout', body: { messages: userMsg('x'), ...body } });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(JSON.parse(r.text).error.param, param);
  }
  const unknown = await fanout({ mode: 'first', models: ['up/a', 'nobody/b'] });
  assert.equal(unknown.status, 404);
  assert.equal((await mock.stats()).requests, 0);
});

test('fanout: the fanout keys are not sent upstream', async () => {
  await fanout({ models: ['up/a'], mode: 'all', temperature: 0.5 });
  const last = await mock.last();
  assert.equal(last.body.models, undefined);
  assert.equal(last.body.mode, undefined);
  assert.equal(last.body.temperature, 0.5);
});

test('a client that leaves a fanout cancels every member', async () => {
  const ac = new AbortController();
  const p = fetch(`${gw.base}/v1/fanout`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ models: ['up/a;latency=30000', 'up/b;latency=30000', 'up/c;latency=30000'], messages: userMsg('x') }) }).catch((e) => e);
  await eventually(() => mock.stats(), (s) => s.active === 3);
  ac.abort();
  await p;
  const st = await eventually(() => mock.stats(), (s) => s.active === 0);
  assert.equal(st.aborted, 3);
});

test('batch: every item answered in input order, bad items beside good ones', async () => {
  const requests = Array.from({ length: 12 }, (_, i) => ({ model: `up/x;latency=${(12 - i) * 10}`, messages: userMsg(`item ${i}`) }));
  requests[3] = { model: 'up/x', messages: [] };
  requests[5] = { model: 'up/x', stream: true, messages: userMsg('s') };
  requests[7] = { model: 'nobody/x', messages: userMsg('n') };
  requests[9] = { model: 'up/x;status=503', messages: userMsg('f') };
  const r = await batch({ requests, concurrency: 3 });
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.object, 'batch');
  assert.deepEqual(body.results.map((x) => x.index), [...Array(12).keys()]);
  const bad = { 3: [400, 'requests[3].messages'], 5: [400, 'requests[5].stream'], 7: [404, 'model'], 9: [503, null] };
  body.results.forEach((x, i) => {
    if (bad[i]) {
      assert.equal(x.status, bad[i][0], `item ${i}`);
      assert.equal(x.error.param, bad[i][1]);
    } else {
      assert.equal(x.status, 200);
      assert.equal(x.response.choices[0].message.content, `echo: item ${i}`);
    }
  });
});

test('batch concurrency bounds how many items reach the upstream at once', async () => {
  const requests = Array.from({ length: 10 }, (_, i) => ({ model: 'up/x;latency=150', messages: userMsg(`c${i}`) }));
  let most = 0;
  let done = false;
  const watch = (async () => { while (!done) { most = Math.max(most, (await mock.stats()).active); } })();
  const r = await batch({ requests, concurrency: 2 });
  done = true;
  await watch;
  assert.equal(r.status, 200);
  assert.ok(most <= 2, `at most 2 in flight, saw ${most}`);
  assert.ok(JSON.parse(r.text).results.every((x) => x.status === 200));
});

test('batch streaming: one event per item as it finishes, then [DONE]', async () => {
  const requests = [
    { model: 'up/a;latency=300', messages: userMsg('slow') },
    { model: 'up/b;latency=10', messages: userMsg('quick') },
    { model: 'up/c', messages: 'nope' },
  ];
  const r = await batch({ requests, stream: true });
  assert.equal(r.status, 200);
  const ev = sseData(r.text);
  assert.equal(ev.at(-1), '[DONE]');
  const objs = ev.slice(0, -1).map((e) => JSON.parse(e));
  assert.deepEqual(objs.map((o) => o.index), [2, 1, 0], 'completion order');
  assert.equal(objs[1].response.choices[0].message.content, 'echo: quick');
  assert.equal(objs[0].status, 400);
});

test('batch validation errors are 400s naming the field', async () => {
  const cases = [
    [{}, 'requests'],
    [{ requests: [] }, 'requests'],
    [{ requests: Array(51).fill({ model: 'up/x', messages: userMsg('x') }) }, 'requests'],
    [{ requests: [{ model: 'up/x', messages: userMsg('x') }], concurrency: 11 }, 'concurrency'],
    [{ requests: [{ model: 'up/x', messages: userMsg('x') }], concurrency: 0 }, 'concurrency'],
    [{ requests: [{ model: 'up/x', messages: userMsg('x') }], stream: 'yes' }, 'stream'],
    [{ requests: [{ model: 'up/x', messages: userMsg('x') }], model: 'up/x' }, 'model'],
  ];
  for (const [body, param] of cases) {
    const r = await batch(body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(JSON.parse(r.text).error.param, param);
  }
});

test('a client that leaves a batch cancels running items and starts no more', async () => {
  const requests = Array.from({ length: 8 }, (_, i) => ({ model: 'up/x;latency=30000', messages: userMsg(`q${i}`) }));
  const ac = new AbortController();
  const p = fetch(`${gw.base}/v1/batch`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ requests, concurrency: 3 }) }).catch((e) => e);
  await eventually(() => mock.stats(), (s) => s.active === 3);
  ac.abort();
  await p;
  const st = await eventually(() => mock.stats(), (s) => s.active === 0);
  assert.equal(st.aborted, 3);
  assert.equal(st.requests, 3);
});

test('x-llmux-timeout-ms spans a whole batch', async () => {
  const requests = Array.from({ length: 4 }, (_, i) => ({ model: 'up/x;latency=30000', messages: userMsg(`d${i}`) }));
  const r = await batch({ requests, concurrency: 2 }, { 'x-llmux-timeout-ms': '300' });
  assert.equal(r.status, 200);
  const res = JSON.parse(r.text).results;
  assert.ok(res.every((x) => x.status === 504 && x.error.code === 'deadline_exceeded'), r.text);
  const st = await eventually(() => mock.stats(), (s) => s.active === 0);
  assert.equal(st.requests, 2, 'items not started before the deadline never reach the upstream');
});
