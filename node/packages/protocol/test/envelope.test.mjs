import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEnvelope, EnvelopeKind, SERVICE_RE, METHOD_RE, buildRequest, buildErrorResponse } from '@clamator-rs/protocol';

test('classifies the four kinds', () => {
  const req = parseEnvelope({ jsonrpc: '2.0', method: 'engine.launch', params: { x: 1 }, id: 'abc' });
  assert.equal(req.kind, EnvelopeKind.Request);
  assert.equal(req.service, 'engine');
  assert.equal(req.method, 'launch');
  assert.equal(req.id, 'abc');
  assert.equal(parseEnvelope({ jsonrpc: '2.0', method: 'engine.resync', params: {} }).kind, EnvelopeKind.Notification);
  assert.equal(parseEnvelope({ jsonrpc: '2.0', method: 'engine.resync', params: {}, id: null }).kind, EnvelopeKind.Notification);
  assert.equal(parseEnvelope({ jsonrpc: '2.0', id: 'abc', result: { ok: true } }).kind, EnvelopeKind.SuccessResponse);
  const err = parseEnvelope({ jsonrpc: '2.0', id: 'abc', error: { code: -32603, message: 'x' } });
  assert.equal(err.kind, EnvelopeKind.ErrorResponse);
  assert.equal(err.error.data, null);
  assert.equal(parseEnvelope({ jsonrpc: '2.0', id: 7, method: 'a.b' }).id, 7);
  assert.deepEqual(parseEnvelope({ jsonrpc: '2.0', method: 'a.b' }).params, {});
});

test('refuses what is not an envelope, each with -32600 and the reason', () => {
  const cases = [
    [[{}], 'batch requests not supported'],
    ['x', 'not an object'],
    [{ jsonrpc: '1.0', method: 'a.b', params: {} }, 'jsonrpc must equal "2.0"'],
    [{ jsonrpc: '2.0', method: 'launch', params: {} }, 'method must be "<service>.<method>"'],
    [{ jsonrpc: '2.0', method: 'Engine.launch', params: {} }, 'invalid service segment'],
    [{ jsonrpc: '2.0', method: 'engine.Launch', params: {} }, 'invalid method segment'],
    [{ jsonrpc: '2.0', method: 'a.b', id: true }, 'id must be string or number'],
    [{ jsonrpc: '2.0', result: 1 }, 'response must have id'],
    [{ jsonrpc: '2.0', id: 1, error: { message: 'x' } }, 'error must have numeric code + string message'],
    [{ jsonrpc: '2.0', id: 1 }, 'envelope must be request, notification, or response'],
  ];
  for (const [value, reason] of cases) {
    assert.throws(() => parseEnvelope(value), { message: `-32600 Invalid Request: ${reason}` }, reason);
  }
});

test('names', () => {
  for (const ok of ['engine', 'order-service', 'a1']) assert.ok(SERVICE_RE.test(ok), ok);
  for (const bad of ['Engine', '1engine', 'a_b', '']) assert.ok(!SERVICE_RE.test(bad), bad);
  for (const ok of ['launch', 'launchProcess', 'v2']) assert.ok(METHOD_RE.test(ok), ok);
  // tightened in 0.1.6 (and Rust's rule): no '-' or '_' in method names
  for (const bad of ['Launch', 'launch-process', 'launch_process', '']) assert.ok(!METHOD_RE.test(bad), bad);
});

test('builders write the wire shapes', () => {
  assert.deepEqual(buildRequest('a.b', { x: 1 }, 'i'), { jsonrpc: '2.0', method: 'a.b', params: { x: 1 }, id: 'i' });
  assert.deepEqual(buildErrorResponse('i', -32601, 'Method not found'), {
    jsonrpc: '2.0', id: 'i', error: { code: -32601, message: 'Method not found', data: null },
  });
});
