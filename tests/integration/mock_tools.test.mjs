// The mock upstream's calls= and rounds= directives, through llmux: several tool calls in one turn
// (streamed with one index each), arguments made from each tool's schema, tools llmux names SERVER__TOOL
// found by their own name, and an answer quoting every result once the calls were made.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, postChat, sseData } from './lib.mjs';

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({ providers: { up: upstreamProvider(mock) } });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

const fn = (name, properties = {}) => ({ type: 'function', function: { name, parameters: { type: 'object', properties } } });
const tools = [fn('other'), fn('ev__add', { a: { type: 'number' }, b: { type: 'number' } }), fn('echo', { text: { type: 'string' } })];

test('calls=add+echo: both tools called in one turn, then an answer from both results', async () => {
  const messages = [{ role: 'user', content: 'add and echo' }];
  const r1 = await (await postChat(gw.base, { model: 'up/x;calls=add+echo', messages, tools })).json();
  const msg = r1.choices[0].message;
  assert.equal(r1.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(msg.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
    [['ev__add', { a: 2, b: 3 }], ['echo', { text: 'add and echo' }]]);
  messages.push(msg, { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '5' },
    { role: 'tool', tool_call_id: msg.tool_calls[1].id, content: 'echo: add and echo' });
  const r2 = await (await postChat(gw.base, { model: 'up/x;calls=add+echo', messages, tools })).json();
  assert.equal(r2.choices[0].finish_reason, 'stop');
  assert.equal(r2.choices[0].message.content, 'tool said: 5 | echo: add and echo');
});

test('calls= streamed: each call has its own index; rounds=2 calls again after the first results', async () => {
  const messages = [{ role: 'user', content: 'go' }];
  const res = await postChat(gw.base, { model: 'up/x;calls=add+echo;rounds=2', messages, tools, stream: true });
  const calls = [];
  for (const d of sseData(await res.text())) {
    if (d === '[DONE]') continue;
    for (const tc of JSON.parse(d).choices[0]?.delta?.tool_calls || []) {
      calls[tc.index] ||= { id: tc.id, name: tc.function.name, arguments: '' };
      calls[tc.index].arguments += tc.function.arguments || '';
    }
  }
  assert.deepEqual(calls.map((c) => [c.name, JSON.parse(c.arguments)]), [['ev__add', { a: 2, b: 3 }], ['echo', { text: 'go' }]]);
  messages.push({ role: 'assistant', content: null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) },
    { role: 'tool', tool_call_id: calls[0].id, content: '5' }, { role: 'tool', tool_call_id: calls[1].id, content: 'go' });
  const again = await (await postChat(gw.base, { model: 'up/x;calls=add+echo;rounds=2', messages, tools })).json();
  assert.equal(again.choices[0].finish_reason, 'tool_calls');
  assert.equal(again.choices[0].message.tool_calls[0].id, 'call_mock_2_0');
  const bad = await postChat(gw.base, { model: 'up/x;calls=a b', messages, tools });
  assert.equal(bad.status, 400);
});
