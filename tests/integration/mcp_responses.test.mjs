// MCP server tools on /v1/responses: the tool loop runs a Responses turn, and the client sees OpenAI's
// remote-MCP shape: mcp_list_tools and mcp_call output items before the answer, and streamed, the
// response.mcp_list_tools.* and response.mcp_call.* events, read here by the official openai SDK. The mock
// upstream asks for tool calls by directive (calls=A+B); the tools run on real MCP servers
// (server-everything and the SDK test server); the store keeps the items for the next turn.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startLlmux, upstreamProvider, httpRequest, sseData, eventually } from './lib.mjs';
import { stdioServer, serverEvents, tempFile, SDK_SERVER, EVERYTHING, GUARD } from './mcp_lib.mjs';

const events = tempFile('events');
let mock, gw, client;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    providers: { up: upstreamProvider(mock) },
    aliases: { agent: { models: ['up/x;calls=add'], mcp: ['t'] } },
    mcp_servers: {
      t: stdioServer(SDK_SERVER, ['--events', events], { tool_timeouts: { hang: 600000 } }),
      ev: stdioServer(EVERYTHING, ['stdio']),
    },
  });
  await eventually(async () => (await (await fetch(`${gw.base}/v1/mcp/servers`)).json()).data,
    (d) => d.length === 2 && d.every((s) => s.healthy), GUARD, 'the MCP servers');
  client = new OpenAI({ baseURL: `${gw.base}/v1`, apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

const mcp = (label, extra = {}) => ({ type: 'mcp', server_label: label, require_approval: 'never', ...extra });
const ADD = 'Add 2 and 3 with the tool, then tell me';

async function post(body, headers = {}) {
  const r = await httpRequest(gw.port, { path: '/v1/responses', body, headers });
  let json = null;
  try { json = JSON.parse(r.text); } catch { /* a stream */ }
  return { ...r, json };
}

const outputText = (resp) => resp.output.filter((i) => i.type === 'message')
  .flatMap((m) => m.content).map((c) => c.text).join('');

test('server-everything adds 2 and 3 through the SDK: mcp_list_tools, mcp_call, then the answer built from the result', async () => {
  const resp = await client.responses.create({ model: 'up/x;calls=get-sum', input: ADD,
    tools: [mcp('ev', { allowed_tools: ['get-sum', 'echo'] })] });
  assert.equal(resp.status, 'completed');
  assert.deepEqual(resp.output.map((i) => i.type), ['mcp_list_tools', 'mcp_call', 'message']);
  const [list, call] = resp.output;
  assert.equal(list.server_label, 'ev');
  assert.deepEqual(list.tools.map((t) => t.name).sort(), ['echo', 'get-sum'], 'allowed_tools applies to the list');
  const sum = list.tools.find((t) => t.name === 'get-sum');
  assert.equal(sum.input_schema.type, 'object');
  assert.equal(typeof sum.description, 'string');
  assert.equal(call.server_label, 'ev');
  assert.equal(call.name, 'get-sum');
  assert.deepEqual(JSON.parse(call.arguments), { a: 2, b: 3 });
  assert.equal(call.output, 'The sum of 2 and 3 is 5.');
  assert.equal(call.error ?? null, null);
  assert.equal(call.status, 'completed');
  assert.match(call.id, /^mcp_/);
  assert.equal(resp.output_text, 'tool said: The sum of 2 and 3 is 5.');
  // Usage counts both model calls: more than the one round's.
  assert.ok(resp.usage.input_tokens > 0 && resp.usage.total_tokens === resp.usage.input_tokens + resp.usage.output_tokens);
  const line = await gw.waitAccess((l) => l.path === '/v1/responses' && l.tool_calls === 1);
  assert.equal(line.prompt_tokens, resp.usage.input_tokens, 'the access log counts what the client was told');
  assert.equal(line.calls, 2, 'two model calls: the round that called the tool and the answer');
  const metrics = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(metrics, /llmux_tool_calls_total\{server="ev",tool="get-sum",outcome="ok"\} [1-9]/);
});

test('streamed through the SDK: the remote-MCP events in order, and the final response the SDK assembles', async () => {
  const stream = client.responses.stream({ model: 'up/x;calls=get-sum', input: ADD, tools: [mcp('ev')] });
  const types = [];
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
  }
  const final = await stream.finalResponse();
  const mcpTypes = types.filter((t) => t.includes('mcp') || t.startsWith('response.output_item'));
  assert.deepEqual(mcpTypes, [
    'response.output_item.added', 'response.mcp_list_tools.in_progress', 'response.mcp_list_tools.completed',
    'response.output_item.done',
    'response.output_item.added', 'response.mcp_call.in_progress', 'response.mcp_call_arguments.delta',
    'response.mcp_call_arguments.done', 'response.mcp_call.completed', 'response.output_item.done',
    'response.output_item.added', 'response.output_item.done',
  ]);
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  assert.equal(text, 'tool said: The sum of 2 and 3 is 5.');
  assert.deepEqual(final.output.map((i) => i.type), ['mcp_list_tools', 'mcp_call', 'message']);
  assert.ok(final.output[0].tools.some((t) => t.name === 'get-sum'));
  assert.equal(final.output[1].output, 'The sum of 2 and 3 is 5.');
  assert.equal(final.output_text, 'tool said: The sum of 2 and 3 is 5.');
  // The stored response is the streamed one.
  const stored = await client.responses.retrieve(final.id);
  assert.deepEqual(stored.output.map((i) => [i.type, i.id]), final.output.map((i) => [i.type, i.id]));
});

test('the raw stream: every event has the next sequence_number, and item events name their item', async () => {
  const r = await post({ model: 'up/x;calls=add', input: 'raw', tools: [mcp('t', { allowed_tools: ['add'] })], stream: true });
  assert.equal(r.status, 200);
  const evs = sseData(r.text).map((d) => JSON.parse(d));
  assert.deepEqual(evs.map((e) => e.sequence_number), evs.map((_, i) => i));
  const added = evs.filter((e) => e.type === 'response.output_item.added');
  const call = added.find((e) => e.item.type === 'mcp_call');
  assert.equal(call.item.status, 'in_progress');
  assert.equal(call.item.arguments, '');
  const argsDone = evs.find((e) => e.type === 'response.mcp_call_arguments.done');
  assert.equal(argsDone.item_id, call.item.id);
  assert.equal(argsDone.output_index, call.output_index);
  assert.deepEqual(JSON.parse(argsDone.arguments), { a: 2, b: 3 });
  const done = evs.filter((e) => e.type === 'response.output_item.done').find((e) => e.item.id === call.item.id);
  assert.equal(done.item.output, '5');
  assert.equal(done.item.status, 'completed');
  const completed = evs.at(-1);
  assert.equal(completed.type, 'response.completed');
  assert.deepEqual(completed.response.output.map((i) => i.type), ['mcp_list_tools', 'mcp_call', 'message']);
  assert.equal(completed.response.output[1].output, '5');
});

test('two calls of a round run at once (each "meet" answers only when the other runs too), streamed and not', async () => {
  for (const stream of [false, true]) {
    const before = serverEvents(events).length;
    const group = `resp-${stream}`;
    const r = await post({ model: 'up/x;calls=meet+meet', input: group, tools: [mcp('t')], stream });
    assert.equal(r.status, 200);
    const resp = stream ? sseData(r.text).map((d) => JSON.parse(d)).at(-1).response : r.json;
    const calls = resp.output.filter((i) => i.type === 'mcp_call');
    assert.deepEqual(calls.map((c) => [c.name, c.status, c.output]),
      [['meet', 'completed', `met in group ${group}`], ['meet', 'completed', `met in group ${group}`]]);
    assert.notEqual(calls[0].id, calls[1].id);
    const evs = serverEvents(events).slice(before).filter((e) => e.tool === 'meet');
    assert.deepEqual(evs.map((e) => e.ev), ['start', 'start', 'end', 'end']);
  }
});

test('a tool error is an mcp_call with error set, the model answers, and the response is not failed', async () => {
  const resp = (await post({ model: 'up/x;calls=fail+add', input: 'x', tools: [mcp('t')] })).json;
  assert.equal(resp.status, 'completed');
  const [fail, add] = resp.output.filter((i) => i.type === 'mcp_call');
  assert.equal(fail.status, 'failed');
  assert.equal(fail.output, null);
  assert.equal(fail.error.type, 'mcp_tool_execution_error');
  assert.match(fail.error.content[0].text, /this tool always fails/);
  assert.equal(add.output, '5');
  assert.match(outputText(resp), /^tool said: Error \(the tool reported a failure\): this tool always fails \| 5$/);
  // Streamed: response.mcp_call.failed for it.
  const evs = sseData((await post({ model: 'up/x;calls=fail', input: 'x', tools: [mcp('t')], stream: true })).text)
    .map((d) => JSON.parse(d));
  assert.ok(evs.some((e) => e.type === 'response.mcp_call.failed'));
  assert.equal(evs.at(-1).type, 'response.completed');
  const line = await gw.waitAccess((l) => l.path === '/v1/responses' && l.model === 'up/x;calls=fail+add');
  assert.deepEqual([line.tool_calls, line.tool_errors], [2, 1]);
});

// What the model writes beside its tool calls is a message of its own before those calls, streamed or not,
// and each round's in its place: two rounds of narrated calls, then the answer.
test('text beside the tool calls: a message before each round\'s mcp_call, the same streamed and not', async () => {
  const body = { model: 'up/x;calls=get-sum;rounds=2;narrate=1', input: ADD, tools: [mcp('ev')] };
  const shape = (resp) => resp.output.map((i) => i.type === 'message' ? `message:${i.content.map((c) => c.text).join('')}`
    : i.type === 'mcp_call' ? `mcp_call:${i.output}` : i.type);
  const want = ['mcp_list_tools', 'message:calling get-sum (round 1)', 'mcp_call:The sum of 2 and 3 is 5.',
    'message:calling get-sum (round 2)', 'mcp_call:The sum of 2 and 3 is 5.',
    'message:tool said: The sum of 2 and 3 is 5.'];
  const plain = await client.responses.create(body);
  assert.deepEqual(shape(plain), want);
  const stream = client.responses.stream(body);
  for await (const ev of stream) void ev;
  assert.deepEqual(shape(await stream.finalResponse()), want);
  assert.deepEqual(shape(await client.responses.retrieve(plain.id)), want, 'stored as answered');
});

// max_tool_calls caps the server tool calls of a response: those beyond it are not run (a failed mcp_call
// saying why), and the next round may call no tool, so the model answers.
test('max_tool_calls: calls beyond it are not run, and the model answers next', async () => {
  const before = (await mock.stats()).requests;
  const resp = await client.responses.create({ model: 'up/x;calls=get-sum+echo;rounds=3', input: ADD,
    tools: [mcp('ev')], max_tool_calls: 1 });
  assert.equal(resp.status, 'completed');
  assert.deepEqual(resp.output.map((i) => i.type), ['mcp_list_tools', 'mcp_call', 'mcp_call', 'message']);
  // The calls are listed as they finished: the one not run at once, the sum when the server answered.
  const calls = Object.fromEntries(resp.output.filter((i) => i.type === 'mcp_call').map((c) => [c.name, c]));
  assert.equal(calls['get-sum'].status, 'completed');
  assert.equal(calls['get-sum'].output, 'The sum of 2 and 3 is 5.');
  assert.equal(calls.echo.status, 'failed');
  assert.match(calls.echo.error.message, /max_tool_calls \(1\) was reached/);
  assert.equal(resp.max_tool_calls, 1);
  assert.equal((await mock.stats()).requests - before, 2, 'two model calls: the round that called, then the answer');
  const bad = await post({ model: 'up/x', input: 'x', max_tool_calls: 0 });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'max_tool_calls');
});

test('previous_response_id after an MCP turn: the upstream gets the call and its result as a tool call and a tool message', async () => {
  const first = (await post({ model: 'up/x;calls=add', input: 'first turn', tools: [mcp('t')] })).json;
  const call = first.output.find((i) => i.type === 'mcp_call');
  const next = await post({ model: 'up/x', input: 'and now?', previous_response_id: first.id });
  assert.equal(next.status, 200, next.text);
  const sent = (await mock.last()).body.messages;
  assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user']);
  assert.equal(sent[0].content, 'first turn');
  assert.deepEqual(sent[1].tool_calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
    [[call.id, 't__add', { a: 2, b: 3 }]]);
  assert.deepEqual([sent[2].tool_call_id, sent[2].content], [call.id, '5']);
  assert.equal(sent[3].content, 'tool said: 5');
  assert.equal(sent[4].content, 'and now?');
  // A client that keeps its own history (store: false) sends the items back: accepted, same upstream shape.
  const again = await post({ model: 'up/x', store: false, input: [
    { role: 'user', content: 'first turn' }, ...first.output, { role: 'user', content: 'and now?' }] });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual((await mock.last()).body.messages, sent);
});

test('a conversation keeps the turn\'s MCP items, and its next turn sends the call upstream', async () => {
  const conv = await (await fetch(`${gw.base}/v1/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
  const first = await post({ model: 'up/x;calls=echo', input: 'conv turn', tools: [mcp('t', { allowed_tools: ['echo'] })], conversation: conv.id, stream: true });
  assert.equal(first.status, 200);
  const items = (await (await fetch(`${gw.base}/v1/conversations/${conv.id}/items?order=asc`)).json()).data;
  assert.deepEqual(items.map((i) => i.type), ['message', 'mcp_list_tools', 'mcp_call', 'message']);
  assert.equal(items[2].output, 'echo: conv turn');
  assert.equal((await post({ model: 'up/x', input: 'next', conversation: conv.id })).status, 200);
  const sent = (await mock.last()).body.messages;
  assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'tool', 'assistant', 'user']);
  assert.equal(sent[1].tool_calls[0].function.name, 't__echo');
  assert.equal(sent[2].content, 'echo: conv turn');
});

test('an alias with mcp servers runs them on /v1/responses', async () => {
  const resp = (await post({ model: 'agent', input: 'hi' })).json;
  assert.deepEqual(resp.output.map((i) => i.type), ['mcp_list_tools', 'mcp_call', 'message']);
  assert.equal(outputText(resp), 'tool said: 5');
});

test('a call of a client function tool ends the loop: function_call items, as without MCP', async () => {
  const resp = (await post({ model: 'up/x;calls=lookup', input: 'x', tools: [mcp('t'),
    { type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }] })).json;
  assert.deepEqual(resp.output.map((i) => i.type), ['mcp_list_tools', 'function_call']);
  assert.equal(resp.output[1].name, 'lookup');
});

test('a client that leaves mid-tool-call: the call is cancelled and no further model round starts', async () => {
  await mock.reset();
  const before = serverEvents(events).length;
  const ac = new AbortController();
  const res = await fetch(`${gw.base}/v1/responses`, { method: 'POST', signal: ac.signal,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'up/x;calls=hang', input: 'leave-resp', tools: [mcp('t')], stream: true }) });
  const reader = res.body.getReader();
  await eventually(async () => serverEvents(events).slice(before), (e) => e.some((x) => x.ev === 'start' && x.tag === 'leave-resp'),
    GUARD, 'the tool call to start');
  ac.abort();
  await reader.closed.catch(() => {});
  await eventually(async () => serverEvents(events).slice(before), (e) => e.some((x) => x.ev === 'cancelled' && x.tag === 'leave-resp'),
    GUARD, 'the server to see the cancellation');
  const line = await gw.waitAccess((l) => l.status === 499 && l.path === '/v1/responses');
  assert.equal(line.client_gone, true);
  assert.equal((await mock.stats()).requests, 1);
});

test('x-llmux-timeout-ms spans the loop on /v1/responses: a hanging tool is cancelled at the deadline', async () => {
  const before = serverEvents(events).length;
  const r = await post({ model: 'up/x;calls=hang', input: 'deadline-resp', tools: [mcp('t')] }, { 'x-llmux-timeout-ms': '800' });
  assert.equal(r.status, 504);
  assert.equal(r.json.error.code, 'deadline_exceeded');
  await eventually(async () => serverEvents(events).slice(before), (e) => e.some((x) => x.ev === 'cancelled' && x.tag === 'deadline-resp'),
    GUARD, 'the tool to be cancelled');
  // Streamed, the client saw the call begin: it ends as a timed-out call, then the stream with the
  // deadline's error, and the stored response is failed.
  const s = await post({ model: 'up/x;calls=hang', input: 'deadline-stream', tools: [mcp('t')], stream: true }, { 'x-llmux-timeout-ms': '800' });
  const evs = sseData(s.text).map((d) => JSON.parse(d));
  assert.deepEqual(evs.slice(-2).map((e) => e.type), ['error', 'response.failed']);
  assert.equal(evs.at(-2).code, 'deadline_exceeded');
  const failed = await client.responses.retrieve(evs.at(-1).response.id);
  assert.equal(failed.status, 'failed');
  const call = failed.output.find((i) => i.type === 'mcp_call');
  assert.deepEqual([call.status, call.error.type, call.error.code], ['failed', 'mcp_protocol_error', -32001]);
  assert.ok(evs.some((e) => e.type === 'response.mcp_call.failed'));
});

test('what llmux does not do is a 400 naming the parameter: approvals, unknown servers, other URLs, tool_choice mcp', async () => {
  const cases = [
    [{ tools: [mcp('nope')] }, 'tools[0].server_label'],
    [{ tools: [mcp('t', { require_approval: 'always' })] }, 'tools[0].require_approval'],
    [{ tools: [mcp('t', { server_url: 'http://169.254.169.254/mcp' })] }, 'tools[0].server_url'],
    [{ tools: [mcp('t')], tool_choice: { type: 'mcp', server_label: 't' } }, 'tool_choice.type'],
    [{ input: [{ type: 'mcp_approval_response', approval_request_id: 'x', approve: true }] }, 'input[0].type'],
  ];
  for (const [extra, param] of cases) {
    const r = await post({ model: 'up/x', input: 'x', ...extra });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.param, param);
  }
  const approval = await post({ model: 'up/x', input: 'x', tools: [mcp('t', { require_approval: 'always' })] });
  assert.match(approval.json.error.message, /without asking for approval/);
});
