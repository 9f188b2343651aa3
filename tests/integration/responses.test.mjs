// The Responses and Conversations APIs with their state in llmux (issue 15), through real sockets: llmux
// in front of the project's mock upstream speaking Anthropic's and Ollama's dialects, with a store in a
// temp state_dir. The mock records the last request it got (/debug/last), so each turn checks that the
// upstream received the whole history.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLlmux as startGateway, startMock, httpRequest, sseData, eventually } from './lib.mjs';
import { startRedis } from './redis.mjs';

// LLMUX_TEST_STORE=redis (responses_redis.test.mjs) runs every test again with the store in a real
// redis-server ("store": {"backend": "redis"}), which must answer alike.
const REDIS = process.env.LLMUX_TEST_STORE === 'redis';
let redis;
async function startLlmux(cfg, opts) {
  const g = await startGateway(cfg, opts);
  if (REDIS && cfg.store !== null) await g.waitLog(/store: redis ready/, 20000);
  return g;
}

const K1 = 'sk-llmux-one-0123456789abcdef';
const K2 = 'sk-llmux-two-0123456789abcdef';
const GUARD_MS = 20000;
let mock, gw;

function config(extra = {}) {
  const cfg = {
    providers: {
      anth: { type: 'anthropic', base_url: mock.url, api_key: 'sk-ant-test' },
      oll: { type: 'ollama', base_url: mock.url },
      mock: { type: 'mock', models: ['echo'] },
    },
    auth: { keys: [{ name: 'one', key: K1 }, { name: 'two', key: K2 }] },
    ...extra,
  };
  if (REDIS) {
    cfg.redis = { url: redis.url, prefix: 'responses:' };
    if (cfg.store !== null) cfg.store = { backend: 'redis', ...cfg.store };
  }
  return cfg;
}

before(async () => {
  if (REDIS) redis = await startRedis();
  mock = await startMock();
  gw = await startLlmux(config());
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
  if (REDIS) await redis.stop();
});

async function call(method, path, body, { key = K1, g = gw, headers = {} } = {}) {
  const r = await httpRequest(g.port, { method, path, body, headers: { authorization: `Bearer ${key}`, ...headers } });
  let json = null;
  try { json = JSON.parse(r.text); } catch { /* a stream, or nothing */ }
  return { ...r, json };
}
const create = (body, opts) => call('POST', '/v1/responses', body, opts);
const text = (resp) => resp.output.filter((o) => o.type === 'message').flatMap((m) => m.content).map((c) => c.text).join('');

// The conversation the upstream received, as [role, text] pairs, in either dialect.
function turnsOf(body) {
  const part = (c) => c.text ?? (c.type === 'tool_result' ? `tool_result:${typeof c.content === 'string' ? c.content : c.content.map((x) => x.text).join('')}`
    : c.type === 'tool_use' ? `tool_use:${c.name}` : c.type);
  return body.messages.map((m) => [m.role, typeof m.content === 'string' ? m.content : m.content.map(part).join('')]);
}
async function upstreamTurns() { return turnsOf((await mock.last()).body); }

// The events of a Responses stream (event name, data), checked for what every stream must be.
function events(res) {
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /^text\/event-stream/);
  const blocks = res.text.split('\n\n').filter((b) => b.trim() && !b.startsWith(':'));
  const evs = blocks.map((b) => {
    const name = b.match(/^event: (.*)$/m)?.[1];
    const data = JSON.parse(b.match(/^data: (.*)$/m)[1]);
    assert.equal(name, data.type, 'the SSE event name is the event type');
    return data;
  });
  assert.ok(!res.text.includes('[DONE]'), 'no [DONE] in a Responses stream');
  evs.forEach((e, i) => assert.equal(e.sequence_number, i, `sequence_number of event ${i} (${e.type})`));
  return evs;
}

for (const model of ['anth/claude-x', 'oll/llama3']) {
  test(`${model}: three turns with previous_response_id; the upstream gets the whole history every turn`, async () => {
    const r1 = await create({ model, input: 'one', instructions: 'Be brief.' });
    assert.equal(r1.status, 200, r1.text);
    assert.match(r1.json.id, /^resp_[0-9a-f]{48}$/);
    assert.equal(r1.json.object, 'response');
    assert.equal(r1.json.status, 'completed');
    assert.equal(r1.json.model, model);
    assert.equal(text(r1.json), 'echo: one');
    const first = (await mock.last()).body;
    const r2 = await create({ model, input: 'two', previous_response_id: r1.json.id });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.previous_response_id, r1.json.id);
    assert.equal(text(r2.json), 'echo: two');
    // Instructions are not carried over from the previous response.
    const second = (await mock.last()).body;
    if (model.startsWith('anth')) {
      assert.equal(first.system, 'Be brief.');
      assert.equal(second.system, undefined);
    }
    assert.deepEqual(turnsOf(second), [['user', 'one'], ['assistant', 'echo: one'], ['user', 'two']]);
    const r3 = await create({ model, input: [{ role: 'user', content: [{ type: 'input_text', text: 'three' }] }], previous_response_id: r2.json.id });
    assert.equal(text(r3.json), 'echo: three');
    assert.deepEqual(await upstreamTurns(), [['user', 'one'], ['assistant', 'echo: one'], ['user', 'two'],
      ['assistant', 'echo: two'], ['user', 'three']]);
    assert.ok(r3.json.usage.input_tokens > 0 && r3.json.usage.total_tokens >= r3.json.usage.input_tokens);
    // Stored as answered.
    const got = await call('GET', `/v1/responses/${r3.json.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, r3.json);
  });

  test(`${model}: three turns in a conversation; its items hold every input and output in order`, async () => {
    const c = await call('POST', '/v1/conversations', { metadata: { topic: 'counting' } });
    assert.equal(c.status, 200, c.text);
    assert.match(c.json.id, /^conv_[0-9a-f]{48}$/);
    const words = ['one', 'two', 'three'];
    for (const [i, word] of words.entries()) {
      const r = await create({ model, input: word, conversation: c.json.id });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.conversation, { id: c.json.id });
      const want = words.slice(0, i).flatMap((w) => [['user', w], ['assistant', `echo: ${w}`]]);
      assert.deepEqual(await upstreamTurns(), [...want, ['user', word]]);
    }
    const items = await call('GET', `/v1/conversations/${c.json.id}/items?order=asc&limit=100`);
    assert.equal(items.status, 200);
    assert.deepEqual(items.json.data.map((it) => [it.role, it.content[0].text]),
      words.flatMap((w) => [['user', w], ['assistant', `echo: ${w}`]]));
    assert.equal(items.json.has_more, false);
  });
}

test('streaming: the Responses event order, sequence numbers, and the stored response', async () => {
  for (const model of ['mock/echo', 'anth/claude-x;chunks=4']) {
    const evs = events(await create({ model, input: 'stream this please', stream: true }));
    const types = evs.map((e) => e.type).filter((t, i, a) => !(t.endsWith('.delta') && a[i - 1] === t));
    assert.deepEqual(types, ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta', 'response.output_text.done',
      'response.content_part.done', 'response.output_item.done', 'response.completed'], model);
    const created = evs[0].response, done = evs.at(-1).response;
    assert.equal(created.status, 'in_progress');
    assert.equal(done.id, created.id);
    assert.equal(done.object, 'response');
    assert.equal(done.model, model);
    assert.equal(done.status, 'completed');
    const deltas = evs.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(text(done), deltas);
    assert.ok(done.usage.output_tokens > 0);
    // The id streamed first is stored, and reads back as the last event said.
    const got = await call('GET', `/v1/responses/${created.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.output, done.output);
    assert.equal(got.json.status, 'completed');
  }
});

test('a stream that fails after its first event: an error event, response.failed, and the response stored failed', async () => {
  const evs = events(await create({ model: 'anth/m;fault=stream_error', input: 'x', stream: true }));
  assert.equal(evs[0].type, 'response.created');
  assert.deepEqual(evs.slice(-2).map((e) => e.type), ['error', 'response.failed']);
  assert.ok(evs.at(-2).message.length > 0);
  assert.equal(evs.at(-1).response.status, 'failed');
  const got = await call('GET', `/v1/responses/${evs[0].response.id}`);
  assert.equal(got.json.status, 'failed');
  assert.ok(got.json.error.message);
  // Before any event, the upstream's status is the answer's, and nothing is stored.
  const r = await create({ model: 'anth/m;status=500', input: 'x', stream: true });
  assert.equal(r.status, 500);
  assert.match(r.json.error.message, /500/);
});

test('tool round trip: function_call out, function_call_output in, the answer uses it (Anthropic upstream)', async () => {
  const tools = [{ type: 'function', name: 'lookup', description: 'Look a thing up', parameters: { type: 'object', properties: { q: { type: 'string' } } } }];
  const r1 = await create({ model: 'anth/m;tool=1', input: 'what is six times seven', tools });
  assert.equal(r1.status, 200, r1.text);
  const call1 = r1.json.output.find((o) => o.type === 'function_call');
  assert.ok(call1, JSON.stringify(r1.json.output));
  assert.equal(call1.name, 'lookup');
  assert.match(call1.id, /^fc_/);
  assert.ok(call1.call_id);
  assert.equal(typeof JSON.parse(call1.arguments), 'object');
  const r2 = await create({ model: 'anth/m', tools, previous_response_id: r1.json.id,
    input: [{ type: 'function_call_output', call_id: call1.call_id, output: '42' }] });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(text(r2.json), 'tool said: 42');
  const sent = await upstreamTurns();
  assert.deepEqual(sent.map(([role]) => role), ['user', 'assistant', 'user']);
  assert.match(sent[1][1], /tool_use:lookup/);
  assert.equal(sent[2][1], 'tool_result:42');
});

test('a streamed tool call: argument deltas after its item, the done events, the call in response.completed; its output goes back streamed', async () => {
  const tools = [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }];
  const evs = events(await create({ model: 'anth/m;tool=1', input: 'weather in Oslo', tools, stream: true }));
  const added = evs.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
  assert.ok(added, evs.map((e) => e.type).join(' '));
  assert.equal(added.item.name, 'lookup');
  assert.equal(added.item.status, 'in_progress');
  const mine = (type) => evs.filter((e) => e.type === type && e.item_id === added.item.id);
  const deltas = mine('response.function_call_arguments.delta');
  assert.ok(deltas.length >= 2, 'the arguments arrive in pieces');
  assert.ok(evs.indexOf(deltas[0]) > evs.indexOf(added), 'every delta follows its item');
  const [argsDone] = mine('response.function_call_arguments.done');
  assert.equal(argsDone.arguments, deltas.map((d) => d.delta).join(''));
  assert.deepEqual(JSON.parse(argsDone.arguments), { q: 'weather in Oslo' });
  const itemDone = evs.find((e) => e.type === 'response.output_item.done' && e.item.id === added.item.id);
  assert.ok(evs.indexOf(itemDone) > evs.indexOf(argsDone));
  assert.equal(itemDone.item.status, 'completed');
  const done = evs.at(-1);
  assert.equal(done.type, 'response.completed');
  const call1 = done.response.output.find((o) => o.type === 'function_call');
  assert.deepEqual(call1, itemDone.item);
  // The stored response is what the client saw; the next turn sends the call's output back.
  assert.deepEqual((await call('GET', `/v1/responses/${done.response.id}`)).json.output, done.response.output);
  const next = events(await create({ model: 'anth/m;chunks=3', tools, stream: true, previous_response_id: done.response.id,
    input: [{ type: 'function_call_output', call_id: call1.call_id, output: 'sunny, 21' }] }));
  assert.equal(text(next.at(-1).response), 'tool said: sunny, 21');
  const sent = await upstreamTurns();
  assert.deepEqual(sent.map(([role]) => role), ['user', 'assistant', 'user']);
  assert.match(sent[1][1], /tool_use:lookup/);
  assert.equal(sent[2][1], 'tool_result:sunny, 21');
});

test('an answer cut by max_output_tokens is incomplete: the reason, the item, response.incomplete at the end of a stream', async () => {
  const body = { model: 'anth/m', input: 'one two three four five', max_output_tokens: 2 };
  const r = await create(body);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'incomplete');
  assert.deepEqual(r.json.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.json.max_output_tokens, 2);
  assert.equal(r.json.output[0].status, 'incomplete');
  assert.equal(text(r.json), 'echo: one');
  assert.equal((await mock.last()).body.max_tokens, 2);
  const evs = events(await create({ ...body, stream: true }));
  const last = evs.at(-1);
  assert.equal(last.type, 'response.incomplete');
  assert.ok(!evs.some((e) => e.type === 'response.completed'));
  assert.equal(last.response.status, 'incomplete');
  assert.deepEqual(last.response.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(evs.find((e) => e.type === 'response.output_item.done').item.status, 'incomplete');
  const got = await call('GET', `/v1/responses/${last.response.id}`);
  assert.equal(got.json.status, 'incomplete');
});

test('a turn runs through the chat engine: retries, a fallback list given the history, the deadline (a turn failed before its answer keeps nothing, one failed mid-stream is kept failed)', async () => {
  const { upstreamProvider } = await import('./lib.mjs');
  const g = await startLlmux(config({
    retries: { max: 2, base_delay_ms: 5 },
    providers: { up: upstreamProvider(mock), once: upstreamProvider(mock, { retries: { max: 0 } }) },
    aliases: { smart: ['once/a;status=503', 'up/b'] },
  }));
  try {
    await mock.reset();
    const r1 = await create({ model: 'up/x;fail=2', input: 'first' }, { g });
    assert.equal(r1.status, 200, r1.text);
    assert.equal((await mock.stats()).requests, 3, 'two failures retried, the third answered');
    assert.equal(text(r1.json), 'echo: first');
    // The fallback target gets the whole history, and says who answered.
    const r2 = await create({ model: 'smart', input: 'second', previous_response_id: r1.json.id }, { g });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.headers['x-llmux-model'], 'up/b');
    const last = (await mock.last()).body;
    assert.equal(last.model, 'b');
    assert.deepEqual(last.messages.map((m) => [m.role, m.content]), [['user', 'first'], ['assistant', 'echo: first'], ['user', 'second']]);
    // A deadline that passes: 504 in OpenAI's shape, the conversation free and unchanged after.
    const c = await call('POST', '/v1/conversations', { items: [{ role: 'user', content: 'kept' }] }, { g });
    const late = await create({ model: 'up/x;latency=30000', input: 'too slow', conversation: c.json.id }, { g, headers: { 'x-llmux-timeout-ms': '200' } });
    assert.equal(late.status, 504, late.text);
    assert.equal(late.json.error.code, 'deadline_exceeded');
    await eventually(() => mock.stats(), (s) => s.active === 0, GUARD_MS, 'the slow call to be cancelled');
    assert.deepEqual((await call('GET', `/v1/conversations/${c.json.id}/items`, undefined, { g })).json.data.map((i) => i.content[0].text), ['kept']);
    assert.equal((await create({ model: 'up/x', input: 'in time', conversation: c.json.id }, { g })).status, 200);
    // The deadline during a stream: an error event and response.failed, the response stored failed.
    const evs = events(await create({ model: 'up/x;chunks=50;interval=100', input: 'long', stream: true }, { g, headers: { 'x-llmux-timeout-ms': '1000' } }));
    assert.ok(evs.some((e) => e.type === 'response.output_text.delta'));
    assert.deepEqual(evs.slice(-2).map((e) => e.type), ['error', 'response.failed']);
    assert.equal(evs.at(-2).code, 'deadline_exceeded');
    assert.equal((await call('GET', `/v1/responses/${evs[0].response.id}`, undefined, { g })).json.status, 'failed');
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

// The tool loop runs MCP tools on Responses turns (mcp_responses.test.mjs); a server llmux cannot reach
// still gets a turn answered, its mcp_list_tools item saying so, once the settle wait is over.
test('MCP tools of a server that is down: the turn is answered, and mcp_list_tools says the server has no list', async () => {
  const g = await startLlmux(config({
    mcp_servers: { nowhere: { url: 'http://127.0.0.1:9/mcp', connect_timeout_ms: 200 } },
    mcp: { settle_timeout_ms: 300 },
  }));
  try {
    const r = await create({ model: 'mock/echo', input: 'x', tools: [{ type: 'mcp', server_label: 'nowhere' }] }, { g });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.output.map((i) => i.type), ['mcp_list_tools', 'message']);
    assert.equal(r.json.output[0].server_label, 'nowhere');
    assert.deepEqual(r.json.output[0].tools, []);
    assert.match(r.json.output[0].error, /no tool list/);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

test('truncation: past the history budget, disabled answers 400 and auto drops the oldest turns', async () => {
  const small = await startLlmux(config({ store: { max_history_tokens: 150 } }));
  try {
    let prev;
    for (const w of ['alpha', 'bravo', 'charlie']) {
      const r = await create({ model: 'oll/m', input: `${w} ${'x'.repeat(120)}`, previous_response_id: prev, truncation: 'auto' }, { g: small });
      assert.equal(r.status, 200, r.text);
      prev = r.json.id;
    }
    const refused = await create({ model: 'oll/m', input: 'delta', previous_response_id: prev }, { g: small });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, 'context_length_exceeded');
    assert.match(refused.json.error.message, /'auto'/);
    const kept = await create({ model: 'oll/m', input: 'delta', previous_response_id: prev, truncation: 'auto' }, { g: small });
    assert.equal(kept.status, 200, kept.text);
    assert.equal(kept.json.truncation, 'auto');
    assert.ok(Number(kept.headers['x-llmux-history-dropped']) >= 2);
    const sent = await upstreamTurns();
    assert.deepEqual(sent.at(-1), ['user', 'delta']);
    assert.ok(!sent.some(([, t]) => t.startsWith('alpha')), 'the oldest turn went first');
    assert.ok(sent.length < 7);
  } finally {
    assert.equal((await small.stop()).code, 0);
  }
});

test("another key's responses and conversations do not exist for it (404), its own do", async () => {
  const r = await create({ model: 'mock/echo', input: 'mine' });
  const c = await call('POST', '/v1/conversations', {});
  for (const [method, path] of [['GET', `/v1/responses/${r.json.id}`], ['DELETE', `/v1/responses/${r.json.id}`],
    ['GET', `/v1/responses/${r.json.id}/input_items`], ['GET', `/v1/conversations/${c.json.id}`],
    ['GET', `/v1/conversations/${c.json.id}/items`], ['DELETE', `/v1/conversations/${c.json.id}`]]) {
    const other = await call(method, path, undefined, { key: K2 });
    assert.equal(other.status, 404, `${method} ${path}`);
    assert.equal(other.json.error.code, 'not_found');
  }
  const cont = await create({ model: 'mock/echo', input: 'x', previous_response_id: r.json.id }, { key: K2 });
  assert.equal(cont.status, 404);
  assert.equal(cont.json.error.param, 'previous_response_id');
  const turn = await create({ model: 'mock/echo', input: 'x', conversation: c.json.id }, { key: K2 });
  assert.equal(turn.status, 404);
  assert.equal(turn.json.error.param, 'conversation');
  assert.equal((await call('GET', `/v1/responses/${r.json.id}`)).status, 200);
  assert.equal((await call('GET', `/v1/conversations/${c.json.id}`)).status, 200);
  assert.equal((await call('GET', '/v1/responses/resp_nope')).status, 404);
});

test('two turns on one conversation at once: the second gets 409 conversation_busy', async () => {
  const c = await call('POST', '/v1/conversations', {});
  const slow = create({ model: 'anth/m;latency=1500', input: 'first', conversation: c.json.id });
  await eventually(() => mock.stats(), (s) => s.active >= 1, GUARD_MS, 'the first turn to reach the upstream');
  const second = await create({ model: 'anth/m', input: 'second', conversation: c.json.id });
  assert.equal(second.status, 409);
  assert.equal(second.json.error.code, 'conversation_busy');
  assert.match(second.json.error.message, /in progress/);
  const added = await call('POST', `/v1/conversations/${c.json.id}/items`, { items: [{ role: 'user', content: 'meanwhile' }] });
  assert.equal(added.status, 409);
  assert.equal((await slow).status, 200);
  const third = await create({ model: 'anth/m', input: 'third', conversation: c.json.id });
  assert.equal(third.status, 200, third.text);
  assert.deepEqual(await upstreamTurns(), [['user', 'first'], ['assistant', 'echo: first'], ['user', 'third']]);
});

test('a client that leaves mid-turn stores nothing: no response, no items, the conversation free', async () => {
  const c = await call('POST', '/v1/conversations', { items: [{ role: 'user', content: 'kept' }] });
  const ctl = new AbortController();
  const res = await fetch(`${gw.base}/v1/responses`, {
    method: 'POST', signal: ctl.signal,
    headers: { authorization: `Bearer ${K1}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'anth/m;chunks=40;interval=100', input: 'left', conversation: c.json.id, stream: true }),
  });
  const reader = res.body.getReader();
  let seen = '';
  while (!seen.includes('response.output_text.delta')) seen += new TextDecoder().decode((await reader.read()).value);
  const id = JSON.parse(sseData(seen)[0]).response.id;
  ctl.abort();
  await eventually(() => mock.stats(), (s) => s.active === 0, GUARD_MS, 'the upstream call to be cancelled');
  await eventually(() => call('GET', `/v1/responses/${id}`), (r) => r.status === 404, GUARD_MS, 'the reserved response to go');
  const items = await call('GET', `/v1/conversations/${c.json.id}/items`);
  assert.deepEqual(items.json.data.map((it) => it.content[0].text), ['kept']);
  const next = await create({ model: 'anth/m', input: 'after', conversation: c.json.id });
  assert.equal(next.status, 200, next.text);
});

test('GET, DELETE and input_items of a stored response; store:false stores nothing', async () => {
  const input = ['a', 'b', 'c', 'd', 'e'].map((t) => ({ role: 'user', content: t }));
  const r = await create({ model: 'mock/echo', input, metadata: { k: 'v' } });
  assert.deepEqual(r.json.metadata, { k: 'v' });
  const page1 = await call('GET', `/v1/responses/${r.json.id}/input_items?limit=2`);
  assert.equal(page1.json.object, 'list');
  assert.deepEqual(page1.json.data.map((i) => i.content[0].text), ['e', 'd']); // newest first by default
  assert.equal(page1.json.has_more, true);
  const page2 = await call('GET', `/v1/responses/${r.json.id}/input_items?limit=10&after=${page1.json.last_id}`);
  assert.deepEqual(page2.json.data.map((i) => i.content[0].text), ['c', 'b', 'a']);
  assert.equal(page2.json.has_more, false);
  const asc = await call('GET', `/v1/responses/${r.json.id}/input_items?order=asc`);
  assert.deepEqual(asc.json.data.map((i) => i.content[0].text), ['a', 'b', 'c', 'd', 'e']);
  assert.equal((await call('GET', `/v1/responses/${r.json.id}/input_items?limit=0`)).status, 400);
  assert.equal((await call('GET', `/v1/responses/${r.json.id}/input_items?order=up`)).status, 400);
  const del = await call('DELETE', `/v1/responses/${r.json.id}`);
  assert.deepEqual(del.json, { id: r.json.id, object: 'response', deleted: true });
  assert.equal((await call('GET', `/v1/responses/${r.json.id}`)).status, 404);
  const unstored = await create({ model: 'mock/echo', input: 'x', store: false });
  assert.equal(unstored.json.store, false);
  assert.equal((await call('GET', `/v1/responses/${unstored.json.id}`)).status, 404);
  assert.equal((await call('POST', `/v1/responses/${unstored.json.id}/cancel`)).status, 400);
  assert.equal((await call('PUT', `/v1/responses/${unstored.json.id}`)).status, 405);
  // Bad requests answer in OpenAI's shape, naming the parameter.
  const bad = await create({ model: 'mock/echo', input: 'x', tools: [{ type: 'web_search' }] });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'tools[0].type');
});

test('the Conversations API: create with items and metadata, retrieve, update, items add/list/get/delete, delete', async () => {
  const c = await call('POST', '/v1/conversations', { metadata: { user: 'u1' }, items: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi there' }] });
  assert.equal(c.json.object, 'conversation');
  assert.deepEqual(c.json.metadata, { user: 'u1' });
  assert.ok(Number.isInteger(c.json.created_at));
  const id = c.json.id;
  assert.deepEqual((await call('GET', `/v1/conversations/${id}`)).json, c.json);
  const up = await call('POST', `/v1/conversations/${id}`, { metadata: { user: 'u2' } });
  assert.deepEqual(up.json.metadata, { user: 'u2' });
  const added = await call('POST', `/v1/conversations/${id}/items`, { items: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'more' }] }] });
  assert.equal(added.json.object, 'list');
  assert.equal(added.json.data.length, 1);
  const newId = added.json.data[0].id;
  assert.match(newId, /^msg_/);
  const list = await call('GET', `/v1/conversations/${id}/items?limit=2`);
  assert.deepEqual(list.json.data.map((i) => i.content[0].text), ['more', 'hi there']);
  assert.equal(list.json.has_more, true);
  const one = await call('GET', `/v1/conversations/${id}/items/${newId}`);
  assert.equal(one.json.id, newId);
  const afterDelete = await call('DELETE', `/v1/conversations/${id}/items/${newId}`);
  assert.equal(afterDelete.json.id, id);
  assert.equal(afterDelete.json.object, 'conversation');
  assert.equal((await call('GET', `/v1/conversations/${id}/items/${newId}`)).status, 404);
  assert.equal((await call('POST', `/v1/conversations/${id}/items`, { items: 'no' })).status, 400);
  assert.equal((await call('POST', `/v1/conversations`, { metadata: { k: 1 } })).status, 400);
  assert.deepEqual((await call('DELETE', `/v1/conversations/${id}`)).json, { id, object: 'conversation.deleted', deleted: true });
  assert.equal((await call('GET', `/v1/conversations/${id}`)).status, 404);
  assert.equal((await create({ model: 'mock/echo', input: 'x', conversation: id })).status, 404);
});

test('/metrics shows the store: operations, transactions, the history cache, what is in flight', async () => {
  const r1 = await create({ model: 'mock/echo', input: 'one' });
  await create({ model: 'mock/echo', input: 'two', previous_response_id: r1.json.id });
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  const value = (re) => Number(text.match(re)?.[1]);
  assert.ok(value(/^llmux_store_operations_total (\d+)$/m) > 0, text);
  if (!REDIS) { // Redis has neither transactions of batches nor a history cache (another replica may write)
    assert.ok(value(/^llmux_store_transactions_total (\d+)$/m) > 0);
    assert.ok(value(/^llmux_store_history_cache_total\{result="hit"\} (\d+)$/m) >= 1, 'the second turn continued from memory');
  }
  assert.equal(value(/^llmux_store_in_flight (\d+)$/m), 0);
});

test('GET /v1/events: each write of the store is a conversation.saved with its id, how many items, the store\'s time', async () => {
  const { observe } = await import('./observe.mjs');
  const g = await startLlmux(config({ auth: undefined }));
  try {
    const o = await observe(g.port, { path: '/v1/events?types=conversation.saved' });
    const all = await observe(g.port);
    assert.equal(o.status, 200);
    const rid = { 'x-request-id': 'saved-1' };
    const c = await call('POST', '/v1/conversations', { items: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }, { g, headers: rid });
    const turn = await create({ model: 'mock/echo', input: 'c', conversation: c.json.id }, { g, headers: { 'x-request-id': 'saved-2' } });
    await call('POST', `/v1/conversations/${c.json.id}/items`, { items: [{ role: 'user', content: 'd' }] }, { g, headers: { 'x-request-id': 'saved-3' } });
    // A store: false turn saves nothing: no event of its own comes before the next write's.
    await create({ model: 'mock/echo', input: 'not kept', store: false }, { g, headers: { 'x-request-id': 'unsaved' } });
    const lone = await create({ model: 'mock/echo', input: [{ role: 'user', content: 'e' }, { role: 'user', content: 'f' }] }, { g, headers: { 'x-request-id': 'saved-4' } });
    await o.until((evs) => evs.some((e) => e.data.request_id === 'saved-4'), GUARD_MS, 'the last conversation.saved');
    o.close();
    assert.equal(turn.status, 200);
    // Input and output items: a turn's one input and its answer; the lone response's two and its answer.
    assert.deepEqual(o.events.map((e) => [e.data.request_id, e.data.conversation, e.data.items]),
      [['saved-1', c.json.id, 2], ['saved-2', c.json.id, 2], ['saved-3', c.json.id, 1], ['saved-4', lone.json.id, 3]]);
    for (const e of o.events) {
      assert.equal(e.event, 'conversation.saved');
      assert.ok(e.data.duration_ms >= 0);
    }
    assert.equal(o.events[1].data.model, 'mock/echo');
    // A turn is a request like a chat completion: its model call belongs to it, and it is saved before it ends.
    await all.until((evs) => evs.some((e) => e.data.request_id === 'saved-4' && e.event === 'request.finished'), GUARD_MS, 'the last turn to end');
    all.close();
    for (const rid of ['saved-2', 'saved-4'])
      assert.deepEqual(all.ofRequest(rid).map((e) => e.event), ['request.started', 'call.started', 'request.first_token',
        'call.finished', 'conversation.saved', 'request.finished'], rid);
    assert.deepEqual(all.ofRequest('unsaved').map((e) => e.event), ['request.started', 'call.started', 'request.first_token',
      'call.finished', 'request.finished']);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
});

test('restart: stored responses and conversations survive, and continue', async () => {
  const g1 = await startLlmux(config());
  const r = await create({ model: 'oll/m', input: 'remember me' }, { g: g1 });
  const c = await call('POST', '/v1/conversations', { items: [{ role: 'user', content: 'from before' }] }, { g: g1 });
  assert.equal((await g1.stop()).code, 0);
  const g2 = await startLlmux(config(), { env: { STATE_DIRECTORY: g1.state } });
  try {
    const got = await call('GET', `/v1/responses/${r.json.id}`, undefined, { g: g2 });
    assert.deepEqual(got.json, r.json);
    const next = await create({ model: 'oll/m', input: 'and now', previous_response_id: r.json.id }, { g: g2 });
    assert.equal(next.status, 200, next.text);
    assert.deepEqual(await upstreamTurns(), [['user', 'remember me'], ['assistant', 'echo: remember me'], ['user', 'and now']]);
    const items = await call('GET', `/v1/conversations/${c.json.id}/items`, undefined, { g: g2 });
    assert.deepEqual(items.json.data.map((i) => i.content[0].text), ['from before']);
  } finally {
    assert.equal((await g2.stop()).code, 0);
  }
});

test('one store per process: a second llmux on the same state_dir refuses to start', { skip: REDIS && 'a Redis store is shared on purpose' }, async () => {
  const { spawnSync } = await import('node:child_process');
  const { writeConfig, LLMUX_BIN } = await import('./lib.mjs');
  const out = spawnSync(LLMUX_BIN, ['--config', writeConfig(config()), '--listen', '127.0.0.1:0'],
    { env: { ...process.env, STATE_DIRECTORY: gw.state }, encoding: 'utf8', timeout: GUARD_MS });
  assert.equal(out.status, 1);
  assert.match(out.stderr, /another llmux uses this store/);
});

test('store: null: nothing is kept; asking for storage is a clear 400', async () => {
  const off = await startLlmux(config({ store: null }));
  try {
    const r = await create({ model: 'mock/echo', input: 'x' }, { g: off });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.store, false);
    for (const [body, param] of [[{ store: true }, 'store'], [{ previous_response_id: r.json.id }, 'previous_response_id'],
      [{ conversation: 'conv_x' }, 'conversation']]) {
      const e = await create({ model: 'mock/echo', input: 'x', ...body }, { g: off });
      assert.equal(e.status, 400);
      assert.equal(e.json.error.code, 'storage_disabled');
      assert.equal(e.json.error.param, param);
    }
    assert.equal((await call('GET', `/v1/responses/${r.json.id}`, undefined, { g: off })).json.error.code, 'storage_disabled');
    assert.equal((await call('POST', '/v1/conversations', {}, { g: off })).json.error.code, 'storage_disabled');
  } finally {
    assert.equal((await off.stop()).code, 0);
  }
});

// kill -9 leaves valgrind nothing to check, and 200 turns under it take minutes: the plain and ASan runs
// cover it.
test('kill -9 during 200 concurrent turns, then a restart: every acknowledged response is there', { skip: !!process.env.LLMUX_WRAP && 'under valgrind' }, async () => {
  const g1 = await startLlmux(config());
  const acked = [];
  const turns = [];
  let killed = false;
  for (let i = 0; i < 200; i++) {
    const body = { model: `oll/m;latency=${(i % 40) * 25}`, input: `turn ${i}`, stream: i % 2 === 1 };
    turns.push(create(body, { g: g1 }).then((r) => {
      if (r.status !== 200) return;
      // A stream is acknowledged by its response.completed; a JSON answer by itself.
      const done = body.stream ? sseData(r.text).map((d) => JSON.parse(d)).find((e) => e.type === 'response.completed')?.response : r.json;
      if (done && !killed) acked.push(done);
    }, () => {}));
  }
  await eventually(async () => acked.length, (n) => n >= 60, GUARD_MS * 3, 'a good part of the turns to be acknowledged');
  killed = true;
  g1.proc.kill('SIGKILL');
  await g1.exited;
  await Promise.all(turns);
  const g2 = await startLlmux(config(), { env: { STATE_DIRECTORY: g1.state } });
  try {
    for (const want of acked) {
      const got = await call('GET', `/v1/responses/${want.id}`, undefined, { g: g2 });
      assert.equal(got.status, 200, `${want.id} was acknowledged but is gone`);
      assert.equal(text(got.json), text(want));
    }
  } finally {
    assert.equal((await g2.stop()).code, 0);
  }
});
