// The Anthropic Messages API inbound (POST /v1/messages, /v1/messages/count_tokens, GET /v1/models with
// anthropic-version) through real sockets, against the mock upstream's OpenAI-, Ollama- and Anthropic-type
// dialects and the built-in mock provider: what an Anthropic client sees, and what each target receives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, eventually, rawConnect, everyTargetType } from './lib.mjs';

let mock, gw;
const TARGETS = ['oai', 'ol', 'ant'];
before(async () => {
  mock = await startMock();
  gw = await startLlmux({
    providers: everyTargetType(mock),
    aliases: { 'claude-sonnet-4-5': 'local/echo', 'claude-haiku-4-5': 'ant/claude-haiku-4-5-20251001' },
    keepalive_ms: 300, // pings after 0.3 s of silence (the default is Anthropic's 10 s)
  });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

const HEADERS = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };

async function post(body, { path = '/v1/messages', headers = {} } = {}) {
  return fetch(`${gw.base}${path}`, { method: 'POST', headers: { ...HEADERS, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body) });
}

function req(model, text, extra = {}) {
  return { model, max_tokens: 200, messages: [{ role: 'user', content: text }], ...extra };
}

// Parse an Anthropic SSE body into events, checking that each event's name is its data's type.
function events(text) {
  const out = [];
  for (const block of text.split(/\n\n/)) {
    if (!block.trim()) continue;
    const lines = block.split('\n');
    const name = lines.find((l) => l.startsWith('event: '))?.slice(7);
    const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    const ev = JSON.parse(data);
    assert.equal(name, ev.type, `event name ${name} for data ${data}`);
    out.push(ev);
  }
  return out;
}

// The message an Anthropic client builds from events, checking the order clients rely on.
function assemble(evs) {
  let msg = null;
  let open = -1;
  let json = '';
  let stopped = false;
  for (const ev of evs) {
    if (ev.type === 'ping') continue;
    assert.ok(!stopped, 'nothing after message_stop');
    if (ev.type === 'error') return { msg, error: ev.error };
    if (!msg) {
      assert.equal(ev.type, 'message_start');
      msg = structuredClone(ev.message);
      assert.ok(msg.usage.input_tokens > 0, 'message_start has input_tokens');
      continue;
    }
    if (ev.type === 'content_block_start') {
      assert.equal(open, -1, 'one block open at a time');
      assert.equal(ev.index, msg.content.length);
      msg.content.push(structuredClone(ev.content_block));
      open = ev.index;
      json = '';
    } else if (ev.type === 'content_block_delta') {
      assert.equal(ev.index, open);
      const b = msg.content[ev.index];
      if (ev.delta.type === 'text_delta') b.text += ev.delta.text;
      else if (ev.delta.type === 'input_json_delta') json += ev.delta.partial_json;
      else if (ev.delta.type === 'thinking_delta') b.thinking += ev.delta.thinking;
      else if (ev.delta.type === 'signature_delta') b.signature = ev.delta.signature;
      else assert.fail(`unknown delta ${ev.delta.type}`);
    } else if (ev.type === 'content_block_stop') {
      assert.equal(ev.index, open);
      if (msg.content[open].type === 'tool_use' && json) msg.content[open].input = JSON.parse(json);
      open = -1;
    } else if (ev.type === 'message_delta') {
      assert.equal(open, -1);
      Object.assign(msg, ev.delta);
      for (const [k, v] of Object.entries(ev.usage)) if (v != null) msg.usage[k] = v;
    } else {
      assert.equal(ev.type, 'message_stop');
      stopped = true;
    }
  }
  assert.ok(stopped, 'the stream ends with message_stop');
  return { msg };
}

async function streamed(body, opts) {
  const res = await post({ ...body, stream: true }, opts);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  return { res, text, ...assemble(events(text)) };
}

const text = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

for (const t of TARGETS) {
  test(`${t}: a text answer, non-stream and stream, as an Anthropic message`, async () => {
    const res = await post(req(`${t}/m`, 'hello there'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const m = await res.json();
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.match(m.id, /^msg_/);
    assert.equal(text(m), 'echo: hello there');
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);

    const s = await streamed(req(`${t}/m;chunks=3`, 'hello there'));
    assert.equal(text(s.msg), 'echo: hello there');
    assert.equal(s.msg.stop_reason, 'end_turn');
    assert.ok(s.msg.usage.output_tokens > 0);
    assert.equal(s.res.headers.get('x-llmux-model'), `${t}/m;chunks=3`);
  });

  test(`${t}: system blocks and several content blocks reach the target`, async () => {
    const body = {
      model: `${t}/m`, max_tokens: 50,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'Be kind.' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'first part' }, { type: 'text', text: 'second part' }] }],
    };
    const m = await (await post(body)).json();
    assert.match(text(m), /first part/);
    const up = (await mock.last()).body;
    if (t === 'ant') {
      // the client's own body, the model renamed: nothing lost (cache_control included)
      assert.deepEqual(up.system, body.system);
      assert.deepEqual(up.messages, body.messages);
    } else if (t === 'oai') {
      assert.deepEqual(up.messages[0], { role: 'system', content: 'Be brief.\n\nBe kind.' });
      assert.deepEqual(up.messages[1].content.map((p) => p.text), ['first part', 'second part']);
    } else {
      assert.equal(up.messages[0].role, 'system');
      assert.equal(up.messages[1].content, 'first part\nsecond part');
    }
  });

  test(`${t}: parallel tool use and the results sent back`, async () => {
    const tools = [
      { name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object', properties: { q: { type: 'string' } } } },
      { name: 'get_time', input_schema: { type: 'object', properties: { q: { type: 'string' } } } },
    ];
    const ask = { model: `${t}/m;tool=2`, max_tokens: 100, tools, messages: [{ role: 'user', content: 'Paris' }] };
    for (const stream of [false, true]) {
      const m = stream ? (await streamed(ask)).msg : await (await post(ask)).json();
      const uses = m.content.filter((b) => b.type === 'tool_use');
      assert.deepEqual(uses.map((u) => u.name), ['get_weather', 'get_time'], JSON.stringify(m.content));
      assert.equal(new Set(uses.map((u) => u.id)).size, 2);
      for (const u of uses) assert.deepEqual(u.input, { q: 'Paris' });
      assert.equal(m.stop_reason, 'tool_use');
      if (stream) {
        // each call its own block, after the text block (if any) was closed
        const kinds = m.content.map((b) => b.type);
        assert.deepEqual(kinds.slice(-2), ['tool_use', 'tool_use']);
      }
      const back = {
        model: `${t}/m`, max_tokens: 100, tools,
        messages: [
          { role: 'user', content: 'Paris' },
          { role: 'assistant', content: m.content },
          { role: 'user', content: uses.map((u, i) => ({ type: 'tool_result', tool_use_id: u.id, content: `result ${i}` })) },
        ],
      };
      const r = await (await post(back)).json();
      assert.match(text(r), /^tool said: result/);
      const up = (await mock.last()).body;
      if (t === 'oai') {
        const toolMsgs = up.messages.filter((x) => x.role === 'tool');
        assert.deepEqual(toolMsgs.map((x) => x.tool_call_id), uses.map((u) => u.id));
        assert.equal(up.messages.find((x) => x.role === 'assistant').tool_calls.length, 2);
      } else if (t === 'ant') {
        assert.deepEqual(up.messages[2].content.map((b) => b.tool_use_id), uses.map((u) => u.id));
      } else {
        assert.deepEqual(up.messages.filter((x) => x.role === 'tool').map((x) => x.content), ['result 0', 'result 1']);
      }
    }
  });

  test(`${t}: a mid-stream upstream failure is an error event, never a hang`, async () => {
    const fault = { oai: 'close_midstream', ol: 'midstream_error', ant: 'stream_error' }[t];
    const res = await post(req(`${t}/m;chunks=4;fault=${fault}`, 'hello there', { stream: true }));
    assert.equal(res.status, 200);
    const evs = events(await res.text());
    assert.equal(evs[0].type, 'message_start');
    const last = evs.at(-1);
    assert.equal(last.type, 'error');
    assert.equal(last.error.type, t === 'ant' ? 'overloaded_error' : 'api_error');
    assert.ok(last.error.message);
    assert.ok(!evs.some((e) => e.type === 'message_stop'));
  });
}

test('images: base64 and URL for OpenAI- and Anthropic-type targets; Ollama takes base64 only (else a 400)', async () => {
  const content = [
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
    { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    { type: 'text', text: 'What are these?' },
  ];
  const body = (t) => ({ model: `${t}/m`, max_tokens: 50, messages: [{ role: 'user', content }] });
  assert.equal((await post(body('oai'))).status, 200);
  const up = (await mock.last()).body;
  assert.deepEqual(up.messages[0].content.slice(0, 2).map((p) => p.image_url.url),
    ['data:image/png;base64,iVBORw0KGgo=', 'https://example.com/cat.jpg']);
  assert.equal((await post(body('ant'))).status, 200);
  assert.deepEqual((await mock.last()).body.messages[0].content, content);
  const res = await post(body('ol'));
  assert.equal(res.status, 400);
  const e = await res.json();
  assert.equal(e.type, 'error');
  assert.equal(e.error.type, 'invalid_request_error');
  assert.match(e.error.message, /base64/);
  const one = { model: 'ol/m', max_tokens: 50, messages: [{ role: 'user', content: [content[0], content[2]] }] };
  assert.equal((await post(one)).status, 200);
  assert.deepEqual((await mock.last()).body.messages[0].images, ['iVBORw0KGgo=']);
});

test('stop sequences and max_tokens: the text is cut and stop_reason says why', async () => {
  const stop = await (await post(req('ant/m', 'one two STOP three', { stop_sequences: ['STOP'] }))).json();
  assert.equal(text(stop), 'echo: one two ');
  assert.equal(stop.stop_reason, 'stop_sequence');
  assert.equal(stop.stop_sequence, 'STOP');
  const s = await streamed(req('ant/m', 'one two STOP three', { stop_sequences: ['STOP'] }));
  assert.equal(s.msg.stop_reason, 'stop_sequence');
  assert.equal(s.msg.stop_sequence, 'STOP');
  // Ollama cuts too, but does not say a stop sequence did it
  const ol = await (await post(req('ol/m', 'one two STOP three', { stop_sequences: ['STOP'] }))).json();
  assert.equal(text(ol), 'echo: one two ');
  assert.deepEqual((await mock.last()).body.options.stop, ['STOP']);
  for (const t of ['ant', 'ol']) {
    const cut = await (await post({ ...req(`${t}/m`, 'a b c d e f g'), max_tokens: 3 })).json();
    assert.equal(cut.stop_reason, 'max_tokens');
    assert.equal(text(cut).split(' ').length, 3);
    const sc = await streamed({ ...req(`${t}/m`, 'a b c d e f g'), max_tokens: 3 });
    assert.equal(sc.msg.stop_reason, 'max_tokens');
  }
  const local = await (await post({ ...req('local/echo', 'a b c d e f g'), max_tokens: 2 })).json();
  assert.equal(local.stop_reason, 'max_tokens');
});

test('thinking: passed to an Anthropic-type target and streamed back with its signature; dropped and reported elsewhere', async () => {
  const body = req('ant/m', 'think about it', { thinking: { type: 'enabled', budget_tokens: 1024 }, top_k: 5 });
  const res = await post(body);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-llmux-dropped-params'), null);
  const m = await res.json();
  assert.equal(m.content[0].type, 'thinking');
  assert.equal(m.content[0].signature, 'sig_mock_thinking');
  const up = (await mock.last());
  assert.deepEqual(up.body.thinking, body.thinking);
  assert.equal(up.body.top_k, 5);
  const s = await streamed(body);
  assert.deepEqual(s.msg.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(s.msg.content[0].thinking, 'The user wrote: think about it');
  assert.equal(s.msg.content[0].signature, 'sig_mock_thinking');
  assert.match(s.text, /"signature_delta"/);

  const o = await post({ ...body, model: 'oai/m' });
  assert.equal(o.status, 200);
  assert.deepEqual(o.headers.get('x-llmux-dropped-params').split(',').sort(), ['thinking', 'top_k']);
  const oup = (await mock.last()).body;
  assert.equal(oup.thinking, undefined);
  assert.equal(oup.top_k, undefined);
  assert.ok(!(await o.json()).content.some((b) => b.type === 'thinking'));
});

test('an Anthropic-type target gets the client\'s body and headers as they are, and its stream is relayed byte for byte', async () => {
  const body = {
    model: 'claude-haiku-4-5', max_tokens: 64, metadata: { user_id: 'u-1' }, temperature: 0.3,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'relay me', cache_control: { type: 'ephemeral' } }] }],
    stream: true,
  };
  const res = await post(body, { path: '/v1/messages?beta=true', headers: { 'anthropic-beta': 'interleaved-thinking-2025-05-14' } });
  assert.equal(res.status, 200);
  const raw = await res.text();
  const up = await mock.last();
  assert.deepEqual(up.body, { ...body, model: 'claude-haiku-4-5-20251001' });
  assert.equal(up.headers['anthropic-version'], '2023-06-01');
  assert.equal(up.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14');
  assert.equal(up.headers['x-api-key'], 'sk-ant-upstream');
  // the mock writes its ping with spaces, as Anthropic does: only a relay keeps them
  assert.match(raw, /event: ping\ndata: \{"type": "ping"\}/);
  assert.equal(assemble(events(raw)).msg.id.startsWith('msg_mock_'), true);
  // no Anthropic headers to other targets
  await post(req('oai/m', 'x'), { headers: { 'anthropic-beta': 'x' } });
  assert.equal((await mock.last()).headers['anthropic-beta'], undefined);
});

test('PDF documents: OpenAI-type targets get a file part, Ollama-type a 400 naming the block', async () => {
  const content = [{ type: 'document', title: 'q3.pdf', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' } },
    { type: 'text', text: 'Summarise' }];
  const body = (t) => ({ model: `${t}/m`, max_tokens: 50, messages: [{ role: 'user', content }] });
  assert.equal((await post(body('oai'))).status, 200);
  assert.deepEqual((await mock.last()).body.messages[0].content[0],
    { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0x', filename: 'q3.pdf' } });
  const res = await post(body('ol'));
  assert.equal(res.status, 400);
  const e = await res.json();
  assert.equal(e.error.type, 'invalid_request_error');
  assert.match(e.error.message, /messages\.0\.content\.0/);
  assert.match(e.error.message, /ol\/m/);
});

test('errors in Anthropic\'s shape: validation, unknown model, upstream statuses', async () => {
  const cases = [
    [{ model: 'oai/m', messages: [{ role: 'user', content: 'x' }] }, 400, 'invalid_request_error', /max_tokens/],
    ['{"model":', 400, 'invalid_request_error', /JSON/],
    [req('nosuch/m', 'x'), 404, 'not_found_error', /nosuch/],
    [req('ant/m;status=529', 'x'), 529, 'overloaded_error', /./],
    [req('ant/m;status=429', 'x'), 429, 'rate_limit_error', /./],
    [req('oai/m;status=401', 'x'), 401, 'authentication_error', /./],
  ];
  for (const [body, status, type, msg] of cases) {
    const res = await post(body);
    assert.equal(res.status, status, JSON.stringify(body));
    const e = await res.json();
    assert.equal(e.type, 'error');
    assert.equal(e.error.type, type);
    assert.match(e.error.message, msg);
  }
  // a stream that fails before it began gets the status too, not an event
  const res = await post(req('ant/m;status=529', 'x', { stream: true }));
  assert.equal(res.status, 529);
  assert.equal((await res.json()).error.type, 'overloaded_error');
});

test('count_tokens: an Anthropic-type target\'s own count, else the estimate; nulls and unknown fields accepted', async () => {
  const body = { model: 'ant/m', messages: [{ role: 'user', content: 'one two three four' }], system: 'five six',
    tools: null, provider_specific_fields: null, thinking: null };
  const res = await post(body, { path: '/v1/messages/count_tokens?beta=true' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { input_tokens: 6 });
  assert.equal((await mock.last()).path, '/v1/messages/count_tokens');
  for (const model of ['oai/m', 'ol/m', 'claude-sonnet-4-5']) {
    const r = await post({ ...body, model }, { path: '/v1/messages/count_tokens' });
    assert.equal(r.status, 200);
    const n = (await r.json()).input_tokens;
    assert.ok(Number.isInteger(n) && n > 0);
  }
  const bad = await post({ messages: [] }, { path: '/v1/messages/count_tokens' });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.type, 'invalid_request_error');
});

test('GET /v1/models in Anthropic\'s shape when the request carries anthropic-version, aliases included', async () => {
  const a = await (await fetch(`${gw.base}/v1/models`, { headers: { 'anthropic-version': '2023-06-01' } })).json();
  assert.equal(a.has_more, false);
  const ids = a.data.map((m) => m.id);
  assert.ok(ids.includes('claude-sonnet-4-5') && ids.includes('claude-haiku-4-5'));
  for (const m of a.data) {
    assert.equal(m.type, 'model');
    assert.equal(typeof m.display_name, 'string');
    assert.ok(!Number.isNaN(Date.parse(m.created_at)));
  }
  assert.equal(a.first_id, ids[0]);
  assert.equal(a.last_id, ids.at(-1));
  const o = await (await fetch(`${gw.base}/v1/models`)).json();
  assert.equal(o.object, 'list');
});

test('a client that leaves mid-stream cancels the upstream', async () => {
  const before = (await mock.stats()).aborted;
  const res = await post(req('ant/m;chunks=50;interval=100', 'a long answer please', { stream: true }));
  const reader = res.body.getReader();
  await reader.read();
  await reader.cancel();
  await eventually(() => mock.stats(), (s) => s.aborted === before + 1 && s.active === 0, 10000, 'the upstream to see the abort');
});

test('ping keeps a silent stream alive', async () => {
  // the upstream waits 1 s between its events: longer than keepalive_ms
  const res = await post(req('oai/m;chunks=1;interval=1000', 'hello', { stream: true }));
  const t = await res.text();
  const evs = events(t);
  const ping = evs.findIndex((e) => e.type === 'ping');
  assert.ok(ping > 0, t);
  assert.ok(evs.slice(0, ping).some((e) => e.type === 'message_start'));
  assert.equal(text(assemble(evs).msg), 'echo: hello');
});

test('a raw socket: the query string of Claude Code is accepted', async () => {
  const s = await rawConnect(gw.port);
  const b = JSON.stringify(req('oai/m', 'raw'));
  s.write(`POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\nConnection: close\r\n\r\n${b}`);
  let out = '';
  for await (const d of s) out += d;
  assert.match(out, /^HTTP\/1\.1 200/);
  assert.match(out, /"type":"message"/);
});
