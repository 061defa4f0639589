// Contracts: a service name and its methods, each a zod schema for params and (requests) result.
import type { z } from 'zod';
import { SERVICE_RE, METHOD_RE } from './envelope.js';

export interface MethodDef<P extends z.ZodTypeAny, R extends z.ZodTypeAny> {
  params: P;
  result: R;
  notification?: false;
}

export interface NotificationDef<P extends z.ZodTypeAny> {
  params: P;
  notification: true;
}

export type AnyMethodDef = MethodDef<z.ZodTypeAny, z.ZodTypeAny> | NotificationDef<z.ZodTypeAny>;

export interface Contract<S extends string, M extends Record<string, AnyMethodDef>> {
  service: S;
  methods: M;
}

/** A request method: params and result schemas. */
export function defineMethod<P extends z.ZodTypeAny, R extends z.ZodTypeAny>(def: MethodDef<P, R>): MethodDef<P, R> {
  return def;
}

/** A notification method: params only, no answer. */
export function defineNotification<P extends z.ZodTypeAny>(def: { params: P }): NotificationDef<P> {
  return { ...def, notification: true };
}

/** A contract, with its names and method shapes checked. */
export function defineContract<S extends string, M extends Record<string, AnyMethodDef>>(
  service: S,
  methods: M,
): Contract<S, M> {
  if (!SERVICE_RE.test(service)) {
    throw new Error(`invalid service name "${service}" (must match ${SERVICE_RE.source})`);
  }
  for (const [name, def] of Object.entries(methods)) {
    if (!METHOD_RE.test(name)) {
      throw new Error(`invalid method name "${name}" (must match ${METHOD_RE.source})`);
    }
    const d = def as unknown as Record<string, unknown>;
    if (d.notification === true) {
      if ('result' in d) throw new Error(`notification "${name}" must not include result`);
    } else if (d.result === undefined) {
      throw new Error(`method "${name}" must include result schema`);
    }
  }
  return { service, methods };
}

/** The handlers a server registers for a contract's methods. */
export type HandlersFor<M extends Record<string, AnyMethodDef>> = {
  [K in keyof M]: M[K] extends NotificationDef<infer P>
    ? (params: z.infer<P>) => Promise<void>
    : M[K] extends MethodDef<infer P, infer R>
      ? (params: z.infer<P>) => Promise<z.infer<R>>
      : never;
};
