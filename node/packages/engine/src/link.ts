// One engine object's link to this thread: a native bridge of its own (so request tokens are
// its own), the operations in flight by token, and a keep-alive: while the engine object is
// started, or an operation is in flight, a ref'd timer keeps the event loop alive (the native
// wake-up is a weak threadsafe function, which does not); after `stop()` nothing is left
// referenced and the process exits by itself.
import { native, type BridgeEvent, type NativeBridge } from './native.js';

/** Calls of a server's handlers, as the engine hands them over. */
export interface RequestEvent {
  token: number;
  service: string;
  method: string;
  /** The params, as JSON. */
  json: string;
  isRequest: boolean;
  /** The request id. */
  id: string | null;
  /** Seconds until the caller stops waiting. */
  remaining: number | null;
}

export interface LinkHandlers {
  /** A request or notification for a handler (servers). */
  request?(event: RequestEvent): void;
  /** The engine gave up on request `token` (abandoned after the stop grace). */
  cancel?(token: number): void;
  /** A line of the engine's log: 40 error, 30 warn, 20 info, 10 debug. */
  log?(level: number, target: string, message: string): void;
}

/** How an operation ended: `ok` with a result's JSON, or the error to raise. */
export type OpResult =
  | { ok: true; json: string | undefined }
  | { ok: false; kind: 'rpc'; code: number; message: string; data: unknown }
  | { ok: false; kind: 'transport' | 'protocol' | 'value'; message: string };

const KINDS = ['rpc', 'transport', 'protocol', 'value'] as const;

function result(e: BridgeEvent): OpResult {
  if (e.outcome === 0) return { ok: true, json: e.json ?? undefined };
  const kind = KINDS[(e.outcome ?? 2) - 1] ?? 'transport';
  if (kind === 'rpc') {
    let data: unknown = null;
    try {
      data = e.data ? JSON.parse(e.data) : null;
    } catch {
      data = e.data;
    }
    return { ok: false, kind, code: e.code ?? -32603, message: e.message ?? '', data };
  }
  return { ok: false, kind, message: e.message ?? '' };
}

export class EngineLink {
  readonly bridge: NativeBridge;
  private readonly ops = new Map<number, (r: OpResult) => void>();
  private next = 1;
  private held = false;
  private keepAlive: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly handlers: LinkHandlers = {}) {
    this.bridge = new native.Bridge(() => this.drain());
  }

  private drain(): void {
    for (const e of this.bridge.drain()) {
      switch (e.kind) {
        case 0:
          this.handlers.request?.({
            token: e.token,
            service: e.service ?? '',
            method: e.method ?? '',
            json: e.json ?? '{}',
            isRequest: e.isRequest ?? true,
            id: e.id ?? null,
            remaining: e.remaining ?? null,
          });
          break;
        case 1:
          this.handlers.cancel?.(e.token);
          break;
        case 2: {
          const settle = this.ops.get(e.token);
          this.ops.delete(e.token);
          settle?.(result(e));
          break;
        }
        case 3:
          this.handlers.log?.(e.level ?? 30, e.target ?? 'engine', e.message ?? '');
          break;
      }
    }
    this.refresh();
  }

  private refresh(): void {
    const alive = this.held || this.ops.size > 0;
    if (alive && !this.keepAlive) this.keepAlive = setInterval(() => {}, 2 ** 31 - 1);
    if (!alive && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
  }

  /** Keeps the process alive while `on` (a started server or client), or lets it go. */
  hold(on: boolean): void {
    this.held = on;
    this.refresh();
  }

  /** Starts an operation: `start(token)` calls the engine; resolves when it reports back. */
  op(start: (token: number) => void): Promise<OpResult> {
    const token = this.next++;
    return new Promise<OpResult>((resolve, reject) => {
      this.ops.set(token, resolve);
      this.refresh();
      try {
        start(token);
      } catch (e) {
        this.ops.delete(token);
        this.refresh();
        reject(e);
      }
    });
  }
}
