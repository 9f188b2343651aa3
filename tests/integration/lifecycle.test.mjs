// The command line and the process lifecycle: --check-config, --version, --help, graceful SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, copyFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { LLMUX_BIN, startMock, startLlmux, upstreamProvider, postChat, userMsg, sseData, writeConfig, eventually, checkSanitizers, stateDir } from './lib.mjs';

// Every llmux of this file keeps its store in a temp state directory, not in the checkout.
const state = stateDir();
const run = (...args) => spawnSync(LLMUX_BIN, args, { encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '', STATE_DIRECTORY: state } });

test('--check-config accepts the shipped config (no keys set) and exits 0', () => {
  const r = run('--check-config', '--config', new URL('../../conf/llmux.json', import.meta.url).pathname);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /valid/);
  assert.match(r.stderr, /OPENAI_API_KEY/, 'warns that the openai provider is disabled');
});

test('--check-config names the bad key and exits 1', () => {
  const cases = [
    [{ providers: { x: { type: 'openai', base_url: 42 } } }, /providers\.x\.base_url/],
    [{ limits: { max_body_bytes: -1 } }, /limits\.max_body_bytes/],
    [{ providers: { x: { type: 'nope' } } }, /providers\.x\.type/],
    [{ lsten: '1' }, /lsten: unknown key/],
    ['{ "listen": ', /invalid JSON/],
  ];
  for (const [cfg, re] of cases) {
    const r = run('--check-config', '--config', writeConfig(cfg));
    assert.equal(r.status, 1);
    assert.match(r.stderr, re);
  }
  const missing = run('--check-config', '--config', '/nonexistent/llmux.json');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot open/);
});

test('without --config: the checkout config beside the binary is found from any directory; else every path tried is named', () => {
  const elsewhere = mkdtempSync(join(tmpdir(), 'llmux-cwd-'));
  const here = spawnSync(LLMUX_BIN, ['--check-config'], { cwd: elsewhere, encoding: 'utf8', env: { ...process.env, OPENAI_API_KEY: '' } });
  assert.equal(here.status, 0, here.stderr);
  assert.match(here.stdout, new RegExp(`configuration ${new URL('../../conf/llmux.json', import.meta.url).pathname} is valid`));
  // A binary with no checkout around it, started from a directory with no conf/.
  const lone = join(mkdtempSync(join(tmpdir(), 'llmux-bin-')), 'llmux');
  copyFileSync(LLMUX_BIN, lone);
  chmodSync(lone, 0o755);
  const r = spawnSync(lone, ['--check-config'], { cwd: elsewhere, encoding: 'utf8' });
  if (existsSync('/etc/llmux/llmux.json')) return; // an installed config would (rightly) be used
  assert.equal(r.status, 1);
  for (const path of [join(elsewhere, 'conf/llmux.json'), `${dirname(lone)}/../conf/llmux.json`, '/etc/llmux/llmux.json'])
    assert.ok(r.stderr.includes(path), `${path} named in: ${r.stderr}`);
  assert.match(r.stderr, /--config FILE/);
});

test('--version and --help', () => {
  assert.match(run('--version').stdout, /^llmux \d+\.\d+\.\d+/);
  const h = run('--help');
  assert.equal(h.status, 0);
  for (const opt of ['--config', '--listen', '--check-config', '--version', '--help']) assert.ok(h.stdout.includes(opt));
  assert.equal(run('--bogus').status, 2);
});

test('--log-level: debug shows library detail, a bad level is refused', async () => {
  assert.equal(run('--log-level', 'loud').status, 2);
  assert.equal(run('extra-arg').status, 2);
  const gw = await startLlmux({}, { args: ['--log-level', 'debug'] });
  await fetch(`${gw.base}/healthz`);
  assert.equal((await gw.stop()).code, 0);
  // At level error even the "listening" line is hidden: find a free port first and poll it.
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  await new Promise((r) => srv.close(r));
  const quiet = spawn(LLMUX_BIN, ['--config', writeConfig({}), '--listen', `127.0.0.1:${port}`, '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, STATE_DIRECTORY: state } });
  let err = '';
  quiet.stderr.on('data', (d) => { err += d; });
  await eventually(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0), (s) => s === 200, 10000, 'quiet llmux');
  quiet.kill('SIGTERM');
  await new Promise((r) => quiet.once('exit', r));
  // The access log is not a diagnostic: it stays; every other line is below error and hidden.
  const lines = err.split('\n').filter(Boolean);
  assert.ok(lines.length >= 1, 'the access log still has the health checks');
  assert.deepEqual(lines.filter((l) => !l.startsWith('{"time":')), [], 'nothing below error is printed');
});

test('a listen address already in use is a clear start-up error', async () => {
  const gw = await startLlmux({});
  const r = run('--config', writeConfig({}), '--listen', `127.0.0.1:${gw.port}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot listen/);
  await gw.stop();
});

test('a second SIGINT during the drain stops at once', async () => {
  const mock = await startMock();
  const gw = await startLlmux({ shutdown_timeout_ms: 60000, providers: { up: upstreamProvider(mock) } });
  const p = postChat(gw.base, { model: 'up/x;latency=60000', messages: userMsg('never') }).catch(() => 'closed');
  await eventually(() => mock.stats(), (s) => s.active === 1, 5000, 'request in flight');
  gw.proc.kill('SIGINT');
  await gw.waitLog(/draining 1/);
  gw.proc.kill('SIGINT');
  const { code } = await gw.exited;
  checkSanitizers(gw.log());
  assert.equal(code, 0);
  await p;
  await mock.stop();
});

test('--listen with a bad address is refused', () => {
  const r = run('--listen', 'nonsense', '--config', writeConfig({}));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--listen/);
});

test('SIGTERM lets an in-flight stream finish, refuses new connections, exits 0', async () => {
  const mock = await startMock();
  const gw = await startLlmux({ shutdown_timeout_ms: 10000, providers: { up: upstreamProvider(mock) } });
  const res = await postChat(gw.base, { model: 'up/x;chunks=6;interval=150', stream: true, messages: userMsg('finish me') });
  const text = res.text();
  await eventually(() => mock.stats(), (s) => s.active === 1, 5000, 'stream in flight');
  gw.proc.kill('SIGTERM');
  await gw.waitLog(/draining 1 in-flight/);
  await assert.rejects(fetch(`${gw.base}/healthz`), 'no new connections while draining');
  const events = sseData(await text);
  assert.equal(events.at(-1), '[DONE]');
  const { code } = await gw.exited;
  checkSanitizers(gw.log());
  assert.equal(code, 0);
  await mock.stop();
});

test('SIGTERM past shutdown_timeout_ms cancels what is left and still exits 0', async () => {
  const mock = await startMock();
  const gw = await startLlmux({ shutdown_timeout_ms: 200, providers: { up: upstreamProvider(mock) } });
  const p = postChat(gw.base, { model: 'up/x;latency=60000', messages: userMsg('never') }).then((r) => r.status, () => 'closed');
  await eventually(() => mock.stats(), (s) => s.active === 1, 5000, 'request in flight');
  gw.proc.kill('SIGTERM');
  const { code } = await gw.exited;
  checkSanitizers(gw.log());
  assert.equal(code, 0);
  await p;
  await eventually(() => mock.stats(), (s) => s.aborted === 1, 5000, 'upstream cancelled');
  await mock.stop();
});
