export {
  defineContract, defineMethod, defineNotification,
  type Contract, type MethodDef, type NotificationDef, type AnyMethodDef, type HandlersFor,
} from './contract.js';
export {
  parseEnvelope, buildRequest, buildNotification, buildSuccessResponse, buildErrorResponse,
  EnvelopeKind, SERVICE_RE, METHOD_RE,
  type Envelope, type RequestEnvelope, type NotificationEnvelope,
  type SuccessResponseEnvelope, type ErrorResponseEnvelope, type RpcId,
} from './envelope.js';
export { RpcError, ClamatorProtocolError, ClamatorTransportError, exceptionToErrorData } from './error.js';
export type { Transport, Dispatcher, SendOptions } from './transport.js';
export { RpcServerCore, type ServerStopOptions } from './server-core.js';
export { RpcClientCore, type ClamatorClient, type RpcClientCoreOptions, type CallOptions } from './client-core.js';
export { type Logger, consoleLogger } from './logger.js';
export { deadline, requestId, runInCall } from './context.js';
