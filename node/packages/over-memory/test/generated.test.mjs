// Code that `clamator codegen --typescript` generated (interop/generated/ts, compiled by
// scripts/build-node.sh) runs against these packages unchanged: its contract serves, its
// typed client calls (memory here; over Redis in the interop suite).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError } from '@clamator-rs/protocol';
import { MemoryBus, MemoryRpcServer, MemoryRpcClient } from '@clamator-rs/over-memory';
import { arithContract, ArithClient } from '../../../interop/generated/arith.js';
import { notificationsContract, NotificationsClient } from '../../../interop/generated/notifications.js';

test('the generated contract and ArithClient over the memory transport', async () => {
  const bus = new MemoryBus();
  const server = new MemoryRpcServer({ bus, logger: { error() {}, warn() {} } });
  const pings = [];
  server.registerService(arithContract, {
    async add(p) { return { sum: p.a + p.b }; },
    async divide(p) { if (p.b === 0) throw new RpcError(-32000, 'division by zero'); return { q: p.a / p.b }; },
    async echoText(p) { return { text: p.text }; },
    async slowAdd(p) { return { sum: p.a + p.b }; },
  });
  server.registerService(notificationsContract, { async ping(p) { pings.push(p.tag); } });
  await server.start();
  const client = new MemoryRpcClient({ bus });
  await client.start();
  const arith = new ArithClient(client);
  assert.deepEqual(await arith.add({ a: 2, b: 3 }), { sum: 5 });
  assert.deepEqual(await arith.echoText({ text: 'héllo' }, { timeoutMs: 1000 }), { text: 'héllo' });
  await assert.rejects(arith.divide({ a: 1, b: 0 }), (e) => e instanceof RpcError && e.code === -32000);
  // the generated schemas are strict: an unknown field is refused by the server (-32602)
  await assert.rejects(arith.add({ a: 1, b: 2, c: 3 }), (e) => e instanceof RpcError && e.code === -32602);
  await new NotificationsClient(client).ping({ tag: 't' });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(pings, ['t']);
  await client.stop();
  await server.stop();
});

test('code generated in the original @clamator/codegen shape (--ts-contract-import) runs too', async () => {
  const { arithContract: contract } = await import('../../../test-fixtures/original-shape/dist/contracts/arith.js');
  const { ArithClient: OriginalClient } = await import('../../../test-fixtures/original-shape/dist/generated/arith.js');
  const bus = new MemoryBus();
  const server = new MemoryRpcServer({ bus });
  server.registerService(contract, {
    async add(p) { return { sum: p.a + p.b }; },
    async divide(p) { return { q: p.a / p.b }; },
    async echoText(p) { return p; },
    async slowAdd(p) { return { sum: p.a + p.b }; },
  });
  await server.start();
  const client = new MemoryRpcClient({ bus });
  await client.start();
  const arith = new OriginalClient(client);
  assert.deepEqual(await arith.add({ a: 20, b: 22 }, { timeoutMs: 1000 }), { sum: 42 });
  assert.deepEqual(await arith.divide({ a: 1, b: 4 }), { q: 0.25 });
  await client.stop();
  await server.stop();
});
