// A small MCP server on the official SDK (@modelcontextprotocol/sdk 1.x: the 2025-11-25 revision, with
// sessions) for the corners of llmux's MCP client that server-everything does not reach: isError, slow
// and cancelled calls, a process that dies mid-call, a paged tool list, list_changed, sessions the
// server forgets, streams it ends early, and its own requests (ping) in the middle of a call.
//
//   node sdk_server.mjs [--http] [--json] [--page-size N] [--fillers N] [--events FILE]
//
// --http serves Streamable HTTP on a free port (printed as "PORT=n" on stderr), else stdio. --json
// answers requests with JSON bodies instead of SSE streams. --events FILE appends one JSON line per tool
// event ({"ev":"start"|"end"|"cancelled","tool","tag","t"}; t in ms since the epoch) so a test can see
// what ran, when, and what was cancelled.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { CallToolRequestSchema, ListToolsRequestSchema, EmptyResultSchema, McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt; };
const HTTP = flag('--http');
const JSON_RESPONSES = flag('--json');
const PAGE_SIZE = Number(option('--page-size', '0'));
const FILLERS = Number(option('--fillers', '0'));
const EVENTS = option('--events', null);

function record(ev, tool, tag) {
  if (EVENTS) appendFileSync(EVENTS, JSON.stringify({ ev, tool, tag, t: performance.timeOrigin + performance.now(), pid: process.pid }) + '\n');
}

const object = (properties = {}, required = []) => ({ type: 'object', properties, required });
const tools = [
  { name: 'echo', description: 'Echo the text back', inputSchema: object({ text: { type: 'string' } }, ['text']) },
  { name: 'add', description: 'Add two numbers', inputSchema: object({ a: { type: 'number' }, b: { type: 'number' } }, ['a', 'b']) },
  { name: 'fail', description: 'Always fails (isError)', inputSchema: object() },
  { name: 'slow', description: 'Answers after ms milliseconds', inputSchema: object({ ms: { type: 'number' }, tag: { type: 'string' } }, ['ms']) },
  { name: 'die', description: 'The server process exits in the middle of the call', inputSchema: object() },
  { name: 'ping_client', description: 'Pings the client before answering', inputSchema: object() },
  { name: 'notify', description: 'Sends a log notification before answering', inputSchema: object() },
  { name: 'image', description: 'An image and a text', inputSchema: object() },
  { name: 'resource', description: 'An embedded resource', inputSchema: object() },
  { name: 'structured', description: 'Only structured content', inputSchema: object() },
  { name: 'add_tool', description: 'Adds a tool and announces the change', inputSchema: object({ name: { type: 'string' } }, ['name']) },
  { name: 'forget_sessions', description: 'The server forgets every session (HTTP)', inputSchema: object() },
  { name: 'poll', description: 'Ends its response stream early and answers after ms (HTTP, SSE)', inputSchema: object({ ms: { type: 'number' } }) },
  { name: 'meet', description: 'Answers once two calls of the same group are running at the same time', inputSchema: object({ group: { type: 'string' } }, ['group']) },
  { name: 'hang', description: 'Never answers: it waits to be cancelled', inputSchema: object({ tag: { type: 'string' } }) },
];
const meetings = new Map(); // group → resolvers of the calls waiting for a partner
for (let i = 0; i < FILLERS; i++) tools.push({ name: `filler_${i}`, description: `Filler tool ${i}`, inputSchema: object() });

const servers = new Set();
const sessions = new Map(); // session id → transport
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(new Error('cancelled')); }, { once: true });
});
const text = (t) => ({ content: [{ type: 'text', text: t }] });

function makeServer(transportRef) {
  const server = new Server({ name: 'llmux-test-server', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true }, logging: {} } });
  servers.add(server);
  server.setRequestHandler(ListToolsRequestSchema, async (req) => {
    if (!PAGE_SIZE) return { tools };
    const start = Number(req.params?.cursor ?? 0);
    if (!Number.isInteger(start) || start < 0 || start > tools.length) throw new McpError(ErrorCode.InvalidParams, 'bad cursor');
    const page = tools.slice(start, start + PAGE_SIZE);
    return start + PAGE_SIZE < tools.length ? { tools: page, nextCursor: String(start + PAGE_SIZE) } : { tools: page };
  });
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const { name, arguments: args = {} } = req.params;
    const tag = args.tag;
    record('start', name, tag);
    try {
      const out = await call(server, transportRef, name, args, extra);
      record('end', name, tag);
      return out;
    } catch (e) {
      record(extra.signal.aborted ? 'cancelled' : 'error', name, tag);
      throw e;
    }
  });
  return server;
}

async function call(server, transportRef, name, args, extra) {
  switch (name) {
    case 'echo': return text(`echo: ${args.text}`);
    case 'add': return text(String(args.a + args.b));
    case 'fail': return { content: [{ type: 'text', text: 'this tool always fails' }], isError: true };
    case 'slow': await sleep(args.ms, extra.signal); return text(`slept ${args.ms} ms`);
    case 'die': setTimeout(() => process.exit(3), 5); await sleep(60000, extra.signal); return text('unreachable');
    // Both go out on the call's own response stream (related to the request), before its answer.
    case 'ping_client': await extra.sendRequest({ method: 'ping' }, EmptyResultSchema); return text('the client answered the ping');
    case 'notify':
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'working on it' } });
      return text('notified');
    case 'image': return { content: [{ type: 'image', data: Buffer.from('not really a png').toString('base64'), mimeType: 'image/png' }, { type: 'text', text: 'an image' }] };
    case 'resource': return { content: [{ type: 'resource', resource: { uri: 'test://doc', mimeType: 'text/plain', text: 'the document text' } }] };
    case 'structured': return { content: [], structuredContent: { answer: 42 } };
    case 'add_tool':
      tools.push({ name: args.name, description: 'added at run time', inputSchema: object() });
      for (const s of servers) await s.sendToolListChanged().catch(() => {});
      return text(`added ${args.name}`);
    case 'forget_sessions':
      setTimeout(() => { for (const t of sessions.values()) t.close().catch(() => {}); sessions.clear(); }, 20);
      return text('forgotten');
    case 'meet': {
      // Proof by construction that calls overlap: neither answers until both are in progress (a
      // sequential caller would see the first one fail after 20 s).
      const waiting = meetings.get(args.group) || [];
      const met = new Promise((resolve, reject) => {
        waiting.push(resolve);
        const t = setTimeout(() => reject(new Error('nobody else came')), 20000);
        extra.signal.addEventListener('abort', () => { clearTimeout(t); reject(new Error('cancelled')); }, { once: true });
      });
      meetings.set(args.group, waiting);
      if (waiting.length >= 2) { meetings.delete(args.group); for (const r of waiting) r(); }
      await met;
      return text(`met in group ${args.group}`);
    }
    case 'hang': await sleep(3600000, extra.signal); return text('unreachable');
    case 'poll':
      transportRef.transport?.closeSSEStream?.(extra.requestId);
      await sleep(args.ms ?? 200, extra.signal);
      return text('answered after the stream was closed');
    default:
      if (name.startsWith('filler_') || tools.some((t) => t.name === name)) return text(name);
      throw new McpError(ErrorCode.InvalidParams, `Tool ${name} not found`);
  }
}

if (!HTTP) {
  const ref = {};
  const server = makeServer(ref);
  ref.transport = new StdioServerTransport();
  await server.connect(ref.transport);
  console.error('sdk test server on stdio');
} else {
  const httpServer = http.createServer(async (req, res) => {
    if (!req.url.startsWith('/mcp')) { res.writeHead(404).end(); return; }
    const sid = req.headers['mcp-session-id'];
    if (sid) {
      const t = sessions.get(sid);
      if (!t) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      await t.handleRequest(req, res);
      return;
    }
    // No session: only an initialize may start one (the transport refuses anything else).
    const ref = {};
    const server = makeServer(ref);
    ref.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: JSON_RESPONSES,
      eventStore: JSON_RESPONSES ? undefined : new InMemoryEventStore(),
      retryInterval: 100,
      onsessioninitialized: (id) => sessions.set(id, ref.transport),
    });
    ref.transport.onclose = () => servers.delete(server);
    await server.connect(ref.transport);
    await ref.transport.handleRequest(req, res);
  });
  httpServer.listen(0, '127.0.0.1', () => console.error(`PORT=${httpServer.address().port}`));
}
