import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineContract, defineMethod, defineNotification, RpcError, ClamatorTransportError } from '@clamator-rs/protocol';
import { MemoryBus, MemoryTransport, MemoryRpcServer, MemoryRpcClient } from '@clamator-rs/over-memory';

const quiet = { error() {}, warn() {} };
const arith = defineContract('arith', {
  add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }),
  divide: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ q: z.number() }) }),
  slowAdd: defineMethod({ params: z.object({ a: z.number(), b: z.number(), sleepMs: z.number() }), result: z.object({ sum: z.number() }) }),
  ping: defineNotification({ params: z.object({}) }),
});

async function pair(handlers = {}) {
  const bus = new MemoryBus();
  const server = new MemoryRpcServer({ bus, logger: quiet });
  let pinged = null;
  server.registerService(arith, {
    add: async ({ a, b }) => ({ sum: a + b }),
    divide: async ({ a, b }) => { if (b === 0) throw new RpcError(-32000, 'division by zero'); return { q: a / b }; },
    slowAdd: async ({ a, b, sleepMs }) => { await new Promise((r) => setTimeout(r, sleepMs)); return { sum: a + b }; },
    ping: async () => { pinged = Date.now(); },
    ...handlers,
  });
  await server.start();
  const client = new MemoryRpcClient({ bus });
  await client.start();
  return { bus, server, client, pinged: () => pinged };
}

test('loopback: a round trip, an RpcError, a notification within 5 ms', async () => {
  const { server, client, pinged } = await pair();
  assert.deepEqual(await client.call('arith', 'add', { a: 2, b: 3 }), { sum: 5 });
  await assert.rejects(client.call('arith', 'divide', { a: 1, b: 0 }), (e) => e instanceof RpcError && e.code === -32000 && e.message === 'division by zero');
  const sent = Date.now();
  await client.notify('arith', 'ping', {});
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(pinged() !== null && pinged() - sent <= 5, 'the notification ran within 5 ms');
  await client.stop();
  await server.stop();
});

test('error edges: -32601 for a service nobody serves, -32602, a timeout', async () => {
  const { server, client } = await pair();
  await assert.rejects(client.call('nobody', 'x', {}), (e) => e instanceof RpcError && e.code === -32601);
  await assert.rejects(client.call('arith', 'add', { a: 'x' }), (e) => e instanceof RpcError && e.code === -32602);
  await assert.rejects(client.call('arith', 'slowAdd', { a: 1, b: 1, sleepMs: 300 }, { timeoutMs: 50 }),
    (e) => e instanceof ClamatorTransportError && e.message === 'call timeout');
  await client.stop();
  await server.stop({ graceMs: 500 });
});

test('lifecycle: send before start and after stop rejects; the bus refuses a duplicate; stop rejects pending calls', async () => {
  const bus = new MemoryBus();
  const t = new MemoryTransport(bus);
  await assert.rejects(t.send({ jsonrpc: '2.0', id: '1', method: 'a.b', params: {} }, { timeoutMs: 100 }),
    { name: 'ClamatorTransportError', message: 'transport not started (state=idle)' });
  bus.register('x', async () => null);
  assert.throws(() => bus.register('x', async () => null), { message: 'service "x" already registered on this bus' });
  const { server, client } = await pair();
  const pending = client.call('arith', 'slowAdd', { a: 1, b: 1, sleepMs: 1000 });
  await new Promise((r) => setTimeout(r, 20));
  await client.stop();
  await assert.rejects(pending, { name: 'ClamatorTransportError', message: 'transport stopped' });
  await assert.rejects(client.call('arith', 'add', { a: 1, b: 1 }), { message: 'transport not started (state=stopped)' });
  await server.stop({ graceMs: 0 });
});

test('a dispatcher that throws is logged at WARN with the original error and {service}', async () => {
  const bus = new MemoryBus();
  const records = [];
  const logger = { error() {}, warn: (msg, err, fields) => records.push({ msg, err, fields }) };
  const original = new Error('boom');
  bus.register('arith', async () => { throw original; });
  const t = new MemoryTransport(bus, 'mem-test', logger);
  await t.start();
  await assert.rejects(t.send({ jsonrpc: '2.0', id: 'i1', method: 'arith.add', params: {} }, { timeoutMs: 1000 }),
    (e) => e.name === 'ClamatorTransportError' && e.message.includes('dispatcher threw') && e.cause === original);
  assert.equal(records.length, 1);
  assert.equal(records[0].err, original);
  assert.deepEqual(records[0].fields, { service: 'arith' });
  await t.stop();
});

test('handlers know requestId() and deadline() only where a transport says (memory: neither)', async () => {
  const { requestId, deadline } = await import('@clamator-rs/protocol');
  let seen;
  const { server, client } = await pair({ add: async ({ a, b }) => { seen = [requestId(), deadline()]; return { sum: a + b }; } });
  await client.call('arith', 'add', { a: 1, b: 1 });
  assert.deepEqual(seen, [null, null]);
  await client.stop();
  await server.stop();
});
