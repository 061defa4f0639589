export { RedisRpcServer, type RedisRpcServerOptions } from './server.js';
export { RedisRpcClient, type RedisRpcClientOptions } from './client.js';
export { ServerRedisTransport, type ServerTransportOptions } from './server-transport.js';
export { ClientRedisTransport, type ClientTransportOptions } from './client-transport.js';
export * from './keys.js';
export {
  RpcError, ClamatorProtocolError, ClamatorTransportError, consoleLogger, deadline, requestId,
  type Logger,
} from '@clamator-rs/protocol';
