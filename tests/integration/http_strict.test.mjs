// HTTP/1.1 strictness through raw sockets (issue 11, docs/api.md "HTTP strictness"): request framing that
// two parsers could read differently is refused with one OpenAI-shaped error and a closed connection, so
// nothing smuggled after it is served; HTTP-layer errors are JSON and logged with the status sent; a
// client that half-closes still gets every answer. Each case counts the responses the socket received
// until the gateway closed it, and checks the access log for the request it tried to smuggle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLlmux, rawConnect, sseData } from './lib.mjs';

const KEY = 'sk-strict-test-key-0123';
let gw;
before(async () => {
  gw = await startLlmux({
    providers: { m: { type: 'mock', models: ['echo'] }, slow: { type: 'mock', models: ['echo'], latency_ms: 1000 } },
    auth: { keys: [{ name: 'app', key: KEY }] },
    // Far above the hang guards below: an answer that comes at all did not come from this timeout.
    limits: { read_timeout_ms: 120000, max_body_bytes: 65536 },
  });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
});

// Send bytes on a new connection (then half-close when asked) and collect all it receives until the
// gateway closes it. Rejects when the gateway keeps it open for `ms` (a hang guard, not a speed check).
async function exchange(bytes, { halfClose = false, ms = 20000, port = gw.port } = {}) {
  const s = await rawConnect(port);
  const chunks = [];
  s.on('data', (d) => chunks.push(d));
  s.on('error', () => {});
  const closed = new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.destroy(); reject(new Error(`connection still open after ${ms} ms; got:\n${Buffer.concat(chunks)}`)); }, ms);
    s.once('close', () => { clearTimeout(t); resolve(); });
  });
  s.write(bytes);
  if (halfClose) s.end();
  await closed;
  return parseResponses(Buffer.concat(chunks));
}

// Every response in a byte stream: interim (1xx) ones apart, bodies framed by Content-Length or chunked.
// Anything that does not parse as responses fails the test.
function parseResponses(buf) {
  const finals = [];
  const interim = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    assert.ok(end >= 0, `an incomplete response head at byte ${off}: ${buf.subarray(off, off + 200)}`);
    const lines = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = lines[0].match(/^HTTP\/1\.1 (\d{3}) /);
    assert.ok(m, `not a status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const r = { status: Number(m[1]), headers, body: '' };
    off = end + 4;
    if (r.status < 200) {
      interim.push(r);
      continue;
    }
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const le = buf.indexOf('\r\n', off);
        const size = parseInt(buf.subarray(off, le).toString(), 16);
        off = le + 2;
        if (size === 0) { off = buf.indexOf('\r\n', off) + 2; break; }
        r.body += buf.subarray(off, off + size).toString();
        off += size + 2;
      }
    } else {
      const n = Number(headers['content-length'] || 0);
      r.body = buf.subarray(off, off + n).toString();
      off += n;
    }
    finals.push(r);
  }
  return { finals, interim };
}

// The one error response of a refused request: its status, JSON error code, access log line.
async function expectRefused(got, status, code) {
  assert.equal(got.finals.length, 1, `exactly one response, got ${got.finals.map((r) => r.status)}`);
  assert.equal(got.interim.length, 0);
  const r = got.finals[0];
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers.connection, 'close');
  const err = JSON.parse(r.body).error;
  assert.equal(err.code, code);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.type);
  const line = await gw.waitAccess((l) => l.request_id === r.headers['x-request-id']);
  assert.equal(line.status, status, 'the access log has the status that was sent');
  assert.equal(line.error, code);
  assert.equal(line.client_gone, false);
  return r;
}

let n = 0;
// A request that must never be served when it rides behind a refused one.
function smuggled() {
  const id = `smuggled-${++n}`;
  return { id, bytes: `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${id}\r\n\r\n` };
}
function notServed(id) {
  assert.ok(!gw.access().some((l) => l.request_id === id), `${id} was served`);
}
const chatBody = (model = 'm/echo', extra = {}) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
const post = (head, body) => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n${head}\r\n${body}`;

test('whitespace between a header name and its colon: 400, closed, the body is not run as a request', async () => {
  for (const sep of [' ', '\t']) {
    const s = smuggled();
    const got = await exchange(post(`Content-Length${sep}: ${s.bytes.length}\r\n`, s.bytes));
    await expectRefused(got, 400, 'invalid_header');
    notServed(s.id);
  }
});

test('obs-fold: refused in Content-Length, Transfer-Encoding and any other header', async () => {
  const s = smuggled();
  await expectRefused(await exchange(post(`Content-Length:\r\n ${s.bytes.length}\r\n`, s.bytes)), 400, 'invalid_header');
  notServed(s.id);
  const t = smuggled();
  await expectRefused(await exchange(post('Transfer-Encoding:\r\n\tchunked\r\n', `0\r\n\r\n${t.bytes}`)), 400, 'invalid_header');
  notServed(t.id);
  const u = smuggled();
  await expectRefused(await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n b\r\n\r\n${u.bytes}`), 400, 'invalid_header');
  notServed(u.id);
});

test('a header line with an empty name does not end the header section', async () => {
  const s = smuggled();
  await expectRefused(await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\n: x\r\n${s.bytes}`), 400, 'invalid_header');
  notServed(s.id);
});

test('Content-Length: conflicting values and lists are refused, "65, 65" is 65', async () => {
  const s = smuggled();
  await expectRefused(await exchange(post(`Content-Length: 0\r\nContent-Length: ${s.bytes.length}\r\n`, s.bytes)), 400, 'invalid_content_length');
  notServed(s.id);
  await expectRefused(await exchange(post('Content-Length: 65, 66\r\n', 'x'.repeat(66))), 400, 'invalid_content_length');
  const body = chatBody();
  const got = await exchange(post(`Content-Length: ${body.length}, ${body.length}\r\nConnection: close\r\n`, body));
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
  assert.match(JSON.parse(got.finals[0].body).choices[0].message.content, /You said: hi/);
});

test('Content-Length with a sign, hex or other non-digits: one 400, not two', async () => {
  for (const v of ['+65', '0x41', '65abc', '-1', '6 5', '']) {
    const s = smuggled();
    await expectRefused(await exchange(post(`Content-Length: ${v}\r\n`, s.bytes)), 400, 'invalid_content_length');
    notServed(s.id);
  }
});

test('Content-Length with Transfer-Encoding: framed by the chunks, then the connection closes', async () => {
  const s = smuggled();
  const body = chatBody();
  const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  const got = await exchange(post(`Content-Length: 5\r\nTransfer-Encoding: chunked\r\n`, chunked + s.bytes));
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
  assert.equal(got.finals[0].headers.connection, 'close');
  assert.match(JSON.parse(got.finals[0].body).choices[0].message.content, /You said: hi/);
  notServed(s.id);
});

test('Transfer-Encoding on HTTP/1.0, or twice: 400 and close', async () => {
  const s = smuggled();
  await expectRefused(await exchange(`POST /v1/chat/completions HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${s.bytes}`), 400, 'invalid_transfer_encoding');
  notServed(s.id);
  const t = smuggled();
  await expectRefused(await exchange(post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${t.bytes}`)), 400, 'invalid_transfer_encoding');
  notServed(t.id);
});

test('a Transfer-Encoding other than a final chunked is answered at once: 400, or 501 for a coding we lack', async () => {
  // No half-close and read_timeout_ms of 120 s: the answer cannot wait for more bytes.
  for (const [te, status, code] of [['gzip', 400, 'invalid_transfer_encoding'], ['chunked, gzip', 400, 'invalid_transfer_encoding'],
    ['gzip, chunked', 501, 'unsupported_transfer_encoding'], ['chunked;x=1', 400, 'invalid_transfer_encoding']]) {
    const s = smuggled();
    await expectRefused(await exchange(post(`Transfer-Encoding: ${te}\r\n`, `5\r\nhello\r\n0\r\n\r\n${s.bytes}`)), status, code);
    notServed(s.id);
  }
  // "chunked" with whitespace around it is chunked; pipelining goes on after it.
  const body = chatBody();
  const got = await exchange(post('Transfer-Encoding:   chunked \t\r\n', `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`)
    + 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.deepEqual(got.finals.map((r) => r.status), [200, 200]);
  assert.match(JSON.parse(got.finals[0].body).choices[0].message.content, /You said: hi/);
});

test('malformed chunked bodies: 400 and close', async () => {
  for (const chunks of ['+5\r\nhello\r\n0\r\n\r\n', '0x5\r\nhello\r\n0\r\n\r\n', '5\r\nhelloXX\r\n0\r\n\r\n', '5\nhello\n0\n\n']) {
    const s = smuggled();
    await expectRefused(await exchange(post('Transfer-Encoding: chunked\r\n', chunks + s.bytes)), 400, 'invalid_chunked_body');
    notServed(s.id);
  }
});

test('NUL, bare CR and other control characters in a header value or the target: 400', async () => {
  // The key followed by NUL and junk would authenticate if the value were cut at the NUL.
  await expectRefused(await exchange(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\0junk\r\n\r\n`), 400, 'invalid_header');
  await expectRefused(await exchange(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\rjunk\r\n\r\n`), 400, 'invalid_header');
  await expectRefused(await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n'), 400, 'invalid_header');
  await expectRefused(await exchange('GET /healthz HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n'), 400, 'invalid_header');
  for (const target of ['/healthz\0x', '/healthz\x7f', '/healthz%00x']) {
    const s = smuggled();
    await expectRefused(await exchange(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n${s.bytes}`), 400, 'invalid_request_target');
    notServed(s.id);
  }
});

test('Host missing or twice, Authorization or x-api-key twice: 400', async () => {
  await expectRefused(await exchange('GET /healthz HTTP/1.1\r\n\r\n'), 400, 'missing_host');
  await expectRefused(await exchange('GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'), 400, 'duplicate_header');
  await expectRefused(await exchange(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nAuthorization: Bearer other\r\n\r\n`), 400, 'duplicate_header');
  await expectRefused(await exchange(`GET /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: ${KEY}\r\nX-Api-Key: ${KEY}\r\n\r\n`), 400, 'duplicate_header');
  // HTTP/1.0 needs no Host.
  const got = await exchange('GET /healthz HTTP/1.0\r\n\r\n');
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
});

test('limits.max_header_bytes covers the request line: 414 for a long target, 431 for long headers', async () => {
  const s = smuggled();
  const uri = await expectRefused(await exchange(`GET /healthz?${'a'.repeat(60000)} HTTP/1.1\r\nHost: x\r\n\r\n${s.bytes}`), 414, 'request_uri_too_long');
  assert.match(JSON.parse(uri.body).error.message, /32768 bytes \(limits\.max_header_bytes\)/);
  notServed(s.id);
  await expectRefused(await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(40000)}\r\n\r\n`), 431, 'request_header_too_large');
  // Many small fields, query parameters or cookies: MHD would answer these itself, in HTML.
  await expectRefused(await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\n${'a: b\r\n'.repeat(1000)}\r\n`), 431, 'request_header_too_large');
  await expectRefused(await exchange(`GET /healthz?${'a&'.repeat(1000)} HTTP/1.1\r\nHost: x\r\n\r\n`), 414, 'request_uri_too_long');
  const cookies = Array.from({ length: 3000 }, (_, i) => `c${i}=1`).join('; ');
  const got = await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: ${cookies}\r\nConnection: close\r\n\r\n`);
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
});

test('other HTTP-layer errors are OpenAI-shaped too: 413, 501 and 505', async () => {
  await expectRefused(await exchange(post('Content-Length: 99999999\r\n', 'x')), 413, 'request_too_large');
  const big = 'x'.repeat(70000);
  await expectRefused(await exchange(post('Transfer-Encoding: chunked\r\n', `${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`)), 413, 'request_too_large');
  await expectRefused(await exchange('GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n'), 505, 'http_version_not_supported');
  await expectRefused(await exchange('GETTINGTOOLONGMETHOD /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), 501, 'method_not_implemented');
  await expectRefused(await exchange('GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), 400, 'invalid_request_line');
});

test('an absolute-form target is routed by its path', async () => {
  const body = chatBody();
  const got = await exchange(`POST http://gateway.example:8080/v1/chat/completions HTTP/1.1\r\nHost: gateway.example:8080\r\n`
    + `Authorization: Bearer ${KEY}\r\nContent-Length: ${body.length}\r\n\r\n${body}GET HTTP://gateway.example/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.deepEqual(got.finals.map((r) => r.status), [200, 200]);
  assert.match(JSON.parse(got.finals[0].body).choices[0].message.content, /You said: hi/);
  assert.equal(got.finals[1].body, '{"status":"ok"}\n');
});

test('whitespace after a header value is not part of it: a key followed by spaces authenticates', async () => {
  const got = await exchange(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}  \t \r\nConnection: close\r\n\r\n`);
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
  assert.equal(JSON.parse(got.finals[0].body).object, 'list');
});

test('the slowloris drop answers 408 in JSON where it still can, and logs it', async () => {
  const quick = await startLlmux({ providers: { m: { type: 'mock' } }, limits: { read_timeout_ms: 300 } });
  for (const partial of ['GET /healthz HTTP/1.1\r\nHost: x\r\n', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"mod']) {
    const got = await exchange(partial, { port: quick.port });
    assert.equal(got.finals.length, 1);
    const r = got.finals[0];
    assert.equal(r.status, 408);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(JSON.parse(r.body).error.code, 'read_timeout');
    const line = await quick.waitAccess((l) => l.request_id === r.headers['x-request-id']);
    assert.equal(line.status, 408);
    assert.equal(line.error, 'read_timeout');
  }
  assert.equal((await quick.stop()).code, 0);
});

test('half-close after a complete request: the answer still comes, streamed or not', async () => {
  // Answered at once.
  let got = await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { halfClose: true });
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
  assert.equal(got.interim.length, 0);
  // A slow answer. While it is pending the gateway may send a 100 Continue, which is how it tells a
  // half-close from a client that left (that one's TCP stack would reset).
  const body = chatBody('slow/echo');
  got = await exchange(post(`X-Request-Id: half-slow\r\nContent-Length: ${body.length}\r\n`, body), { halfClose: true });
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
  assert.ok(got.interim.every((r) => r.status === 100));
  assert.match(JSON.parse(got.finals[0].body).choices[0].message.content, /You said: hi/);
  // A slow stream.
  const sbody = chatBody('slow/echo', { stream: true });
  got = await exchange(post(`X-Request-Id: half-stream\r\nContent-Length: ${sbody.length}\r\n`, sbody), { halfClose: true });
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
  assert.match(got.finals[0].headers['content-type'], /^text\/event-stream/);
  const events = sseData(got.finals[0].body);
  assert.equal(events.at(-1), '[DONE]');
  assert.match(events.slice(0, -1).map((e) => JSON.parse(e).choices[0].delta.content || '').join(''), /You said: hi/);
  // Both were logged (before the gateway closed the connection) as answered, not as clients gone.
  for (const id of ['half-slow', 'half-stream']) {
    const line = gw.access().find((l) => l.request_id === id);
    assert.equal(line.status, 200);
    assert.equal(line.client_gone, false);
  }
});

test('half-close after 100 pipelined requests: all 100 are answered, in order', async () => {
  let bytes = '';
  const body = chatBody();
  for (let i = 0; i < 100; i++) bytes += post(`X-Request-Id: pipe-${i}\r\nContent-Length: ${body.length}\r\n`, body);
  const got = await exchange(bytes, { halfClose: true });
  assert.equal(got.finals.length, 100);
  assert.deepEqual(got.finals.map((r) => r.headers['x-request-id']), Array.from({ length: 100 }, (_, i) => `pipe-${i}`));
  assert.ok(got.finals.every((r) => r.status === 200 && /You said: hi/.test(r.body)));
  assert.ok(got.interim.every((r) => r.status === 100));
});

// llmux_inflight_requests from /metrics, less the scrape itself.
async function inflight() {
  const got = await exchange('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  return Number(got.finals[0].body.match(/^llmux_inflight_requests (\d+)$/m)[1]) - 1;
}

test('a client that closes for good while its answer is pending is noticed at once (499)', async () => {
  const s = await rawConnect(gw.port);
  s.on('error', () => {});
  const body = chatBody('slow/echo');
  s.write(post(`X-Request-Id: left-early\r\nContent-Length: ${body.length}\r\n`, body));
  const start = Date.now();
  while (await inflight() < 1) {
    assert.ok(Date.now() - start < 20000, 'the request never started');
    await new Promise((r) => setTimeout(r, 10));
  }
  s.destroy();
  const line = await gw.waitAccess((l) => l.request_id === 'left-early');
  assert.equal(line.status, 499);
  assert.equal(line.client_gone, true);
  assert.equal(line.completion_tokens, 0, 'cancelled before the answer was made');
});

test('Expect: 100-continue gets one interim 100 before the body is sent, then the answer', async () => {
  const body = chatBody();
  const s = await rawConnect(gw.port);
  const chunks = [];
  s.on('data', (d) => chunks.push(d));
  const closed = new Promise((r) => s.once('close', r));
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
  // The body goes only after the 100, as a client waiting for it would send it.
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no 100 Continue')), 20000);
    const check = () => { if (Buffer.concat(chunks).includes('HTTP/1.1 100 Continue\r\n\r\n')) { clearTimeout(t); resolve(); } else setTimeout(check, 10); };
    check();
  });
  s.write(body);
  await closed;
  const got = parseResponses(Buffer.concat(chunks));
  assert.deepEqual(got.interim.map((r) => r.status), [100]);
  assert.deepEqual(got.finals.map((r) => r.status), [200]);
});
