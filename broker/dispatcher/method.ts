/** One API method: its params schema (checked before `run`) and what it does. */
import type { Static, TSchema } from '@sinclair/typebox';

export interface Method<S extends TSchema> {
  params: S;
  run(params: Static<S>): unknown;
}

export function method<S extends TSchema>(params: S, run: (params: Static<S>) => unknown): Method<S> {
  return { params, run };
}
