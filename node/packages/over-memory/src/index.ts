export { MemoryBus } from './bus.js';
export { MemoryTransport } from './transport.js';
export { MemoryRpcServer, type MemoryRpcServerOptions } from './server.js';
export { MemoryRpcClient, type MemoryRpcClientOptions } from './client.js';
