/**
 * Errors that cross the API boundary. Each has a code that HTTP maps to a
 * status and MQTT returns verbatim as `{code, message, details}`.
 */
import type { ErrorBody, ValidationIssue } from '../../shared/index.js';
import { isDatabaseUnavailable } from '../store/pg/errors.js';

export type ApiErrorCode =
  | 'invalid_request'
  | 'invalid_spec'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'unknown_method'
  | 'conflict'
  | 'unavailable'
  | 'internal';

export const HTTP_STATUS: Record<ApiErrorCode, number> = {
  invalid_request: 400,
  invalid_spec: 400,
  /** No credentials, or wrong ones (HTTP adds `WWW-Authenticate: Bearer`). */
  unauthorized: 401,
  /** Known caller, role too low for the method. */
  forbidden: 403,
  not_found: 404,
  unknown_method: 404,
  /** The name is taken (a service account, a device id). */
  conflict: 409,
  internal: 500,
  /** The hub is too busy to check credentials now (a reconnect storm), or its database is out of reach; try again shortly. */
  unavailable: 503,
};

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  static invalid(code: 'invalid_request' | 'invalid_spec', what: string, issues: ValidationIssue[]): ApiError {
    const first = issues[0];
    const summary = first
      ? ` (${first.path === '' ? '(document)' : first.path}: ${first.message}${issues.length > 1 ? `, and ${issues.length - 1} more` : ''})`
      : '';
    return new ApiError(code, `invalid ${what}${summary}`, { issues });
  }

  static notFound(kind: string, name: string): ApiError {
    return new ApiError('not_found', `${kind} "${name}" not found`);
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, ...(this.details !== undefined ? { details: this.details } : {}) };
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}

/**
 * Any error as a response body; unexpected ones become `internal` without
 * leaking internals. A database out of reach is `unavailable` (503): the
 * caller may try again, and the hub keeps serving what needs no database.
 */
export function toErrorBody(err: unknown): ErrorBody {
  if (isApiError(err)) return err.toBody();
  if (isDatabaseUnavailable(err)) return { code: 'unavailable', message: "the hub's database is out of reach; try again shortly" };
  return { code: 'internal', message: 'internal error' };
}
