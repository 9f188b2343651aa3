// Webhooks through real sockets: a receiver in the test gets batches of the configured event types whose
// signatures verify with the Standard Webhooks reference library (standardwebhooks on npm), and a failing
// receiver gets the same batch again (same webhook-id) until the retries run out, then the drop is counted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, eventually } from './lib.mjs';
import { metric, receiver } from './observe.mjs';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock.stop(); });

const providers = () => ({
  up: upstreamProvider(mock),
  once: upstreamProvider(mock, { retries: { max: 2, base_delay_ms: 5 } }),
});

test('batches of the chosen event types arrive signed the Standard Webhooks way', async () => {
  const rx = await receiver();
  const gw = await startLlmux({
    providers: providers(),
    aliases: { smart: ['once/a;status=503', 'up/b'] },
    webhooks: [{ url: rx.url, types: ['call.retry', 'call.fallback', 'request.finished'], secret: '${WEBHOOK_SECRET}', batch_max: 5, flush_ms: 50 }],
  }, { env: { WEBHOOK_SECRET: SECRET } });
  try {
    for (const rid of ['wh-1', 'wh-2', 'wh-3']) {
      const r = await httpRequest(gw.port, { body: { model: 'smart', messages: userMsg('hi') }, headers: { 'x-request-id': rid } });
      assert.equal(r.status, 200);
    }
    const all = () => rx.got.flatMap((p) => JSON.parse(p.body).data.events);
    await eventually(async () => all().length, (n) => n === 12, 20000, '12 events (3 requests × 2 retries, a fallback, the end)');
    const wh = new Webhook(SECRET);
    const ids = new Set();
    for (const p of rx.got) {
      assert.equal(p.headers['content-type'], 'application/json');
      assert.match(p.headers['webhook-id'], /^msg_[0-9a-f]+_\d+$/);
      assert.match(p.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/);
      ids.add(p.headers['webhook-id']);
      const payload = wh.verify(p.body, p.headers); // throws unless the signature is right
      assert.equal(payload.type, 'llmux.events');
      assert.ok(!Number.isNaN(Date.parse(payload.timestamp)));
      assert.equal(payload.data.count, payload.data.events.length);
      assert.ok(payload.data.count >= 1 && payload.data.count <= 5, 'batch_max');
      assert.equal(payload.data.dropped, 0);
      // Tampering breaks it: the check can fail.
      assert.throws(() => wh.verify(p.body.replace('"llmux.events"', '"llmux.evil"'), p.headers));
    }
    assert.equal(ids.size, rx.got.length, 'one webhook-id per batch');
    const events = all();
    assert.ok(events.every((e) => ['call.retry', 'call.fallback', 'request.finished'].includes(e.type)));
    const ordered = events.map((e) => BigInt(e.id));
    assert.ok(ordered.every((id, i) => i === 0 || id > ordered[i - 1]), 'in order across batches');
    for (const rid of ['wh-1', 'wh-2', 'wh-3'])
      assert.deepEqual(events.filter((e) => e.request_id === rid).map((e) => e.type),
        ['call.retry', 'call.retry', 'call.fallback', 'request.finished']);
    const fin = events.find((e) => e.type === 'request.finished');
    assert.equal(fin.status, 200);
    assert.equal(fin.answered_by, 'up/b');
    assert.throws(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(rx.got[0].body, rx.got[0].headers),
      'another secret does not verify');
  } finally {
    assert.equal((await gw.stop()).code, 0);
    await rx.close();
  }
});

test('a failing receiver gets the batch again with backoff, then the drop is counted, and later batches still go out', async () => {
  let failing = true;
  const rx = await receiver(() => (failing ? 503 : 200));
  const gw = await startLlmux({
    providers: providers(),
    // call.finished: the model calls only (the test's own /metrics polls finish requests too)
    webhooks: [{ url: rx.url, types: ['call.finished'], secret: SECRET, batch_max: 100, flush_ms: 20, retries: { max: 2, base_delay_ms: 10, max_delay_ms: 50 } }],
  });
  try {
    for (const rid of ['fail-1', 'fail-2']) {
      assert.equal((await httpRequest(gw.port, { body: { model: 'up/x', messages: userMsg('hi') }, headers: { 'x-request-id': rid } })).status, 200);
    }
    const dropped = await eventually(async () => metric(await (await fetch(`${gw.base}/metrics`)).text(), 'llmux_events_dropped_total{sink="webhook"}'),
      (n) => n === 2, 20000, 'both requests\' events to be dropped');
    // Every attempt of a batch is the same message (webhook-id), signed anew, three tries in all (1 + retries.max).
    const byId = Map.groupBy(rx.got, (p) => p.headers['webhook-id']);
    const wh = new Webhook(SECRET);
    let counted = 0;
    for (const [, attempts] of byId) {
      assert.equal(attempts.length, 3, 'the first try and two retries');
      for (const a of attempts) wh.verify(a.body, a.headers);
      assert.ok(attempts.every((a) => a.body === attempts[0].body), 'the same batch each time');
      counted += JSON.parse(attempts[0].body).data.count;
    }
    assert.equal(dropped, counted, 'every event of the given-up batches counts as dropped');
    await gw.waitLog(/webhook .* failed \(HTTP 503\) after 3 attempt/);
    // The receiver recovers: the next batch is delivered, and tells how many were dropped before it.
    failing = false;
    const before = rx.got.length;
    assert.equal((await httpRequest(gw.port, { body: { model: 'up/x', messages: userMsg('hi') }, headers: { 'x-request-id': 'ok-1' } })).status, 200);
    await eventually(async () => rx.got.slice(before).find((p) => p.body.includes('"ok-1"')), Boolean, 20000, 'the next batch');
    const next = wh.verify(rx.got.at(-1).body, rx.got.at(-1).headers);
    assert.equal(next.data.dropped, dropped);
  } finally {
    assert.equal((await gw.stop()).code, 0);
    await rx.close();
  }
});

test('410 Gone stops a webhook; a receiver that never answers times out; a full queue drops; the drain sends what is queued', async () => {
  const gone = await receiver(() => 410);
  const slow = http.createServer(() => {}); // takes the request, never answers
  await new Promise((r) => slow.listen(0, '127.0.0.1', r));
  const held = []; // a receiver that answers only once the test lets it
  let holding = true;
  const hold = http.createServer((req, res) => { req.resume(); if (holding) held.push(res); else res.end(); });
  await new Promise((r) => hold.listen(0, '127.0.0.1', r));
  const last = await receiver();
  const config = {
    providers: providers(),
    webhooks: [
      { url: gone.url, types: ['call.finished'], flush_ms: 10 },
      { url: `http://127.0.0.1:${slow.address().port}/slow`, types: ['call.finished'], flush_ms: 10, timeout_ms: 200, retries: { max: 0 } },
      { url: `http://127.0.0.1:${hold.address().port}/held`, types: ['call.finished'], flush_ms: 10, batch_max: 1, queue_max: 2 },
      { url: last.url, types: ['call.finished'], flush_ms: 600000 },
    ],
  };
  const gw = await startLlmux(config);
  try {
    const call = async (rid) => assert.equal((await httpRequest(gw.port, { body: { model: 'up/x', messages: userMsg('hi') }, headers: { 'x-request-id': rid } })).status, 200);
    await call('g-1');
    await eventually(async () => gone.got.length + held.length, (n) => n === 2, 20000, 'the first POSTs');
    await gw.waitLog(/answered HTTP 410; nothing more goes to it until a reload/);
    await gw.waitLog(/no answer within timeout_ms \(200 ms\)/);
    // held: g-1 is being sent, g-2 waits, g-3 and g-4 find the queue full
    for (const rid of ['g-2', 'g-3', 'g-4']) await call(rid);
    await gw.waitLog(/held: dropped 1 item\(s\): the queue is full \(queue_max\)/);
    const text = await (await fetch(`${gw.base}/metrics`)).text();
    assert.ok(metric(text, 'llmux_events_dropped_total{sink="webhook"}') >= 4 + 2 + 1, text); // gone, held, slow
    assert.equal(gone.got.length, 1, 'nothing more after 410');
    assert.equal(last.got.length, 0, 'flush_ms has not passed');
    for (const res of held.splice(0)) res.end();
    await eventually(async () => held.length, (n) => n === 1, 20000, 'g-2 sent once g-1 was answered');
    holding = false;
    held.forEach((res) => res.end());
    // A reload keeps a URL's queue and lifts a 410 stop.
    const file = gw.proc.spawnargs[gw.proc.spawnargs.indexOf('--config') + 1];
    config.webhooks[0].flush_ms = 20;
    writeFileSync(file, JSON.stringify(config));
    gw.proc.kill('SIGHUP');
    await gw.waitLog(/reload: configuration .* applied/);
    await call('g-5');
    await eventually(async () => gone.got.length, (n) => n === 2, 20000, 'a POST after the reload');
    // SIGTERM: what is queued goes out before llmux exits.
    assert.equal((await gw.stop()).code, 0);
    assert.equal(last.got.length, 1);
    assert.deepEqual(JSON.parse(last.got[0].body).data.events.map((e) => e.request_id), ['g-1', 'g-2', 'g-3', 'g-4', 'g-5']);
  } finally {
    await gw.stop();
    await gone.close();
    await last.close();
    for (const srv of [slow, hold]) {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  }
});

test('webhook config errors name the key, never the secret', async () => {
  const { spawnSync } = await import('node:child_process');
  const { LLMUX_BIN, writeConfig } = await import('./lib.mjs');
  const check = (cfg) => spawnSync(LLMUX_BIN, ['-t', '-c', writeConfig(cfg)], { encoding: 'utf8' });
  let r = check({ webhooks: [{ url: 'http://127.0.0.1:1/x', secret: 'whsec_not base64!' }] });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /webhooks\[0\]\.secret: expected whsec_/);
  assert.ok(!r.stderr.includes('not base64'));
  r = check({ webhooks: [{ url: 'ftp://x' }] });
  assert.match(r.stderr, /webhooks\[0\]\.url: expected an http/);
  r = check({ webhooks: [{ url: 'http://127.0.0.1:1/x', types: ['call.retyr'] }] });
  assert.match(r.stderr, /webhooks\[0\]\.types\[0\]: expected an event type/);
  r = check({ webhooks: [{ url: 'http://127.0.0.1:1/x', secret: SECRET, types: ['*'] }] });
  assert.equal(r.status, 0, r.stderr);
});
