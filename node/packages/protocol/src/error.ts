// The errors callers and handlers see.

/** An error object a peer answered with (or a handler throws to answer with one). */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;
  constructor(code: number, message: string, data: unknown = null) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }
}

/** A reply that is not a valid response envelope. */
export class ClamatorProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClamatorProtocolError';
  }
}

/** The transport could not deliver a call or its answer (`call timeout`, `transport stopped`, …). */
export class ClamatorTransportError extends Error {
  override readonly cause: unknown;
  constructor(message: string, cause: unknown = null) {
    super(message);
    this.name = 'ClamatorTransportError';
    this.cause = cause;
  }
}

const PLAIN = new Set(['string', 'number', 'boolean']);

/** What an error object's `data` says of a thrown value: its name, message and plain own fields. */
export function exceptionToErrorData(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { name: typeof err, message: String(err) };
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  for (const key of Object.getOwnPropertyNames(err)) {
    if (key === 'stack' || key === 'message' || key === 'name') continue;
    const v = (err as unknown as Record<string, unknown>)[key];
    if (v === null || PLAIN.has(typeof v)) out[key] = v;
    else if (Array.isArray(v) && v.every((x) => x === null || PLAIN.has(typeof x))) out[key] = v;
  }
  return out;
}
