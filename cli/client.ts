/**
 * A small fetch-based client for the hub's HTTP API. Every method is called
 * through one `call(method, params)` whose route, params and result type come
 * from the API declaration (shared/api/methods.ts), not from the hub's code:
 * the CLI talks to whatever hub is at the other end of the URL.
 *
 * Every failure becomes a CliError with the right exit code: HubUnreachableError
 * when no HTTP answer came back at all, HubError when one did and it was an error.
 */

// Not through shared/index.js: the barrel loads every schema, the signing code and node:crypto, which no command calling the API needs.
import { queryString, routeRequest } from '../shared/api/http-request.js';
import { API } from '../shared/api/methods.js';
import type { ApiMethodName, ApiParams, ApiResult, EventRecord, LogRecord } from '../shared/index.js';
import { readSse } from '../shared/sse.js';
import { FOLLOW_EVENT } from '../shared/telemetry-api.js';
import { formatIssue } from '../shared/validate.js';
import type { RegisterRequest, Registration } from './auth-api.js';
import { CliError, EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, type ExitCode } from './errors.js';
import { HubUnreachableError, parseHubUrl } from './hub-url.js';

export type {
  AppDetail,
  AppHistory,
  ApplyResult,
  AppOnDevice,
  AppSummary,
  DeviceView as Device,
  List,
  RevisionSummary,
  RollbackResult,
  RolloutStatus,
  SecretInfo,
} from '../shared/index.js';

/** `logs.query` but the device, which a follower names apart. */
export type LogsQuery = Omit<ApiParams<'logs.query'>, 'device'>;
export type EventsQuery = ApiParams<'events.query'>;

/** `value` for text, `valueBase64` for bytes that are not UTF-8 (a key file, say). */
export type SecretValue = { value: string } | { valueBase64: string };

export interface ErrorIssue {
  path: string;
  message: string;
}

/** The hub answered with an HTTP error. */
export class HubError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: { issues?: ErrorIssue[] } & Record<string, unknown>,
  ) {
    super(
      message,
      exitCodeFor(status),
      (details?.issues ?? []).map((issue) => formatIssue(issue)),
    );
    this.name = 'HubError';
  }
}

/** A follow stream ended while the CLI still wanted it: the hub stopped or the connection broke. */
export class HubStreamClosedError extends CliError {
  constructor(
    readonly hub: string,
    readonly reason?: string,
  ) {
    super(`hub closed the stream${reason ? `: ${reason}` : ''}`, EXIT_HUB_ERROR);
    this.name = 'HubStreamClosedError';
  }
}

/**
 * The hub refused the credentials (401) or the role (403). The message says
 * what to do about it, since "401" alone sends people searching.
 */
export class HubAuthError extends HubError {
  constructor(
    status: number,
    code: string,
    /** The hub's own words (which token problem), kept apart from the advice around them. */
    readonly hubMessage: string,
    tokenSent: boolean,
  ) {
    super(status, code, authMessage(status, hubMessage, tokenSent));
    this.name = 'HubAuthError';
  }
}

const ADMIN_KEY_HINT = "the hub's admin key is in <data-dir>/admin.key";

function authMessage(status: number, hubMessage: string, tokenSent: boolean): string {
  if (status === 403) {
    return `the hub refused the request: ${hubMessage || 'forbidden'} (the token's role may not do this; an admin can create a key with a higher role: flotilla serviceaccount create NAME --role operator|admin)`;
  }
  if (!tokenSent) return `the hub refused the request: no valid token (use --token or FLOTILLA_TOKEN; ${ADMIN_KEY_HINT})`;
  return `the hub refused the request: the token is not valid${hubMessage ? ` (${hubMessage})` : ''} (check --token or FLOTILLA_TOKEN; ${ADMIN_KEY_HINT})`;
}

export function isHubError(err: unknown): err is HubError {
  return err instanceof HubError;
}

function exitCodeFor(status: number): ExitCode {
  if (status === 400 || status === 422) return EXIT_INVALID_INPUT;
  if (status === 404) return EXIT_NOT_FOUND;
  if (status === 401 || status === 403) return EXIT_UNAUTHORIZED;
  return EXIT_HUB_ERROR;
}

export interface HubClientOptions {
  fetch?: typeof fetch;
  /** A service account's key, sent as `Authorization: Bearer` on every request. */
  token?: string;
  /** Per request, connection and body included. */
  timeoutMs?: number;
  /** A follow stream that brings nothing, not even a keep-alive, for this long is taken for dead. */
  followIdleTimeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
/** The hub sends a keep-alive comment every 15 s; four missed ones mean the connection is gone. */
export const DEFAULT_FOLLOW_IDLE_TIMEOUT_MS = 60_000;

export class HubClient {
  private readonly base: URL;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly followIdleTimeoutMs: number;
  private readonly token: string | undefined;

  constructor(
    readonly hub: string,
    options: HubClientOptions = {},
  ) {
    this.base = parseHubUrl(hub);
    this.fetch = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.followIdleTimeoutMs = options.followIdleTimeoutMs ?? DEFAULT_FOLLOW_IDLE_TIMEOUT_MS;
    this.token = options.token;
  }

  /**
   * Calls a declared API method over its HTTP route: path params go into the
   * path, the rest into the query string (GET, DELETE) or the JSON body.
   */
  call<M extends ApiMethodName>(method: M, params: ApiParams<M>): Promise<ApiResult<M>> {
    const { path, query, body } = routeRequest(API[method].http, params);
    return this.request(API[method].http.method, `${path}${queryString(query)}`, body);
  }

  /**
   * The device's log lines as the hub stores them (after the backlog the
   * query selects), until `signal` aborts — then the iteration just ends — or
   * the hub closes the stream, which throws.
   */
  followLogs(device: string, query: LogsQuery, signal: AbortSignal): AsyncGenerator<LogRecord> {
    const { path, query: rest } = routeRequest(API['logs.query'].http, { ...query, device });
    return this.follow<LogRecord>(`${path}${queryString({ ...rest, follow: true })}`, FOLLOW_EVENT.logs, signal);
  }

  followEvents(query: EventsQuery, signal: AbortSignal): AsyncGenerator<EventRecord> {
    const { path, query: rest } = routeRequest(API['events.query'].http, query);
    return this.follow<EventRecord>(`${path}${queryString({ ...rest, follow: true })}`, FOLLOW_EVENT.events, signal);
  }

  /**
   * Trades a registration token for a device identity. The token is the
   * credential (in the body), so no bearer is sent, and a 401 is about the
   * registration token, not the CLI's: it says so.
   */
  async register(request: RegisterRequest): Promise<Registration> {
    try {
      return await this.request('POST', '/api/v1/register', request, { bearer: false });
    } catch (err) {
      if (err instanceof HubAuthError && err.status === 401) {
        throw new HubError(401, err.code, `the hub refused the registration token: ${err.hubMessage || 'unauthorized'}`);
      }
      throw err;
    }
  }

  /**
   * A Server-Sent Events route: the records of events named `eventName`, as
   * they arrive. The connection must be established within the timeout; the
   * stream itself may then stay quiet (or send only keep-alives) for as long
   * as it likes.
   */
  private async *follow<T>(path: string, eventName: string, signal: AbortSignal): AsyncGenerator<T> {
    const url = this.url(path);
    // One watchdog: first the connect timeout, then the idle timeout, restarted by every chunk.
    const watchdog = new AbortController();
    let timer = setTimeout(() => watchdog.abort(new DOMException('connect timeout', 'TimeoutError')), this.timeoutMs);
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => watchdog.abort(), this.followIdleTimeoutMs);
    };
    try {
      let response: Response;
      try {
        response = await this.fetch(url, {
          method: 'GET',
          headers: { accept: 'text/event-stream', ...this.authorization() },
          signal: AbortSignal.any([signal, watchdog.signal]),
        });
      } catch (err) {
        if (signal.aborted) return;
        throw new HubUnreachableError(this.hub, describeFetchError(watchdog.signal.aborted ? watchdog.signal.reason : err, this.timeoutMs));
      }
      if (response.status < 200 || response.status >= 300) {
        const text = await response.text().catch(() => '');
        throw toHubError(response.status, response.statusText, parseJson(text), text, this.token !== undefined);
      }
      const type = response.headers.get('content-type') ?? '';
      if (!type.startsWith('text/event-stream') || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw new CliError(
          `the hub at ${this.hub} answered GET ${url.pathname} with ${type || 'no content type'}, not an event stream`,
          EXIT_HUB_ERROR,
          ['is the hub older than the CLI?'],
        );
      }
      idle();
      try {
        for await (const event of readSse(touching(response.body, idle))) {
          if (event.event !== eventName) continue;
          const record = parseJson(event.data);
          if (record === undefined) throw new CliError(`the hub sent a ${eventName} event that is not JSON`, EXIT_HUB_ERROR);
          yield record as T;
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof CliError) throw err;
        if (watchdog.signal.aborted) {
          throw new HubStreamClosedError(this.hub, `nothing received for ${this.followIdleTimeoutMs / 1000}s`);
        }
        throw new HubStreamClosedError(this.hub, describeFetchError(err, this.timeoutMs));
      }
      if (signal.aborted) return;
      throw new HubStreamClosedError(this.hub);
    } finally {
      clearTimeout(timer);
    }
  }

  private authorization(): Record<string, string> {
    return this.token === undefined ? {} : { authorization: `Bearer ${this.token}` };
  }

  /** `path` from the hub's root (`/api/v1/apps`), under the hub URL's own path prefix if it has one. */
  private url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.base);
  }

  private async request<T>(method: string, path: string, body?: unknown, { bearer = true } = {}): Promise<T> {
    const url = this.url(path);
    let status: number;
    let statusText: string;
    let text: string;
    try {
      const response = await this.fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(bearer ? this.authorization() : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.status;
      statusText = response.statusText;
      text = await response.text();
    } catch (err) {
      throw new HubUnreachableError(this.hub, describeFetchError(err, this.timeoutMs));
    }
    const parsed = parseJson(text);
    if (status >= 200 && status < 300) {
      if (parsed === undefined) {
        throw new CliError(`the hub at ${this.hub} answered ${method} ${url.pathname} with a body that is not JSON`, EXIT_HUB_ERROR);
      }
      // The body is taken for what the route declares (`call`'s ApiResult): the hub at the other end is trusted that far.
      return parsed as T;
    }
    throw toHubError(status, statusText, parsed, text, bearer && this.token !== undefined);
  }
}

/** The chunks of `body`, calling `touch` as each one arrives. */
async function* touching(body: AsyncIterable<Uint8Array>, touch: () => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    touch();
    yield chunk;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function toHubError(status: number, statusText: string, body: unknown, text: string, tokenSent: boolean): HubError {
  const error = (body as { error?: unknown } | undefined)?.error as { code?: unknown; message?: unknown; details?: unknown } | undefined;
  if (status === 401 || status === 403) {
    const code = typeof error?.code === 'string' ? error.code : status === 401 ? 'unauthorized' : 'forbidden';
    return new HubAuthError(status, code, typeof error?.message === 'string' ? error.message : '', tokenSent);
  }
  if (error && typeof error.message === 'string') {
    const details = sanitizeIssues(
      typeof error.details === 'object' && error.details !== null ? (error.details as HubError['details']) : undefined,
    );
    const code = typeof error.code === 'string' ? error.code : 'unknown';
    return new HubError(status, code, withoutIssueSummary(error.message, details?.issues ?? []), details);
  }
  const snippet = text.trim().slice(0, 200);
  return new HubError(status, 'unknown', `the hub answered ${status}${statusText ? ` ${statusText}` : ''}${snippet ? `: ${snippet}` : ''}`);
}

/**
 * The hub's message without the first issue it repeats in parentheses
 * (`invalid job spec (scheduling: selects no device…, and 1 more)`, for clients that show
 * only the message): the CLI prints every issue on its own line below, so each once.
 */
function withoutIssueSummary(message: string, issues: readonly ErrorIssue[]): string {
  const first = issues[0];
  if (first === undefined) return message;
  const summary = ` (${formatIssue(first)}${issues.length > 1 ? `, and ${issues.length - 1} more` : ''})`;
  return message.endsWith(summary) ? message.slice(0, -summary.length) : message;
}

/** Keeps only well-formed issues, so a surprising body still prints something sensible. */
function sanitizeIssues(details: HubError['details']): HubError['details'] {
  if (!details || !Array.isArray(details.issues)) return details;
  const issues = details.issues.filter(
    (issue): issue is ErrorIssue => typeof issue?.path === 'string' && typeof issue?.message === 'string',
  );
  return { ...details, issues };
}

/**
 * undici wraps the interesting part: `TypeError('fetch failed', { cause })`,
 * where the cause is a system error (`connect ECONNREFUSED 127.0.0.1:1`) or,
 * when a name resolves to several addresses, an AggregateError of them.
 */
export function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no answer within ${Math.round(timeoutMs / 1000)}s`;
  }
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const cause: unknown = current.cause;
    if (current instanceof AggregateError && current.errors.length > 0) current = current.errors[0];
    else if (cause instanceof Error) current = cause;
    else break;
  }
  if (current instanceof Error) {
    const code = (current as NodeJS.ErrnoException).code;
    return current.message || code || String(current);
  }
  return String(current);
}

export { HubUnreachableError, parseHubUrl };
