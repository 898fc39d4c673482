/**
 * The hub's side of the API declaration (shared/api/methods.ts): one handler
 * per declared method, taking the params its schema describes (already
 * checked) and returning the declared result. A table missing a method, one
 * with a misspelt name or a wrong result shape does not compile.
 *
 * A handler may answer at once or with a promise: the stores are
 * asynchronous (SQLite or PostgreSQL behind one interface, broker/store/).
 */
import type { ApiMethodName, ApiParams, ApiResult } from '../../shared/index.js';

export type ApiHandler<M extends ApiMethodName> = (params: ApiParams<M>) => ApiResult<M> | Promise<ApiResult<M>>;

export type ApiHandlers = { [M in ApiMethodName]: ApiHandler<M> };

/** The part of the table one module implements (telemetry, auth). */
export type ApiHandlersFor<M extends ApiMethodName> = Pick<ApiHandlers, M>;
