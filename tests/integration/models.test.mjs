// GET /v1/models: upstream lists fetched concurrently, configured models and aliases, and a dead or
// slow provider does not fail or hold the list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock, startLlmux, upstreamProvider, eventually } from './lib.mjs';

let fast, slow, gw;
before(async () => {
  fast = await startMock();
  slow = await startMock(['--models-delay', '60000']);
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const closed = srv.address().port;
  await new Promise((r) => srv.close(r));
  gw = await startLlmux({
    models_timeout_ms: 500,
    providers: {
      a: upstreamProvider(fast, { models: ['extra-configured'] }),
      slowpoke: upstreamProvider(slow, { models: ['slow-configured'] }),
      dead: { type: 'openai', base_url: `http://127.0.0.1:${closed}/v1`, models: ['dead-configured'] },
      m: { type: 'mock' },
      off: { type: 'openai', api_key: '${LX_MODELS_TEST_UNSET}' },
    },
    aliases: { fast: 'a/mock-a' },
  });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await fast.stop();
  await slow.stop();
});

test('the list is the union over providers, prefixed, plus aliases', async () => {
  const res = await fetch(`${gw.base}/v1/models`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.object, 'list');
  const ids = body.data.map((m) => m.id);
  for (const id of ['a/mock-a', 'a/mock-b', 'a/extra-configured', 'slowpoke/slow-configured', 'dead/dead-configured', 'm/echo', 'fast'])
    assert.ok(ids.includes(id), `${id} listed (got ${ids})`);
  assert.ok(!ids.some((id) => id.startsWith('slowpoke/mock-')), 'the slow upstream was cut off at models_timeout_ms');
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
  for (const m of body.data) assert.equal(m.object, 'model');
  assert.equal(body.data.find((m) => m.id === 'a/mock-a').owned_by, 'a');
});

test('the slow upstream saw its request cancelled', async () => {
  // The only connection left open to it is the one asking for these stats.
  await eventually(() => slow.stats(), (st) => st.connections_open === 1, 5000, 'models fetch to be closed');
});

test('GET /v1/providers reports health: reachable, dead, slow, disabled, local', async () => {
  const { data } = await (await fetch(`${gw.base}/v1/providers`)).json();
  const by = Object.fromEntries(data.map((p) => [p.name, p]));
  assert.equal(by.a.health.reachable, true);
  assert.equal(by.a.health.error, null);
  assert.equal(by.dead.health.reachable, false);
  assert.match(by.dead.health.error, /connect|refused/i);
  assert.equal(by.slowpoke.health.reachable, false);
  assert.match(by.slowpoke.health.error, /models_timeout_ms/);
  assert.equal(by.off.enabled, false);
  assert.match(by.off.health.error, /LX_MODELS_TEST_UNSET/);
  assert.equal(by.m.health.reachable, true);
  assert.equal(by.m.type, 'mock');
});
