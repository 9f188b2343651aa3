// A real redis-server for the scale-out tests (Debian's redis-server, which `make deps` installs): started
// on a unix socket in a temp directory, killed with SIGKILL and started again on the same socket, and
// asked things through redis-cli.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const servers = new Set();
process.on('exit', () => { for (const s of servers) s.proc?.kill('SIGKILL'); });

async function until(pred, ms, what) {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function startRedis(extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'llmux-redis-'));
  const sock = join(dir, 'redis.sock');
  const srv = {
    dir, sock, url: `unix:${sock}`, proc: null,
    cli(...args) {
      return execFileSync('redis-cli', ['-s', sock, ...args], { encoding: 'utf8' }).trim();
    },
    async start() {
      const args = ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no', '--dir', dir,
        '--logfile', join(dir, 'redis.log'), '--daemonize', 'no', ...extraArgs];
      srv.proc = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
      srv.proc.once('error', (e) => { throw new Error(`cannot run ${REDIS_SERVER} (make deps installs it): ${e.message}`); });
      await until(() => { try { return existsSync(sock) && srv.cli('PING') === 'PONG'; } catch { return false; } }, 20000, 'redis-server');
    },
    // kill -9: the socket file stays behind until the next start replaces it.
    async kill() {
      const p = srv.proc;
      srv.proc = null;
      if (!p || p.exitCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
      rmSync(sock, { force: true });
    },
    async stop() {
      await srv.kill();
      servers.delete(srv);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  servers.add(srv);
  await srv.start();
  return srv;
}
