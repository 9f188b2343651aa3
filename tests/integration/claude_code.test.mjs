// Claude Code itself (@anthropic-ai/claude-code, pinned in tests/package.json) run non-interactively with
// ANTHROPIC_BASE_URL at llmux, a dummy key and a model name that an alias routes to the built-in mock
// provider: it must print the mock's answer, and run a tool the mock asks for and send its result back.
// Slow (a 400 MB native client per run): only in the plain run, not under valgrind or ASan.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlmux } from './lib.mjs';

const CLAUDE = new URL('../node_modules/.bin/claude', import.meta.url).pathname;
const SKIP = !!(process.env.LLMUX_WRAP || process.env.LLMUX_SANITIZED) || !existsSync(CLAUDE);

let gw, home, work;
before(async () => {
  if (SKIP) return;
  gw = await startLlmux({
    providers: { local: { type: 'mock' } },
    aliases: { 'claude-sonnet-4-5': 'local/echo', 'claude-haiku-4-5': 'local/echo' },
    auth: { keys: [{ name: 'claude-code', key: 'sk-llmux-dummy' }] },
  });
  home = mkdtempSync(join(tmpdir(), 'llmux-claude-home-'));
  work = mkdtempSync(join(tmpdir(), 'llmux-claude-work-'));
});
after(async () => {
  if (SKIP) return;
  assert.equal((await gw.stop()).code, 0);
});

// Run `claude -p PROMPT --output-format json ARGS...` against llmux; resolves to its parsed JSON result.
function claude(prompt, args = []) {
  return new Promise((resolve, reject) => {
    const env = {
      PATH: process.env.PATH,
      HOME: home, // a fresh one: no login, settings or caches of the machine's user
      ANTHROPIC_BASE_URL: gw.base,
      ANTHROPIC_API_KEY: 'sk-llmux-dummy',
      // nothing but the API calls: no telemetry, error reports, update checks or other background traffic
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_BUG_COMMAND: '1',
      CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS: '1',
    };
    const p = spawn(CLAUDE, ['-p', prompt, '--output-format', 'json', '--model', 'claude-sonnet-4-5', ...args],
      { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const guard = setTimeout(() => p.kill('SIGKILL'), 120000); // a hang guard
    p.on('exit', (code) => {
      clearTimeout(guard);
      try {
        resolve({ code, result: JSON.parse(out), err });
      } catch {
        reject(new Error(`claude exited ${code} without JSON:\n${out}\n${err}`));
      }
    });
  });
}

test('claude -p prints the answer of the model its alias routes to', { skip: SKIP }, async () => {
  const { code, result, err } = await claude('Say hello to llmux', ['--tools', '']);
  assert.equal(code, 0, err);
  assert.equal(result.is_error, false, JSON.stringify(result));
  assert.match(result.result, /^This is the llmux mock provider\. You said: /);
  assert.match(result.result, /Say hello to llmux/);
  const line = await gw.waitAccess((l) => l.path === '/v1/messages' && l.status === 200);
  assert.equal(line.model, 'claude-sonnet-4-5');
  assert.equal(line.provider, 'local/echo');
  assert.equal(line.key, 'claude-code');
});

test('claude -p runs the tool the model calls and sends its result back', { skip: SKIP }, async () => {
  writeFileSync(join(work, 'notes.txt'), 'llmux notes\n');
  const { code, result, err } = await claude('Read notes.txt', ['--tools', 'Read', '--allowedTools', 'Read']);
  assert.equal(code, 0, err);
  assert.equal(result.num_turns >= 2, true, JSON.stringify(result));
  // the mock quotes the tool result it got back: Claude Code ran Read and answered with its outcome
  assert.match(result.result, /The tool Read returned/, JSON.stringify(result));
  const calls = gw.access().filter((l) => l.path === '/v1/messages' && l.status === 200);
  assert.ok(calls.length >= 3); // the first run's one, then the tool call and the answer to its result
});
