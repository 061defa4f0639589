// What a handler knows of the call it serves: its caller's deadline and the request id, per
// call (AsyncLocalStorage), set by the transports that know them.
import { AsyncLocalStorage } from 'node:async_hooks';

interface CallContext {
  deadline: number | null;
  requestId: string | null;
}

const current = new AsyncLocalStorage<CallContext>();

/**
 * Inside a handler: when its caller stops waiting, as `Date.now()` milliseconds (e.g.
 * `AbortSignal.timeout(deadline() - Date.now())`), or null when the caller did not say (or
 * outside a handler).
 */
export function deadline(): number | null {
  return current.getStore()?.deadline ?? null;
}

/** Inside a handler: the id of the request it serves (null for a notification or outside a handler). */
export function requestId(): string | null {
  return current.getStore()?.requestId ?? null;
}

/** Runs `f` as the handling of one call (for transports). */
export function runInCall<T>(context: CallContext, f: () => T): T {
  return current.run(context, f);
}
