// Uses the generated TypeScript as an application would; type-checked by scripts/check-ts.sh.
import { AddParams, AddResult, ArithClient, ArithService, arithContract, SlowAddParams } from '../generated/ts/arith';
import { NotificationsClient, NotificationsService, PingParams } from '../generated/ts/notifications';
import type { ClamatorClient } from '../generated/ts/arith';

class Impl implements ArithService, NotificationsService {
  async add(p: AddParams): Promise<AddResult> {
    return { sum: p.a + p.b };
  }
  async divide(p: { a: number; b: number }) {
    return { q: p.a / p.b };
  }
  async echoText(p: { text: string }) {
    return { text: p.text };
  }
  async slowAdd(p: SlowAddParams) {
    return { sum: p.a + p.b + p.sleepMs * 0 };
  }
  async ping(_p: PingParams): Promise<void> {}
}

const fake: ClamatorClient = {
  async call(_s, _m, _p) {
    return { sum: 3 };
  },
  async notify() {},
};

export async function demo(): Promise<number> {
  const impl = new Impl();
  const client = new ArithClient(fake);
  const r: AddResult = await client.add({ a: 1, b: 2 }, { timeoutMs: 100 });
  await new NotificationsClient(fake).ping({ tag: 'x' });
  const parsed = arithContract.methods.add.params.parse({ a: 1, b: 2 });
  const strict = arithContract.methods.add.params.safeParse({ a: 1, b: 2, c: 3 });
  return r.sum + (await impl.add(parsed)).sum + (strict.success ? 1 : 0);
}
