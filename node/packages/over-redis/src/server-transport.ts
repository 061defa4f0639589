import { randomUUID } from 'node:crypto';
import { consoleLogger, type Logger } from '@clamator-rs/protocol';
import { EngineServerTransport } from '@clamator-rs/engine';
import { connection, type IORedisLike } from './connection.js';

export interface ServerTransportOptions {
  /** An ioredis client whose options the engine takes over (it is never closed here). Not with `redisUrl`. */
  redis?: IORedisLike;
  /** Redis URL; else `$REDIS_URL`, else `redis://localhost:6379`. */
  redisUrl?: string;
  keyPrefix: string;
  /** Default: a random UUID. */
  instanceId?: string;
  /** Entries of a dead server are reclaimed after this (default 60000 ms); running ones are kept claimed by a heartbeat. */
  consumerClaimIdleMs?: number;
  /** `MAXLEN ~` of the reply streams written (default 1024). */
  replyStreamMaxLen?: number;
  /** How long a stop waits for running handlers (default 5000 ms). */
  shutdownGraceMs?: number;
  logger?: Logger;
  /** Handlers at once per service (default 64). */
  concurrency?: number;
  /** One handler at a time per service, as the original package (same as `concurrency: 1`). */
  ordered?: boolean;
  /** Deliveries before an entry is dead-lettered (default 5). */
  maxDeliveries?: number;
}

export class ServerRedisTransport extends EngineServerTransport {
  constructor(opts: ServerTransportOptions) {
    const instanceId = opts.instanceId ?? randomUUID();
    const shutdownGraceMs = opts.shutdownGraceMs ?? 5_000;
    super({
      engine: {
        ...connection(opts.redis, opts.redisUrl),
        keyPrefix: opts.keyPrefix,
        instanceId,
        claimIdleMs: opts.consumerClaimIdleMs ?? 60_000,
        replyStreamMaxLen: opts.replyStreamMaxLen ?? 1024,
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
