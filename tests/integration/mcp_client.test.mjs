// llmux's MCP client alone (mcp-probe) against real MCP servers: @modelcontextprotocol/server-everything
// over stdio and Streamable HTTP, and test servers on the official SDKs (tests/mcp/) for the 2025-11-25
// corners (sessions, resumed streams, server requests mid-call, paging, list_changed, a dying process)
// and for the 2026-07-28 revision (server/discover, Mcp-* headers, cancellation by closing the stream).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProbe, startHttpServer, stdioServer, serverEvents, tempFile, freePort, EVERYTHING, SDK_SERVER,
  MODERN_SERVER } from './mcp_lib.mjs';

const byTag = (events, tag) => events.filter((e) => e.tag === tag).map((e) => e.ev);

test('server-everything over stdio: the 2025-11-25 handshake after the 2026-07-28 probe, and its tools', async () => {
  const probe = await startProbe({ ev: stdioServer(EVERYTHING, ['stdio']) });
  try {
    const st = await probe.settled('ev');
    assert.equal(st.state, 'ready');
    assert.equal(st.transport, 'stdio');
    assert.equal(st.protocol, '2025-11-25');
    assert.equal(st.server_info.name, 'mcp-servers/everything');
    const names = (await probe.tools('ev')).map((t) => t.name);
    for (const n of ['echo', 'get-sum', 'trigger-long-running-operation']) assert.ok(names.includes(n), n);
    const sum = await probe.call('ev', 'get-sum', { a: 2, b: 3 });
    assert.equal(sum.outcome, 'ok');
    assert.equal(sum.text, 'The sum of 2 and 3 is 5.');
    const echo = await probe.call('ev', 'echo', { message: 'hello' });
    assert.equal(echo.text, 'Echo: hello');
    const img = await probe.call('ev', 'get-tiny-image', {});
    assert.match(img.text, /\[image: image\/png, \d+ bytes\]/);
    // The server's stderr reaches the log.
    assert.match(probe.log(), /mcp ev \(stderr\): /);
  } finally {
    assert.equal((await probe.stop()).code, 0);
  }
});

test('server-everything over Streamable HTTP: a session, configured headers, a per-tool timeout that cancels', async () => {
  const srv = await startHttpServer(EVERYTHING, [], { everything: true });
  const probe = await startProbe({
    ev: { url: srv.url, headers: { 'X-Llmux-Test': '${MCP_TEST_SECRET}' },
          tool_timeouts: { 'trigger-long-running-operation': 300 } },
  }, { env: { MCP_TEST_SECRET: 'very-secret-value' } });
  try {
    const st = await probe.settled('ev');
    assert.equal(st.transport, 'http');
    assert.equal(st.protocol, '2025-11-25');
    assert.equal(st.session, true);
    assert.equal(st.url, srv.url);
    assert.ok(!JSON.stringify(st).includes('very-secret-value'), 'header values never appear');
    const sum = await probe.call('ev', 'get-sum', { a: 40, b: 2 });
    assert.equal(sum.text, 'The sum of 40 and 2 is 42.');
    // Five 10-second steps against a 300 ms timeout: the call times out and is cancelled.
    const long = await probe.call('ev', 'trigger-long-running-operation', { duration: 50, steps: 5 });
    assert.equal(long.outcome, 'timeout');
    assert.match(long.detail, /within the timeout/);
    assert.equal((await probe.stats()).cancels_sent, 1);
    // The server is still fine after the cancellation.
    assert.equal((await probe.call('ev', 'echo', { message: 'still here' })).text, 'Echo: still here');
    assert.ok(!probe.log().includes('very-secret-value'));
  } finally {
    assert.equal((await probe.stop()).code, 0);
    await srv.stop();
  }
  assert.match(srv.output(), /Received session termination request/); // the session was ended with DELETE
});

test('SDK server over stdio: paging, isError, content kinds, server requests mid-call, cancellation, list_changed, a dying process', async () => {
  const events = tempFile('events');
  const probe = await startProbe({ t: stdioServer(SDK_SERVER, ['--page-size', '4', '--fillers', '7', '--events', events]) });
  try {
    await probe.settled('t');
    const tools = await probe.tools('t');
    assert.equal(tools.length, 22); // 15 tools and 7 fillers over 6 pages
    assert.deepEqual(tools.slice(-2).map((t) => t.name), ['filler_5', 'filler_6']);
    const fail = await probe.call('t', 'fail');
    assert.equal(fail.outcome, 'tool_error');
    assert.equal(fail.text, 'this tool always fails');
    assert.equal((await probe.call('t', 'image')).text, '[image: image/png, 16 bytes]\nan image');
    assert.equal((await probe.call('t', 'resource')).text, '[resource: test://doc]\nthe document text');
    assert.equal((await probe.call('t', 'structured')).text, '{"answer":42}');
    assert.equal((await probe.call('t', 'ping_client')).text, 'the client answered the ping');
    assert.equal((await probe.call('t', 'notify')).text, 'notified');
    assert.ok((await probe.stats()).server_requests >= 1);
    assert.match(probe.log(), /\[info\] working on it/);
    const unknown = await probe.call('t', 'no_such_tool');
    assert.equal(unknown.outcome, 'rpc_error');
    assert.match(unknown.detail, /not found/);

    // Cancel a slow call: the server hears of it (notifications/cancelled) and stops.
    probe.send({ op: 'call', id: 'slow1', server: 't', tool: 'slow', arguments: { ms: 60000, tag: 'cancel-me' } });
    await eventuallyEvents(events, (e) => byTag(e, 'cancel-me').includes('start'));
    probe.send({ op: 'cancel', id: 'slow1' });
    await probe.next((e) => e.event === 'cancelled' && e.id === 'slow1', 'the cancel');
    await eventuallyEvents(events, (e) => byTag(e, 'cancel-me').includes('cancelled'));

    // A tool added at run time shows up after the server's list_changed.
    await probe.call('t', 'add_tool', { name: 'late_tool' });
    await probe.until('t', (s) => s.tools === 23, 'the list to refresh');
    assert.ok((await probe.tools('t')).some((x) => x.name === 'late_tool'));

    // The process dies mid-call: the call fails, the server is restarted and works again.
    const died = await probe.call('t', 'die');
    assert.equal(died.outcome, 'unavailable');
    assert.match(died.detail, /exited with status 3/);
    // Ready comes with the new process's handshake; its tools/list answer may come a moment later (the
    // old list serves until then), so the count is waited for: a fresh process lists 22, the added tool gone.
    await probe.until('t', (s) => s.state === 'ready' && s.restarts === 1 && s.tools === 22, 'the restart and its fresh tool list');
    assert.ok(!(await probe.tools('t')).some((x) => x.name === 'late_tool'));
    assert.equal((await probe.call('t', 'add', { a: 1, b: 2 })).text, '3');
  } finally {
    assert.equal((await probe.stop()).code, 0);
  }
});

test('SDK server over HTTP (SSE): a stream ended early is resumed, a forgotten session is renewed, calls overlap', async () => {
  const events = tempFile('events');
  const srv = await startHttpServer(SDK_SERVER, ['--events', events]);
  const probe = await startProbe({ t: { url: srv.url } });
  try {
    const st = await probe.settled('t');
    assert.equal(st.session, true);
    const polled = await probe.call('t', 'poll', { ms: 200 });
    assert.equal(polled.text, 'answered after the stream was closed');
    assert.equal((await probe.stats()).resumes, 1);
    assert.equal((await probe.call('t', 'ping_client')).text, 'the client answered the ping');

    // Three calls at once run at once: each started before any ended.
    const ids = ['p1', 'p2', 'p3'];
    for (const id of ids) probe.send({ op: 'call', id, server: 't', tool: 'slow', arguments: { ms: 300, tag: id } });
    for (const id of ids) assert.equal((await probe.next((e) => e.event === 'result' && e.id === id)).outcome, 'ok');
    const evs = serverEvents(events).filter((e) => ids.includes(e.tag));
    const lastStart = Math.max(...evs.filter((e) => e.ev === 'start').map((e) => evs.indexOf(e)));
    const firstEnd = Math.min(...evs.filter((e) => e.ev === 'end').map((e) => evs.indexOf(e)));
    assert.ok(lastStart < firstEnd, `overlapping calls: ${JSON.stringify(evs.map((e) => `${e.ev}:${e.tag}`))}`);

    // Cancelling over 2025-11-25 HTTP: notifications/cancelled reaches the server.
    probe.send({ op: 'call', id: 'c', server: 't', tool: 'slow', arguments: { ms: 60000, tag: 'http-cancel' } });
    await eventuallyEvents(events, (e) => byTag(e, 'http-cancel').includes('start'));
    probe.send({ op: 'cancel', id: 'c' });
    await eventuallyEvents(events, (e) => byTag(e, 'http-cancel').includes('cancelled'));

    // The server forgets its sessions: the next call gets 404, llmux initializes again and resends it.
    await probe.call('t', 'forget_sessions');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await probe.call('t', 'echo', { text: 'again' })).text, 'echo: again');
    const stats = await probe.stats();
    assert.equal(stats.session_expired, 1);
    assert.equal(stats.sessions_started, 2);
  } finally {
    assert.equal((await probe.stop()).code, 0);
    await srv.stop();
  }
});

test('SDK server answering with JSON bodies, and a server process that goes away', async () => {
  const srv = await startHttpServer(SDK_SERVER, ['--json']);
  const probe = await startProbe({ t: { url: srv.url, connect_timeout_ms: 2000 } });
  try {
    await probe.settled('t');
    assert.equal((await probe.call('t', 'add', { a: 20, b: 22 })).text, '42');
    assert.equal((await probe.call('t', 'fail')).outcome, 'tool_error');
    const died = await probe.call('t', 'die');
    assert.equal(died.outcome, 'unavailable');
    const down = await probe.until('t', (s) => s.state === 'backoff', 'the server to be marked down');
    assert.equal(down.healthy, false);
    assert.ok(down.error);
    const after = await probe.call('t', 'add', { a: 1, b: 1 });
    assert.equal(after.outcome, 'unavailable');
  } finally {
    assert.equal((await probe.stop()).code, 0);
    await srv.stop();
  }
});

test('2026-07-28 server over HTTP: no session, Mcp-Name and Mcp-Param-* headers, cancellation by closing the stream, subscriptions/listen', async () => {
  const events = tempFile('events');
  const srv = await startHttpServer(MODERN_SERVER, ['--modern-only', '--events', events]);
  const probe = await startProbe({ m: { url: srv.url } });
  try {
    const st = await probe.settled('m');
    assert.equal(st.protocol, '2026-07-28');
    assert.equal(st.session, false);
    assert.equal(st.server_info.name, 'llmux-modern-test-server');
    const r = await probe.call('m', 'regional', { region: 'eu-west 1 ü', nested: { zone: 7 } });
    assert.equal(r.outcome, 'ok');
    assert.equal(r.text, 'region eu-west 1 ü zone 7');
    const h = serverEvents(events).find((e) => e.ev === 'headers' && e.name === 'regional');
    assert.equal(h.version, '2026-07-28');
    assert.equal(h.session, null);
    assert.equal(Buffer.from(h.region.match(/^=\?base64\?(.*)\?=$/)[1], 'base64').toString(), 'eu-west 1 ü');
    assert.equal(h.zone, '7');

    probe.send({ op: 'call', id: 'c', server: 'm', tool: 'slow', arguments: { ms: 60000, tag: 'close-me' } });
    await eventuallyEvents(events, (e) => byTag(e, 'close-me').includes('start'));
    probe.send({ op: 'cancel', id: 'c' });
    await eventuallyEvents(events, (e) => byTag(e, 'close-me').includes('cancelled'));
    assert.equal((await probe.stats()).cancels_sent, 0); // the closed stream said it

    await probe.call('m', 'add_tool', { name: 'late_tool' });
    await probe.until('m', (s) => s.tools === 7, 'the list to refresh');
  } finally {
    assert.equal((await probe.stop()).code, 0);
    await srv.stop();
  }
});

test('2026-07-28 server over stdio, and a dual-era server pinned to 2025-11-25', async () => {
  const events = tempFile('events');
  const srv = await startHttpServer(MODERN_SERVER, []);
  const probe = await startProbe({
    m: stdioServer(MODERN_SERVER, ['--modern-only', '--events', events]),
    old: { url: srv.url, protocol: '2025-11-25' },
  });
  try {
    assert.equal((await probe.settled('m')).protocol, '2026-07-28');
    assert.equal((await probe.call('m', 'add', { a: 2, b: 2 })).text, '4');
    probe.send({ op: 'call', id: 'c', server: 'm', tool: 'slow', arguments: { ms: 60000, tag: 'stdio-cancel' } });
    await eventuallyEvents(events, (e) => byTag(e, 'stdio-cancel').includes('start'));
    probe.send({ op: 'cancel', id: 'c' });
    await eventuallyEvents(events, (e) => byTag(e, 'stdio-cancel').includes('cancelled'));
    assert.equal((await probe.settled('old')).protocol, '2025-11-25');
    assert.equal((await probe.call('old', 'echo', { text: 'x' })).text, 'echo: x');
  } finally {
    assert.equal((await probe.stop()).code, 0);
    await srv.stop();
  }
});

test('unreachable and disabled servers', async () => {
  const port = await freePort();
  const probe = await startProbe({
    gone: { url: `http://127.0.0.1:${port}/mcp`, connect_timeout_ms: 2000 },
    off: { url: 'http://127.0.0.1:1/mcp', headers: { Authorization: 'Bearer ${MCP_TEST_UNSET_VAR}' } },
    nocmd: { command: 'llmux-no-such-mcp-server' },
  });
  try {
    const gone = await probe.settled('gone');
    assert.equal(gone.state, 'backoff');
    assert.match(gone.error, /cannot reach the server|Connection refused|connect/i);
    const call = await probe.call('gone', 'anything');
    assert.equal(call.outcome, 'unavailable');
    const off = await probe.settled('off');
    assert.equal(off.state, 'disabled');
    assert.match(off.error, /MCP_TEST_UNSET_VAR is not set/);
    assert.equal((await probe.call('off', 'x')).outcome, 'unavailable');
    const nocmd = await probe.settled('nocmd');
    assert.equal(nocmd.healthy, false);
    assert.match(nocmd.error, /llmux-no-such-mcp-server|status 127/);
  } finally {
    assert.equal((await probe.stop()).code, 0);
  }
});

async function eventuallyEvents(file, pred) {
  const start = Date.now();
  for (;;) {
    const evs = serverEvents(file);
    if (pred(evs)) return evs;
    if (Date.now() - start > 60000) throw new Error(`timed out; server events: ${JSON.stringify(evs)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a reload keeps an unchanged server (its session and process) and restarts a changed one', async () => {
  const srv = await startHttpServer(SDK_SERVER, []);
  const events = tempFile('events');
  const conf = { web: { url: srv.url }, local: stdioServer(SDK_SERVER, ['--events', events]) };
  const probe = await startProbe(conf);
  try {
    await probe.settled('web');
    await probe.settled('local');
    const before = await probe.stats();
    // The same servers, a new timeout: nothing reconnects.
    probe.send({ op: 'reload', config: { mcp_servers: { ...conf, web: { url: srv.url, timeout_ms: 1234 } } } });
    await probe.next((e) => e.event === 'reloaded', 'the reload');
    assert.equal((await probe.call('web', 'echo', { text: 'same' })).text, 'echo: same');
    assert.equal((await probe.call('local', 'add', { a: 1, b: 1 })).text, '2');
    const same = await probe.stats();
    assert.equal(same.sessions_started, before.sessions_started);
    assert.equal(new Set(serverEvents(events).map((e) => e.pid)).size, 1);
    // A header added to web is another connection: a new session; local's arguments changed: a new process.
    probe.send({ op: 'reload', config: { mcp_servers: { web: { url: srv.url, headers: { 'X-Tenant': 'b' } },
      local: stdioServer(SDK_SERVER, ['--events', events, '--fillers', '1']) } } });
    await probe.next((e) => e.event === 'reloaded', 'the second reload');
    await probe.settled('web');
    await probe.settled('local');
    assert.equal((await probe.call('local', 'add', { a: 2, b: 2 })).text, '4');
    assert.equal((await probe.stats()).sessions_started, before.sessions_started + 1);
    assert.equal(new Set(serverEvents(events).map((e) => e.pid)).size, 2);
    assert.equal((await probe.tools('local')).length, 16);
  } finally {
    assert.equal((await probe.stop()).code, 0);
    await srv.stop();
  }
});
