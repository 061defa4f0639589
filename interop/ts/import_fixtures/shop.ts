// The TypeScript sibling of interop/py/import_fixtures/shop.py, written as a TypeScript team
// would with the original DSL: the fixture of `clamator codegen import --ts` (issue 14).
// `@clamator/protocol` is not on the npm registry; the importer resolves it to a shim with the
// same `defineContract` / `defineMethod` / `defineNotification` behaviour.
import { z } from 'zod';
import { defineContract, defineMethod, defineNotification } from '@clamator/protocol';

const Size = z.enum(['small', 'large']);

const Address = z.object({
  street: z.string().min(1).max(80),
  city: z.string(),
  postcode: z.string().regex(/^[0-9]{5}$/).nullable().optional(),
});

const Line = z.object({
  sku: z.string(),
  quantity: z.number().int().min(1).max(100),
  unitPrice: z.number().min(0),
  size: Size.optional(),
});

const Shipping = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('pickup'), store: z.string() }),
  z.object({ kind: z.literal('delivery'), address: Address }),
]);

const Placed = z.object({
  orderId: z.string(),
  total: z.number(),
  status: z.enum(['accepted', 'queued']),
});

export const shopContract = defineContract('shop', {
  placeOrder: defineMethod({
    params: z.object({
      customerId: z.string(),
      lines: z.array(Line).min(1),
      shipping: Shipping,
      tags: z.record(z.string()).optional(),
      note: z.string().nullable().optional(),
    }),
    result: Placed,
  }),
  count: defineMethod({ params: z.object({}), result: Placed }),
  cancelled: defineNotification({
    params: z.object({ orderId: z.string(), reason: z.string().nullable().optional() }),
  }),
});
