// The bridge measurement (issue 37): one trivial round trip between Node and the Rust engine,
// through per-call napi mechanisms and through the batched bridge the packages use, in both
// directions, at 1, 64 and 1,024 in flight. No broker involved. Prints calls/s and the ratio.
//
//   bash scripts/bench-node.sh            (builds the release addon first)
//   node bench/bridge.mjs [calls]
//
// - client, per call: a napi `async fn` per call (a Promise that napi's runtime resolves);
// - client, batched: a synchronous call starts it, the engine queues the result, one
//   threadsafe-function wake-up per batch, `drain()` takes the batch;
// - server, per call: one threadsafe-function call per request, whose returned Promise the
//   engine awaits;
// - server, batched: requests queued, one wake-up per batch, answered by synchronous calls.
import { native } from '../packages/engine/dist/native.js';

const N = Number(process.argv[2] ?? 50_000);
const PAYLOAD = 'x'.repeat(32);

async function limited(n, concurrency, one) {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) {
      const i = next++;
      await one(i);
    }
  });
  await Promise.all(workers);
}

async function clientAsync(concurrency) {
  const t = performance.now();
  await limited(N, concurrency, () => native.benchAsyncEcho(PAYLOAD));
  return N / ((performance.now() - t) / 1000);
}

function batchedBridge() {
  const pending = new Map();
  const bridge = new native.Bridge(() => {
    for (const e of bridge.drain()) {
      if (e.kind === 2) {
        const p = pending.get(e.token);
        pending.delete(e.token);
        p?.(e);
      } else if (e.kind === 0) {
        native.benchComplete(e.token);
      }
    }
  });
  return { bridge, pending };
}

async function clientBatched(concurrency) {
  const { bridge, pending } = batchedBridge();
  let token = 0;
  const keep = setInterval(() => {}, 1 << 30);
  const t = performance.now();
  await limited(N, concurrency, () => new Promise((resolve) => {
    const id = ++token;
    pending.set(id, resolve);
    native.benchBatchedEcho(bridge, id, PAYLOAD);
  }));
  const rate = N / ((performance.now() - t) / 1000);
  clearInterval(keep);
  return rate;
}

async function serverTsfn(concurrency) {
  const keep = setInterval(() => {}, 1 << 30);
  const seconds = await new Promise((resolve) => {
    native.benchTsfnHandlers(async (p) => p, N, concurrency, resolve);
  });
  clearInterval(keep);
  return N / seconds;
}

async function serverBatched(concurrency) {
  const { bridge, pending } = batchedBridge();
  const keep = setInterval(() => {}, 1 << 30);
  const done = await new Promise((resolve) => {
    pending.set(1_000_000_000, resolve);
    native.benchBatchedHandlers(bridge, N, concurrency, 1_000_000_000);
  });
  clearInterval(keep);
  return N / Number(done.json);
}

const rows = [];
for (const concurrency of [1, 64, 1024]) {
  // alternate, twice each, and keep the better of each pair (the machine is noisy)
  const best = async (f) => Math.max(await f(concurrency), await f(concurrency));
  const ca = await best(clientAsync);
  const cb = await best(clientBatched);
  const sa = await best(serverTsfn);
  const sb = await best(serverBatched);
  rows.push({ concurrency, ca, cb, sa, sb });
}
const f = (x) => Math.round(x).toLocaleString('en-US');
console.log(`${N.toLocaleString('en-US')} calls per cell, best of 2; node ${process.version}\n`);
console.log('| in flight | client: async fn per call | client: batched | × | server: tsfn per call | server: batched | × |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.concurrency} | ${f(r.ca)} | ${f(r.cb)} | ${(r.cb / r.ca).toFixed(1)}× | ${f(r.sa)} | ${f(r.sb)} | ${(r.sb / r.sa).toFixed(1)}× |`);
}
