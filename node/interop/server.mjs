// TypeScript interop server on @clamator-rs/over-redis (the Rust engine): the same flags and
// protocol as clamator-interop-server and interop/py/server.py (READY on stdout; HANDLED:<n>
// on stderr after SIGTERM). Its services are the contracts `clamator codegen --typescript`
// generated (interop/generated/ts, compiled by tsc into ./generated), unchanged.
import { parseArgs } from 'node:util';
import { RedisRpcServer, RpcError } from '@clamator-rs/over-redis';
import { NatsRpcServer } from '@clamator-rs/over-nats';
import { arithContract } from './generated/arith.js';
import { notificationsContract } from './generated/notifications.js';

const { values } = parseArgs({
  options: {
    'redis-url': { type: 'string' },
    'redis-cluster': { type: 'string' },
    'nats-url': { type: 'string' },
    prefix: { type: 'string' },
    'instance-id': { type: 'string' },
    'claim-idle-ms': { type: 'string', default: '60000' },
    concurrency: { type: 'string' },
  },
});
let handled = 0;
const quiet = { error: (m, e) => console.error(`[clamator] ${m}`, e ?? ''), warn() {} };
const common = {
  keyPrefix: values.prefix,
  instanceId: values['instance-id'],
  shutdownGraceMs: 5000,
  logger: quiet,
  ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
};
const server = values['nats-url']
  ? new NatsRpcServer({ ...common, natsUrl: values['nats-url'], ackWaitMs: Number(values['claim-idle-ms']) })
  : new RedisRpcServer({
    ...common,
    redis: values['redis-cluster'] ? { isCluster: true, startupNodes: values['redis-cluster'].split(','), options: {} } : undefined,
    redisUrl: values['redis-cluster'] ? undefined : values['redis-url'],
    consumerClaimIdleMs: Number(values['claim-idle-ms']),
  });
server.registerService(arithContract, {
  async add(p) { handled++; return { sum: p.a + p.b }; },
  async divide(p) { handled++; if (p.b === 0) throw new RpcError(-32000, 'division by zero'); return { q: p.a / p.b }; },
  async echoText(p) { handled++; return { text: p.text }; },
  async slowAdd(p) { handled++; await new Promise((r) => setTimeout(r, p.sleepMs)); return { sum: p.a + p.b }; },
});
server.registerService(notificationsContract, { async ping() { handled++; } });
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.stderr.write(`HANDLED:${handled}\n`);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
await server.start();
process.stdout.write('READY\n');
