import { randomUUID } from 'node:crypto';
import type { Logger } from '@clamator-rs/protocol';
import { EngineClientTransport } from '@clamator-rs/engine';
import { connection, type IORedisLike } from './connection.js';

export interface ClientTransportOptions {
  /** An ioredis client whose options the engine takes over (it is never closed here). Not with `redisUrl`. */
  redis?: IORedisLike;
  /** Redis URL; else `$REDIS_URL`, else `redis://localhost:6379`. */
  redisUrl?: string;
  keyPrefix: string;
  /** Default: a random UUID (the reply stream is `<prefix>:replies:<instanceId>`). */
  instanceId?: string;
  /** The timeout of calls made without one (default 30000 ms). */
  defaultTimeoutMs?: number;
  logger?: Logger;
}

export class ClientRedisTransport extends EngineClientTransport {
  constructor(opts: ClientTransportOptions) {
    const instanceId = opts.instanceId ?? randomUUID();
    super({
      engine: {
        ...connection(opts.redis, opts.redisUrl),
        keyPrefix: opts.keyPrefix,
        instanceId,
        defaultTimeoutMs: opts.defaultTimeoutMs ?? 30_000,
      },
      instanceId,
    });
  }
}
