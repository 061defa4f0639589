// Private redis-server and nats-server processes on free ports for the tests, killed at exit
// (and when a test kills them itself, to fault-test).
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitForPort(port, child, what) {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited at start (code ${child.exitCode})`);
    const ok = await new Promise((resolve) => {
      const c = connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} did not listen on ${port}`);
}

const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

class Proc {
  constructor(command, args, what, port) {
    this.command = command; this.args = args; this.what = what; this.port = port;
  }
  async start() {
    this.child = spawn(this.command, this.args, { stdio: 'ignore' });
    children.add(this.child);
    await waitForPort(this.port, this.child, this.what);
    return this;
  }
  async kill() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
    children.delete(this.child);
  }
  async stop() { await this.kill(); this.cleanup?.(); }
}

/** A redis-server (`$CLAMATOR_REDIS_SERVER`, else `redis-server`) with nothing on disk. */
export async function startRedis(extra = []) {
  const port = await freePort();
  const bin = process.env.CLAMATOR_REDIS_SERVER ?? 'redis-server';
  const p = new Proc(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], 'redis-server', port);
  await p.start();
  p.url = `redis://127.0.0.1:${port}`;
  return p;
}

/** A `nats-server -js` with its own store directory. */
export async function startNats() {
  const port = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'clamator-node-nats-'));
  const bin = process.env.CLAMATOR_NATS_SERVER ?? 'nats-server';
  const p = new Proc(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], 'nats-server', port);
  await p.start();
  p.url = `nats://127.0.0.1:${port}`;
  p.cleanup = () => rmSync(store, { recursive: true, force: true });
  return p;
}
