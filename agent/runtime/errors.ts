/**
 * Typed errors for the container runtime seam. dockerode rejects with plain
 * `Error`s carrying an HTTP `statusCode` and the engine's `json` body; the
 * agent must not care about HTTP, so every engine error crosses this layer as
 * a `RuntimeError` with a small, closed set of codes that the planner and the
 * event reporter can branch on.
 */

export type RuntimeErrorCode =
  /** The container or image does not exist. */
  | 'not_found'
  /** The registry refused or did not have the image, or the download broke. */
  | 'pull_failed'
  /** Name already taken, container running when it must not be, removal in progress… */
  | 'conflict'
  /** Anything else the engine (or the connection to it) reported. */
  | 'engine'
  /** The caller's AbortSignal fired; "cancelled", never "failed". */
  | 'aborted';

export interface RuntimeErrorOptions {
  cause?: unknown;
  /** The engine's HTTP status, when there was one. */
  statusCode?: number;
}

export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  readonly code: RuntimeErrorCode;
  readonly statusCode: number | undefined;

  constructor(code: RuntimeErrorCode, message: string, options: RuntimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = options.statusCode;
  }
}

export function isRuntimeError(err: unknown): err is RuntimeError {
  return err instanceof RuntimeError;
}

export function isNotFound(err: unknown): err is RuntimeError {
  return isRuntimeError(err) && err.code === 'not_found';
}

export function isConflict(err: unknown): err is RuntimeError {
  return isRuntimeError(err) && err.code === 'conflict';
}

export function isAborted(err: unknown): err is RuntimeError {
  return isRuntimeError(err) && err.code === 'aborted';
}

/** The HTTP status dockerode attaches to engine errors, if any. */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * The engine's own message. dockerode formats errors as
 * "(HTTP code 404) no such container - No such container: abc "; the JSON
 * body's `message` is the part worth showing an operator.
 */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: unknown } | null)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  // Stream endpoints leave `json` empty and put the cause only in the message.
  if (err instanceof Error) return err.message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
  return String(err);
}

function isAbortLike(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  const code = (err as { code?: unknown } | null)?.code;
  return name === 'AbortError' || code === 'ABORT_ERR';
}

/**
 * Wraps an error from dockerode, adding `context` (what was being done, to
 * what) in front of the engine's message. A `RuntimeError` passes through unchanged.
 */
export function toRuntimeError(err: unknown, context: string, fallback: RuntimeErrorCode = 'engine'): RuntimeError {
  if (isRuntimeError(err)) return err;
  const statusCode = statusCodeOf(err);
  const message = `${context}: ${engineMessage(err)}`;
  if (isAbortLike(err)) return new RuntimeError('aborted', `${context}: aborted`, { cause: err });
  const code: RuntimeErrorCode = statusCode === 404 ? 'not_found' : statusCode === 409 ? 'conflict' : fallback;
  return new RuntimeError(code, message, { cause: err, ...(statusCode !== undefined ? { statusCode } : {}) });
}

/**
 * The registry's words for an image that cannot be had at all: its error
 * codes (distribution spec: MANIFEST_UNKNOWN, NAME_UNKNOWN, NAME_INVALID,
 * TAG_INVALID, UNAUTHORIZED, DENIED) as the engine passes them on, and the
 * engine's own sentences for them.
 */
const PERMANENT_PULL_WORDS =
  /manifest unknown|name unknown|name invalid|tag invalid|not found: manifest|repository does not exist|pull access denied|no basic auth credentials|\bunauthorized:|\bdenied:|invalid reference format/i;

/**
 * Whether a failed pull says the image cannot be had — the registry does not
 * know the repository or the tag, or refuses these credentials — as opposed
 * to not reaching it (refused, timed out, cut off, a 5xx, a rate limit),
 * which a later try may mend. The engine answers the first kind with 404
 * (manifest or name unknown, "pull access denied"), 400 (a reference it
 * cannot parse) or 401/403; a failure that comes only in the progress stream
 * has no status, so the registry's words are read too. Anything else, or an
 * error that is not a pull's, is not permanent: an agent on a bad link tries
 * again rather than give up on what may only be the link.
 */
export function isPermanentPullError(err: unknown): boolean {
  if (!isRuntimeError(err) || err.code !== 'pull_failed') return false;
  const status = err.statusCode;
  if (status === 400 || status === 401 || status === 403 || status === 404) return true;
  return PERMANENT_PULL_WORDS.test(err.message);
}
