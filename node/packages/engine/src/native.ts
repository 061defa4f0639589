// Loads the native addon: a `.node` file next to this package (a local build), else the
// platform package `@clamator-rs/engine-<platform>` (installed by npm as an optional
// dependency for the machine it runs on), whose version must be this package's.
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** One event of the bridge (see the Rust `BridgeEvent`). */
export interface BridgeEvent {
  /** 0 request, 1 cancel, 2 done, 3 log. */
  kind: number;
  token: number;
  service?: string;
  method?: string;
  json?: string;
  isRequest?: boolean;
  id?: string;
  remaining?: number;
  /** Done: 0 ok, 1 error object, 2 transport failure, 3 protocol failure, 4 bad value. */
  outcome?: number;
  code?: number;
  message?: string;
  data?: string;
  level?: number;
  target?: string;
}

export interface NativeBridge {
  drain(): BridgeEvent[];
  listen(on: boolean): void;
}

export interface EngineOptions {
  transport: 'redis' | 'redis-cluster' | 'nats';
  url: string;
  keyPrefix?: string;
  instanceId?: string;
  claimIdleMs?: number;
  replyStreamMaxLen?: number;
  shutdownGraceMs?: number;
  concurrency?: number;
  maxDeliveries?: number;
  defaultTimeoutMs?: number;
  tls?: { ca?: string; cert?: string; key?: string };
}

export interface NativeServer {
  registerService(name: string, methods: { name: string; notification: boolean }[]): void;
  complete(token: number, result?: string | null): void;
  fail(token: number, code: number, message: string, data?: string | null): void;
  start(token: number): void;
  stop(token: number, graceMs?: number | null): void;
}

export interface NativeClient {
  start(token: number): void;
  stop(token: number): void;
  call(token: number, service: string, method: string, params: string, timeoutMs?: number | null): void;
  notify(token: number, service: string, method: string, params: string): void;
}

export interface Native {
  Bridge: new (wake: () => void) => NativeBridge;
  EngineServer: new (bridge: NativeBridge, options: EngineOptions) => NativeServer;
  EngineClient: new (bridge: NativeBridge, options: EngineOptions) => NativeClient;
  benchAsyncEcho(payload: string): Promise<string>;
  benchBatchedEcho(bridge: NativeBridge, token: number, payload: string): void;
  benchTsfnHandlers(handler: (p: string) => Promise<string>, n: number, concurrency: number, done: (s: number) => void): void;
  benchBatchedHandlers(bridge: NativeBridge, n: number, concurrency: number, doneToken: number): void;
  benchComplete(token: number): void;
}

function platformTriple(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    // glibc or musl: the report of a glibc runtime names its version
    const report = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined);
    const musl = !report?.header?.glibcVersionRuntime;
    return `linux-${arch}-${musl ? 'musl' : 'gnu'}`;
  }
  return `${platform}-${arch}`;
}

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function load(): Native {
  const triple = platformTriple();
  const file = `clamator-engine.${triple}.node`;
  const local = join(here, '..', file);
  if (existsSync(local)) return require(local) as Native;
  const pkg = `@clamator-rs/engine-${triple}`;
  let found: Native;
  try {
    found = require(pkg) as Native;
  } catch (e) {
    throw new Error(
      `@clamator-rs/engine has no native engine for ${triple}: the optional dependency ${pkg} ` +
      `is not installed (npm skips optional dependencies with --no-optional / --omit=optional, ` +
      `and there is none for this platform yet: linux-x64-gnu is built). Install it ` +
      `(npm install ${pkg}) or build the engine from the clamator-rs repository ` +
      `(bash scripts/build-node.sh). Cause: ${(e as Error).message}`,
    );
  }
  const mine = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')).version as string;
  const theirs = (require(`${pkg}/package.json`) as { version: string }).version;
  if (mine !== theirs) {
    throw new Error(`@clamator-rs/engine ${mine} needs ${pkg} ${mine}, but ${theirs} is installed: install the same version of both`);
  }
  return found;
}

export const native: Native = load();
