// Where the engine connects: a URL (`redisUrl`, `$REDIS_URL`, `redis://localhost:6379`), or
// the options of an ioredis client the user passes as `redis` (taken over: the engine opens
// its own connections with them and never closes the user's client).
import { ClamatorTransportError } from '@clamator-rs/protocol';
import type { EngineOptions } from '@clamator-rs/engine';

/** What is read of an ioredis client (`new Redis(…)` or `new Redis.Cluster(…)`). */
export interface IORedisLike {
  options?: Record<string, unknown>;
  isCluster?: boolean;
  startupNodes?: unknown[];
}

type Tls = NonNullable<EngineOptions['tls']>;

function pem(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map((v) => pem(v, what)).join('\n');
  throw new ClamatorTransportError(`the ioredis client's tls.${what} is not a PEM string or Buffer: pass redisUrl and PEM material instead`);
}

function tlsOf(options: Record<string, unknown>): { tls: Tls | undefined; secure: boolean } {
  const tls = options.tls as Record<string, unknown> | undefined;
  if (!tls) return { tls: undefined, secure: false };
  if (tls.rejectUnauthorized === false) {
    throw new ClamatorTransportError(
      'the ioredis client turns certificate checks off (tls.rejectUnauthorized: false), which the engine does not do: ' +
      'give the server\'s CA as tls.ca instead',
    );
  }
  const out: Tls = { ca: pem(tls.ca, 'ca'), cert: pem(tls.cert, 'cert'), key: pem(tls.key, 'key') };
  const any = out.ca !== undefined || out.cert !== undefined || out.key !== undefined;
  return { tls: any ? out : undefined, secure: true };
}

function refuseUnmappable(options: Record<string, unknown>): void {
  if (options.keyPrefix) {
    throw new ClamatorTransportError(
      `the ioredis client has its own keyPrefix ${JSON.stringify(options.keyPrefix)}, which the engine would not apply: ` +
      'set clamator\'s keyPrefix option instead',
    );
  }
  if (Array.isArray(options.sentinels) && options.sentinels.length > 0) {
    throw new ClamatorTransportError(
      'an ioredis client for Redis Sentinels cannot be taken over yet: pass redisUrl with the master\'s address ' +
      '(the Rust crates and the clamator CLI follow Sentinels themselves)',
    );
  }
}

function credentials(options: Record<string, unknown>): string {
  const user = typeof options.username === 'string' ? options.username : '';
  const pass = typeof options.password === 'string' ? options.password : '';
  if (!user && !pass) return '';
  return `${encodeURIComponent(user)}:${encodeURIComponent(pass)}@`;
}

/** The engine's transport and URL for `redis` (an ioredis client) or a URL. */
export function connection(
  redis: IORedisLike | undefined,
  redisUrl: string | undefined,
): Pick<EngineOptions, 'transport' | 'url' | 'tls'> {
  if (redis && redisUrl) throw new ClamatorTransportError('provide either `redis` or `redisUrl`, not both');
  if (!redis) {
    return { transport: 'redis', url: redisUrl ?? process.env.REDIS_URL ?? 'redis://localhost:6379' };
  }
  if (redis.isCluster) {
    const nodeOptions = ((redis.options?.redisOptions ?? {}) as Record<string, unknown>);
    refuseUnmappable(nodeOptions);
    const { tls, secure } = tlsOf(nodeOptions);
    if (tls) {
      throw new ClamatorTransportError(
        'a private CA or client certificate for a Redis Cluster is not supported yet: use certificates the system trusts',
      );
    }
    const auth = credentials(nodeOptions);
    const seeds = (redis.startupNodes ?? []).map((n) => {
      if (typeof n === 'string') return n.includes('://') ? n : `redis://${n}`;
      const node = n as { host?: string; port?: number };
      return `${secure ? 'rediss' : 'redis'}://${auth}${node.host ?? 'localhost'}:${node.port ?? 6379}`;
    });
    if (seeds.length === 0) throw new ClamatorTransportError('the ioredis Cluster client names no startup nodes');
    return { transport: 'redis-cluster', url: seeds.join(',') };
  }
  const options = redis.options ?? {};
  refuseUnmappable(options);
  const { tls, secure } = tlsOf(options);
  const db = typeof options.db === 'number' && options.db !== 0 ? `/${options.db}` : '';
  if (typeof options.path === 'string' && options.path) {
    const query = typeof options.db === 'number' && options.db !== 0 ? `?db=${options.db}` : '';
    return { transport: 'redis', url: `redis+unix://${options.path}${query}`, tls };
  }
  const host = typeof options.host === 'string' ? options.host : 'localhost';
  const port = typeof options.port === 'number' ? options.port : 6379;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { transport: 'redis', url: `${secure ? 'rediss' : 'redis'}://${credentials(options)}${shownHost}:${port}${db}`, tls };
}
