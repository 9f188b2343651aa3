// Many requests at once through one llmux process: every one completes, correctly, with no errors.
// (How fast is measured by bench/, not asserted here.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, sseData } from './lib.mjs';

let mock, gw;
before(async () => {
  mock = await startMock();
  gw = await startLlmux({ providers: { up: upstreamProvider(mock) } });
});
after(async () => {
  assert.equal((await gw.stop()).code, 0);
  await mock.stop();
});

test('1,000 concurrent streams to an upstream that waits 1 s each all complete', async () => {
  const N = 1000;
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: N }, (_, i) => httpRequest(gw.port, {
    body: { model: 'up/x;latency=1000;chunks=3', stream: true, messages: userMsg(`request ${i}`) },
  })));
  const wall = Date.now() - t0;
  results.forEach((r, i) => {
    assert.equal(r.status, 200);
    const events = sseData(r.text);
    assert.equal(events.at(-1), '[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, `echo: request ${i}`);
  });
  const st = await mock.stats();
  assert.ok(st.requests >= N);
  console.log(`# 1000 concurrent 1 s streams: wall ${wall} ms (informational; see bench/)`);
});

test('mixed concurrent non-stream requests each get their own answer', async () => {
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) => httpRequest(gw.port, {
    body: { model: `up/x;latency=${i % 50}`, messages: userMsg(`n${i}`) },
  })));
  results.forEach((r, i) => {
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).choices[0].message.content, `echo: n${i}`);
  });
});
