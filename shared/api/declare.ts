/**
 * How one API method is declared: its params (a schema, checked by the hub
 * before the method runs), its result (a type only: the hub builds it, the
 * CLI reads it), the role a caller needs, and its HTTP route. The MQTT
 * request API names the method itself (`{method, params}`), so it needs
 * nothing more. `summary` and `answers` are the method's words in the
 * reference (docs/reference/mqtt.md, rendered by cli/api-reference.ts): the
 * result marker has no run-time shape to print, so `answers` says it.
 *
 * `declareMethod()` checks a declaration against its own params: a route whose path,
 * query or body names a param the schema does not have does not compile.
 */
import type { Static, TObject } from '@sinclair/typebox';
import type { ApiRole } from './access.js';

declare const resultType: unique symbol;

/** Carries a method's result type and nothing at run time. */
export interface Returns<T> {
  readonly [resultType]?: T;
}

/** The result marker of a declaration: `result: returns<ApplyResult>()`. */
export function returns<T>(): Returns<T> {
  return {};
}

export type HttpVerb = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A query-string param: text as given, or a non-negative integer (anything else is the caller's mistake). */
export type QueryKind = 'text' | 'int';

export interface HttpRoute<K extends string = string> {
  method: HttpVerb;
  /** From the hub's root; each `:name` segment is the param `name`. */
  path: string;
  /**
   * How the request body becomes params. `object`: a JSON (or YAML) object
   * whose fields are params; `optional-object`: the same, or no body at all;
   * `{ param }`: the whole body is that one param. Absent: the body is not read.
   */
  body?: 'object' | 'optional-object' | { param: K };
  /** The params read from the query string, and how. */
  query?: Partial<Record<K, QueryKind>>;
}

export interface ApiMethod<P extends TObject = TObject, R = unknown> {
  /** What the method does, for the reader of the reference (Markdown, one paragraph). */
  summary: string;
  params: P;
  result: Returns<R>;
  /** What the result holds (Markdown, one paragraph). */
  answers: string;
  role: ApiRole;
  http: HttpRoute;
}

/** The `:name` segments of a path. */
export type PathParams<Path extends string> = Path extends `${string}/:${infer Param}/${infer Rest}`
  ? Param | PathParams<`/${Rest}`>
  : Path extends `${string}/:${infer Param}`
    ? Param
    : never;

type ParamKey<P extends TObject> = keyof Static<P> & string;

/** A path is accepted only when every `:name` in it is a param. */
type CheckedPath<Path extends string, Keys extends string> = [PathParams<Path>] extends [Keys] ? Path : never;

export function declareMethod<P extends TObject, R, Path extends string>(declaration: {
  summary: string;
  params: P;
  result: Returns<R>;
  answers: string;
  role: ApiRole;
  http: HttpRoute<ParamKey<P>> & { path: CheckedPath<Path, ParamKey<P>> };
}): ApiMethod<P, R> {
  return declaration;
}
