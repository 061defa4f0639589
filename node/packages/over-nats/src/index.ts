export { NatsRpcServer, ServerNatsTransport, type NatsRpcServerOptions } from './server.js';
export { NatsRpcClient, ClientNatsTransport, type NatsRpcClientOptions } from './client.js';
export * from './names.js';
export {
  RpcError, ClamatorProtocolError, ClamatorTransportError, consoleLogger, deadline, requestId,
  type Logger,
} from '@clamator-rs/protocol';
