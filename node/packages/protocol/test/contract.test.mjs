import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineContract, defineMethod, defineNotification } from '@clamator-rs/protocol';

const params = z.object({ a: z.number() });

test('a valid contract is returned as given', () => {
  const add = defineMethod({ params, result: params });
  const ping = defineNotification({ params });
  assert.equal(ping.notification, true);
  const c = defineContract('arith', { add, ping });
  assert.equal(c.service, 'arith');
  assert.equal(c.methods.add, add);
});

test('bad names and shapes are refused, naming the rule', () => {
  assert.throws(() => defineContract('Arith', {}), { message: 'invalid service name "Arith" (must match ^[a-z][a-z0-9-]*$)' });
  assert.throws(
    () => defineContract('arith', { 'do-it': defineMethod({ params, result: params }) }),
    { message: 'invalid method name "do-it" (must match ^[a-z][a-zA-Z0-9]*$)' },
  );
  assert.throws(() => defineContract('arith', { add: { params } }), { message: 'method "add" must include result schema' });
  assert.throws(
    () => defineContract('arith', { ping: { params, result: params, notification: true } }),
    { message: 'notification "ping" must not include result' },
  );
});
