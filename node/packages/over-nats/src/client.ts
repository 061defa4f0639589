import { randomUUID } from 'node:crypto';
import { RpcClientCore } from '@clamator-rs/protocol';
import { EngineClientTransport } from '@clamator-rs/engine';
import { natsUrl } from './options.js';

export interface NatsRpcClientOptions {
  /** NATS URL(s): `nats://host:4222`, several comma-separated or as an array; else `$NATS_URL`. */
  natsUrl?: string | string[];
  /** The subject prefix. */
  keyPrefix: string;
  /** Default: a random UUID (replies come to `<prefix>.replies.<instanceId>`). */
  instanceId?: string;
  /** The timeout of calls made without one (default 30000 ms). */
  defaultTimeoutMs?: number;
}

export class ClientNatsTransport extends EngineClientTransport {
  constructor(opts: NatsRpcClientOptions) {
    const instanceId = opts.instanceId ?? randomUUID();
    super({
      engine: {
        transport: 'nats',
        url: natsUrl(opts.natsUrl),
        keyPrefix: opts.keyPrefix,
        instanceId,
        defaultTimeoutMs: opts.defaultTimeoutMs ?? 30_000,
      },
      instanceId,
    });
  }
}

export class NatsRpcClient extends RpcClientCore {
  constructor(opts: NatsRpcClientOptions) {
    super(new ClientNatsTransport(opts), { defaultTimeoutMs: opts.defaultTimeoutMs ?? 30_000 });
  }
}
