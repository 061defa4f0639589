import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError, ClamatorProtocolError, ClamatorTransportError, exceptionToErrorData } from '@clamator-rs/protocol';

test('error classes carry their fields and names', () => {
  const e = new RpcError(-32000, 'oops', { x: 1 });
  assert.equal(e.code, -32000);
  assert.equal(e.message, 'oops');
  assert.deepEqual(e.data, { x: 1 });
  assert.equal(e.name, 'RpcError');
  assert.equal(new RpcError(1, 'm').data, null);
  const p = new ClamatorProtocolError('proto');
  assert.ok(p instanceof Error);
  assert.equal(p.name, 'ClamatorProtocolError');
  const cause = new Error('boom');
  const t = new ClamatorTransportError('lost', cause);
  assert.equal(t.cause, cause);
  assert.equal(t.name, 'ClamatorTransportError');
  assert.equal(new ClamatorTransportError('x').cause, null);
});

test('exceptionToErrorData keeps name, message and plain own fields, drops the rest', () => {
  class MyErr extends Error {
    constructor() {
      super('hi');
      this.name = 'MyErr';
      this.foo = 'bar';
      this.n = 7;
      this.list = [1, 'a', null];
      this.circ = this;
      this.obj = { a: 1 };
    }
  }
  const data = exceptionToErrorData(new MyErr());
  assert.deepEqual(data, { name: 'MyErr', message: 'hi', foo: 'bar', n: 7, list: [1, 'a', null] });
  assert.deepEqual(exceptionToErrorData('plain'), { name: 'string', message: 'plain' });
});
