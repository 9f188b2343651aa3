// The tool loop through llmux: the mock upstream asks for tool calls by directive (calls=A+B, rounds=N),
// llmux runs them on real MCP servers (the SDK test server, server-everything), gives the results back
// and answers once, streamed or not. Concurrency is proven by a tool that answers only when two calls
// of it are in progress at once; cancellation and rounds by what the servers and the mock saw.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startLlmux, upstreamProvider, postChat, sseData, eventually } from './lib.mjs';
import { observe, receiver } from './observe.mjs';
import { stdioServer, startHttpServer, serverEvents, tempFile, SDK_SERVER, EVERYTHING, GUARD } from './mcp_lib.mjs';

const events = tempFile('events');
let mock, gw, col;
before(async () => {
  mock = await startMock();
  col = await receiver(() => 200, ''); // an OTLP collector: the tool calls' spans
  gw = await startLlmux({
    providers: { up: upstreamProvider(mock) },
    aliases: { agent: { models: ['up/x;calls=add'], mcp: ['t'] } },
    mcp_servers: {
      t: stdioServer(SDK_SERVER, ['--events', events], { tool_timeouts: { hang: 600000 } }),
      ev: stdioServer(EVERYTHING, ['stdio']),
    },
    mcp: { max_tool_rounds: 3 },
    otlp: { endpoint: col.base, sample: 1.0, flush_ms: 50 },
  });
  // Wait for both servers' tools (a request would wait too, up to mcp.settle_timeout_ms).
  await eventually(async () => (await (await fetch(`${gw.base}/v1/mcp/servers`)).json()).data,
    (d) => d.length === 2 && d.every((s) => s.healthy), GUARD, 'the MCP servers');
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await col.close();
  await mock.stop();
});

const mcp = (label, extra = {}) => ({ type: 'mcp', server_label: label, require_approval: 'never', ...extra });
const ask = (model, content, extra = {}) => ({ model, messages: [{ role: 'user', content }], tools: [mcp('t')], ...extra });

test('a round of two server tools, then the answer built from both results', async () => {
  const res = await postChat(gw.base, ask('up/x;calls=add+echo', 'two tools please'));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.choices[0].message.content, 'tool said: 5 | echo: two tools please');
  assert.equal(body.choices[0].finish_reason, 'stop');
  const calls = body.llmux.tool_calls;
  assert.deepEqual(calls.map((c) => [c.server, c.tool, c.outcome, c.output]),
    [['t', 'add', 'ok', '5'], ['t', 'echo', 'ok', 'echo: two tools please']]);
  assert.equal(body.llmux.tool_rounds, 1);
  // Two model calls: the usage is their sum (the mock counts words).
  assert.ok(body.usage.prompt_tokens > 0 && body.usage.total_tokens === body.usage.prompt_tokens + body.usage.completion_tokens);
  const line = await gw.waitAccess((l) => l.tool_calls === 2);
  assert.equal(line.tool_errors, 0);
  assert.equal(line.calls, 2, 'the access log counts both model calls of the loop');
});

test('text the model wrote beside its tool calls, not streamed: llmux.texts by round', async () => {
  const res = await postChat(gw.base, ask('up/x;calls=add;rounds=2;narrate=1', 'narrated'));
  const body = await res.json();
  assert.equal(body.llmux.tool_rounds, 2);
  assert.deepEqual(body.llmux.texts, [{ round: 1, content: 'calling add (round 1)' },
    { round: 2, content: 'calling add (round 2)' }]);
  assert.equal(body.choices[0].message.content, 'tool said: 5', 'the answer after the last round');
});

// The tool loop on the event bus: an observer sees each tool call start and finish inside its request,
// between the two rounds' model calls, and the trace has an execute_tool span per call under the request.
test('tool.started and tool.finished on /v1/events between the rounds, and an execute_tool span per call', async () => {
  const o = await observe(gw.port);
  assert.equal(o.status, 200);
  const res = await postChat(gw.base, ask('up/x;calls=add+fail', 'watch the tools'), { 'x-request-id': 'tools-ev-1' });
  assert.equal(res.status, 200);
  await res.json();
  await o.until((evs) => evs.some((e) => e.data.request_id === 'tools-ev-1' && e.event === 'request.finished'));
  o.close();
  const evs = o.ofRequest('tools-ev-1');
  const kinds = evs.map((e) => e.event).filter((k) => k.startsWith('tool.') || k === 'call.started');
  assert.deepEqual(kinds, ['call.started', 'tool.started', 'tool.started', 'tool.finished', 'tool.finished', 'call.started'],
    'round 1, its two tool calls, round 2: all about the one request');
  const started = evs.filter((e) => e.event === 'tool.started');
  const finished = evs.filter((e) => e.event === 'tool.finished');
  assert.deepEqual(started.map((e) => e.data.tool).sort(), ['add', 'fail']);
  const add = finished.find((e) => e.data.tool === 'add');
  assert.equal(add.data.server, 't');
  assert.equal(add.data.outcome, 'ok');
  assert.equal(add.data.error ?? null, null, 'no error on success');
  assert.ok(add.data.duration_ms >= 0);
  assert.match(add.data.span_id, /^[0-9a-f]{16}$/);
  assert.equal(add.data.span_id, started.find((e) => e.data.tool === 'add').data.span_id);
  const failed = finished.find((e) => e.data.tool === 'fail');
  assert.equal(failed.data.outcome, 'error');
  assert.equal(failed.data.error, 'tool_error');

  const spans = () => col.got.flatMap((g) => JSON.parse(g.body).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
  // Exported in batches after the request: wait for the request's own span (hang guard only).
  const all = await eventually(async () => spans(), (s) => {
    const t = s.find((x) => x.spanId === add.data.span_id);
    return t && s.some((x) => x.kind === 2 && x.traceId === t.traceId);
  }, 20000, 'the tool span and its request span');
  const toolAdd = all.find((x) => x.spanId === add.data.span_id);
  assert.equal(toolAdd.name, 'execute_tool add', 'the span of the event\'s span id is the add call');
  assert.ok(all.some((x) => x.name === 'execute_tool fail' && x.traceId === toolAdd.traceId && x.status?.code === 2),
    'the failed call has its span too, with status ERROR');
  const server = all.find((x) => x.kind === 2 && x.traceId === toolAdd.traceId);
  assert.ok(server, 'the request span is in the same trace');
  assert.equal(toolAdd.parentSpanId, server.spanId, 'the tool call is a child of the request');
  assert.equal(all.filter((x) => x.kind === 3 && x.traceId === toolAdd.traceId).length, 2, 'a client span per round');
});

test('the calls of a round run at once: each "meet" answers only when the other one is running too', async () => {
  const before = serverEvents(events).length;
  const body = await (await postChat(gw.base, ask('up/x;calls=meet+meet', 'group-a'))).json();
  assert.deepEqual(body.llmux.tool_calls.map((c) => c.outcome), ['ok', 'ok']);
  assert.equal(body.choices[0].message.content, 'tool said: met in group group-a | met in group group-a');
  const evs = serverEvents(events).slice(before).filter((e) => e.tool === 'meet');
  assert.deepEqual(evs.map((e) => e.ev), ['start', 'start', 'end', 'end']);
});

test('streamed: one stream, tool activity as llmux chunks standard SDKs skip, then the answer', async () => {
  const res = await postChat(gw.base, ask('up/x;calls=add+echo', 'stream it', { stream: true, stream_options: { include_usage: true } }));
  const chunks = sseData(await res.text());
  assert.equal(chunks.filter((d) => d === '[DONE]').length, 1);
  const objs = chunks.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
  assert.equal(new Set(objs.map((o) => o.id)).size, 1);
  const activity = objs.filter((o) => o.llmux).map((o) => `${o.llmux.type}:${o.llmux.tool}`);
  assert.deepEqual(activity.slice(0, 2), ['tool_call.started:add', 'tool_call.started:echo']);
  assert.deepEqual(activity.slice(2).sort(), ['tool_call.finished:add', 'tool_call.finished:echo']);
  for (const o of objs.filter((x) => x.llmux)) assert.deepEqual(o.choices, []);
  const text = objs.map((o) => o.choices?.[0]?.delta?.content || '').join('');
  assert.equal(text, 'tool said: 5 | echo: stream it');
  assert.equal(objs.filter((o) => o.choices?.[0]?.finish_reason).length, 1);
  assert.ok(objs.at(-1).usage.total_tokens > 0);
  // The official SDK reads the same stream as one answer.
  const client = new OpenAI({ baseURL: `${gw.base}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await client.chat.completions.create({ ...ask('up/x;calls=add', 'sdk'), stream: true });
  let sdkText = '';
  for await (const ch of stream) sdkText += ch.choices[0]?.delta?.content || '';
  assert.equal(sdkText, 'tool said: 5');
});

test('tool failures are results for the model, not failed requests', async () => {
  const body = await (await postChat(gw.base, ask('up/x;calls=fail+add', 'x'))).json();
  assert.equal(body.llmux.tool_calls[0].outcome, 'tool_error');
  assert.match(body.choices[0].message.content, /^tool said: Error \(the tool reported a failure\): this tool always fails \| 5$/);
  assert.equal((await gw.waitAccess((l) => l.tool_errors === 1)).tool_calls, 2);
});

test('max_tool_rounds: a model that keeps calling tools is stopped and the answer says so', async () => {
  const body = await (await postChat(gw.base, ask('up/x;calls=add;rounds=10', 'again and again'))).json();
  assert.equal(body.llmux.tool_rounds, 3);
  assert.match(body.choices[0].message.content, /stopped after 3 rounds of tool calls \(max_tool_rounds\)/);
});

test('an alias brings its MCP servers; server-everything adds 2 and 3 for the mock', async () => {
  const alias = await (await postChat(gw.base, { model: 'agent', messages: [{ role: 'user', content: 'hi' }] })).json();
  assert.equal(alias.choices[0].message.content, 'tool said: 5');
  const ev = await (await postChat(gw.base, { model: 'up/x;calls=get-sum', tools: [mcp('ev')],
    messages: [{ role: 'user', content: 'Add 2 and 3 with the tool, then tell me' }] })).json();
  assert.equal(ev.choices[0].message.content, 'tool said: The sum of 2 and 3 is 5.');
  assert.equal(ev.llmux.tool_calls[0].name, 'ev__get-sum');
});

test('a client that leaves mid-tool-call: the call is cancelled and no further model round starts', async () => {
  await mock.reset();
  const before = serverEvents(events).length;
  const ac = new AbortController();
  const res = await fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', signal: ac.signal,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask('up/x;calls=hang', 'leave-me', { stream: true })) });
  const reader = res.body.getReader();
  await eventually(async () => serverEvents(events).slice(before), (e) => e.some((x) => x.ev === 'start' && x.tag === 'leave-me'),
    GUARD, 'the tool call to start');
  ac.abort();
  await reader.closed.catch(() => {});
  // llmux notices at its next keep-alive, cancels the call (the server hears of it) and ends the request.
  await eventually(async () => serverEvents(events).slice(before), (e) => e.some((x) => x.ev === 'cancelled' && x.tag === 'leave-me'),
    GUARD, 'the server to see the cancellation');
  const line = await gw.waitAccess((l) => l.status === 499 && l.model === 'up/x;calls=hang');
  assert.equal(line.client_gone, true);
  // The request is over: the mock saw its first round only.
  assert.equal((await mock.stats()).requests, 1);
});

test('x-llmux-timeout-ms spans the loop: a hanging tool is cancelled at the deadline', async () => {
  const before = serverEvents(events).length;
  const res = await postChat(gw.base, ask('up/x;calls=hang', 'deadline'), { 'x-llmux-timeout-ms': '800' });
  const body = await res.json();
  assert.equal(res.status, 504);
  assert.equal(body.error.code, 'deadline_exceeded');
  await eventually(async () => serverEvents(events).slice(before), (e) => e.some((x) => x.ev === 'cancelled' && x.tag === 'deadline'),
    GUARD, 'the tool to be cancelled');
});

test('GET /v1/mcp/servers and /v1/mcp/tools; /metrics counts tool calls', async () => {
  const servers = (await (await fetch(`${gw.base}/v1/mcp/servers`)).json()).data;
  assert.deepEqual(servers.map((s) => [s.name, s.transport, s.protocol, s.state]).sort(),
    [['ev', 'stdio', '2025-11-25', 'ready'], ['t', 'stdio', '2025-11-25', 'ready']]);
  const tools = (await (await fetch(`${gw.base}/v1/mcp/tools`)).json()).data;
  const add = tools.find((t) => t.name === 't__add');
  assert.equal(add.server, 't');
  assert.equal(add.tool, 'add');
  assert.equal(add.inputSchema.type, 'object');
  assert.ok(tools.some((t) => t.name === 'ev__get-sum'));
  const metrics = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(metrics, /llmux_tool_calls_total\{server="t",tool="add",outcome="ok"\} [1-9]/);
  assert.match(metrics, /llmux_tool_call_duration_seconds_count\{server="t",tool="add"\} [1-9]/);
});

test('bad MCP tool entries get a 400 naming the parameter', async () => {
  const cases = [
    [[mcp('nope')], 'tools[0].server_label'],
    [[mcp('t', { require_approval: 'always' })], 'tools[0].require_approval'],
    [[mcp('t', { server_url: 'http://127.0.0.1:1/mcp' })], 'tools[0].server_url'], // t is a stdio server
    [[mcp('t', { headers: { authorization: 'Bearer x' } })], 'tools[0].headers'],
  ];
  for (const [tools, param] of cases) {
    const res = await postChat(gw.base, { model: 'up/x', messages: [{ role: 'user', content: 'x' }], tools });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.param, param);
  }
});

// OpenAI's remote MCP tool names a server by server_url as well as server_label: llmux accepts the URL its
// configuration gives that server (so such clients work), and no other (so no request makes it call an
// address the configuration does not name: the mock would have seen a call to the other port).
test('server_url: the configured URL of an HTTP server is accepted and its tools run; any other URL is a 400', async () => {
  const srv = await startHttpServer(SDK_SERVER);
  const otherEvents = tempFile('other-url');
  const other = await startHttpServer(SDK_SERVER, ['--events', otherEvents]);
  const g = await startLlmux({ providers: { up: upstreamProvider(mock) }, mcp_servers: { h: { url: srv.url } } });
  try {
    await eventually(async () => (await (await fetch(`${g.base}/v1/mcp/servers`)).json()).data,
      (d) => d[0]?.healthy, GUARD, 'the HTTP MCP server');
    const body = (server_url) => ({ model: 'up/x;calls=add', messages: [{ role: 'user', content: 'sum' }], tools: [mcp('h', { server_url })] });
    const ok = await postChat(g.base, body(`${srv.url}/`));
    assert.equal(ok.status, 200);
    const answer = await ok.json();
    assert.equal(answer.choices[0].message.content, 'tool said: 5');
    assert.deepEqual(answer.llmux.tool_calls.map((c) => [c.server, c.tool, c.outcome]), [['h', 'add', 'ok']]);

    const bad = await postChat(g.base, body(other.url));
    assert.equal(bad.status, 400);
    const err = (await bad.json()).error;
    assert.equal(err.param, 'tools[0].server_url');
    assert.match(err.message, /not the URL configured for MCP server 'h'/);
    assert.deepEqual(serverEvents(otherEvents), [], 'no tool of the other server was called');
  } finally {
    assert.equal((await g.stop()).code, 0);
    await other.stop();
    await srv.stop();
  }
});
