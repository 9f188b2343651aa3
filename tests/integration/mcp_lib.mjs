// Helpers for the MCP tests: real MCP servers (server-everything and the SDK-based test servers in
// tests/mcp/) on free ports or stdio, and mcp-probe, which runs llmux's MCP client alone and speaks
// JSON lines.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeConfig, checkSanitizers } from './lib.mjs';

export const NODE = process.execPath;
export const TESTS = new URL('..', import.meta.url).pathname;
export const EVERYTHING = join(TESTS, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
export const SDK_SERVER = join(TESTS, 'mcp/sdk_server.mjs');
export const MODERN_SERVER = join(TESTS, 'mcp/modern_server.mjs');
export const PROBE_BIN = process.env.MCP_PROBE_BIN || new URL('../../build/tests/mcp-probe', import.meta.url).pathname;
const WRAP = (process.env.LLMUX_WRAP || '').split(' ').filter(Boolean);
// Hang guards (not speed checks): valgrind makes everything several times slower.
export const GUARD = WRAP.length ? 60000 : 20000;

const children = new Set();
process.on('exit', () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });

let dir;
export function tempFile(name) {
  dir ||= mkdtempSync(join(tmpdir(), 'llmux-mcp-'));
  return join(dir, `${name}-${Math.random().toString(36).slice(2)}`);
}

// The JSON lines a test server appended to its --events file.
export function serverEvents(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// Start an HTTP MCP server script; resolves once it printed its port.
export async function startHttpServer(script, args = [], { env = {}, everything = false } = {}) {
  const port = everything ? await freePort() : 0;
  const argv = everything ? [script, 'streamableHttp'] : [script, '--http', ...args];
  const proc = spawn(NODE, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port), ...env } });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const start = Date.now();
  while (!/PORT=(\d+)|listening on port (\d+)/.test(out)) {
    if (proc.exitCode !== null || Date.now() - start > GUARD) throw new Error(`MCP server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = out.match(/PORT=(\d+)|listening on port (\d+)/);
  const p = Number(m[1] || m[2]);
  return {
    port: p, url: `http://127.0.0.1:${p}/mcp`, proc, output: () => out,
    async stop() { if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); } },
  };
}

export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// A stdio server entry for mcp_servers.
export function stdioServer(script, args = [], extra = {}) {
  return { command: NODE, args: [script, ...args], ...extra };
}

// Run mcp-probe on {"mcp_servers": servers}.
export async function startProbe(servers, { env = {} } = {}) {
  const file = writeConfig({ mcp_servers: servers });
  const cmd = [...WRAP, PROBE_BIN, file];
  const proc = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LLMUX_LOG_LEVEL: 'debug', ...env } });
  children.add(proc);
  const exited = new Promise((r) => proc.once('close', (code, sig) => { children.delete(proc); r({ code, sig }); })); // after the pipes drain
  const events = [];
  let buf = '', log = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line));
    }
  });
  proc.stderr.on('data', (d) => { log += d; });
  let seen = 0; // events consumed by next()
  const probe = {
    events, log: () => log, proc,
    send(cmd) { proc.stdin.write(JSON.stringify(cmd) + '\n'); },
    // The first event after the ones already taken that pred accepts.
    async next(pred, what = 'an event') {
      const start = Date.now();
      for (;;) {
        for (let i = seen; i < events.length; i++) if (pred(events[i])) { seen = i + 1; return events[i]; }
        if (proc.exitCode !== null) throw new Error(`mcp-probe exited waiting for ${what}; stderr:\n${log}`);
        if (Date.now() - start > GUARD) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events).slice(-3000)}\nstderr:\n${log.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async settled(server) {
      probe.send({ op: 'wait', server, timeout_ms: GUARD });
      return (await probe.next((e) => e.event === 'settled' && e.server === server, `${server} to settle`)).status;
    },
    async call(server, tool, args = {}, extra = {}) {
      const id = extra.id || `${tool}-${Math.random().toString(36).slice(2)}`;
      probe.send({ op: 'call', id, server, tool, arguments: args, ...extra });
      return probe.next((e) => e.event === 'result' && e.id === id, `the result of ${tool}`);
    },
    async status(server) {
      probe.send({ op: 'status' });
      const s = await probe.next((e) => e.event === 'status', 'status');
      return s.servers.find((x) => x.name === server);
    },
    async tools(server) {
      probe.send({ op: 'tools', server });
      return (await probe.next((e) => e.event === 'tools' && e.server === server, 'tools')).tools;
    },
    async stats() {
      probe.send({ op: 'stats' });
      return probe.next((e) => e.event === 'stats', 'stats');
    },
    // Poll status until pred holds (the server restarting, a list refreshed).
    async until(server, pred, what) {
      const start = Date.now();
      for (;;) {
        const s = await probe.status(server);
        if (pred(s)) return s;
        if (Date.now() - start > GUARD) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}\n${log.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (proc.exitCode === null) {
        probe.send({ op: 'quit' });
        proc.stdin.end();
      }
      const r = await exited;
      checkSanitizers(log);
      return r;
    },
  };
  await probe.next((e) => e.event === 'started', 'mcp-probe to start');
  return probe;
}
