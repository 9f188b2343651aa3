// Operations through real processes and sockets: SIGHUP reload (new config for new requests, streams in
// flight untouched, a bad file ignored), the systemd notify protocol on a real NOTIFY_SOCKET, and
// `llmux --health-check`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, sseData, eventually, LLMUX_BIN } from './lib.mjs';

const NOTIFY_RECV = process.env.NOTIFY_RECV_BIN || new URL('../../build/tests/notify-recv', import.meta.url).pathname;
let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock.stop(); });

const cfgWith = (target) => ({ providers: { up: upstreamProvider(mock), m: { type: 'mock' } }, aliases: { fast: target } });

test('SIGHUP swaps an alias while a 10 s stream keeps flowing; a bad config is rejected and the old one kept', async () => {
  const gw = await startLlmux(cfgWith('up/first'));
  const file = gw.proc.spawnargs[gw.proc.spawnargs.indexOf('--config') + 1];
  const long = httpRequest(gw.port, { body: { model: 'up/long;chunks=100;interval=100', stream: true, messages: userMsg('long') } });
  await eventually(() => mock.stats(), (s) => s.active >= 1);
  assert.equal((await httpRequest(gw.port, { body: { model: 'fast', messages: userMsg('a') } })).headers['x-llmux-model'], 'up/first');

  writeFileSync(file, JSON.stringify(cfgWith('up/second')));
  gw.proc.kill('SIGHUP');
  await gw.waitLog(/reload: configuration .* applied/);
  const r2 = await httpRequest(gw.port, { body: { model: 'fast', messages: userMsg('b') } });
  assert.equal(r2.status, 200);
  assert.equal(r2.headers['x-llmux-model'], 'up/second');

  writeFileSync(file, '{"providers": {"up": {"type": "nosuch"}}}');
  gw.proc.kill('SIGHUP');
  await gw.waitLog(/reload: .*providers\.up\.type.*keeping the running configuration/);
  const r3 = await httpRequest(gw.port, { body: { model: 'fast', messages: userMsg('c') } });
  assert.equal(r3.headers['x-llmux-model'], 'up/second');
  assert.ok((await mock.stats()).active >= 1, 'the long stream was still in flight across both reloads');

  const s = await long;
  assert.equal(s.status, 200);
  const ev = sseData(s.text);
  assert.equal(ev.at(-1), '[DONE]', 'the stream begun before both reloads ended normally');
  assert.equal(ev.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join(''), 'echo: long');
  assert.equal((await gw.stop()).code, 0);
});

// A provider's live state belongs to its name, not to a loaded config: after a SIGHUP the calls still
// running under the old config and the new ones share one max_concurrency, the new limits apply to the
// calls already waiting, and the cooldown breaker keeps its count. Observed from outside: the queue depth
// llmux reports and the calls the upstream sees.
test('SIGHUP keeps each provider\'s capacity and breaker: max_concurrency 2 holds across a reload, and a raised limit frees the waiting call', async () => {
  const cfg = (max) => ({
    providers: {
      cap: upstreamProvider(mock, { max_concurrency: max, queue_timeout_ms: 60000 }),
      cool: upstreamProvider(mock, { retries: { max: 0 }, cooldown: { failures: 2, period_ms: 600000 } }),
    },
  });
  const gw = await startLlmux(cfg(2));
  const file = gw.proc.spawnargs[gw.proc.spawnargs.indexOf('--config') + 1];
  let reloads = 0;
  const reload = async () => {
    gw.proc.kill('SIGHUP');
    reloads++;
    await gw.waitLog(new RegExp(Array(reloads).fill('reload: configuration .* applied').join('[\\s\\S]*')));
  };
  const queued = async () => {
    const text = await (await fetch(`${gw.base}/metrics`)).text();
    const m = text.match(/^llmux_queue_depth\{provider="cap"\} (\d+)$/m);
    return m ? Number(m[1]) : -1;
  };
  await mock.reset();

  // Two long streams take both slots, and stay until they are cut below.
  const cuts = [new AbortController(), new AbortController()];
  const holders = cuts.map((ac, i) => fetch(`${gw.base}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ model: `cap/hold${i};chunks=5000;interval=50`, stream: true, messages: userMsg('hold') }),
  }));
  try {
    await eventually(() => mock.stats(), (s) => s.active === 2, 10000, 'two calls in flight');
    await reload();

    const third = httpRequest(gw.port, { body: { model: 'cap/third', messages: userMsg('third') } });
    const seen = await eventually(async () => ({ queued: await queued(), st: await mock.stats() }),
      (v) => v.queued === 1 || v.st.requests > 2, 10000, 'the third call to queue or to reach the upstream');
    assert.equal(seen.queued, 1, 'after the reload the third call waits for one of the two slots');
    assert.equal(seen.st.requests, 2, 'and has not reached the upstream');

    writeFileSync(file, JSON.stringify(cfg(3)));
    await reload();
    const r3 = await third;
    assert.equal(r3.status, 200, r3.text);
    const st = await mock.stats();
    assert.equal(st.requests, 3);
    assert.equal(st.active, 2, 'the raised limit let the third call run while both holders still stream');
    assert.equal(await queued(), 0);
  } finally {
    cuts.forEach((ac) => ac.abort());
    await Promise.allSettled(holders);
  }
  await eventually(() => mock.stats(), (s) => s.active === 0, 10000, 'the holders to be cut upstream too');

  // The breaker counts failures across a reload: two in a row cool the provider down.
  const chat = (model) => httpRequest(gw.port, { body: { model, messages: userMsg('hi') } });
  await mock.reset();
  assert.equal((await chat('cool/a;status=500')).status, 500);
  await reload();
  assert.equal((await chat('cool/a;status=500')).status, 500);
  const r = await chat('cool/a');
  assert.equal(r.status, 503, r.text);
  assert.equal(JSON.parse(r.text).error.code, 'provider_cooldown');
  assert.equal((await mock.stats()).requests, 2, 'a cooled-down provider gets no call');
  assert.equal((await gw.stop()).code, 0);
});

test('with NOTIFY_SOCKET set llmux sends READY=1, RELOADING=1 then READY=1, and STOPPING=1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'llmux-notify-'));
  const sock = join(dir, 'notify.sock');
  const recv = spawn(NOTIFY_RECV, [sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  recv.stdout.on('data', (d) => { got += d; });
  await eventually(async () => got, (t) => t.startsWith('READY\n'), 10000, 'the notify receiver');
  try {
    const gw = await startLlmux(cfgWith('up/a'), { env: { NOTIFY_SOCKET: sock } });
    await eventually(async () => got, (t) => t.includes('\nREADY=1\n'), 10000, 'READY=1');
    gw.proc.kill('SIGHUP');
    await eventually(async () => got, (t) => /RELOADING=1\nREADY=1\|STATUS=configuration reloaded\n/.test(t), 10000, 'RELOADING=1 then READY=1');
    assert.equal((await gw.stop()).code, 0);
    await eventually(async () => got, (t) => t.includes('STOPPING=1\n'), 10000, 'STOPPING=1');
    assert.deepEqual(got.trim().split('\n').map((l) => l.split('|')[0]), ['READY', 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
  } finally {
    recv.kill();
  }
});

test('--health-check exits 0 for a healthy gateway and 1 otherwise, without needing curl', async () => {
  const gw = await startLlmux(cfgWith('up/a'));
  const ok = spawnSync(LLMUX_BIN, ['--health-check', `${gw.base}/healthz`], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const notFound = spawnSync(LLMUX_BIN, ['--health-check', `${gw.base}/nope`], { encoding: 'utf8' });
  assert.equal(notFound.status, 1);
  assert.match(notFound.stderr, /HTTP status 404/);
  assert.equal((await gw.stop()).code, 0);
  const down = spawnSync(LLMUX_BIN, ['--health-check', `${gw.base}/healthz`], { encoding: 'utf8' });
  assert.equal(down.status, 1);
  assert.match(down.stderr, /health check of .* failed/);
});
