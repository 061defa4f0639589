import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RpcClientCore, RpcError, ClamatorProtocolError } from '@clamator-rs/protocol';
import { fakeTransport } from './fake.mjs';

test('a call sends a well-formed request with a string id and returns the result', async () => {
  const { transport, sent } = fakeTransport((env) => ({ jsonrpc: '2.0', id: env.id, result: { sum: 3 } }));
  const client = new RpcClientCore(transport, { defaultTimeoutMs: 1234 });
  await client.start();
  assert.deepEqual(await client.call('arith', 'add', { a: 1, b: 2 }), { sum: 3 });
  const [{ env, opts }] = sent;
  assert.equal(env.jsonrpc, '2.0');
  assert.equal(env.method, 'arith.add');
  assert.deepEqual(env.params, { a: 1, b: 2 });
  assert.equal(typeof env.id, 'string');
  assert.equal(opts.timeoutMs, 1234);
  await client.call('arith', 'add', {}, { timeoutMs: 50 });
  assert.equal(sent[1].opts.timeoutMs, 50, 'a call names its own timeout');
});

test('an error reply is an RpcError; a malformed reply a ClamatorProtocolError', async () => {
  let reply = (env) => ({ jsonrpc: '2.0', id: env.id, error: { code: -32000, message: 'denied', data: { r: 1 } } });
  const { transport } = fakeTransport((env) => reply(env));
  const client = new RpcClientCore(transport);
  await client.start();
  await assert.rejects(client.call('a', 'b', {}), (e) => e instanceof RpcError && e.code === -32000 && e.message === 'denied' && e.data.r === 1);
  reply = () => ({ nope: true });
  await assert.rejects(client.call('a', 'b', {}), (e) => e instanceof ClamatorProtocolError && /^invalid response envelope: -32600/.test(e.message));
  reply = () => ({ jsonrpc: '2.0', method: 'a.b' });
  await assert.rejects(client.call('a', 'b', {}), { name: 'ClamatorProtocolError', message: 'unexpected response kind: notification' });
});

test('notify sends no id; bad names are refused before anything is sent', async () => {
  const { transport, notified, sent } = fakeTransport(() => ({}));
  const client = new RpcClientCore(transport);
  await client.start();
  await client.notify('events', 'ping', { t: 1 });
  assert.deepEqual(notified, [{ jsonrpc: '2.0', method: 'events.ping', params: { t: 1 } }]);
  await assert.rejects(client.call('Bad', 'x', {}), { message: 'invalid service "Bad"' });
  await assert.rejects(client.notify('ok', 'bad-name', {}), { message: 'invalid method "bad-name"' });
  assert.equal(sent.length, 0);
});

test('lifecycle: start after stop is refused; stop is idempotent', async () => {
  const { transport } = fakeTransport(() => ({}));
  const client = new RpcClientCore(transport);
  await client.start();
  await client.start();
  await client.stop();
  await client.stop();
  await assert.rejects(client.start(), { message: 'client has been stopped' });
});
