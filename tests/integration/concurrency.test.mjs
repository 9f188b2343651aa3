// Many requests at once through one llmux process: every one completes, correctly, with no errors.
// (How fast is measured by bench/, not asserted here.)
import { test, before, after } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { startMock, startLlmux, upstreamProvider, httpRequest, userMsg, sseData, rawConnect, sendRaw, eventually } from './lib.mjs';

const SLOW = !!process.env.LLMUX_WRAP;

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

// llmux runs its upstream transfers in several curl multi handles of up to 1,024 transfers each
// (src/io/upstream.c): 2,100 at once take three. Each must be driven (its own sockets and timer), a later
// wave must find the connections the first left open in whichever handle holds them, and a client leaving
// must cancel its transfer wherever it runs. Each waits 1.5 s at the mock, long enough for all 2,100 to
// arrive there before the first leaves, also on a slow machine (at 300 ms one run saw 2,001 at once).
test('2,100 streams at once (three curl multi handles): all complete, a second wave reuses their connections, and 2,100 clients leaving cancel every transfer', { skip: SLOW && 'under valgrind' }, async () => {
  const N = 2100;
  const wave = (tag) => Promise.all(Array.from({ length: N }, (_, i) => httpRequest(gw.port, {
    body: { model: 'up/x;latency=1500;chunks=3', stream: true, messages: userMsg(`${tag} ${i}`) },
  })));
  const check = (results, tag) => results.forEach((r, i) => {
    assert.equal(r.status, 200);
    const events = sseData(r.text);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join(''), `echo: ${tag} ${i}`);
  });
  const s0 = await mock.stats();
  check(await wave('first'), 'first');
  const s1 = await mock.stats();
  assert.ok(s1.max_active >= N, `all ${N} were at the upstream at once (max_active ${s1.max_active})`);
  check(await wave('second'), 'second');
  const s2 = await mock.stats();
  const fresh = s2.connections_total - s1.connections_total;
  assert.ok(fresh <= N / 20, `the second wave reused the first one's connections (${fresh} new of ${N}; the first opened ${s1.connections_total - s0.connections_total})`);

  const aborted = s2.aborted;
  await Promise.all(Array.from({ length: N }, async (_, i) => {
    const s = await rawConnect(gw.port);
    const first = new Promise((r) => s.on('data', (d) => { if (d.toString().includes('data: ')) r(); }));
    sendRaw(s, { model: 'up/x;chunks=50;interval=100', stream: true, messages: userMsg(`leaving ${i}`) });
    await first;
    s.destroy();
  }));
  await eventually(() => mock.stats(), (st) => st.aborted - aborted === N && st.active === 0, 20000, `the upstream to see all ${N} transfers cancelled`);
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

// A stream in flight keeps neither the client's body nor the one sent upstream once its answer flows
// (src/engine/exec.c on_won, src/io/upstream.c free_sent_body): 24 streams with 1 MiB prompts, each opened
// once the one before is answering, leave llmux far less than the 48 MiB that keeping both copies of each
// would take (a freed body's memory is reused by the next). The memory check is skipped under ASan, whose
// quarantine keeps freed memory resident, and the test under valgrind.
test('streams in flight do not keep their prompts: 24 streams with 1 MiB prompts add far less than their size', { skip: SLOW && 'under valgrind', timeout: 60000 }, async (t) => {
  const rss = () => Number(readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
  const prompt = 'word '.repeat(1 << 18).slice(0, 1 << 20);
  const N = 24;
  const socks = [];
  let base = 0;
  for (let i = 0; i < N; i++) {
    const s = await rawConnect(gw.port);
    let text = '';
    const answering = new Promise((r) => s.on('data', (d) => { text += d; if (/"content":"[^"]/.test(text)) r(); }));
    sendRaw(s, { model: 'up/x;chunks=60;interval=100', stream: true,
      messages: [{ role: 'system', content: prompt }, { role: 'user', content: `stream ${i} of ${N}` }] });
    await answering;
    if (i === 0) base = rss(); // the first prompt's buffers are counted in the base: the heap is warm
    socks.push({ s, done: new Promise((r) => s.on('data', () => { if (text.includes('data: [DONE]')) r(); })) });
  }
  const grown = rss() - base;
  if (process.env.LLMUX_SANITIZED) t.diagnostic(`grew by ${Math.round(grown / 1048576)} MB (not checked under ASan)`);
  else assert.ok(grown < 16 * 1048576, `llmux grew by ${Math.round(grown / 1048576)} MB for ${N - 1} more streams with 1 MiB prompts`);
  await Promise.all(socks.map((x) => x.done));
  socks.forEach((x) => x.s.destroy());
});
