// Helpers for llmux's black-box tests: start the real daemon and the project's mock upstream on free
// loopback ports, talk to them through real sockets, and stop them cleanly.
import { spawn } from 'node:child_process';
import { beforeEach, afterEach } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';

export const LLMUX_BIN = process.env.LLMUX_BIN || new URL('../../build/llmux', import.meta.url).pathname;
export const MOCK_BIN = process.env.MOCK_UPSTREAM_BIN || new URL('../../build/tests/mock-upstream', import.meta.url).pathname;
// Extra command words to run llmux under (e.g. "valgrind --error-exitcode=99 ..."), from the Makefile.
const WRAP = (process.env.LLMUX_WRAP || '').split(' ').filter(Boolean);

// Every process a test starts is killed when the test file's process exits, even after a failure. A
// process started inside a test (not in a before hook) and still running when that test is over is
// killed then: a test that failed before stopping its gateways would otherwise keep the file's process
// alive on their pipes, and the suite would hang instead of reporting the failure.
const children = new Set();
const alive = (c) => c.exitCode === null && c.signalCode === null;
process.on('exit', () => { for (const c of children) if (alive(c)) c.kill('SIGKILL'); });
let inTest = false;
const testChildren = new Set();
beforeEach(() => { inTest = true; });
afterEach(() => {
  inTest = false;
  for (const c of testChildren) if (alive(c)) c.kill('SIGKILL');
  testChildren.clear();
});
function track(proc) {
  children.add(proc);
  if (inTest) testChildren.add(proc);
  proc.once('exit', () => { children.delete(proc); testChildren.delete(proc); });
  return proc;
}

// Wait until `pred(text)` holds for a growing text, or fail after ms (a hang guard, not a speed check).
function waitFor(getText, pred, ms, what) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      const m = pred(getText());
      if (m) return resolve(m);
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}; output:\n${getText()}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

export async function startMock(args = []) {
  const proc = track(spawn(MOCK_BIN, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const m = await waitFor(() => out, (t) => t.match(/PORT=(\d+)/), 10000, 'mock upstream port');
  const port = Number(m[1]);
  const url = `http://127.0.0.1:${port}`;
  return {
    port, url, proc,
    async stats() { return (await fetch(`${url}/debug/stats`)).json(); },
    async last() { return (await fetch(`${url}/debug/last`)).json(); },
    async reset() { await fetch(`${url}/debug/reset`, { method: 'POST' }); },
    async stop() { if (proc.exitCode === null) { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); } },
  };
}

let cfgDir;
export function writeConfig(cfg) {
  cfgDir ||= mkdtempSync(join(tmpdir(), 'llmux-test-'));
  const file = join(cfgDir, `cfg-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2));
  return file;
}

// A fresh state directory (the conversation store) in the temp dir, removed when the test file's process
// exits.
const stateDirs = [];
process.on('exit', () => { for (const d of stateDirs) rmSync(d, { recursive: true, force: true }); });
export function stateDir() {
  const d = mkdtempSync(join(tmpdir(), 'llmux-state-'));
  stateDirs.push(d);
  return d;
}

// Start llmux with a config object; resolves once it listens. `env` adds environment variables.
// listen: false leaves the address to the config (and to llmux's loopback rule). Unless the config or env
// says otherwise, each gateway keeps its state in a fresh directory (STATE_DIRECTORY, as systemd sets it):
// `state` names it, to start another gateway on the same store.
export async function startLlmux(cfg, { env = {}, args = [], listen = true } = {}) {
  const file = writeConfig(cfg);
  const cmd = [...WRAP, LLMUX_BIN, '--config', file, ...(listen ? ['--listen', '127.0.0.1:0'] : []), ...args];
  const state = env.STATE_DIRECTORY || stateDir();
  const proc = track(spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STATE_DIRECTORY: state, ...env } }));
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  // 'close' comes after the output pipes drained ('exit' may come first): stop() reads the whole log.
  const exited = new Promise((r) => proc.once('close', (code, sig) => r({ code, sig })));
  const m = await waitFor(() => log, (t) => t.match(/ info listening on http:\/\/(\S+):(\d+)/), 30000, 'llmux to listen');
  const port = Number(m[2]);
  if (typeof cfg === 'object' && cfg.admin_listen) await waitFor(() => log, (t) => t.includes(' ready ('), 30000, 'llmux to be ready');
  const admin = log.match(/admin \(\/healthz, \/metrics\) listening on http:\/\/\S+:(\d+)/);
  return {
    port, proc, exited, host: m[1], state,
    base: `http://127.0.0.1:${port}`,
    adminPort: admin ? Number(admin[1]) : undefined,
    log: () => log,
    waitLog: (re, ms = 10000) => waitFor(() => log, (t) => t.match(re), ms, `log ${re}`),
    // The access log's JSON lines so far, parsed.
    access: () => accessLines(log),
    // Wait for an access-log line that pred accepts; resolves to it.
    waitAccess: (pred, ms = 10000) => waitFor(() => log, (t) => accessLines(t).find(pred), ms, 'an access log line'),
    // SIGTERM (unless signal is false: the test signalled it already, and a second SIGTERM would stop it
    // at once), then wait for the exit and check the memory checkers' output.
    async stop({ signal = 'SIGTERM' } = {}) {
      if (signal && proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      checkSanitizers(log);
      return r;
    },
  };
}

export function accessLines(text) {
  return text.split('\n').filter((l) => l.startsWith('{"time":')).map((l) => JSON.parse(l));
}

// Under the sanitizer or valgrind builds, any report in the daemon's output fails the test that stops it.
export function checkSanitizers(text) {
  const m = text.match(/ERROR: (Address|Leak|Memory)Sanitizer|runtime error:|==\d+== (Invalid|Conditional|Syscall param|Mismatched)|definitely lost: [1-9]|indirectly lost: [1-9]|ERROR SUMMARY: [1-9]/);
  if (m) throw new Error(`memory checker report in llmux output:\n${text.slice(Math.max(0, m.index - 2000), m.index + 4000)}`);
}

// A mock upstream provider entry pointing at a mock server.
export function upstreamProvider(mock, extra = {}) {
  return { type: 'openai', base_url: `${mock.url}/v1`, ...extra };
}

// One provider of each upstream API on a mock server, plus the built-in mock: the targets an Anthropic
// client is tested against (oai/..., ol/..., ant/..., local/...).
export function everyTargetType(mock) {
  return {
    oai: { type: 'openai', base_url: `${mock.url}/v1` },
    ol: { type: 'ollama', base_url: mock.url },
    ant: { type: 'anthropic', base_url: mock.url, api_key: 'sk-ant-upstream' },
    local: { type: 'mock' },
  };
}

export async function postChat(base, body, headers = {}) {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function userMsg(text) {
  return [{ role: 'user', content: text }];
}

// Parse a whole SSE body into its data payloads (strings).
export function sseData(text) {
  return text.split(/\r?\n\r?\n/).filter((b) => b.trim()).map((block) =>
    block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n'));
}

// Raw HTTP over a socket, for tests that need byte-level control (slow readers, partial uploads).
export function rawConnect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

// Write one chat request (the JSON body given as an object) on a raw socket.
export function sendRaw(s, body) {
  const text = JSON.stringify(body);
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

// Poll an async function until pred(value) holds (hang guard of `ms`).
export async function eventually(fn, pred, ms = 10000, what = 'condition') {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (pred(v)) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// An http.Agent without a socket cap, for many concurrent requests.
export const wideAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

export function httpRequest(port, { method = 'POST', path = '/v1/chat/completions', body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: wideAgent,
      headers: { 'content-type': 'application/json', ...(data ? { 'content-length': Buffer.byteLength(data) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
