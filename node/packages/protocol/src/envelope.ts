// JSON-RPC 2.0 envelopes as clamator uses them: `<service>.<method>` names, string or number
// ids, no batches. Parsing classifies a value as a request, a notification, a success or an
// error response, and refuses anything else with a -32600 error naming the reason.

/** A service name: lower case letters, digits and `-`, starting with a letter. */
export const SERVICE_RE = /^[a-z][a-z0-9-]*$/;
/** A method name: camelCase letters and digits, starting with a lower case letter. */
export const METHOD_RE = /^[a-z][a-zA-Z0-9]*$/;

export enum EnvelopeKind {
  Request = 'request',
  Notification = 'notification',
  SuccessResponse = 'success',
  ErrorResponse = 'error',
}

export type RpcId = string | number;

export interface RequestEnvelope {
  kind: EnvelopeKind.Request;
  service: string;
  method: string;
  fullMethod: string;
  params: unknown;
  id: RpcId;
  raw: Record<string, unknown>;
}

export interface NotificationEnvelope {
  kind: EnvelopeKind.Notification;
  service: string;
  method: string;
  fullMethod: string;
  params: unknown;
  raw: Record<string, unknown>;
}

export interface SuccessResponseEnvelope {
  kind: EnvelopeKind.SuccessResponse;
  id: RpcId;
  result: unknown;
}

export interface ErrorResponseEnvelope {
  kind: EnvelopeKind.ErrorResponse;
  id: RpcId | null;
  error: { code: number; message: string; data: unknown };
}

export type Envelope =
  | RequestEnvelope
  | NotificationEnvelope
  | SuccessResponseEnvelope
  | ErrorResponseEnvelope;

function invalid(reason: string): Error & { code: number } {
  const e = new Error(`-32600 Invalid Request: ${reason}`) as Error & { code: number };
  e.code = -32600;
  return e;
}

/** Classifies `value`; throws an Error whose message starts `-32600 Invalid Request:`. */
export function parseEnvelope(value: unknown): Envelope {
  if (Array.isArray(value)) throw invalid('batch requests not supported');
  if (typeof value !== 'object' || value === null) throw invalid('not an object');
  const obj = value as Record<string, unknown>;
  if (obj.jsonrpc !== '2.0') throw invalid('jsonrpc must equal "2.0"');
  const hasId = obj.id !== undefined && obj.id !== null;
  if (typeof obj.method === 'string') {
    const fullMethod = obj.method;
    const dot = fullMethod.indexOf('.');
    if (dot <= 0 || dot === fullMethod.length - 1) throw invalid('method must be "<service>.<method>"');
    const service = fullMethod.slice(0, dot);
    const method = fullMethod.slice(dot + 1);
    if (!SERVICE_RE.test(service)) throw invalid('invalid service segment');
    if (!METHOD_RE.test(method)) throw invalid('invalid method segment');
    const params = obj.params ?? {};
    if (!hasId) {
      return { kind: EnvelopeKind.Notification, service, method, fullMethod, params, raw: obj };
    }
    if (typeof obj.id !== 'string' && typeof obj.id !== 'number') throw invalid('id must be string or number');
    return { kind: EnvelopeKind.Request, service, method, fullMethod, params, id: obj.id, raw: obj };
  }
  const hasResult = 'result' in obj;
  const hasError = 'error' in obj;
  if (hasResult && !hasError) {
    if (!hasId) throw invalid('response must have id');
    return { kind: EnvelopeKind.SuccessResponse, id: obj.id as RpcId, result: obj.result };
  }
  if (hasError && !hasResult) {
    const err = obj.error as Record<string, unknown> | null | undefined;
    if (!err || typeof err.code !== 'number' || typeof err.message !== 'string') {
      throw invalid('error must have numeric code + string message');
    }
    return {
      kind: EnvelopeKind.ErrorResponse,
      id: hasId ? (obj.id as RpcId) : null,
      error: { code: err.code, message: err.message, data: err.data ?? null },
    };
  }
  throw invalid('envelope must be request, notification, or response');
}

export function buildRequest(fullMethod: string, params: unknown, id: RpcId): Record<string, unknown> {
  return { jsonrpc: '2.0', method: fullMethod, params, id };
}

export function buildNotification(fullMethod: string, params: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', method: fullMethod, params };
}

export function buildSuccessResponse(id: RpcId, result: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, result };
}

export function buildErrorResponse(
  id: RpcId | null,
  code: number,
  message: string,
  data: unknown = null,
): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code, message, data } };
}
