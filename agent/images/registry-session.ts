/**
 * One image's conversation with its registry (Docker Registry HTTP API v2):
 * where its manifests and blobs live, the credential the registry asked for,
 * and what each failure means. The disk check (runtime/registry-client.ts)
 * reads manifests through it; the agent's own download (resolve-image.ts,
 * download-blobs.ts) reads manifests and blobs through the same session, so
 * one token serves them all.
 *
 * Invariants:
 * - A 401 is answered once per request with the challenge it carries (Basic
 *   with the given credentials, or a Bearer token from the realm); the
 *   answer is kept for the session's later requests, and a later 401 (an
 *   expired token) is answered again.
 * - Every failure leaves as a `RegistryError` whose message names the image
 *   (and the blob); an abort of the signal a call was given leaves as that
 *   signal's reason, except a `deadline()` running out, which is the
 *   registry not answering (`unreachable`).
 * - Whole bodies (manifests, tokens, error texts) are read with a byte cap;
 *   a blob's body is handed over as a stream, never buffered here.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BodyTooLarge, type HttpAnswer, type HttpGet, httpGet } from '../http-get.js';
import { parseImageReference, registryHost } from '../runtime/docker-runtime.js';

export type RegistryErrorCode =
  /** The registry refused the credentials, or wanted some and none were given. */
  | 'unauthorized'
  /** No such repository, tag, digest or blob, or no manifest for this platform. */
  | 'not_found'
  /** No connection, or no answer within the timeout. */
  | 'unreachable'
  /** The registry answered with something unusable: not a manifest, an unexpected status, a mismatching digest. */
  | 'bad_response';

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly code: RegistryErrorCode;
  /** The image reference as the caller gave it. */
  readonly image: string;
  /** The registry's HTTP status, when there was one. */
  readonly statusCode: number | undefined;

  constructor(code: RegistryErrorCode, image: string, message: string, options: { cause?: unknown; statusCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.image = image;
    this.statusCode = options.statusCode;
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}

export interface RegistryAuthInput {
  username: string;
  password?: string;
}

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const ACCEPT = [MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex].join(', ');

/** Manifests are a few KiB; even huge multi-arch indexes stay well under this. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The only digest form the agent accepts: it names files in the content store, so nothing else may pass. */
export const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Where a reference's manifests and blobs live. */
export interface ManifestLocation {
  /** What to connect to: Docker Hub's API host for hub images, else the reference's host. */
  host: string;
  /** `library/nginx`, `flotilla-test/web`. */
  repository: string;
  /** Tag or digest; a digest wins when both are given, as in the engine. */
  reference: string;
  scheme: 'http' | 'https';
}

export function manifestLocation(image: string): ManifestLocation {
  const ref = parseImageReference(image);
  const host = registryHost(image);
  let repository: string;
  if (host === 'docker.io') {
    // parseImageReference already dropped "docker.io/" and "library/".
    repository = ref.name.includes('/') ? ref.name : `library/${ref.name}`;
  } else {
    repository = ref.name.slice(host.length + 1);
  }
  const apiHost = host === 'docker.io' ? 'registry-1.docker.io' : host;
  return { host: apiHost, repository, reference: ref.digest ?? ref.tag ?? 'latest', scheme: isLoopback(apiHost) ? 'http' : 'https' };
}

/** Docker pulls from loopback registries over plain HTTP by default; everything else gets TLS. */
function isLoopback(host: string): boolean {
  let hostname: string;
  if (host.startsWith('[')) hostname = host.slice(1, host.indexOf(']'));
  else hostname = host.split(':')[0] ?? host;
  return hostname === 'localhost' || hostname === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

export interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ManifestBody {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export interface Manifest {
  body: ManifestBody;
  /** `sha256:` of the bytes served: what `repository@digest` names. */
  digest: string;
}

/** A blob's body as the registry (or the storage it redirected to) sends it. */
export interface BlobAnswer {
  /** 200 (the whole blob) or 206 (from the offset asked for). */
  status: number;
  /** Where in the blob the body starts: the offset asked for, or 0 when the registry ignored Range. */
  start: number;
  /** Whether the body starts at the offset asked for (always, for offset 0). */
  rangeHonoured: boolean;
  /** The body's Content-Length, when declared. */
  length: number | undefined;
  body: Readable;
}

/** The abort reason of `deadline()`: the registry took longer than the caller allows. */
export class RegistryTimeout extends Error {
  override readonly name = 'RegistryTimeout';
  constructor(readonly ms: number) {
    super(`no answer within ${formatSeconds(ms)}`);
  }
}

/**
 * A signal for a bounded registry operation (manifests, tokens): aborts with a `RegistryTimeout`
 * after `ms`, or with the caller's reason when the caller aborts first.
 */
export function deadline(caller: AbortSignal | undefined, ms: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new RegistryTimeout(ms)), ms);
  timer.unref();
  return caller ? AbortSignal.any([caller, controller.signal]) : controller.signal;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="https://x/token",service="reg",scope="repository:a/b:pull,push"` → scheme + params. */
export function parseChallenge(header: string): Challenge {
  const trimmed = header.trim();
  const space = trimmed.indexOf(' ');
  const scheme = (space < 0 ? trimmed : trimmed.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  const rest = space < 0 ? '' : trimmed.slice(space + 1);
  for (const match of rest.matchAll(/([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    const key = match[1]!.toLowerCase();
    params[key] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '');
  }
  return { scheme, params };
}

export interface RegistrySessionOptions {
  get?: HttpGet;
}

/** What a request is for, in the words of its errors: `cannot read <subject>: <detail>`. */
type Subject = string;

/** The requests for one image, sharing one credential once the registry has asked for it. */
export class RegistrySession {
  readonly location: ManifestLocation;
  private readonly get: HttpGet;
  private authorization: string | undefined;

  constructor(
    readonly image: string,
    private readonly auth: RegistryAuthInput | undefined,
    options: RegistrySessionOptions = {},
  ) {
    this.location = manifestLocation(image);
    this.get = options.get ?? httpGet;
  }

  /** A failure reading the image's manifest: `cannot read the manifest of <image>: <detail>`. */
  fail(code: RegistryErrorCode, detail: string, options: { cause?: unknown; statusCode?: number } = {}): RegistryError {
    return this.failure(this.manifestSubject(), code, detail, options);
  }

  /** The manifest (or list / index) at `reference`, a tag or a digest; a digest must match the bytes served. */
  async manifest(reference: string, signal: AbortSignal): Promise<Manifest> {
    const subject = this.manifestSubject();
    const { scheme, host, repository } = this.location;
    const res = await this.authorized(`${scheme}://${host}/v2/${repository}/manifests/${reference}`, { accept: ACCEPT }, subject, signal);
    const bytes = await this.body(res, subject, signal);
    if (!res.ok) throw this.httpFailure(subject, res.status, bytes.toString('utf8'));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw this.failure(subject, 'bad_response', `the manifest served for ${reference} has the digest ${digest}`, {
        statusCode: res.status,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw this.failure(subject, 'bad_response', `${res.status} answer is not JSON`, { cause: err, statusCode: res.status });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw this.failure(subject, 'bad_response', `${res.status} answer is not a manifest object`, { statusCode: res.status });
    }
    return { body: parsed as ManifestBody, digest };
  }

  /**
   * A blob's body from byte `offset` on (`Range: bytes=<offset>-`, asked only when offset > 0).
   * Redirects to storage are followed. The caller reads or destroys `body`; aborting `signal`
   * ends the request and errors the body. 401/403/404 and any other non-2xx status are
   * RegistryErrors (`statusCode` set); a 206 that starts elsewhere than `offset` is bad_response.
   */
  async blob(digest: string, offset: number, signal: AbortSignal): Promise<BlobAnswer> {
    const subject = `blob ${digest} of ${this.image}`;
    if (!SHA256_DIGEST.test(digest)) throw this.failure(subject, 'bad_response', 'the digest is not sha256:<64 hex digits>');
    const { scheme, host, repository } = this.location;
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.authorized(`${scheme}://${host}/v2/${repository}/blobs/${digest}`, headers, subject, signal);
    if (res.status !== 200 && res.status !== 206) {
      let text = '';
      try {
        text = (await res.bytes(MAX_BODY_BYTES)).toString('utf8');
      } catch (err) {
        // The status says what went wrong; an error page too long or cut short adds nothing.
        if (signal.aborted) throw this.networkFailure(err, subject, `registry ${host}`, signal);
      }
      throw this.httpFailure(subject, res.status, text);
    }
    const start = res.status === 206 ? rangeStart(res.header('content-range')) : 0;
    if (start === undefined || (res.status === 206 && start !== offset)) {
      res.discard();
      throw this.failure(
        subject,
        'bad_response',
        `206 to a request from byte ${offset} with Content-Range ${JSON.stringify(res.header('content-range') ?? '')}`,
        { statusCode: 206 },
      );
    }
    const declared = Number(res.header('content-length'));
    return {
      status: res.status,
      start,
      rangeHonoured: start === offset,
      length: res.header('content-length') !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined,
      body: res.stream(),
    };
  }

  private manifestSubject(): Subject {
    return `the manifest of ${this.image}`;
  }

  private failure(subject: Subject, code: RegistryErrorCode, detail: string, options: { cause?: unknown; statusCode?: number } = {}) {
    return new RegistryError(code, this.image, `cannot read ${subject}: ${detail}`, options);
  }

  /** GET with the session's credential; a 401 is answered with its challenge and the request made once more. */
  private async authorized(url: string, headers: Record<string, string>, subject: Subject, signal: AbortSignal): Promise<HttpAnswer> {
    let res = await this.request(url, headers, subject, signal);
    if (res.status === 401) {
      const challenge = res.header('www-authenticate');
      res.discard();
      this.authorization = await this.answer(challenge, subject, signal);
      res = await this.request(url, headers, subject, signal);
    }
    return res;
  }

  /** The Authorization header that answers a 401's challenge. */
  private async answer(header: string | undefined, subject: Subject, signal: AbortSignal): Promise<string> {
    const challenge = header ? parseChallenge(header) : undefined;
    if (challenge?.scheme === 'basic') {
      if (!this.auth) {
        throw this.failure(subject, 'unauthorized', '401 the registry requires credentials and none were given', { statusCode: 401 });
      }
      return this.basic();
    }
    if (challenge?.scheme === 'bearer' && challenge.params.realm) return `Bearer ${await this.token(challenge.params, subject, signal)}`;
    throw this.failure(subject, 'unauthorized', `401 with an unsupported challenge (${header ?? 'no WWW-Authenticate header'})`, {
      statusCode: 401,
    });
  }

  /** Token-server flow (docker/distribution "token authentication"); anonymous when no credentials are given. */
  private async token(params: Record<string, string>, subject: Subject, signal: AbortSignal): Promise<string> {
    let url: URL;
    try {
      url = new URL(params.realm!);
    } catch (err) {
      throw this.failure(subject, 'bad_response', `the token realm ${JSON.stringify(params.realm)} is not a URL`, { cause: err });
    }
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.location.repository}:pull`);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.auth) headers.authorization = this.basic();
    const target = `token server ${url.host}`;
    const res = await this.request(url.toString(), headers, subject, signal, target);
    const text = (await this.body(res, subject, signal, target)).toString('utf8');
    if (res.status === 401 || res.status === 403) {
      throw this.failure(
        subject,
        'unauthorized',
        `the token server ${url.host} refused: ${res.status} ${errorText(text, res.statusText)}`,
        {
          statusCode: res.status,
        },
      );
    }
    if (!res.ok) {
      throw this.failure(
        subject,
        'bad_response',
        `the token server ${url.host} answered ${res.status} ${errorText(text, res.statusText)}`,
        {
          statusCode: res.status,
        },
      );
    }
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (err) {
      throw this.failure(subject, 'bad_response', `the token server ${url.host} answered with something that is not JSON`, { cause: err });
    }
    const token = typeof body?.token === 'string' && body.token ? body.token : body?.access_token;
    if (typeof token !== 'string' || token === '')
      throw this.failure(subject, 'bad_response', `the token server ${url.host} returned no token`);
    return token;
  }

  private basic(): string {
    const { username, password = '' } = this.auth!;
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  private async request(
    url: string,
    headers: Record<string, string>,
    subject: Subject,
    signal: AbortSignal,
    target = `registry ${this.location.host}`,
  ): Promise<HttpAnswer> {
    const withAuth = this.authorization && !headers.authorization ? { ...headers, authorization: this.authorization } : headers;
    try {
      return await this.get(url, { headers: withAuth, signal });
    } catch (err) {
      throw this.networkFailure(err, subject, target, signal);
    }
  }

  private async body(res: HttpAnswer, subject: Subject, signal: AbortSignal, target = `registry ${this.location.host}`): Promise<Buffer> {
    try {
      return await res.bytes(MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        throw this.failure(subject, 'bad_response', `${res.status} answer exceeds ${MAX_BODY_BYTES} bytes`, { statusCode: res.status });
      }
      throw this.networkFailure(err, subject, target, signal);
    }
  }

  private networkFailure(err: unknown, subject: Subject, target: string, signal: AbortSignal): unknown {
    if (signal.aborted) {
      if (!(signal.reason instanceof RegistryTimeout)) return signal.reason;
      return this.failure(subject, 'unreachable', `${target} did not answer within ${formatSeconds(signal.reason.ms)}`, { cause: err });
    }
    return this.failure(subject, 'unreachable', `${target} unreachable (${networkReason(err)})`, { cause: err });
  }

  private httpFailure(subject: Subject, status: number, text: string): RegistryError {
    const detail = `${status} ${errorText(text, '')}`.trim();
    const code: RegistryErrorCode = status === 401 || status === 403 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_response';
    return this.failure(subject, code, detail, { statusCode: status });
  }
}

/** `bytes 100-1064336/1064337` → 100. */
function rangeStart(header: string | undefined): number | undefined {
  const match = header === undefined ? null : /^bytes ([0-9]+)-/.exec(header.trim());
  return match ? Number(match[1]) : undefined;
}

/** Registry errors are `{errors:[{code, message, detail}]}` (distribution spec); fall back to a short text. */
function errorText(text: string, fallback: string): string {
  try {
    const body = JSON.parse(text) as { errors?: { message?: unknown; code?: unknown }[]; error?: unknown; details?: unknown };
    if (Array.isArray(body.errors)) {
      const messages = body.errors.map((e) => (typeof e.message === 'string' && e.message ? e.message : String(e.code ?? '')));
      const joined = messages.filter((m) => m !== '').join('; ');
      if (joined) return joined;
    }
    if (typeof body.error === 'string' && body.error) return body.error;
    if (typeof body.details === 'string' && body.details) return body.details;
  } catch {
    // not JSON: use the text itself
  }
  const short = text.trim().replace(/\s+/g, ' ').slice(0, 200);
  return short || fallback;
}

/** A socket error's code and message (a wrapped one's, from `cause`): "request failed" alone tells an operator nothing. */
export function networkReason(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  const inner = cause instanceof Error ? cause : err instanceof Error ? err : undefined;
  if (!inner) return String(err);
  const code = (inner as { code?: unknown }).code;
  return typeof code === 'string' && !inner.message.includes(code) ? `${code}: ${inner.message}` : inner.message;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
