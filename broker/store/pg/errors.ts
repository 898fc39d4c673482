/**
 * What can go wrong between the hub and PostgreSQL, as typed errors:
 *
 * - `DatabaseConfigError` stops the hub at start, with one message naming what is wrong and where
 *   (the server's host:port, the role, the database; never the password), so an operator fixes the
 *   URL or the server instead of reading a stack trace.
 * - `DatabaseUnavailable` is a query that failed because the server could not be reached or dropped
 *   the connection: the hub keeps running (MQTT sessions stay up) and the HTTP layer answers 503.
 *   Any other error from a query (a constraint, a bug in SQL) passes through unchanged.
 */

export type DatabaseConfigProblem =
  /** The URL itself is not a usable postgres:// URL. */
  | 'bad_url'
  /** Nothing answers at host:port, the host does not resolve, or connecting timed out. */
  | 'unreachable'
  /** The server refused the role or its password. */
  | 'auth'
  /** The database named in the URL does not exist on that server. */
  | 'no_database'
  /** The role may not create the hub's tables in that database. */
  | 'no_privilege'
  /** The database was migrated by a newer Flotilla. */
  | 'schema_newer'
  /** Another hub uses the database in a way this one cannot share (hub-presence.ts). */
  | 'in_use';

export class DatabaseConfigError extends Error {
  readonly code = 'database_config';

  constructor(
    readonly problem: DatabaseConfigProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, { cause: withoutConnection(options?.cause) });
    this.name = 'DatabaseConfigError';
  }
}

export class DatabaseUnavailable extends Error {
  readonly code = 'database_unavailable';

  constructor(
    /** `postgres://role@host:port/database`, without the password. */
    readonly target: string,
    options?: { cause?: unknown },
  ) {
    super(`PostgreSQL at ${target} is unavailable: ${reasonOf(options?.cause)}`, { cause: withoutConnection(options?.cause) });
    this.name = 'DatabaseUnavailable';
  }
}

/**
 * pg's error, reduced to its message and code: pg-pool hangs the failed client on the error it
 * reports (`err.client`), and the client holds the connection parameters, password included (not
 * enumerable, so JSON leaves it out, but a full print of the error shows it: console.error,
 * util.inspect, a test runner's report), along with the whole socket's state.
 */
export function withoutConnection(err: unknown): Error | undefined {
  if (err === undefined) return undefined;
  const plain = new Error(err instanceof Error ? err.message : String(err)) as Error & { code?: string };
  const code = errorCode(err);
  if (code !== undefined) plain.code = code;
  return plain;
}

export function isDatabaseUnavailable(err: unknown): err is DatabaseUnavailable {
  return err instanceof DatabaseUnavailable;
}

/** Node's socket error codes that mean the server cannot be reached (or stopped answering). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOENT', // a Unix socket path with no server behind it
]);

/**
 * SQLSTATEs that are about the connection, not the statement: class 08 (connection exception),
 * the server shutting down or starting up (57P01-57P03), and no connection slot left (53300).
 */
function isConnectionState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

/** Whether `err`, from pg, means the server is out of reach rather than that a statement failed. */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = errorCode(err);
  if (code !== undefined && (NETWORK_CODES.has(code) || isConnectionState(code))) return true;
  // pg's own wording when a socket closes under a query, or connectionTimeoutMillis passes.
  return /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error/i.test(err.message);
}

/** The error's code, or its first inner error's (Node reports a failed connection to several addresses as an AggregateError). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, errors } = err as { code?: unknown; errors?: unknown };
  if (typeof code === 'string') return code;
  if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0]);
  return undefined;
}

function reasonOf(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause ?? 'unknown error');
  const code = errorCode(cause);
  const message = cause.message || (cause instanceof AggregateError ? String((cause.errors[0] as Error | undefined)?.message) : '');
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
