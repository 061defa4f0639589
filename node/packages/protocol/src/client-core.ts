// The client core: names checked, a request id made, the reply's envelope checked and turned
// into a result or an RpcError.
import { randomUUID } from 'node:crypto';
import type { Transport } from './transport.js';
import { SERVICE_RE, METHOD_RE, parseEnvelope, EnvelopeKind, buildRequest, buildNotification } from './envelope.js';
import { RpcError, ClamatorProtocolError } from './error.js';

export interface CallOptions {
  /** This call's timeout instead of the client's default (milliseconds). */
  timeoutMs?: number;
}

/** What generated clients call. */
export interface ClamatorClient {
  call<P, R>(service: string, method: string, params: P, opts?: CallOptions): Promise<R>;
  notify<P>(service: string, method: string, params: P): Promise<void>;
}

export interface RpcClientCoreOptions {
  /** The timeout of calls made without one (default 30000 ms). */
  defaultTimeoutMs?: number;
}

function checkNames(service: string, method: string): void {
  if (!SERVICE_RE.test(service)) throw new Error(`invalid service "${service}"`);
  if (!METHOD_RE.test(method)) throw new Error(`invalid method "${method}"`);
}

export class RpcClientCore implements ClamatorClient {
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private readonly defaultTimeoutMs: number;

  constructor(
    private readonly transport: Transport,
    opts: RpcClientCoreOptions = {},
  ) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 30_000;
  }

  async call<P, R>(service: string, method: string, params: P, opts?: CallOptions): Promise<R> {
    checkNames(service, method);
    const env = buildRequest(`${service}.${method}`, params, randomUUID());
    const reply = await this.transport.send(env, { timeoutMs: opts?.timeoutMs ?? this.defaultTimeoutMs });
    let parsed;
    try {
      parsed = parseEnvelope(reply);
    } catch (e) {
      throw new ClamatorProtocolError(`invalid response envelope: ${(e as Error).message}`);
    }
    if (parsed.kind === EnvelopeKind.SuccessResponse) return parsed.result as R;
    if (parsed.kind === EnvelopeKind.ErrorResponse) {
      throw new RpcError(parsed.error.code, parsed.error.message, parsed.error.data);
    }
    throw new ClamatorProtocolError(`unexpected response kind: ${parsed.kind}`);
  }

  async notify<P>(service: string, method: string, params: P): Promise<void> {
    checkNames(service, method);
    await this.transport.notify(buildNotification(`${service}.${method}`, params));
  }

  async start(): Promise<void> {
    if (this.state === 'stopped') throw new Error('client has been stopped');
    if (this.state === 'started') return;
    await this.transport.start();
    this.state = 'started';
  }

  async stop(): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    await this.transport.stop();
  }
}
