import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { RpcServerCore, defineContract, defineMethod, defineNotification, RpcError, EnvelopeKind } from '@clamator-rs/protocol';
import { fakeTransport, recordingLogger } from './fake.mjs';

const arith = defineContract('arith', {
  add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }),
  ping: defineNotification({ params: z.object({}) }),
});

const request = (method, params, id = 'i') => ({ kind: EnvelopeKind.Request, service: 'arith', method, fullMethod: `arith.${method}`, params, id, raw: {} });

async function serve(handlers, logger) {
  const { transport, dispatchers } = fakeTransport(() => ({}));
  const server = new RpcServerCore(transport, logger ?? recordingLogger().logger);
  server.registerService(arith, { add: async ({ a, b }) => ({ sum: a + b }), ping: async () => {}, ...handlers });
  await server.start();
  return { server, dispatch: dispatchers.get('arith'), transport };
}

test('a valid request is answered', async () => {
  const { dispatch } = await serve();
  assert.deepEqual(await dispatch(request('add', { a: 2, b: 3 }, 'i1')), { jsonrpc: '2.0', id: 'i1', result: { sum: 5 } });
});

test('-32601, -32602, an RpcError verbatim, -32603 for a throw and for a bad result', async () => {
  const { dispatch } = await serve();
  assert.deepEqual((await dispatch(request('unknown', {}))).error, { code: -32601, message: 'Method not found', data: null });
  const bad = (await dispatch(request('add', { a: 'nope', b: 3 }))).error;
  assert.equal(bad.code, -32602);
  assert.equal(bad.message, 'Invalid params');
  assert.equal(bad.data.name, 'ZodError');
  const denied = await serve({ add: async () => { throw new RpcError(-32001, 'denied', { reason: 'auth' }); } });
  assert.deepEqual((await denied.dispatch(request('add', { a: 1, b: 2 }))).error, { code: -32001, message: 'denied', data: { reason: 'auth' } });
  const boom = await serve({ add: async () => { throw new Error('boom'); } });
  const internal = (await boom.dispatch(request('add', { a: 1, b: 2 }))).error;
  assert.equal(internal.code, -32603);
  assert.equal(internal.message, 'Internal error');
  assert.deepEqual(internal.data, { name: 'Error', message: 'boom' });
  const wrong = await serve({ add: async () => ({ sum: 'not a number' }) });
  const invalid = (await wrong.dispatch(request('add', { a: 1, b: 2 }))).error;
  assert.equal(invalid.code, -32603);
  assert.equal(invalid.message, 'Result validation failed');
});

test('a notification returns null and runs its handler; zod transforms apply', async () => {
  let pinged = 0;
  const { dispatch } = await serve({ ping: async () => { pinged += 1; } });
  assert.equal(await dispatch({ kind: EnvelopeKind.Notification, service: 'arith', method: 'ping', fullMethod: 'arith.ping', params: {}, raw: {} }), null);
  assert.equal(pinged, 1);
  const c = defineContract('t', {
    up: defineMethod({ params: z.object({ s: z.string().transform((s) => s.toUpperCase()) }), result: z.object({ s: z.string() }).strip() }),
  });
  const { transport, dispatchers } = fakeTransport(() => ({}));
  const server = new RpcServerCore(transport);
  server.registerService(c, { up: async ({ s }) => ({ s, extra: 1 }) });
  await server.start();
  const reply = await dispatchers.get('t')({ kind: EnvelopeKind.Request, service: 't', method: 'up', fullMethod: 't.up', params: { s: 'x' }, id: 1, raw: {} });
  assert.deepEqual(reply.result, { s: 'X' }, 'the parsed params and the parsed result are used');
});

test('a duplicate registration throws; start after stop throws; stop is idempotent', async () => {
  const { server } = await serve();
  assert.throws(() => server.registerService(arith, { add: async () => ({ sum: 0 }), ping: async () => {} }), {
    message: 'service "arith" already registered on this server',
  });
  await server.stop();
  await server.stop();
  await assert.rejects(server.start(), { message: 'server has been stopped' });
});

test('stop waits for running handlers up to the grace', async () => {
  let finished = false;
  const { server, dispatch } = await serve({ add: async () => { await new Promise((r) => setTimeout(r, 150)); finished = true; return { sum: 1 }; } });
  const call = dispatch(request('add', { a: 1, b: 0 }));
  await server.stop({ graceMs: 2000 });
  assert.ok(finished, 'the running handler finished before stop returned');
  assert.equal((await call).result.sum, 1);
});
