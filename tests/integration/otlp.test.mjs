// OpenTelemetry export through real sockets: a collector in the test receives OTLP/HTTP JSON, which is
// checked against the official protobuf definitions (the opentelemetry-proto messages compiled into
// @opentelemetry/otlp-transformer), then span by span: names, kinds, parent/child links, the trace id
// continued from the client's traceparent, the GenAI attributes; and the provider got a traceparent
// naming its attempt's span.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, eventually } from './lib.mjs';
import { receiver } from './observe.mjs';

const require = createRequire(import.meta.url);
const proto = require(new URL('../node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js', import.meta.url).pathname);
const ExportTraceServiceRequest = proto.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

// OTLP/JSON differs from the protobuf JSON mapping in one thing: trace and span ids are hex, not base64.
function hexIdsToBase64(body) {
  const copy = structuredClone(body);
  for (const rs of copy.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        for (const k of ['traceId', 'spanId', 'parentSpanId'])
          if (s[k] !== undefined) {
            assert.match(s[k], k === 'traceId' ? /^[0-9a-f]{32}$/ : /^[0-9a-f]{16}$/, `${k} is lower-case hex`);
            s[k] = Buffer.from(s[k], 'hex').toString('base64');
          }
  return copy;
}

// The body is an ExportTraceServiceRequest in the protobuf JSON mapping (64-bit integers as decimal
// strings): the message it makes passes the definitions' checks, and it survives a protobuf encode and
// decode unchanged (an unknown or misnamed field, or a value of the wrong type, would not).
function validate(body) {
  const obj = hexIdsToBase64(body);
  const msg = ExportTraceServiceRequest.fromObject(obj);
  assert.equal(ExportTraceServiceRequest.verify(msg), null);
  const bytes = ExportTraceServiceRequest.encode(msg).finish();
  const back = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(bytes), { longs: String, enums: Number, bytes: String });
  assert.deepEqual(back, obj);
}

// An OTLP collector: the receiver's POSTs, their bodies parsed, and the spans in them.
async function collector(status = () => 200) {
  const rx = await receiver(status, '');
  const bodies = () => rx.got.map((g) => ({ ...g, body: JSON.parse(g.body) }));
  return {
    base: rx.base, close: rx.close,
    get got() { return bodies(); },
    spans: () => bodies().flatMap((g) => g.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))),
  };
}

const attrs = (span) => Object.fromEntries(span.attributes.map((a) => [a.key, a.value.stringValue ?? (a.value.intValue !== undefined ? Number(a.value.intValue) : a.value)]));

let mock, col, gw;
before(async () => {
  mock = await startMock();
  col = await collector();
  gw = await startLlmux({
    providers: { up: upstreamProvider(mock), once: upstreamProvider(mock, { retries: { max: 2, base_delay_ms: 5 } }) },
    aliases: { smart: ['once/a;status=503', 'up/b'] },
    otlp: { endpoint: col.base, headers: { Authorization: 'Bearer ${OTLP_TOKEN}' }, sample: 1.0, flush_ms: 50, service_name: 'gw-under-test' },
  }, { env: { OTLP_TOKEN: 'tok-123' } });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await col.close();
  await mock.stop();
});

test('a request with a traceparent becomes a server span in that trace, with a client span per attempt, exported as valid OTLP', async () => {
  const traceId = randomBytes(16).toString('hex');
  const parent = randomBytes(8).toString('hex');
  await mock.reset();
  const r = await httpRequest(gw.port, {
    body: { model: 'smart', messages: userMsg('hi') },
    headers: { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=abc', 'x-request-id': 'otlp-1' },
  });
  assert.equal(r.status, 200);
  const spans = await eventually(async () => col.spans().filter((s) => s.traceId === traceId), (s) => s.length === 5, 20000, 'five spans');
  for (const g of col.got) {
    assert.equal(g.path, '/v1/traces');
    assert.equal(g.headers['content-type'], 'application/json');
    assert.equal(g.headers.authorization, 'Bearer tok-123');
    validate(g.body);
    const res = Object.fromEntries(g.body.resourceSpans[0].resource.attributes.map((a) => [a.key, a.value.stringValue]));
    assert.equal(res['service.name'], 'gw-under-test');
    assert.equal(g.body.resourceSpans[0].scopeSpans[0].scope.name, 'llmux');
  }
  const server = spans.find((s) => s.kind === 2);
  assert.equal(server.name, 'POST /v1/chat/completions');
  assert.equal(server.parentSpanId, parent, 'the client\'s span is the parent');
  const sa = attrs(server);
  assert.equal(sa['http.request.method'], 'POST');
  assert.equal(sa['http.route'], '/v1/chat/completions');
  assert.equal(sa['http.response.status_code'], 200);
  assert.equal(sa['gen_ai.operation.name'], 'chat');
  assert.equal(sa['gen_ai.request.model'], 'smart');
  assert.equal(sa['gen_ai.usage.input_tokens'], JSON.parse(r.text).usage.prompt_tokens);
  assert.equal(sa['gen_ai.usage.output_tokens'], JSON.parse(r.text).usage.completion_tokens);
  assert.equal(sa['llmux.request_id'], 'otlp-1');
  assert.equal(sa['llmux.retries'], 2);
  assert.equal(server.status, undefined, 'no error');
  const calls = spans.filter((s) => s.kind === 3).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
  assert.equal(calls.length, 4);
  for (const c of calls) {
    assert.equal(c.parentSpanId, server.spanId, 'each attempt is a child of the request');
    assert.ok(BigInt(c.startTimeUnixNano) >= BigInt(server.startTimeUnixNano) && BigInt(c.endTimeUnixNano) <= BigInt(server.endTimeUnixNano));
  }
  assert.equal(new Set(spans.map((s) => s.spanId)).size, 5, 'distinct span ids');
  assert.deepEqual(calls.map((c) => c.name), ['chat a;status=503', 'chat a;status=503', 'chat a;status=503', 'chat b']);
  for (const [i, c] of calls.slice(0, 3).entries()) {
    const a = attrs(c);
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.provider.name'], 'openai');
    assert.equal(a['gen_ai.request.model'], 'a;status=503');
    assert.equal(a['error.type'], 'server_error');
    assert.equal(a['llmux.attempt'], i);
    assert.equal(c.status.code, 2);
  }
  const won = attrs(calls[3]);
  assert.equal(won['gen_ai.response.model'], 'b');
  assert.equal(won['gen_ai.usage.output_tokens'], JSON.parse(r.text).usage.completion_tokens);
  assert.equal(won['llmux.provider'], 'up');
  assert.equal(won['llmux.fallback_index'], 1);
  assert.equal(won['error.type'], undefined);
  // The provider joined the trace: its request named the winning attempt's span as parent.
  const last = await mock.last();
  const hdr = (name) => Object.entries(last.headers).find(([k]) => k.toLowerCase() === name)?.[1];
  assert.equal(hdr('traceparent'), `00-${traceId}-${calls[3].spanId}-01`);
  assert.equal(hdr('tracestate'), 'vendor=abc');
});

test('without a traceparent a new trace begins; a failed request\'s span carries the error', async () => {
  const before = col.spans().length;
  const r = await httpRequest(gw.port, { body: { model: 'up/x;status=502', messages: userMsg('hi') }, headers: { 'x-request-id': 'otlp-2' } });
  assert.equal(r.status, 502);
  const spans = await eventually(async () => col.spans().slice(before).filter((s) => s.attributes.some((a) => a.key === 'llmux.request_id' && a.value.stringValue === 'otlp-2')),
    (s) => s.some((x) => x.kind === 2), 20000, 'the request span');
  const server = spans.find((s) => s.kind === 2);
  assert.equal(server.parentSpanId, undefined, 'a root span');
  assert.match(server.traceId, /^[0-9a-f]{32}$/);
  assert.equal(server.status.code, 2);
  assert.equal(attrs(server)['error.type'], JSON.parse(r.text).error.code ?? '502', 'the code the client got');
  assert.equal(attrs(server)['http.response.status_code'], 502);
  for (const c of spans.filter((s) => s.kind === 3)) assert.equal(c.traceId, server.traceId);
  for (const g of col.got) validate(g.body);
});

test('without otlp the client\'s traceparent still reaches the provider unchanged, and nothing is exported', async () => {
  const col2 = await collector();
  const gw2 = await startLlmux({ providers: { up: upstreamProvider(mock) } });
  try {
    const tp = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    assert.equal((await httpRequest(gw2.port, { body: { model: 'up/x', messages: userMsg('hi') }, headers: { traceparent: tp } })).status, 200);
    const last = await mock.last();
    assert.equal(Object.entries(last.headers).find(([k]) => k.toLowerCase() === 'traceparent')?.[1], tp);
    // A malformed one is not forwarded.
    assert.equal((await httpRequest(gw2.port, { body: { model: 'up/x', messages: userMsg('hi') }, headers: { traceparent: '00-zz-bad-01' } })).status, 200);
    assert.equal(Object.keys((await mock.last()).headers).some((k) => k.toLowerCase() === 'traceparent'), false);
    assert.equal(col2.got.length, 0);
  } finally {
    assert.equal((await gw2.stop()).code, 0);
    await col2.close();
  }
});

test('a collector that refuses gets retried on 503 and the spans count as dropped after that', async () => {
  const col3 = await collector(() => 503);
  const gw3 = await startLlmux({ providers: { up: upstreamProvider(mock) }, otlp: { endpoint: `${col3.base}/v1/traces`, flush_ms: 20 } });
  try {
    assert.equal((await httpRequest(gw3.port, { body: { model: 'up/x', messages: userMsg('hi') } })).status, 200);
    await gw3.waitLog(/otlp .* failed \(HTTP 503\) after 4 attempt/, 30000);
    assert.equal(col3.got.length, 4, 'the first try and three retries');
    assert.ok(col3.got.every((g) => g.path === '/v1/traces'), 'a URL that names /v1/traces is kept');
    const text = await (await fetch(`${gw3.base}/metrics`)).text();
    assert.match(text, /llmux_events_dropped_total\{sink="otlp"\} 2\b/, 'the request span and the call span');
  } finally {
    assert.equal((await gw3.stop()).code, 0);
    await col3.close();
  }
});

test('otlp config errors name the key, never a header\'s value', async () => {
  const { spawnSync } = await import('node:child_process');
  const { LLMUX_BIN, writeConfig } = await import('./lib.mjs');
  const check = (otlp) => spawnSync(LLMUX_BIN, ['-t', '-c', writeConfig({ otlp })], { encoding: 'utf8' });
  const cases = [
    [{}, /otlp\.endpoint: expected the collector's http/],
    [{ endpoint: 'grpc://x:4317' }, /otlp\.endpoint: expected/],
    [{ endpoint: 'http://x:4318', sample: 2 }, /otlp\.sample: expected a number from 0 to 1/],
    [{ endpoint: 'http://x:4318', sample: 'all' }, /otlp\.sample/],
    [{ endpoint: 'http://x:4318', headers: { Authorization: 'Bearer secret-token\r\nX: y' } }, /otlp\.headers\.Authorization: expected/],
    [{ endpoint: 'http://x:4318', headers: { 'Bad Name': 'v' } }, /otlp\.headers\.Bad Name: expected/],
    [{ endpoint: 'http://x:4318', batch_max: 100, queue_max: 10 }, /otlp\.batch_max: must not exceed otlp\.queue_max/],
    [{ endpoint: 'http://x:4318', flush: 1 }, /otlp\.flush: unknown key/],
  ];
  for (const [otlp, re] of cases) {
    const r = check(otlp);
    assert.equal(r.status, 1, JSON.stringify(otlp));
    assert.match(r.stderr, re);
    assert.ok(!r.stderr.includes('secret-token'));
  }
  assert.equal(check({ endpoint: 'http://127.0.0.1:4318/', sample: 0.5, service_name: 'x' }).status, 0);
});
