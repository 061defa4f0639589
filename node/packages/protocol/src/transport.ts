import type { Envelope } from './envelope.js';
import type { AnyMethodDef, Contract } from './contract.js';

/** What a server transport calls with each inbound envelope: a response for a request, null for a notification. */
export type Dispatcher = (env: Envelope) => Promise<Record<string, unknown> | null>;

export interface SendOptions {
  timeoutMs: number;
}

/** What a transport implements; the cores drive it. */
export interface Transport {
  /**
   * Registers the dispatcher of a service. `RpcServerCore` also passes the service's contract
   * (transports that need the method names up front, like the engine's, use it; others may
   * ignore it).
   */
  registerService(
    name: string,
    dispatch: Dispatcher,
    contract?: Contract<string, Record<string, AnyMethodDef>>,
  ): Promise<void>;
  /** Sends a request envelope; resolves with the response envelope. */
  send(env: Record<string, unknown>, opts: SendOptions): Promise<Record<string, unknown>>;
  /** Sends a notification envelope. */
  notify(env: Record<string, unknown>): Promise<void>;
  /** Starts; idempotent. */
  start(): Promise<void>;
  /** Stops; idempotent. */
  stop(): Promise<void>;
}
