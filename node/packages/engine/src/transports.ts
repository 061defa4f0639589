// The transports over the engine, shared by @clamator-rs/over-redis and @clamator-rs/over-nats:
// the protocol's Transport interface, with the broker work (streams or JetStream, consumer
// groups, reclaim, heartbeat, dead letters, reply routing, deadlines, reconnects) done by the
// Rust engine, and dispatch (zod validation, handlers, log lines) in JavaScript as in the
// original packages.
import {
  parseEnvelope, EnvelopeKind, ClamatorTransportError, ClamatorProtocolError, runInCall, consoleLogger,
  type Transport, type Dispatcher, type SendOptions, type Logger, type Contract, type AnyMethodDef,
  type Envelope,
} from '@clamator-rs/protocol';
import { native, type EngineOptions, type NativeServer, type NativeClient } from './native.js';
import { EngineLink, type OpResult, type RequestEvent } from './link.js';

type State = 'idle' | 'started' | 'stopped';

function logTo(logger: Logger) {
  return (level: number, target: string, message: string) => {
    if (level >= 40) logger.error(`${target}: ${message}`);
    else if (level >= 30) logger.warn(`${target}: ${message}`);
  };
}

/** Raises what an operation that did not end well says. */
function raise(r: Exclude<OpResult, { ok: true }>): never {
  if (r.kind === 'protocol') throw new ClamatorProtocolError(r.message);
  if (r.kind === 'value') throw new TypeError(r.message);
  throw new ClamatorTransportError(r.message);
}

export interface EngineServerTransportOptions {
  engine: EngineOptions;
  instanceId: string;
  shutdownGraceMs: number;
  logger?: Logger;
}

/** A server transport on the engine: services registered with their contracts, served by Rust. */
export class EngineServerTransport implements Transport {
  readonly instanceId: string;
  private state: State = 'idle';
  private readonly services = new Map<string, { dispatch: Dispatcher; contract?: Contract<string, Record<string, AnyMethodDef>> }>();
  private server: NativeServer | null = null;
  private readonly link: EngineLink;
  private readonly logger: Logger;

  constructor(private readonly options: EngineServerTransportOptions) {
    this.instanceId = options.instanceId;
    this.logger = options.logger ?? consoleLogger;
    this.link = new EngineLink({
      request: (e) => this.handle(e),
      log: logTo(this.logger),
    });
  }

  async registerService(
    name: string,
    dispatch: Dispatcher,
    contract?: Contract<string, Record<string, AnyMethodDef>>,
  ): Promise<void> {
    if (this.state !== 'idle') {
      throw new ClamatorTransportError(`service "${name}" registered after start: register every service before start()`);
    }
    this.services.set(name, { dispatch, contract });
  }

  async send(): Promise<Record<string, unknown>> {
    throw new Error('server transport cannot send requests');
  }

  async notify(): Promise<void> {
    throw new Error('server transport cannot send notifications');
  }

  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClamatorTransportError('transport has been stopped');
    if (this.state === 'started') return;
    const server = new native.EngineServer(this.link.bridge, this.options.engine);
    for (const [name, { contract }] of this.services) {
      if (!contract) {
        throw new ClamatorTransportError(
          `service "${name}" was registered without its contract: the engine serves the methods it declares; ` +
          'register it through RedisRpcServer / NatsRpcServer.registerService (or pass the contract as registerService\'s third argument)',
        );
      }
      server.registerService(
        name,
        Object.entries(contract.methods).map(([method, def]) => ({
          name: method,
          notification: (def as { notification?: boolean }).notification === true,
        })),
      );
    }
    const started = await this.link.op((token) => server.start(token));
    if (!started.ok) raise(started);
    this.server = server;
    this.state = 'started';
    this.link.hold(true);
  }

  async stop(): Promise<void> {
    if (this.state !== 'started' || !this.server) {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    const server = this.server;
    await this.link.op((token) => server.stop(token, this.options.shutdownGraceMs));
    this.link.hold(false);
  }

  private handle(e: RequestEvent): void {
    const server = this.server;
    const entry = this.services.get(e.service);
    if (!server || !entry) return;
    let params: unknown;
    try {
      params = JSON.parse(e.json);
    } catch {
      params = {};
    }
    const fullMethod = `${e.service}.${e.method}`;
    const env: Envelope = e.isRequest
      ? {
          kind: EnvelopeKind.Request, service: e.service, method: e.method, fullMethod, params,
          id: e.id ?? '', raw: { jsonrpc: '2.0', method: fullMethod, params, id: e.id },
        }
      : {
          kind: EnvelopeKind.Notification, service: e.service, method: e.method, fullMethod, params,
          raw: { jsonrpc: '2.0', method: fullMethod, params },
        };
    const deadline = e.remaining === null ? null : Date.now() + e.remaining * 1000;
    runInCall({ deadline, requestId: e.id }, () => entry.dispatch(env)).then(
      (reply) => {
        if (!reply) return server.complete(e.token, null);
        const err = reply.error as { code: number; message: string; data: unknown } | undefined;
        if (err) return server.fail(e.token, err.code, err.message, JSON.stringify(err.data ?? null));
        const json = JSON.stringify(reply.result ?? null);
        server.complete(e.token, json === undefined ? 'null' : json);
      },
      (err: unknown) => {
        this.logger.error('dispatcher threw', err, { service: e.service, method: e.method, rpcId: e.id });
        server.fail(e.token, -32603, 'Internal error', JSON.stringify({
          name: err instanceof Error ? err.name : typeof err,
          message: err instanceof Error ? err.message : String(err),
        }));
      },
    );
  }
}

export interface EngineClientTransportOptions {
  engine: EngineOptions;
  instanceId: string;
}

/** A client transport on the engine: each call and notification is made by Rust. */
export class EngineClientTransport implements Transport {
  readonly instanceId: string;
  private state: State = 'idle';
  private client: NativeClient | null = null;
  private readonly link = new EngineLink();

  constructor(private readonly options: EngineClientTransportOptions) {
    this.instanceId = options.instanceId;
  }

  async registerService(): Promise<void> {
    throw new Error('client transport cannot host services');
  }

  private started(): NativeClient {
    if (this.state !== 'started' || !this.client) {
      throw new ClamatorTransportError(`transport not started (state=${this.state})`);
    }
    return this.client;
  }

  async send(env: Record<string, unknown>, opts: SendOptions): Promise<Record<string, unknown>> {
    const client = this.started();
    const parsed = parseEnvelope(env);
    if (parsed.kind !== EnvelopeKind.Request) throw new ClamatorTransportError('send requires a request envelope');
    const params = JSON.stringify(parsed.params ?? {});
    const r = await this.link.op((token) => client.call(token, parsed.service, parsed.method, params, opts.timeoutMs));
    if (r.ok) return { jsonrpc: '2.0', id: parsed.id, result: r.json === undefined ? null : JSON.parse(r.json) };
    if (r.kind === 'rpc') {
      return { jsonrpc: '2.0', id: parsed.id, error: { code: r.code, message: r.message, data: r.data } };
    }
    raise(r);
  }

  async notify(env: Record<string, unknown>): Promise<void> {
    const client = this.started();
    const parsed = parseEnvelope(env);
    if (parsed.kind !== EnvelopeKind.Notification) throw new ClamatorTransportError('notify requires a notification envelope');
    const params = JSON.stringify(parsed.params ?? {});
    const r = await this.link.op((token) => client.notify(token, parsed.service, parsed.method, params));
    if (!r.ok) raise(r as Exclude<OpResult, { ok: true }>);
  }

  async start(): Promise<void> {
    if (this.state === 'stopped') throw new ClamatorTransportError('transport has been stopped');
    if (this.state === 'started') return;
    const client = new native.EngineClient(this.link.bridge, this.options.engine);
    const r = await this.link.op((token) => client.start(token));
    if (!r.ok) raise(r);
    this.client = client;
    this.state = 'started';
    this.link.hold(true);
  }

  async stop(): Promise<void> {
    if (this.state !== 'started' || !this.client) {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    const client = this.client;
    await this.link.op((token) => client.stop(token));
    this.link.hold(false);
  }
}
