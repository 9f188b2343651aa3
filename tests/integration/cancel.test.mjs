// Client disconnects at every stage cancel the upstream transfer and free the request; a slow reader
// pauses the upstream instead of making the gateway buffer without bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startMock, startLlmux, upstreamProvider, postChat, userMsg, rawConnect, sendRaw, eventually, sseData } from './lib.mjs';

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({ providers: { up: upstreamProvider(mock), local: { type: 'mock', latency_ms: 60000 } } });
});
after(async () => {
  const { code } = await gw.stop();
  assert.equal(code, 0);
  await mock.stop();
});

async function abortedAfter(before) {
  return eventually(() => mock.stats(), (s) => s.aborted === before + 1 && s.active === 0, 10000, 'upstream to see the abort');
}

test('client aborting a stream mid-way closes the upstream connection', async () => {
  const before = (await mock.stats()).aborted;
  const res = await postChat(gw.base, { model: 'up/x;chunks=50;interval=100', stream: true, messages: userMsg('long one') });
  const reader = res.body.getReader();
  await reader.read();
  await reader.cancel();
  await abortedAfter(before);
  await gw.waitAccess((l) => l.status === 499 && l.client_gone && l.model === 'up/x;chunks=50;interval=100');
});

test('client leaving before the first byte (non-stream, upstream thinking) closes the upstream', async () => {
  const before = (await mock.stats()).aborted;
  const s = await rawConnect(gw.port);
  sendRaw(s, { model: 'up/x;latency=30000', messages: userMsg('slow') });
  await eventually(() => mock.stats(), (st) => st.active === 1, 10000, 'upstream request to start');
  s.destroy();
  await abortedAfter(before);
});

test('client leaving before the first byte of a stream closes the upstream', async () => {
  const before = (await mock.stats()).aborted;
  const s = await rawConnect(gw.port);
  sendRaw(s, { model: 'up/x;latency=30000', stream: true, messages: userMsg('slow') });
  await eventually(() => mock.stats(), (st) => st.active === 1, 10000, 'upstream request');
  s.destroy();
  await abortedAfter(before);
});

test('client disconnecting mid-upload or before the body leaves nothing behind', async () => {
  const before = (await mock.stats()).requests;
  const s1 = await rawConnect(gw.port);
  s1.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
  s1.destroy();
  const s2 = await rawConnect(gw.port);
  s2.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":"up/x","mess');
  s2.destroy();
  // Both requests are finished (499) right away, not left open until a connection timeout.
  await eventually(async () => gw.access().filter((l) => l.model === null && l.status === 499 && l.client_gone).length, (n) => n >= 2, 10000, 'both aborted uploads to be finished');
  const res = await postChat(gw.base, { model: 'up/x', messages: userMsg('after the aborted uploads') });
  assert.equal((await res.json()).choices[0].message.content, 'echo: after the aborted uploads');
  assert.equal((await mock.stats()).requests, before + 1, 'only the complete request reached the upstream');
});

test('client leaving a local (mock provider) request frees it', async () => {
  const s = await rawConnect(gw.port);
  sendRaw(s, { model: 'local/echo', messages: userMsg('never answered') });
  await new Promise((r) => setTimeout(r, 100));
  s.destroy();
  await gw.waitAccess((l) => l.model === 'local/echo' && l.status === 499);
});

// The most the kernel alone can hold between the mock and a paused client: the mock's send buffer and the
// gateway's send buffer to the client (tcp_wmem's maximum each), and the gateway's receive buffer from the
// mock (tcp_rmem's maximum, which autotuning reaches while the gateway reads at full speed before the
// client's buffers fill). A stream larger than that can only be finished by a gateway that buffers it.
function kernelHoldBytes() {
  const max = (f) => Number(readFileSync(`/proc/sys/net/ipv4/${f}`, 'utf8').trim().split(/\s+/)[2]);
  return max('tcp_wmem') * 2 + max('tcp_rmem') + 256 * 1024; // + the paused client's own receive buffer
}

test('a slow reader pauses the upstream instead of being buffered for', async () => {
  // The client reads nothing for a while. The gateway must stop reading the upstream (bounded buffering):
  // the upstream is still mid-response while the client is stalled.
  const size = Math.min(64 * 1024 * 1024, kernelHoldBytes() + 8 * 1024 * 1024);
  const s = await rawConnect(gw.port);
  s.pause();
  sendRaw(s, { model: `up/x;content_bytes=${size}`, stream: true, messages: userMsg('x') });
  await eventually(() => mock.stats(), (st) => st.active === 1, 10000, 'upstream stream to start');
  // Unpaused, the stream over loopback would be drained into the gateway in well under a second.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await mock.stats()).active, 1, 'upstream transfer held, not drained into gateway memory');
  let got = 0;
  const done = new Promise((r) => s.on('data', (d) => { got += d.length; if (got > size) r(); }));
  s.resume();
  await done;
  s.destroy();
  await eventually(() => mock.stats(), (st) => st.active === 0, 10000, 'upstream stream to finish');
});

// The body of one chunked response (its head dropped), decoded.
function dechunk(buf) {
  let off = buf.indexOf('\r\n\r\n') + 4;
  const parts = [];
  for (;;) {
    const eol = buf.indexOf('\r\n', off);
    assert.ok(eol >= 0, 'a whole chunked body');
    const n = parseInt(buf.subarray(off, eol).toString(), 16);
    if (n === 0) return Buffer.concat(parts).toString();
    parts.push(buf.subarray(eol + 2, eol + 2 + n));
    off = eol + 2 + n + 2;
  }
}

// Open a stream on a raw socket (path, body) and resolve once its first SSE event has arrived, with the
// socket and every byte received so far.
async function streamUntilFirstEvent(path, body, headers = '') {
  const s = await rawConnect(gw.port);
  s.on('error', () => {});
  const chunks = [];
  const first = new Promise((resolve) => {
    s.on('data', (d) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString();
      const head = text.indexOf('\r\n\r\n');
      if (head >= 0 && text.indexOf('\n\n', head + 4) >= 0) resolve(); // chunk framing has no \n\n of its own
    });
  });
  const text = JSON.stringify(body);
  s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  await first;
  return { s, chunks };
}

// A client that close()s while its stream waits for the upstream's next event sends only a FIN, which
// looks like a half-close (the answer is still due). The upstream here says nothing for ten minutes after
// its first event, so only a probe of the client (an SSE comment, which a client that closed for good
// answers with a reset) can end the transfer before that.
test('client closing mid-stream while the upstream is silent cancels the upstream transfer', async () => {
  const before = (await mock.stats()).aborted;
  const { s } = await streamUntilFirstEvent('/v1/chat/completions',
    { model: 'up/x;chunks=3;interval=600000', stream: true, messages: userMsg('then silence') }, 'X-Request-Id: closed-mid-stream\r\n');
  s.destroy(); // everything received was read: the kernel sends a FIN, not a reset
  await abortedAfter(before);
  await gw.waitAccess((l) => l.request_id === 'closed-mid-stream' && l.status === 499 && l.client_gone);
});

test('the same through the HTTP library (an Anthropic Messages stream) cancels the upstream transfer', async () => {
  const before = (await mock.stats()).aborted;
  const { s } = await streamUntilFirstEvent('/v1/messages',
    { model: 'up/x;chunks=3;interval=600000', max_tokens: 100, stream: true, messages: userMsg('then silence') },
    'anthropic-version: 2023-06-01\r\nX-Request-Id: closed-mid-messages\r\n');
  s.destroy();
  await abortedAfter(before);
  await gw.waitAccess((l) => l.request_id === 'closed-mid-messages' && l.client_gone);
});

test('a client that half-closes mid-stream gets the rest of the stream (the probe is a comment it skips)', async () => {
  const { s, chunks } = await streamUntilFirstEvent('/v1/chat/completions',
    { model: 'up/x;chunks=3;interval=300', stream: true, messages: userMsg('half closed mid-way') }, 'X-Request-Id: half-mid-stream\r\n');
  const closed = new Promise((resolve) => s.once('close', resolve));
  s.end(); // shutdown(SHUT_WR): the client still reads
  await closed;
  const body = dechunk(Buffer.concat(chunks));
  assert.match(body, /^: keep-alive$/m, 'the gateway probed the half-closed client');
  const events = sseData(body).filter((e) => e !== ''); // the comment's block has no data
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content || '').join(''), 'echo: half closed mid-way');
  const line = await gw.waitAccess((l) => l.request_id === 'half-mid-stream');
  assert.equal(line.status, 200);
  assert.equal(line.client_gone, false);
});
