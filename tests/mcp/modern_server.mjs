// An MCP server on the official v2 SDK (@modelcontextprotocol/server 2.x), which speaks the 2026-07-28
// revision: no session, server/discover, per-request _meta, Mcp-Method / Mcp-Name / Mcp-Param-* headers it
// checks against the body, subscriptions/listen for list changes, and closing the response stream as
// cancellation. By default it also serves 2025-era clients statelessly; --modern-only refuses them.
//
//   node modern_server.mjs [--http] [--modern-only] [--events FILE]
//
// --http serves on a free port (printed as "PORT=n" on stderr), else stdio. --events FILE as in
// sdk_server.mjs, plus {"ev":"headers", ...} lines with the MCP headers each tools/call came with.
import { McpServer, createMcpHandler, fromJsonSchema } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { toNodeHandler } from '@modelcontextprotocol/node';
import http from 'node:http';
import { appendFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt; };
const EVENTS = option('--events', null);

function record(ev, fields) {
  if (EVENTS) appendFileSync(EVENTS, JSON.stringify({ ev, ...fields, t: performance.timeOrigin + performance.now(), pid: process.pid }) + '\n');
}

const object = (properties = {}, required = []) => fromJsonSchema({ type: 'object', properties, required });
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const added = []; // tools added at run time (every per-request server instance registers them)
let handler;

function factory() {
  const server = new McpServer({ name: 'llmux-modern-test-server', version: '2.0.0' },
    { capabilities: { tools: { listChanged: true } } });
  const tool = (name, description, schema, fn) => server.registerTool(name, { description, inputSchema: schema }, async (args, ctx) => {
    record('start', { tool: name, tag: args.tag });
    try {
      const out = await fn(args, ctx);
      record('end', { tool: name, tag: args.tag });
      return out;
    } catch (e) {
      record(ctx.mcpReq.signal.aborted ? 'cancelled' : 'error', { tool: name, tag: args.tag });
      throw e;
    }
  });
  tool('echo', 'Echo the text back', object({ text: { type: 'string' } }, ['text']), async (a) => text(`echo: ${a.text}`));
  tool('add', 'Add two numbers', object({ a: { type: 'number' }, b: { type: 'number' } }, ['a', 'b']), async (a) => text(String(a.a + a.b)));
  tool('slow', 'Answers after ms milliseconds', object({ ms: { type: 'number' }, tag: { type: 'string' } }, ['ms']),
    (a, ctx) => new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve(text(`slept ${a.ms} ms`)), a.ms);
      ctx.mcpReq.signal.addEventListener('abort', () => { clearTimeout(t); reject(new Error('cancelled')); }, { once: true });
    }));
  // The region parameter is mirrored into an Mcp-Param-Region header; the SDK refuses a call without it.
  tool('regional', 'Answers with the region it was asked for', object({
    region: { type: 'string', 'x-mcp-header': 'Region' },
    nested: { type: 'object', properties: { zone: { type: 'integer', 'x-mcp-header': 'Zone' } } },
  }, ['region']), async (a) => text(`region ${a.region} zone ${a.nested?.zone ?? '-'}`));
  tool('fail', 'Always fails (isError)', object(), async () => ({ content: [{ type: 'text', text: 'this tool always fails' }], isError: true }));
  tool('add_tool', 'Adds a tool and announces the change', object({ name: { type: 'string' } }, ['name']), async (a) => {
    added.push(a.name);
    handler?.notify.toolsChanged();
    return text(`added ${a.name}`);
  });
  for (const name of added) tool(name, 'added at run time', object(), async () => text(name));
  return server;
}

const legacy = flag('--modern-only') ? 'reject' : 'stateless';
if (!flag('--http')) {
  serveStdio(factory, { legacy: legacy === 'reject' ? 'reject' : 'serve' });
  console.error('modern test server on stdio');
} else {
  handler = createMcpHandler(factory, { legacy });
  const node = toNodeHandler(handler);
  const httpServer = http.createServer((req, res) => {
    if (req.headers['mcp-method'] === 'tools/call')
      record('headers', { name: req.headers['mcp-name'], region: req.headers['mcp-param-region'], zone: req.headers['mcp-param-zone'], version: req.headers['mcp-protocol-version'], session: req.headers['mcp-session-id'] ?? null });
    node(req, res);
  });
  httpServer.listen(0, '127.0.0.1', () => console.error(`PORT=${httpServer.address().port}`));
}
