export { native, type Native, type EngineOptions, type NativeServer, type NativeClient, type BridgeEvent } from './native.js';
export { EngineLink, type LinkHandlers, type RequestEvent, type OpResult } from './link.js';
export {
  EngineServerTransport, EngineClientTransport,
  type EngineServerTransportOptions, type EngineClientTransportOptions,
} from './transports.js';
