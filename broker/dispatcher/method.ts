/**
 * The hub's side of the API declaration (shared/api/methods.ts): one handler
 * per declared method, taking the params its schema describes (already
 * checked) and returning the declared result. A table missing a method, one
 * with a misspelt name or a wrong result shape does not compile.
 *
 * Handlers are synchronous: the stores are synchronous SQLite, and the HTTP
 * follow streams rely on a backlog query and its subscription happening in
 * one synchronous step (broker/telemetry/follow.ts).
 */
import type { ApiMethodName, ApiParams, ApiResult } from '../../shared/index.js';

export type ApiHandler<M extends ApiMethodName> = (params: ApiParams<M>) => ApiResult<M>;

export type ApiHandlers = { [M in ApiMethodName]: ApiHandler<M> };

/** The part of the table one module implements (telemetry, auth). */
export type ApiHandlersFor<M extends ApiMethodName> = Pick<ApiHandlers, M>;
