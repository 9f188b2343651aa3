// Upstream requests honour the proxy environment variables the way curl does (llmux reads them once at
// start, by curl's rules): http_proxy (never HTTP_PROXY), https_proxy or HTTPS_PROXY, then all_proxy or
// ALL_PROXY; no_proxy or NO_PROXY lists hosts that go direct; an empty variable counts as unset.
// The proxy here is a real forward proxy on a socket: it forwards plain-HTTP requests to their absolute
// URL and records each CONNECT (an https:// upstream's tunnel), which it refuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock, startLlmux, postChat, userMsg } from './lib.mjs';

// Whatever the environment running the suite has, each gateway here sees only the variables a test sets.
const CLEAR = { http_proxy: '', HTTP_PROXY: '', https_proxy: '', HTTPS_PROXY: '', all_proxy: '', ALL_PROXY: '', no_proxy: '', NO_PROXY: '' };

let mock, proxy, proxyUrl;
let seen = [];
before(async () => {
  mock = await startMock();
  proxy = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url);
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  proxy.on('connect', (req, sock) => {
    seen.push(`CONNECT ${req.url}`);
    sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${proxy.address().port}`;
});
after(async () => {
  await new Promise((r) => proxy.close(r));
  await mock.stop();
});

// One chat request through a gateway started with env; returns what the proxy saw.
async function via(env, { baseUrl = `${mock.url}/v1`, expectAnswer = true } = {}) {
  seen = [];
  const gw = await startLlmux({ providers: { up: { type: 'openai', base_url: baseUrl, retries: { max: 0 } } } }, { env: { ...CLEAR, ...env } });
  try {
    const res = await postChat(gw.base, { model: 'up/x', messages: userMsg('which way?') });
    const body = await res.json();
    if (expectAnswer)
      assert.equal(body.choices[0].message.content, 'echo: which way?');
    else
      assert.ok(res.status >= 500, `the refused tunnel is an upstream error (got ${res.status})`);
    return seen;
  } finally {
    assert.equal((await gw.stop()).code, 0);
  }
}

test('http_proxy carries plain-HTTP upstream requests (absolute URL to the proxy)', async () => {
  assert.deepEqual(await via({ http_proxy: proxyUrl }), [`POST ${mock.url}/v1/chat/completions`]);
});

test('all_proxy and ALL_PROXY apply when the scheme has no variable', async () => {
  assert.equal((await via({ all_proxy: proxyUrl })).length, 1);
  assert.equal((await via({ ALL_PROXY: proxyUrl })).length, 1);
});

test('HTTP_PROXY in upper case is not read for http:// (as curl, against httpoxy)', async () => {
  assert.deepEqual(await via({ HTTP_PROXY: proxyUrl }), []);
});

test('no_proxy or NO_PROXY naming the upstream host goes direct; an empty http_proxy is no proxy', async () => {
  assert.deepEqual(await via({ http_proxy: proxyUrl, no_proxy: '127.0.0.1' }), []);
  assert.deepEqual(await via({ http_proxy: proxyUrl, NO_PROXY: 'localhost,127.0.0.1' }), []);
  assert.deepEqual(await via({ http_proxy: '', all_proxy: '' }), []);
});

test('https_proxy is for https:// upstreams only: their tunnel is asked of it (CONNECT host:port)', async () => {
  assert.deepEqual(await via({ https_proxy: proxyUrl }), [], 'not used for an http:// upstream');
  assert.deepEqual(await via({ https_proxy: proxyUrl }, { baseUrl: 'https://127.0.0.1:9/v1', expectAnswer: false }), ['CONNECT 127.0.0.1:9']);
  assert.deepEqual(await via({ HTTPS_PROXY: proxyUrl }, { baseUrl: 'https://127.0.0.1:9/v1', expectAnswer: false }), ['CONNECT 127.0.0.1:9']);
});
