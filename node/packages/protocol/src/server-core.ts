// The server core: services and their handlers, dispatch with zod validation, the log lines,
// and the lifecycle (start registers each service with the transport; stop waits for running
// handlers up to a grace, then stops the transport).
import type { Contract, AnyMethodDef, HandlersFor } from './contract.js';
import type { Transport, Dispatcher } from './transport.js';
import { EnvelopeKind, type Envelope, buildSuccessResponse, buildErrorResponse } from './envelope.js';
import { RpcError, exceptionToErrorData } from './error.js';
import { type Logger, consoleLogger } from './logger.js';

interface Registered {
  contract: Contract<string, Record<string, AnyMethodDef>>;
  handlers: Record<string, (params: unknown) => Promise<unknown>>;
}

export interface ServerStopOptions {
  /** How long running handlers may take to finish (default 5000 ms). */
  graceMs?: number;
}

export class RpcServerCore {
  private readonly services = new Map<string, Registered>();
  private state: 'idle' | 'started' | 'stopped' = 'idle';
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly transport: Transport,
    private readonly logger: Logger = consoleLogger,
  ) {}

  registerService<M extends Record<string, AnyMethodDef>>(contract: Contract<string, M>, handlers: HandlersFor<M>): void {
    if (this.services.has(contract.service)) {
      throw new Error(`service "${contract.service}" already registered on this server`);
    }
    this.services.set(contract.service, {
      contract: contract as Contract<string, Record<string, AnyMethodDef>>,
      handlers: handlers as unknown as Record<string, (params: unknown) => Promise<unknown>>,
    });
  }

  private dispatcher(service: string): Dispatcher {
    return async (env: Envelope) => {
      if (env.kind !== EnvelopeKind.Request && env.kind !== EnvelopeKind.Notification) return null;
      const isRequest = env.kind === EnvelopeKind.Request;
      const id = isRequest ? env.id : null;
      const notFound = () => (isRequest ? buildErrorResponse(id, -32601, 'Method not found') : null);
      const entry = this.services.get(service);
      const def = entry?.contract.methods[env.method];
      const handler = entry?.handlers[env.method];
      if (!entry || !def || !handler) return notFound();
      const fields = { service, method: env.method, rpcId: id };
      let params: unknown;
      try {
        params = def.params.parse(env.params);
      } catch (e) {
        this.logger.warn(`RPC params validation failed: ${service}.${env.method} id=${String(id)}`, e, fields);
        return isRequest ? buildErrorResponse(id, -32602, 'Invalid params', exceptionToErrorData(e)) : null;
      }
      const work = Promise.resolve().then(() => handler(params));
      this.running.add(work);
      let result: unknown;
      try {
        result = await work;
      } catch (e) {
        if (!(e instanceof RpcError)) {
          this.logger.error(`RPC handler raised: ${service}.${env.method} id=${String(id)}`, e, fields);
        }
        if (!isRequest) return null;
        if (e instanceof RpcError) return buildErrorResponse(id, e.code, e.message, e.data);
        return buildErrorResponse(id, -32603, 'Internal error', exceptionToErrorData(e));
      } finally {
        this.running.delete(work);
      }
      if (!isRequest || (def as { notification?: boolean }).notification === true) return null;
      try {
        const validated = (def as { result: { parse(x: unknown): unknown } }).result.parse(result);
        return buildSuccessResponse(id as string | number, validated);
      } catch (e) {
        this.logger.error(`RPC result validation failed: ${service}.${env.method} id=${String(id)}`, e, fields);
        return buildErrorResponse(id, -32603, 'Result validation failed', exceptionToErrorData(e));
      }
    };
  }

  async start(): Promise<void> {
    if (this.state === 'started') return;
    if (this.state === 'stopped') throw new Error('server has been stopped');
    for (const [name, entry] of this.services) {
      await this.transport.registerService(name, this.dispatcher(name), entry.contract);
    }
    await this.transport.start();
    this.state = 'started';
  }

  async stop(opts: ServerStopOptions = {}): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'stopped';
      return;
    }
    const until = Date.now() + (opts.graceMs ?? 5000);
    while (this.running.size > 0 && Date.now() < until) {
      await Promise.race([
        Promise.allSettled([...this.running]),
        new Promise((r) => setTimeout(r, Math.max(1, Math.min(50, until - Date.now())))),
      ]);
    }
    this.state = 'stopped';
    await this.transport.stop();
  }
}
