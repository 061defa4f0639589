// The arith contract of the original over-redis tests, and a server/client pair on a private
// redis-server.
import { z } from 'zod';
import { defineContract, defineMethod, defineNotification, RpcError } from '@clamator-rs/protocol';

export const quiet = { error() {}, warn() {} };

export const arith = defineContract('arith', {
  add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }),
  divide: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ q: z.number() }) }),
  slowAdd: defineMethod({ params: z.object({ a: z.number(), b: z.number(), sleepMs: z.number() }), result: z.object({ sum: z.number() }) }),
  ping: defineNotification({ params: z.object({ tag: z.string() }) }),
});

export function handlers(overrides = {}) {
  const seen = { handled: 0, pinged: [] };
  return {
    seen,
    handlers: {
      add: async ({ a, b }) => { seen.handled++; return { sum: a + b }; },
      divide: async ({ a, b }) => { seen.handled++; if (b === 0) throw new RpcError(-32000, 'division by zero'); return { q: a / b }; },
      slowAdd: async ({ a, b, sleepMs }) => { seen.handled++; await new Promise((r) => setTimeout(r, sleepMs)); return { sum: a + b }; },
      ping: async ({ tag }) => { seen.handled++; seen.pinged.push(tag); },
      ...overrides,
    },
  };
}

export async function eventually(what, f, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
