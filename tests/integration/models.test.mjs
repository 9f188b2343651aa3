// GET /v1/models: upstream lists fetched concurrently, configured models and aliases, and a dead or
// slow provider does not fail or hold the list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
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
      offurl: { type: 'openai', base_url: 'http://127.0.0.1:9/v1/', api_key: '${LX_MODELS_TEST_UNSET}' },
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
  // A disabled provider still shows where it would go: its type's default, or its configured base_url.
  assert.equal(by.off.base_url, 'https://api.openai.com/v1');
  assert.equal(by.offurl.base_url, 'http://127.0.0.1:9/v1');
  assert.equal(by.m.health.reachable, true);
  assert.equal(by.m.type, 'mock');
});

test('GET /v1/models/{id}: configured, upstream-listed and alias models; 404s that say why', async () => {
  const get = async (id) => { const r = await fetch(`${gw.base}/v1/models/${id}`); return { status: r.status, headers: r.headers, body: await r.json() }; };
  assert.deepEqual((await get('m/echo')).body, { id: 'm/echo', object: 'model', created: 0, owned_by: 'm' });
  assert.equal((await get('m%2Fecho')).body.id, 'm/echo'); // as SDKs send it, escaped
  assert.equal((await get('a/mock-b')).body.owned_by, 'a'); // listed by the upstream only
  assert.equal((await get('fast')).body.owned_by, 'llmux-alias');
  const unlisted = await get('a/not-there');
  assert.equal(unlisted.status, 404);
  assert.equal(unlisted.body.error.code, 'model_not_found');
  const unknown = await get('nobody/x');
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.error.message, /no provider named 'nobody'/);
  const disabled = await get('off/gpt-4.1');
  assert.equal(disabled.status, 404);
  assert.equal(disabled.body.error.code, 'provider_disabled');
  assert.equal(disabled.headers.get('x-should-retry'), 'false');
});

test('openai-node models.retrieve works for PROVIDER/MODEL ids', async () => {
  const client = new OpenAI({ baseURL: `${gw.base}/v1`, apiKey: 'unused' });
  assert.equal((await client.models.retrieve('m/echo')).id, 'm/echo');
  assert.equal((await client.models.retrieve('a/mock-a')).owned_by, 'a');
  await assert.rejects(client.models.retrieve('a/not-there'), (e) => e instanceof OpenAI.NotFoundError);
});
