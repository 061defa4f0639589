// TypeScript interop client on @clamator-rs/over-redis: reads the same JSON config on stdin as
// clamator-interop-client and interop/py/client.py, prints {"results": [...]} with the five
// result shapes (result, notification, rpc-error, transport-error, unknown-error).
import { RedisRpcClient, RpcError, ClamatorTransportError } from '@clamator-rs/over-redis';
import { NatsRpcClient } from '@clamator-rs/over-nats';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
// decoded once: a UTF-8 character split across chunks stays whole
const cfg = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const client = cfg.natsUrl
  ? new NatsRpcClient({ natsUrl: cfg.natsUrl, keyPrefix: cfg.keyPrefix, defaultTimeoutMs: cfg.defaultTimeoutMs ?? 5000 })
  : new RedisRpcClient({
    redis: cfg.redisCluster ? { isCluster: true, startupNodes: cfg.redisCluster, options: {} } : undefined,
    redisUrl: cfg.redisCluster ? undefined : cfg.redisUrl,
    keyPrefix: cfg.keyPrefix,
    defaultTimeoutMs: cfg.defaultTimeoutMs ?? 5000,
  });
await client.start();

async function one(call) {
  const [service, method] = [call.method.slice(0, call.method.indexOf('.')), call.method.slice(call.method.indexOf('.') + 1)];
  try {
    if (call.notification) {
      await client.notify(service, method, call.params);
      return { ok: true, kind: 'notification' };
    }
    return { ok: true, kind: 'result', result: await client.call(service, method, call.params) };
  } catch (e) {
    if (e instanceof RpcError) return { ok: false, kind: 'rpc-error', code: e.code, message: e.message, data: e.data };
    if (e instanceof ClamatorTransportError) return { ok: false, kind: 'transport-error', message: e.message };
    return { ok: false, kind: 'unknown-error', message: `${e?.name}: ${e?.message}` };
  }
}

async function list() {
  const out = [];
  for (const call of cfg.calls) out.push(await one(call));
  return out;
}

const n = cfg.concurrent || 1;
const batches = await Promise.all(Array.from({ length: n }, list));
process.stdout.write(`${JSON.stringify({ results: batches.flat() })}\n`);
await client.stop();
