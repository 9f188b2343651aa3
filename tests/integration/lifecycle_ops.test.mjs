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
