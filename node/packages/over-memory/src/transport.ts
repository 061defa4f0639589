// The in-process transport: envelopes handed to the bus's dispatcher on a microtask, parsed
// objects, nothing serialized.
import {
  parseEnvelope, EnvelopeKind, ClamatorTransportError, consoleLogger,
  type Transport, type Dispatcher, type SendOptions, type Logger,
} from '@clamator-rs/protocol';
import type { MemoryBus } from './bus.js';

interface Pending {
  resolve: (env: Record<string, unknown>) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class MemoryTransport implements Transport {
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private readonly pending = new Map<string, Pending>();
  private readonly mine = new Set<string>();

  constructor(
    private readonly bus: MemoryBus,
    readonly instanceId: string = 'mem',
    private readonly logger: Logger = consoleLogger,
  ) {}

  async registerService(name: string, dispatch: Dispatcher): Promise<void> {
    this.bus.register(name, dispatch);
    this.mine.add(name);
  }

  private check(): void {
    if (this.state !== 'started') throw new ClamatorTransportError(`transport not started (state=${this.state})`);
  }

  async send(env: Record<string, unknown>, opts: SendOptions): Promise<Record<string, unknown>> {
    this.check();
    const parsed = parseEnvelope(env);
    if (parsed.kind !== EnvelopeKind.Request) throw new ClamatorTransportError('send requires a request envelope');
    const dispatcher = this.bus.lookup(parsed.service);
    if (!dispatcher) {
      // what a server over a broker answers for a service it does not serve
      return { jsonrpc: '2.0', id: parsed.id, error: { code: -32601, message: 'Method not found', data: null } };
    }
    const key = String(parsed.id);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new ClamatorTransportError('call timeout'));
      }, opts.timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
      const settle = (f: (p: Pending) => void) => {
        const p = this.pending.get(key);
        if (!p) return;
        this.pending.delete(key);
        clearTimeout(p.timer);
        f(p);
      };
      queueMicrotask(() => {
        dispatcher(parsed).then(
          (reply) => settle((p) => (reply === null
            ? p.reject(new ClamatorTransportError('dispatcher returned null for a request'))
            : p.resolve(reply))),
          (e: unknown) => {
            this.logger.warn('dispatcher threw', e, { service: parsed.service });
            settle((p) => p.reject(new ClamatorTransportError('dispatcher threw', e)));
          },
        );
      });
    });
  }

  async notify(env: Record<string, unknown>): Promise<void> {
    this.check();
    const parsed = parseEnvelope(env);
    if (parsed.kind !== EnvelopeKind.Notification) throw new ClamatorTransportError('notify requires a notification envelope');
    const dispatcher = this.bus.lookup(parsed.service);
    if (!dispatcher) return; // fire and forget: nobody serves it
    queueMicrotask(() => {
      dispatcher(parsed).catch((e: unknown) => this.logger.warn('dispatcher threw', e, { service: parsed.service }));
    });
  }

  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClamatorTransportError('transport has been stopped');
    this.state = 'started';
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ClamatorTransportError('transport stopped'));
      this.pending.delete(key);
    }
    for (const name of this.mine) this.bus.unregister(name);
    this.mine.clear();
  }
}
