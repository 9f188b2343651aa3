// The examples in README.md and docs/ run as written against a gateway started on the shipped
// conf/llmux.json (no provider key set, so everything answers offline through the mock providers).
//
// A fenced block is run when its info string says `runnable`:
//   ```sh runnable             bash; must exit 0 and print something
//   ```js runnable             an ES module run by this Node (from tests/, so the pinned clients import)
//   ```python runnable         /usr/bin/python3 (Debian's, which has the Debian python3-* packages)
//   ... needs=MODULE           run only where MODULE imports (e.g. the openai Python SDK, not in Debian)
//   ... server=PORT            a server listening on 127.0.0.1:PORT: started, waited for, and driven by
//                              the blocks after it (and by this test: a client that leaves mid-stream
//                              must cancel the gateway request it made)
// A block whose info string says `output` right after a runnable block is that block's sample output:
// the real output must have the same shape (every key the sample shows, the same object/status/index/
// code/finish_reason values, the header names it shows, [DONE] when it ends with one).
// Addresses: 127.0.0.1:8080 (the gateway) and each server's PORT are replaced by free ports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { startLlmux, eventually } from './lib.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
const SCRATCH = new URL('../node_modules/.llmux-docs/', import.meta.url).pathname; // resolves the pinned clients
const PYTHON = '/usr/bin/python3';
const FILES = ['README.md', ...readdirSync(`${ROOT}docs`).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const SLOW = !!process.env.LLMUX_WRAP; // under valgrind: the examples are covered by the plain and ASan runs

function parseBlocks(md) {
  const out = [];
  const re = /^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  let m;
  while ((m = re.exec(md))) {
    const words = m[1].trim().split(/\s+/).filter(Boolean);
    const attrs = Object.fromEntries(words.slice(1).map((w) => (w.includes('=') ? w.split('=') : [w, true])));
    out.push({ lang: words[0] || '', attrs, code: m[2], line: md.slice(0, m.index).split('\n').length });
  }
  return out;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

function pythonHas(mod) {
  return existsSync(PYTHON) && spawnSync(PYTHON, ['-c', `import ${mod}`]).status === 0;
}

// Run a process to its end (hang guard: 120 s), collecting its output.
function runTo(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const guard = setTimeout(() => p.kill('SIGKILL'), 120000);
    // 'close', not 'exit': output still in the pipe when the process exits would be lost.
    p.on('close', (code, signal) => { clearTimeout(guard); resolve({ code, signal, stdout, stderr }); });
  });
}

const keysOf = (text) => new Set([...text.matchAll(/"([A-Za-z_][A-Za-z0-9_]*)"\s*:/g)].map((m) => m[1]));
const PINNED = /"(object|status|index|code|finish_reason|role)"\s*:\s*("[^"]*"|-?\d+|null)/g;

// The real output has the sample's shape (see the top of this file).
function assertShape(sample, actual, where) {
  for (const k of keysOf(sample)) assert.ok(keysOf(actual).has(k), `${where}: the sample shows "${k}", the output has none:\n${actual.slice(0, 2000)}`);
  const flat = actual.replace(/\s+/g, '');
  for (const m of sample.matchAll(PINNED))
    assert.ok(flat.includes(`"${m[1]}":${m[2]}`), `${where}: the sample shows "${m[1]}": ${m[2]}, the output does not:\n${actual.slice(0, 2000)}`);
  for (const m of sample.matchAll(/^([A-Z][A-Za-z-]+): /gm))
    assert.ok(new RegExp(`^${m[1]}:`, 'im').test(actual), `${where}: the sample shows header ${m[1]}, the output does not`);
  if (/data: \[DONE\]\s*$/.test(sample)) assert.match(actual, /data: \[DONE\]\s*$/, `${where}: the stream does not end with [DONE]`);
}

// A plain-text sample is the output itself, except where it says "...".
function assertText(sample, actual, where) {
  const parts = sample.trim().split('...').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  assert.match(actual.trim(), new RegExp(`^${parts.join('[\\s\\S]*')}$`), `${where}: the output differs from the sample`);
}

let gw;
const servers = [];
before(async () => {
  if (SLOW) return;
  mkdirSync(SCRATCH, { recursive: true });
  // The shipped file, unchanged; only the address comes from the command line.
  gw = await startLlmux(readFileSync(`${ROOT}conf/llmux.json`, 'utf8'), { env: { OPENAI_API_KEY: '' } });
  // The shipped MCP server (npx fetches it the first time): the tool examples need its tools.
  await eventually(async () => (await (await fetch(`${gw.base}/v1/mcp/servers`)).json()).data,
    (d) => d.every((s) => s.healthy), 180000, 'the MCP servers of conf/llmux.json');
});
after(async () => {
  for (const s of servers) if (s.exitCode === null) s.kill('SIGTERM');
  if (gw) assert.equal((await gw.stop()).code, 0);
});

// A client of a server example that reads a little of a slow stream, then leaves: the server must cancel
// the gateway request it made for it (its access-log line says the client, i.e. the server, left).
async function leavesMidStream(port) {
  const before = gw.access().filter((l) => l.client_gone).length;
  await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/chat', headers: { 'content-type': 'application/json' } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    req.end(JSON.stringify({ prompt: 'a long answer please, word after word after word', model: 'mock-slow/echo' }));
  });
  await eventually(async () => gw.access().filter((l) => l.client_gone && l.model === 'mock-slow/echo').length, (n) => n > before, 30000,
    'the gateway request to be cancelled');
}

for (const file of FILES) {
  test(`${file}: runnable examples work on conf/llmux.json`, { skip: SLOW && 'under valgrind' }, async (t) => {
    const blocks = parseBlocks(readFileSync(`${ROOT}${file}`, 'utf8'));
    let subst = [['127.0.0.1:8080', `127.0.0.1:${gw.port}`]];
    const fix = (code) => subst.reduce((c, [a, b]) => c.split(a).join(b), code);
    const started = [];
    const skippedPorts = [];
    try {
      for (let i = 0; i < blocks.length; i++) {
        const b = blocks[i];
        if (!b.attrs.runnable) continue;
        const where = `${file}:${b.line}`;
        if (skippedPorts.some((p) => b.code.includes(`127.0.0.1:${p}`))) {
          t.diagnostic(`${where}: skipped, its server was skipped`);
          continue;
        }
        if (b.lang === 'python' && (!existsSync(PYTHON) || (b.attrs.needs && !pythonHas(b.attrs.needs)))) {
          t.diagnostic(`${where}: skipped, ${PYTHON} cannot import ${b.attrs.needs || 'anything'}`);
          if (b.attrs.server) skippedPorts.push(b.attrs.server);
          continue;
        }
        if (b.attrs.server) {
          const port = await freePort();
          subst = [...subst, [`127.0.0.1:${b.attrs.server}`, `127.0.0.1:${port}`]];
          const code = fix(b.code);
          const name = `${file.replace(/\W/g, '_')}-${b.line}.${b.lang === 'python' ? 'py' : 'mjs'}`;
          writeFileSync(SCRATCH + name, code);
          const cmd = b.lang === 'python' ? PYTHON : process.execPath;
          const proc = spawn(cmd, [SCRATCH + name], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: String(port) } });
          let log = '';
          proc.stdout.on('data', (d) => { log += d; });
          proc.stderr.on('data', (d) => { log += d; });
          servers.push(proc);
          started.push(proc);
          await eventually(() => canConnect(port), (ok) => ok || proc.exitCode !== null, 60000, `${where} to listen`);
          assert.equal(proc.exitCode, null, `${where} exited:\n${log}`);
          await t.test(`${where}: ${b.lang} server cancels its gateway request when its client leaves`, () => leavesMidStream(port));
          continue;
        }
        await t.test(`${where}: ${b.lang}`, async () => {
          const code = fix(b.code);
          let r;
          if (b.lang === 'sh') {
            r = await runTo('bash', ['-e', '-o', 'pipefail', '-c', code]);
          } else if (b.lang === 'js') {
            const name = `${file.replace(/\W/g, '_')}-${b.line}.mjs`;
            writeFileSync(SCRATCH + name, code);
            r = await runTo(process.execPath, [SCRATCH + name]);
          } else if (b.lang === 'python') {
            r = await runTo(PYTHON, ['-c', code]);
          } else {
            assert.fail(`${where}: no runner for "${b.lang}"`);
          }
          assert.equal(r.code, 0, `${where} exited ${r.code ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
          assert.ok(r.stdout.trim().length > 0, `${where} printed nothing:\n${r.stderr}`);
          const next = blocks[i + 1];
          // An error in the output is a failure, unless the sample output shows one on purpose.
          if (!(next && next.attrs.output && /"error"/.test(next.code)))
            assert.doesNotMatch(r.stdout, /"error"\s*:\s*\{/, `${where} printed an error:\n${r.stdout}`);
          if (next && next.attrs.output && next.lang === 'text') assertText(next.code, r.stdout, `${file}:${next.line}`);
          else if (next && next.attrs.output) assertShape(next.code, r.stdout, `${file}:${next.line}`);
        });
      }
    } finally {
      for (const p of started) if (p.exitCode === null) p.kill('SIGTERM');
    }
  });
}

test('the docs test sees runnable blocks in every language it claims to run', { skip: SLOW && 'under valgrind' }, () => {
  const langs = new Set(FILES.flatMap((f) => parseBlocks(readFileSync(`${ROOT}${f}`, 'utf8')).filter((b) => b.attrs.runnable).map((b) => b.lang)));
  for (const l of ['sh', 'js', 'python']) assert.ok(langs.has(l), `no runnable ${l} block`);
  const servers = FILES.flatMap((f) => parseBlocks(readFileSync(`${ROOT}${f}`, 'utf8')).filter((b) => b.attrs.server).map((b) => b.lang));
  assert.deepEqual(servers.sort(), ['js', 'python'], 'the async guide has a FastAPI and a Node server');
});
