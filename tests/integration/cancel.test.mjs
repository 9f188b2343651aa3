// Client disconnects at every stage cancel the upstream transfer and free the request; a slow reader
// pauses the upstream instead of making the gateway buffer without bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, postChat, userMsg, rawConnect, eventually } from './lib.mjs';

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

function sendRaw(s, body) {
  const text = JSON.stringify(body);
  s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
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

test('a slow reader pauses the upstream instead of being buffered for', async () => {
  // 10 MiB of stream; the client reads nothing for a while. The gateway must stop reading the upstream
  // (bounded buffering): the upstream is still mid-response while the client is stalled.
  const s = await rawConnect(gw.port);
  s.pause();
  sendRaw(s, { model: 'up/x;fault=big', stream: true, messages: userMsg('x') });
  await eventually(() => mock.stats(), (st) => st.active === 1, 10000, 'upstream stream to start');
  // Unpaused, 10 MiB over loopback would be drained into the gateway in milliseconds.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await mock.stats()).active, 1, 'upstream transfer held, not drained into gateway memory');
  let got = 0;
  const done = new Promise((r) => s.on('data', (d) => { got += d.length; if (got > 10 * 1024 * 1024) r(); }));
  s.resume();
  await done;
  s.destroy();
  await eventually(() => mock.stats(), (st) => st.active === 0, 10000, 'upstream stream to finish');
});
