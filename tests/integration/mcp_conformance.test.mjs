// The official MCP conformance scenarios for clients (@modelcontextprotocol/conformance) against llmux's
// MCP client, run through mcp-probe --conformance. Scenarios llmux fails on purpose are listed in
// tests/mcp/conformance-baseline.yml: the suite fails on a new failure and on a baseline entry that passes.
// The OAuth scenarios (--suite auth) are not run: llmux sends configured headers and does no OAuth flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, TESTS, PROBE_BIN, tempFile } from './mcp_lib.mjs';

const CLI = join(TESTS, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const BASELINE = join(TESTS, 'mcp/conformance-baseline.yml');
// The plain run covers it; under valgrind or the sanitizers the client is exercised by mcp_client.test.mjs.
const SKIP = (process.env.LLMUX_WRAP || process.env.LLMUX_SANITIZED) && 'covered by the plain run';

function run(args) {
  return new Promise((resolve) => {
    const p = spawn(NODE, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.once('close', (code) => resolve({ code, out })); // after the pipes drain, unlike 'exit'
  });
}

for (const scenario of ['initialize', 'tools_call', 'sse-retry', 'elicitation-sep1034-client-defaults']) {
  test(`conformance client scenario ${scenario}`, { skip: SKIP }, async () => {
    const dir = tempFile('conformance');
    const { code, out } = await run(['client', '--command', `${PROBE_BIN} --conformance`, '--scenario', scenario,
      '--expected-failures', BASELINE, '--timeout', '60000', '-o', dir]);
    if (scenario === 'sse-retry') {
      // Its retry-timing check measures milliseconds on a shared machine: the test keeps to what the
      // client did (reconnected with GET, sent Last-Event-ID, got the answer), not how fast.
      const checks = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0], 'checks.json'), 'utf8'));
      for (const id of ['client-sse-graceful-reconnect', 'client-sse-last-event-id'])
        assert.equal(checks.find((c) => c.id === id)?.status, 'SUCCESS', `${id}:\n${out}`);
      return;
    }
    assert.equal(code, 0, out);
    if (scenario !== 'elicitation-sep1034-client-defaults') assert.match(out, /OVERALL: PASSED/);
  });
}
