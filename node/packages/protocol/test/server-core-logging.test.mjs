import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { RpcServerCore, defineContract, defineMethod, RpcError, EnvelopeKind } from '@clamator-rs/protocol';
import { fakeTransport, recordingLogger } from './fake.mjs';

const arith = defineContract('arith', {
  add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }),
});

async function dispatchWith(handler, params = { a: 1, b: 2 }) {
  const { records, logger } = recordingLogger();
  const { transport, dispatchers } = fakeTransport(() => ({}));
  const server = new RpcServerCore(transport, logger);
  server.registerService(arith, { add: handler });
  await server.start();
  await dispatchers.get('arith')({ kind: EnvelopeKind.Request, service: 'arith', method: 'add', fullMethod: 'arith.add', params, id: 'r1', raw: {} });
  return records;
}

test('a handler error is logged at ERROR with the error and {service, method, rpcId}', async () => {
  const boom = new Error('boom');
  const [r, ...more] = await dispatchWith(async () => { throw boom; });
  assert.equal(more.length, 0);
  assert.equal(r.level, 'error');
  assert.equal(r.msg, 'RPC handler raised: arith.add id=r1');
  assert.equal(r.err, boom);
  assert.deepEqual(r.fields, { service: 'arith', method: 'add', rpcId: 'r1' });
});

test('a bad result is an ERROR, bad params a WARN, an RpcError is not logged', async () => {
  const [bad] = await dispatchWith(async () => ({ sum: 'x' }));
  assert.equal(bad.level, 'error');
  assert.equal(bad.msg, 'RPC result validation failed: arith.add id=r1');
  const [params] = await dispatchWith(async () => ({ sum: 1 }), { a: 'x' });
  assert.equal(params.level, 'warn');
  assert.equal(params.msg, 'RPC params validation failed: arith.add id=r1');
  assert.deepEqual(await dispatchWith(async () => { throw new RpcError(-32000, 'no'); }), []);
});
