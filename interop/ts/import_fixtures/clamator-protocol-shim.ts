// The part of `@clamator/protocol` (not on the npm registry) that contract modules use, for
// `tsc` only: tsconfig.json maps the import here. `clamator codegen import --ts` brings its own
// runtime shim with the same behaviour (crates/clamator-codegen/src/import/typescript.cjs).
import type { z } from 'zod';

export interface MethodDef<P extends z.ZodTypeAny, R extends z.ZodTypeAny> {
  params: P;
  result: R;
}
export interface NotificationDef<P extends z.ZodTypeAny> {
  params: P;
  notification: true;
}
export type AnyDef = MethodDef<z.ZodTypeAny, z.ZodTypeAny> | NotificationDef<z.ZodTypeAny>;

export function defineMethod<P extends z.ZodTypeAny, R extends z.ZodTypeAny>(def: MethodDef<P, R>): MethodDef<P, R> {
  return def;
}
export function defineNotification<P extends z.ZodTypeAny>(def: { params: P }): NotificationDef<P> {
  return { ...def, notification: true };
}
export function defineContract<S extends string, M extends Record<string, AnyDef>>(service: S, methods: M): { service: S; methods: M } {
  return { service, methods };
}
