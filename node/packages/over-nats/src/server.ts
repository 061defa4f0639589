import { randomUUID } from 'node:crypto';
import { RpcServerCore, consoleLogger, type Logger } from '@clamator-rs/protocol';
import { EngineServerTransport } from '@clamator-rs/engine';
import { natsUrl } from './options.js';

export interface NatsRpcServerOptions {
  /** NATS URL(s): `nats://host:4222`, several comma-separated or as an array; else `$NATS_URL`. */
  natsUrl?: string | string[];
  /** The subject prefix (1 to 64 of `A-Za-z0-9_-`). */
  keyPrefix: string;
  /** Default: a random UUID. */
  instanceId?: string;
  /** Requests of a dead server are delivered again after this (default 30000 ms); running ones get in-progress acks. */
  ackWaitMs?: number;
  /** How long a stop waits for running handlers (default 5000 ms). */
  shutdownGraceMs?: number;
  logger?: Logger;
  /** Handlers at once per service (default 64). */
  concurrency?: number;
  /** One handler at a time per service (same as `concurrency: 1`). */
  ordered?: boolean;
  /** Deliveries before a request is dead-lettered (default 5). */
  maxDeliveries?: number;
}

export class ServerNatsTransport extends EngineServerTransport {
  constructor(opts: NatsRpcServerOptions) {
    const instanceId = opts.instanceId ?? randomUUID();
    const shutdownGraceMs = opts.shutdownGraceMs ?? 5_000;
    super({
      engine: {
        transport: 'nats',
        url: natsUrl(opts.natsUrl),
        keyPrefix: opts.keyPrefix,
        instanceId,
        claimIdleMs: opts.ackWaitMs,
        shutdownGraceMs,
        concurrency: opts.ordered ? 1 : (opts.concurrency ?? 64),
        maxDeliveries: opts.maxDeliveries,
      },
      instanceId,
      shutdownGraceMs,
      logger: opts.logger ?? consoleLogger,
    });
  }
}

export class NatsRpcServer extends RpcServerCore {
  constructor(opts: NatsRpcServerOptions) {
    const logger = opts.logger ?? consoleLogger;
    super(new ServerNatsTransport({ ...opts, logger }), logger);
  }
}
