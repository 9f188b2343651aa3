// The conversation store's Redis backend (docs/scale-out.md): two llmux replicas on one real redis-server
// (appendonly, fsync on every write) continue each other's conversations and previous_response_id
// chains, and the mock upstream receives the whole history whichever replica takes the turn. Items,
// pages, ownership and the busy lock hold across replicas; kill -9 of a replica mid-burst loses nothing
// it acknowledged; Redis slow or killed mid-load gives clear 503s, never a hang, and the conversations
// continue once it is back.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, httpRequest, sseData, eventually } from './lib.mjs';
import { startRedis } from './redis.mjs';

const SLOW = !!process.env.LLMUX_WRAP;
const GUARD_MS = SLOW ? 120000 : 30000;
const K1 = 'sk-store-one-0123456789abcdef';
const K2 = 'sk-store-two-0123456789abcdef';
let mock, redis, A, B;

function config(storeMore = {}, redisMore = {}) {
  return {
    providers: {
      anth: { type: 'anthropic', base_url: mock.url, api_key: 'sk-ant-test' },
      mock: { type: 'mock', models: ['echo'] },
    },
    auth: { keys: [{ name: 'one', key: K1 }, { name: 'two', key: K2 }] },
    redis: { url: redis.url, prefix: 'st:', timeout_ms: 5000, connect_timeout_ms: 10000, reconnect_max_ms: 200, ...redisMore },
    store: { backend: 'redis', timeout_ms: SLOW ? 20000 : 5000, ...storeMore },
  };
}

async function startReplica(cfg = config()) {
  const gw = await startLlmux(cfg);
  await gw.waitLog(/store: redis ready/, 20000);
  return gw;
}

before(async () => {
  mock = await startMock();
  // Durable as docs/scale-out.md recommends: every acknowledged write is on disk before Redis answers.
  redis = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always', '--enable-debug-command', 'yes']);
  [A, B] = [await startReplica(), await startReplica()];
});
after(async () => {
  for (const gw of [A, B]) if (gw) assert.equal((await gw.stop()).code, 0);
  await redis.stop();
  await mock.stop();
});
beforeEach(async () => { await mock.reset(); });

async function call(gw, method, path, body, key = K1) {
  const r = await httpRequest(gw.port, { method, path, body, headers: { authorization: `Bearer ${key}` } });
  let json = null;
  try { json = JSON.parse(r.text); } catch { /* a stream */ }
  return { ...r, json };
}
const create = (gw, body, key) => call(gw, 'POST', '/v1/responses', body, key);
const text = (resp) => resp.output.filter((o) => o.type === 'message').flatMap((m) => m.content).map((c) => c.text).join('');
// Every item of a conversation, oldest first, page after page.
async function allItems(gw, id) {
  const out = [];
  for (let after = ''; ;) {
    const page = await call(gw, 'GET', `/v1/conversations/${id}/items?order=asc&limit=100${after}`);
    assert.equal(page.status, 200, page.text);
    out.push(...page.json.data);
    if (!page.json.has_more) return out;
    after = `&after=${page.json.last_id}`;
  }
}
const metric = async (gw, name) => {
  const text = (await httpRequest(gw.port, { method: 'GET', path: '/metrics' })).text;
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};
const itemText = (it) => it.content.map((c) => c.text).join('');
// What the upstream received, as [role, text] pairs (Anthropic's dialect).
async function upstreamTurns() {
  const body = (await mock.last()).body;
  return body.messages.map((m) => [m.role, typeof m.content === 'string' ? m.content : m.content.map((c) => c.text).join('')]);
}

test('a previous_response_id chain started on A continues on B, then on A: the upstream gets the whole history each time', async () => {
  const r1 = await create(A, { model: 'anth/m', input: 'one' });
  assert.equal(r1.status, 200, r1.text);
  const r2 = await create(B, { model: 'anth/m', input: 'two', previous_response_id: r1.json.id });
  assert.equal(r2.status, 200, r2.text);
  assert.deepEqual(await upstreamTurns(), [['user', 'one'], ['assistant', 'echo: one'], ['user', 'two']]);
  const r3 = await create(A, { model: 'anth/m', input: 'three', previous_response_id: r2.json.id, stream: true });
  assert.equal(r3.status, 200, r3.text);
  const done = sseData(r3.text).map((d) => JSON.parse(d)).find((e) => e.type === 'response.completed').response;
  assert.deepEqual(await upstreamTurns(),
    [['user', 'one'], ['assistant', 'echo: one'], ['user', 'two'], ['assistant', 'echo: two'], ['user', 'three']]);
  // Either replica answers for any response.
  const got = await call(B, 'GET', `/v1/responses/${done.id}`);
  assert.equal(got.status, 200, got.text);
  assert.equal(text(got.json), 'echo: three');
  assert.equal(got.json.previous_response_id, r2.json.id);
  assert.ok(got.json.usage && got.json.usage.output_tokens > 0, 'usage kept');
  const inputs = await call(A, 'GET', `/v1/responses/${r2.json.id}/input_items`);
  assert.deepEqual(inputs.json.data.map(itemText), ['two']);
  // Deleted on B: gone for A, and a chain through it stops there.
  assert.equal((await call(B, 'DELETE', `/v1/responses/${r1.json.id}`)).status, 200);
  assert.equal((await call(A, 'GET', `/v1/responses/${r1.json.id}`)).status, 404);
  assert.equal((await create(A, { model: 'anth/m', input: 'four', previous_response_id: r2.json.id })).status, 200);
  assert.deepEqual(await upstreamTurns(), [['user', 'two'], ['assistant', 'echo: two'], ['user', 'four']]);
  // Every key has a TTL (the retention), so nothing grows without bound.
  const ttl = Number(redis.cli('PTTL', `st:resp:${r2.json.id}`));
  assert.ok(ttl > 29 * 86400 * 1000 && ttl <= 30 * 86400 * 1000, `resp TTL ${ttl}`);
});

test('a conversation made on A takes turns on B and A with its whole history; the items API works from either replica', async () => {
  const c = await call(A, 'POST', '/v1/conversations', { metadata: { user: 'u1' }, items: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi there' }] });
  assert.equal(c.status, 200, c.text);
  const id = c.json.id;
  assert.deepEqual((await call(B, 'GET', `/v1/conversations/${id}`)).json, c.json);
  const t1 = await create(B, { model: 'anth/m', input: 'first', conversation: id });
  assert.equal(t1.status, 200, t1.text);
  assert.deepEqual(await upstreamTurns(), [['user', 'hello'], ['assistant', 'hi there'], ['user', 'first']]);
  const t2 = await create(A, { model: 'anth/m', input: 'second', conversation: id, stream: true });
  assert.equal(t2.status, 200, t2.text);
  assert.deepEqual(await upstreamTurns(), [['user', 'hello'], ['assistant', 'hi there'], ['user', 'first'],
    ['assistant', 'echo: first'], ['user', 'second']]);
  const all = ['hello', 'hi there', 'first', 'echo: first', 'second', 'echo: second'];
  const asc = await call(B, 'GET', `/v1/conversations/${id}/items?order=asc&limit=100`);
  assert.deepEqual(asc.json.data.map(itemText), all);
  assert.equal(asc.json.has_more, false);
  const desc = await call(A, 'GET', `/v1/conversations/${id}/items?limit=2`);
  assert.deepEqual(desc.json.data.map(itemText), ['echo: second', 'second']);
  assert.equal(desc.json.has_more, true);
  assert.equal(desc.json.last_id, desc.json.data[1].id);
  const next = await call(B, 'GET', `/v1/conversations/${id}/items?limit=2&after=${desc.json.last_id}`);
  assert.deepEqual(next.json.data.map(itemText), ['echo: first', 'first']);
  const nextAsc = await call(B, 'GET', `/v1/conversations/${id}/items?order=asc&limit=3&after=${asc.json.data[1].id}`);
  assert.deepEqual(nextAsc.json.data.map(itemText), ['first', 'echo: first', 'second']);
  assert.equal(nextAsc.json.has_more, true);
  // Add on A, read and delete on B, update on B, seen on A.
  const added = await call(A, 'POST', `/v1/conversations/${id}/items`, { items: [{ role: 'user', content: 'more' }] });
  assert.equal(added.status, 200, added.text);
  const newId = added.json.data[0].id;
  assert.equal(itemText((await call(B, 'GET', `/v1/conversations/${id}/items/${newId}`)).json), 'more');
  const afterDelete = await call(B, 'DELETE', `/v1/conversations/${id}/items/${newId}`);
  assert.equal(afterDelete.json.id, id);
  assert.equal((await call(A, 'GET', `/v1/conversations/${id}/items/${newId}`)).status, 404);
  const up = await call(B, 'POST', `/v1/conversations/${id}`, { metadata: { user: 'u2' } });
  assert.deepEqual(up.json.metadata, { user: 'u2' });
  assert.deepEqual((await call(A, 'GET', `/v1/conversations/${id}`)).json.metadata, { user: 'u2' });
  // A response made in a conversation continues it by previous_response_id on the other replica.
  const chained = await create(B, { model: 'anth/m', input: 'by chain', previous_response_id: t1.json.id });
  assert.equal(chained.status, 200, chained.text);
  assert.deepEqual(await upstreamTurns(), [['user', 'hello'], ['assistant', 'hi there'], ['user', 'first'],
    ['assistant', 'echo: first'], ['user', 'by chain']]);
  for (const k of ['', ':order', ':items', ':ids']) assert.ok(Number(redis.cli('PTTL', `st:conv:${id}${k}`)) > 0, `conv${k} has a TTL`);
  assert.deepEqual((await call(A, 'DELETE', `/v1/conversations/${id}`)).json, { id, object: 'conversation.deleted', deleted: true });
  assert.equal((await call(B, 'GET', `/v1/conversations/${id}`)).status, 404);
  assert.equal((await create(B, { model: 'anth/m', input: 'x', conversation: id })).status, 404);
  assert.equal(redis.cli('KEYS', `st:conv:${id}*`), '', 'nothing of it left');
});

test("another key's responses and conversations do not exist for it on either replica (404)", async () => {
  const r = await create(A, { model: 'mock/echo', input: 'mine' });
  const c = await call(A, 'POST', '/v1/conversations', { items: [{ role: 'user', content: 'x' }] });
  for (const [method, path] of [['GET', `/v1/responses/${r.json.id}`], ['DELETE', `/v1/responses/${r.json.id}`],
    ['GET', `/v1/responses/${r.json.id}/input_items`], ['GET', `/v1/conversations/${c.json.id}`],
    ['GET', `/v1/conversations/${c.json.id}/items`], ['DELETE', `/v1/conversations/${c.json.id}`]]) {
    const other = await call(B, method, path, undefined, K2);
    assert.equal(other.status, 404, `${method} ${path}`);
    assert.equal(other.json.error.code, 'not_found');
  }
  const cont = await create(B, { model: 'mock/echo', input: 'x', previous_response_id: r.json.id }, K2);
  assert.equal(cont.status, 404);
  assert.equal(cont.json.error.param, 'previous_response_id');
  const turn = await create(B, { model: 'mock/echo', input: 'x', conversation: c.json.id }, K2);
  assert.equal(turn.status, 404);
  assert.equal(turn.json.error.param, 'conversation');
  assert.equal((await call(B, 'GET', `/v1/responses/${r.json.id}`)).status, 200);
});

test('a turn in flight on A makes the conversation busy on B (409), with a lock that has a TTL and goes when the turn ends', async () => {
  const c = await call(A, 'POST', '/v1/conversations', {});
  const id = c.json.id;
  const slow = create(A, { model: 'anth/m;latency=1500', input: 'first', conversation: id });
  await eventually(() => mock.stats(), (s) => s.active >= 1, GUARD_MS, 'the first turn to reach the upstream');
  const second = await create(B, { model: 'anth/m', input: 'second', conversation: id });
  assert.equal(second.status, 409, second.text);
  assert.equal(second.json.error.code, 'conversation_busy');
  assert.match(second.json.error.message, /in progress/);
  const added = await call(B, 'POST', `/v1/conversations/${id}/items`, { items: [{ role: 'user', content: 'meanwhile' }] });
  assert.equal(added.status, 409);
  // A crashed replica would let go by itself: the lock lives at most its TTL (30 s) unless renewed.
  const ttl = Number(redis.cli('PTTL', `st:conv:${id}:lock`));
  assert.ok(ttl > 0 && ttl <= 30000, `lock TTL ${ttl}`);
  assert.equal((await slow).status, 200);
  assert.equal(redis.cli('EXISTS', `st:conv:${id}:lock`), '0', 'the lock went with the turn');
  const third = await create(B, { model: 'anth/m', input: 'third', conversation: id });
  assert.equal(third.status, 200, third.text);
  assert.deepEqual(await upstreamTurns(), [['user', 'first'], ['assistant', 'echo: first'], ['user', 'third']]);
  // A streamed turn's response, reserved at its start, is in progress for everyone until it completes.
  const stream = create(A, { model: 'anth/m;chunks=10;interval=100', input: 'streamed', stream: true });
  await eventually(() => mock.stats(), (s) => s.active >= 1, GUARD_MS, 'the stream to start');
  const reserved = redis.cli('KEYS', 'st:resp:*').split('\n').find((k) => redis.cli('HGET', k, 'status') === 'in_progress');
  assert.ok(reserved, 'an in-progress response');
  const early = await create(B, { model: 'anth/m', input: 'too soon', previous_response_id: reserved.slice('st:resp:'.length) });
  assert.equal(early.status, 409);
  assert.equal(early.json.error.code, 'response_in_progress');
  assert.equal((await stream).status, 200);
});

test('store.backend "redis" without a redis section: llmux refuses to start, saying why', async () => {
  const { spawnSync } = await import('node:child_process');
  const { writeConfig, LLMUX_BIN } = await import('./lib.mjs');
  const cfg = { ...config(), redis: undefined };
  const out = spawnSync(LLMUX_BIN, ['--config', writeConfig(cfg), '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: GUARD_MS });
  assert.equal(out.status, 1);
  assert.match(out.stderr, /store\.backend "redis" needs the top-level "redis" section/);
});

test('max_items_per_conversation: the oldest items go, on every replica', async () => {
  const cfg = config({ max_items_per_conversation: 3 });
  const C = await startReplica(cfg);
  try {
    const c = await call(C, 'POST', '/v1/conversations', { items: ['a', 'b'].map((t) => ({ role: 'user', content: t })) });
    assert.equal((await create(C, { model: 'anth/m', input: 'c', conversation: c.json.id })).status, 200);
    const items = await call(C, 'GET', `/v1/conversations/${c.json.id}/items?order=asc`);
    // The mock's answer echoes what the upstream was sent (all three items): it comes last.
    assert.deepEqual(items.json.data.map(itemText), ['b', 'c', 'echo: a b c']);
    assert.equal(Number(redis.cli('HLEN', `st:conv:${c.json.id}:ids`)), 3);
  } finally {
    assert.equal((await C.stop()).code, 0);
  }
});

test('kill -9 of a replica mid-burst: every turn it acknowledged is on the other replica, responses and conversation items', { skip: SLOW && 'under valgrind' }, async () => {
  const g = await startReplica();
  const convs = [];
  for (let i = 0; i < 8; i++) convs.push((await call(g, 'POST', '/v1/conversations', {})).json.id);
  const acked = [];
  const ackedIn = new Map(convs.map((c) => [c, []]));
  let killed = false;
  // Each conversation takes turns one after another; a chain grows beside them; some turns stream.
  const runConv = async (conv, n) => {
    for (let i = 0; !killed; i++) {
      const body = { model: `anth/m;latency=${(i * 37 + n * 11) % 200}`, input: `c${n} t${i}`, conversation: conv, stream: i % 2 === 1 };
      const r = await create(g, body).catch(() => null);
      if (!r || r.status !== 200) return;
      const done = body.stream ? sseData(r.text).map((d) => JSON.parse(d)).find((e) => e.type === 'response.completed')?.response : r.json;
      if (!done || killed) return;
      acked.push(done);
      ackedIn.get(conv).push(body.input);
    }
  };
  const runChain = async () => {
    let prev;
    for (let i = 0; !killed; i++) {
      const r = await create(g, { model: `mock/echo`, input: `chain ${i}`, ...(prev ? { previous_response_id: prev } : {}) }).catch(() => null);
      if (!r || r.status !== 200 || killed) return;
      acked.push(r.json);
      prev = r.json.id;
    }
  };
  const loops = [...convs.map((c, n) => runConv(c, n)), runChain(), runChain()];
  const convAcks = () => [...ackedIn.values()].reduce((n, l) => n + l.length, 0);
  await eventually(async () => [acked.length, convAcks()], ([n, c]) => n >= 60 && c >= 16, GUARD_MS * 3, 'a good part of the turns to be acknowledged');
  killed = true;
  g.proc.kill('SIGKILL');
  await g.exited;
  await Promise.all(loops);
  for (const want of acked) {
    const got = await call(B, 'GET', `/v1/responses/${want.id}`);
    assert.equal(got.status, 200, `${want.id} was acknowledged but is gone`);
    assert.equal(text(got.json), text(want));
  }
  for (const [conv, inputs] of ackedIn) {
    const texts = (await allItems(B, conv)).map(itemText);
    for (const input of inputs) {
      const at = texts.indexOf(input);
      assert.ok(at >= 0, `${conv}: acknowledged turn '${input}' is missing`);
      assert.equal(texts[at + 1], `echo: ${input}`, 'its answer follows it');
    }
  }
});

test('Redis slow: an operation past store.timeout_ms gets a 503 store_unavailable in the OpenAI shape, then works again', { skip: SLOW && 'under valgrind' }, async () => {
  const C = await startReplica(config({ timeout_ms: 200 }));
  try {
    const c = await call(C, 'POST', '/v1/conversations', {});
    const sleeping = new Promise((resolve) => {
      import('node:child_process').then(({ execFile }) => execFile('redis-cli', ['-s', redis.sock, 'DEBUG', 'SLEEP', '2'], resolve));
    });
    await new Promise((r) => setTimeout(r, 100)); // hang guard only: DEBUG SLEEP has been sent
    const r = await call(C, 'GET', `/v1/conversations/${c.json.id}`);
    await sleeping;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.type, 'server_error');
    assert.equal(r.json.error.code, 'store_unavailable');
    assert.match(r.json.error.message, /did not answer in time/);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((await call(C, 'GET', `/v1/conversations/${c.json.id}`)).status, 200);
  } finally {
    assert.equal((await C.stop()).code, 0);
  }
});

test('Redis killed mid-load and restarted: turns get 503 store_unavailable (no hang, no crash), then conversations continue with every acknowledged turn', { skip: SLOW && 'under valgrind' }, async () => {
  const c = await call(A, 'POST', '/v1/conversations', {});
  const id = c.json.id;
  let stop = false;
  const statuses = [];
  const acked = [];
  let prev;
  const load = async (gw, tag) => {
    for (let i = 0; !stop; i++) {
      const r = await create(gw, { model: 'anth/m;latency=10', input: `${tag}${i}`, conversation: id });
      statuses.push(r.status);
      if (r.status === 200) acked.push(`${tag}${i}`);
      else if (r.status === 503) assert.equal(r.json.error.code, 'store_unavailable', r.text);
      else if (r.status !== 409) assert.fail(`unexpected ${r.status}: ${r.text}`);
      const q = await create(gw, { model: 'mock/echo', input: 'q', ...(prev ? { previous_response_id: prev } : {}) });
      statuses.push(q.status);
      if (q.status === 200) prev = q.json.id;
    }
  };
  const loops = [load(A, 'a'), load(B, 'b')];
  await eventually(async () => acked.length, (n) => n >= 6, GUARD_MS, 'turns before the outage');
  await redis.kill();
  const during = statuses.length;
  await eventually(async () => statuses.length, (n) => n >= during + 12, GUARD_MS, 'answers during the outage');
  const whileDown = statuses.slice(during + 4); /* the first few may have been decided just before */
  const got = await call(B, 'GET', `/v1/conversations/${id}/items`);
  assert.equal(got.status, 503);
  assert.equal(got.json.error.code, 'store_unavailable');
  assert.equal(await metric(B, 'llmux_store_up'), 0);
  assert.ok(await metric(B, 'llmux_store_unavailable_total') > 0);
  await B.waitLog(/store: redis unreachable: conversation requests answer 503/);
  await redis.start();
  await eventually(async () => (await call(A, 'GET', `/v1/conversations/${id}`)).status, (s) => s === 200, GUARD_MS, 'A to reach Redis again');
  await eventually(async () => (await call(B, 'GET', `/v1/conversations/${id}`)).status, (s) => s === 200, GUARD_MS, 'B to reach Redis again');
  stop = true;
  await Promise.all(loops);
  assert.ok(whileDown.length && whileDown.every((s) => s === 503), `while Redis was away: ${whileDown.join(',')}`);
  // appendfsync always: what was acknowledged before the crash is still there, in order, answers after.
  const texts = (await allItems(A, id)).map(itemText);
  for (const input of acked) assert.ok(texts.includes(input), `acknowledged '${input}' is missing`);
  const last = await create(B, { model: 'anth/m', input: 'after', conversation: id });
  assert.equal(last.status, 200, last.text);
  const sent = await upstreamTurns();
  assert.deepEqual(sent.at(-1), ['user', 'after']);
  assert.equal(sent.length, texts.length + 1, 'the whole conversation went upstream');
  assert.equal(await metric(A, 'llmux_store_up'), 1);
  // And the process still answers everything else.
  assert.equal((await httpRequest(A.port, { method: 'GET', path: '/healthz' })).status, 200);
});
