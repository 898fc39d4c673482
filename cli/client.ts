/**
 * A small fetch-based client for the hub's HTTP API. The response types are
 * written here, from the API contract, rather than imported from the hub's
 * code: the CLI talks to whatever hub is at the other end of the URL.
 *
 * Every failure becomes a CliError with the right exit code: HubUnreachableError
 * when no HTTP answer came back at all, HubError when one did and it was an error.
 */
import type {
  AppDetail,
  AppHistory,
  ApplyResult,
  AppSummary,
  DeviceView as Device,
  EventRecord,
  EventsResult,
  Labels,
  List,
  LogRecord,
  LogsResult,
  MetricsResult,
  RollbackResult,
  RolloutStatus,
  TopResult,
} from '../shared/index.js';
import { FOLLOW_EVENT, formatIssue } from '../shared/index.js';
import type {
  CreateTokenRequest,
  DeviceRevoked,
  RegisterRequest,
  Registration,
  Role,
  ServiceAccountCreated,
  ServiceAccountInfo,
  TokenCreated,
  TokenInfo,
} from './auth-api.js';
import { CliError, EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, type ExitCode, UsageError } from './errors.js';
import { readSse } from './sse.js';

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
} from '../shared/index.js';

/** `since` is a duration back from now (`10m`) or an RFC 3339 time; the hub validates it. */
export interface TelemetryQuery {
  since?: string;
  tail?: number;
  /** Only records stored after this id: a follower's cursor. */
  afterId?: number;
}

export interface LogsQuery extends TelemetryQuery {
  app?: string;
}

export interface EventsQuery extends TelemetryQuery {
  device?: string;
  app?: string;
}

/** `value` for text, `valueBase64` for bytes that are not UTF-8 (a key file, say). */
export type SecretValue = { value: string } | { valueBase64: string };

/** What the hub shows of a secret: never its value. */
export interface SecretInfo {
  name: string;
  updatedAt: string;
}

export interface LabelPatch {
  set?: Labels;
  remove?: string[];
}

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

/** Node's words for a certificate chain it could not verify (no CA pinned, or the wrong one). */
const UNTRUSTED_CERTIFICATE = /unable to verify|self[- ]signed certificate|unable to get (local )?issuer/i;

/** No HTTP answer at all: refused, reset, DNS, timeout. */
export class HubUnreachableError extends CliError {
  constructor(
    readonly hub: string,
    readonly reason: string,
  ) {
    super(`cannot reach the hub at ${hub}: ${reason}`, EXIT_HUB_ERROR, [
      UNTRUSTED_CERTIFICATE.test(reason)
        ? "the hub's TLS certificate is not trusted: pass the CA that signed it with --ca FILE or FLOTILLA_CA (`flotilla certs dev` makes ca.pem)."
        : 'is `flotilla server` running there? Point the CLI at another hub with --hub URL or FLOTILLA_HUB.',
    ]);
    this.name = 'HubUnreachableError';
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

  applyApp(spec: unknown): Promise<ApplyResult> {
    return this.request('POST', 'apps', spec);
  }

  listApps(): Promise<List<AppSummary>> {
    return this.request('GET', 'apps');
  }

  getApp(name: string): Promise<AppDetail> {
    return this.request('GET', `apps/${encodeURIComponent(name)}`);
  }

  deleteApp(name: string): Promise<{ name: string; deleted: boolean }> {
    return this.request('DELETE', `apps/${encodeURIComponent(name)}`);
  }

  appHistory(name: string): Promise<AppHistory> {
    return this.request('GET', `apps/${encodeURIComponent(name)}/revisions`);
  }

  /** The value travels once, in the request body; the answer is the name only. */
  setSecret(name: string, value: SecretValue): Promise<{ name: string }> {
    return this.request('PUT', `secrets/${encodeURIComponent(name)}`, value);
  }

  listSecrets(): Promise<List<SecretInfo>> {
    return this.request('GET', 'secrets');
  }

  deleteSecret(name: string): Promise<{ name: string; deleted: boolean }> {
    return this.request('DELETE', `secrets/${encodeURIComponent(name)}`);
  }

  /** Without `toRevision`, the hub rolls back to the revision before the current one. */
  rollbackApp(name: string, toRevision?: number): Promise<RollbackResult> {
    return this.request('POST', `apps/${encodeURIComponent(name)}/rollback`, toRevision === undefined ? {} : { toRevision });
  }

  forceApp(name: string): Promise<{ name: string; revision: number; forced: boolean }> {
    return this.request('POST', `apps/${encodeURIComponent(name)}/force`, {});
  }

  rolloutStatus(name: string): Promise<RolloutStatus> {
    return this.request('GET', `apps/${encodeURIComponent(name)}/rollout`);
  }

  rolloutAction(name: string, action: 'pause' | 'resume' | 'abort'): Promise<RolloutStatus> {
    return this.request('POST', `apps/${encodeURIComponent(name)}/rollout/${action}`, {});
  }

  retryApp(name: string): Promise<{ name: string; revision: number; retryOf: number }> {
    return this.request('POST', `apps/${encodeURIComponent(name)}/retry`, {});
  }

  listDevices(): Promise<List<Device>> {
    return this.request('GET', 'devices');
  }

  getDevice(id: string): Promise<Device> {
    return this.request('GET', `devices/${encodeURIComponent(id)}`);
  }

  patchDeviceLabels(id: string, patch: LabelPatch): Promise<Device> {
    return this.request('PATCH', `devices/${encodeURIComponent(id)}/labels`, patch);
  }

  logs(device: string, query: LogsQuery = {}): Promise<LogsResult> {
    return this.request('GET', `devices/${encodeURIComponent(device)}/logs${queryString(query)}`);
  }

  /**
   * The device's log lines as the hub stores them (after the backlog the
   * query selects), until `signal` aborts — then the iteration just ends — or
   * the hub closes the stream, which throws.
   */
  followLogs(device: string, query: LogsQuery, signal: AbortSignal): AsyncGenerator<LogRecord> {
    return this.follow<LogRecord>(
      `devices/${encodeURIComponent(device)}/logs${queryString({ ...query, follow: true })}`,
      FOLLOW_EVENT.logs,
      signal,
    );
  }

  events(query: EventsQuery = {}): Promise<EventsResult> {
    return this.request('GET', `events${queryString(query)}`);
  }

  followEvents(query: EventsQuery, signal: AbortSignal): AsyncGenerator<EventRecord> {
    return this.follow<EventRecord>(`events${queryString({ ...query, follow: true })}`, FOLLOW_EVENT.events, signal);
  }

  metrics(device: string, query: Omit<TelemetryQuery, 'afterId'> = {}): Promise<MetricsResult> {
    return this.request('GET', `devices/${encodeURIComponent(device)}/metrics${queryString(query)}`);
  }

  top(): Promise<TopResult> {
    return this.request('GET', 'top');
  }

  createToken(request: CreateTokenRequest): Promise<TokenCreated> {
    return this.request('POST', 'tokens', request);
  }

  listTokens(): Promise<List<TokenInfo>> {
    return this.request('GET', 'tokens');
  }

  revokeToken(id: string): Promise<{ id: string; revoked: true }> {
    return this.request('DELETE', `tokens/${encodeURIComponent(id)}`);
  }

  createServiceAccount(name: string, role: Role): Promise<ServiceAccountCreated> {
    return this.request('POST', 'serviceaccounts', { name, role });
  }

  listServiceAccounts(): Promise<List<ServiceAccountInfo>> {
    return this.request('GET', 'serviceaccounts');
  }

  deleteServiceAccount(name: string): Promise<{ name: string; deleted: true }> {
    return this.request('DELETE', `serviceaccounts/${encodeURIComponent(name)}`);
  }

  revokeDevice(id: string): Promise<DeviceRevoked> {
    return this.request('POST', `devices/${encodeURIComponent(id)}/revoke`, {});
  }

  /**
   * Trades a registration token for a device identity. The token is the
   * credential (in the body), so no bearer is sent, and a 401 is about the
   * registration token, not the CLI's: it says so.
   */
  async register(request: RegisterRequest): Promise<Registration> {
    try {
      return await this.request('POST', 'register', request, { bearer: false });
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
    const url = new URL(`api/v1/${path}`, this.base);
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

  private async request<T>(method: string, path: string, body?: unknown, { bearer = true } = {}): Promise<T> {
    const url = new URL(`api/v1/${path}`, this.base);
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
      return parsed as T;
    }
    throw toHubError(status, statusText, parsed, text, bearer && this.token !== undefined);
  }
}

/** `http://host:port[/prefix]`; a trailing `/` is added so API paths resolve under the prefix. */
export function parseHubUrl(hub: string): URL {
  let url: URL;
  try {
    url = new URL(hub);
  } catch {
    throw new UsageError(`invalid hub URL "${hub}": expected e.g. http://127.0.0.1:7070`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`invalid hub URL "${hub}": the HTTP API is served over http:// or https://, not ${url.protocol}//`);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return url;
}

/** The chunks of `body`, calling `touch` as each one arrives. */
async function* touching(body: AsyncIterable<Uint8Array>, touch: () => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    touch();
    yield chunk;
  }
}

/** `?a=1&b=x` from the defined values, or `''` when there are none. */
function queryString(params: object): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
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
    const details = typeof error.details === 'object' && error.details !== null ? (error.details as HubError['details']) : undefined;
    return new HubError(status, typeof error.code === 'string' ? error.code : 'unknown', error.message, sanitizeIssues(details));
  }
  const snippet = text.trim().slice(0, 200);
  return new HubError(status, 'unknown', `the hub answered ${status}${statusText ? ` ${statusText}` : ''}${snippet ? `: ${snippet}` : ''}`);
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
