/**
 * The hub's side of the API declaration (shared/api/methods.ts): one handler
 * per declared method, taking the params its schema describes (already
 * checked) and returning the declared result. A table missing a method, one
 * with a misspelt name or a wrong result shape does not compile.
 *
 * A handler may answer at once or with a promise: the stores are
 * asynchronous (SQLite or PostgreSQL behind one interface, broker/store/).
 * It is told who called, for what it records of the call.
 */
import type { ApiMethodName, ApiParams, ApiResult } from '../../shared/index.js';

/** Who made a call, as an operator reads it in a record it leaves (`canceled by alice`). */
export interface CallContext {
  caller: string;
}

/** A call whose transport could not say who made it. */
export const UNKNOWN_CALLER: CallContext = { caller: 'an unidentified caller' };

/** `context` is absent where a handler is called directly (tests), as from a transport that cannot say who called. */
export type ApiHandler<M extends ApiMethodName> = (params: ApiParams<M>, context?: CallContext) => ApiResult<M> | Promise<ApiResult<M>>;

export type ApiHandlers = { [M in ApiMethodName]: ApiHandler<M> };

/** The part of the table one module implements (telemetry, auth). */
export type ApiHandlersFor<M extends ApiMethodName> = Pick<ApiHandlers, M>;
