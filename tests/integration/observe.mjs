// The event sinks' other ends for the tests: an observer of llmux's GET /v1/events (a real HTTP client
// reading the SSE stream as it arrives, parsing each event), and a receiver of POSTs (webhooks, OTLP);
// their waits are hang guards only.
import http from 'node:http';

// Parse SSE blocks from a growing text; returns [events, rest]. Comments (": ...") and retry: lines are skipped.
function parseBlocks(text) {
  const out = [];
  let idx;
  while ((idx = text.indexOf('\n\n')) >= 0) {
    const block = text.slice(0, idx);
    text = text.slice(idx + 2);
    const ev = {};
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) ev.id = line.slice(4);
      else if (line.startsWith('event: ')) ev.event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (!ev.event) continue;
    ev.data = JSON.parse(data.join('\n'));
    out.push(ev);
  }
  return [out, text];
}

// Connect an observer. Resolves once the stream's head is in; .events grows as events arrive.
export function observe(port, { path = '/v1/events', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const o = { events: [], status: 0, headers: {}, ended: false, raw: '' };
    const req = http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      o.status = res.statusCode;
      o.headers = res.headers;
      res.setEncoding('utf8');
      let rest = '';
      res.on('data', (d) => {
        o.raw += d;
        const [evs, r] = parseBlocks(rest + d);
        rest = r;
        o.events.push(...evs);
      });
      res.on('end', () => { o.ended = true; });
      res.on('error', () => { o.ended = true; });
      resolve(o);
    });
    req.on('error', reject);
    o.close = () => req.destroy();
    // Wait until pred(events) holds (hang guard ms).
    o.until = (pred, ms = 20000, what = 'events') => new Promise((res2, rej2) => {
      const start = Date.now();
      const tick = () => {
        const v = pred(o.events);
        if (v) return res2(v);
        if (Date.now() - start > ms) return rej2(new Error(`timed out waiting for ${what}; got ${JSON.stringify(o.events.map((e) => e.event))}`));
        setTimeout(tick, 10);
      };
      tick();
    });
    o.ofRequest = (rid) => o.events.filter((e) => e.data.request_id === rid);
  });
}

// The value of a counter in /metrics text ("name{labels}"), or 0.
export function metric(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.split(' ')[1]) : 0;
}

// A receiver: records every POST (path, headers, the raw body) and answers with status(n) (n: how many so
// far). url is its address with path.
export async function receiver(status = () => 200, path = '/hook') {
  const got = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      got.push({ path: req.url, headers: req.headers, body, at: Date.now() });
      res.writeHead(status(got.length), { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { got, base, url: base + path, close: () => new Promise((r) => server.close(r)) };
}
