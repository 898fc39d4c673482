/**
 * Reads an image's download size from its registry, before pulling, so the
 * agent can refuse an update that would fill the device's disk.
 *
 * Invariants:
 * - Only manifests are read (a few KiB each): one request for a plain
 *   manifest, two for a manifest list / OCI index, plus at most one
 *   challenge round trip and one token request. No blob is ever downloaded.
 * - The size is an upper bound on what a pull downloads: layers the engine
 *   already has are skipped by the pull but still counted here.
 * - Every failure leaves this file as a `RegistryError` whose message names
 *   the image; the caller's abort leaves as the caller's `signal.reason`
 *   (as with `fetch`), so "cancelled" stays distinguishable from "failed".
 * - Responses are read with a byte cap: a misbehaving registry cannot make
 *   a 512 MB device buffer an unbounded body.
 */
import { BodyTooLarge, type HttpAnswer, type HttpGet, httpGet } from '../http-get.js';
import { parseImageReference, registryHost } from './docker-runtime.js';

export type RegistryErrorCode =
  /** The registry refused the credentials, or wanted some and none were given. */
  | 'unauthorized'
  /** No such repository, tag or digest, or no manifest for this platform. */
  | 'not_found'
  /** No connection, or no answer within the timeout. */
  | 'unreachable'
  /** The registry answered with something that is not a usable manifest. */
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

export interface Platform {
  os: string;
  architecture: string;
}

export interface ImageDownloadSizeOptions {
  signal?: AbortSignal;
  get?: HttpGet;
  /** Which entry of a manifest list / OCI index to measure. Default: linux and this machine's architecture. */
  platform?: Platform;
  /** For the whole operation (all requests). Default 15 s. */
  timeoutMs?: number;
}

export const DEFAULT_REGISTRY_TIMEOUT_MS = 15_000;

export const MEDIA_TYPES = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const ACCEPT = [MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerList, MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex].join(', ');

/** Manifests are a few KiB; even huge multi-arch indexes stay well under this. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The architecture names Docker uses in manifest lists, for Node's `process.arch`. */
const DOCKER_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

export function localPlatform(): Platform {
  return { os: 'linux', architecture: DOCKER_ARCH[process.arch] ?? process.arch };
}

/** Where a reference's manifests live. */
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

interface Descriptor {
  mediaType?: string;
  digest?: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

interface ManifestBody {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/**
 * The bytes a pull of `image` downloads at most: the sizes of its layers
 * plus its config blob, from the registry's manifest (for a manifest list,
 * the entry for `options.platform`).
 */
export async function imageDownloadSize(
  image: string,
  auth: RegistryAuthInput | undefined,
  options: ImageDownloadSizeOptions = {},
): Promise<number> {
  const location = manifestLocation(image);
  const timeoutMs = options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const session = new Session(image, location, auth, options.get ?? httpGet, signal, options.signal, timeoutMs);

  const platform = options.platform ?? localPlatform();
  let manifest = await session.manifest(location.reference);
  // An index may in principle point at another index; two hops is plenty.
  for (let hop = 0; Array.isArray(manifest.manifests) && hop < 2; hop++) {
    const entry = pickPlatform(manifest.manifests, platform);
    if (!entry) {
      const available = manifest.manifests
        .map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}`)
        .filter((p) => p !== 'unknown/unknown');
      throw session.fail(
        'not_found',
        `no manifest for ${platform.os}/${platform.architecture} in the manifest list (available: ${available.join(', ') || 'none'})`,
      );
    }
    manifest = await session.manifest(entry.digest);
  }
  return sumSizes(manifest, session);
}

/** First entry for the OS and architecture; the variant (arm v6/v7…) is ignored on purpose. */
function pickPlatform(entries: Descriptor[], platform: Platform): (Descriptor & { digest: string }) | undefined {
  return entries.find(
    (m): m is Descriptor & { digest: string } =>
      typeof m.digest === 'string' && m.platform?.os === platform.os && m.platform?.architecture === platform.architecture,
  );
}

function sumSizes(manifest: ManifestBody, session: Session): number {
  if (manifest.schemaVersion === 1) throw session.fail('bad_response', 'the registry served a schema 1 manifest, which carries no sizes');
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw session.fail('bad_response', 'the manifest has no config or layers');
  }
  let total = 0;
  for (const blob of [manifest.config, ...manifest.layers]) {
    const size = blob?.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw session.fail('bad_response', `the manifest lists a blob without a valid size (${blob?.digest ?? 'no digest'})`);
    }
    total += size;
  }
  return total;
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

/** The requests of one `imageDownloadSize` call, sharing one credential once the registry has asked for it. */
class Session {
  private authorization: string | undefined;

  constructor(
    private readonly image: string,
    private readonly location: ManifestLocation,
    private readonly auth: RegistryAuthInput | undefined,
    private readonly get: HttpGet,
    private readonly signal: AbortSignal,
    private readonly callerSignal: AbortSignal | undefined,
    private readonly timeoutMs: number,
  ) {}

  fail(code: RegistryErrorCode, detail: string, options: { cause?: unknown; statusCode?: number } = {}): RegistryError {
    return new RegistryError(code, this.image, `cannot read the manifest of ${this.image}: ${detail}`, options);
  }

  async manifest(reference: string): Promise<ManifestBody> {
    const { scheme, host, repository } = this.location;
    const url = `${scheme}://${host}/v2/${repository}/manifests/${reference}`;
    let res = await this.request(url, { accept: ACCEPT });
    if (res.status === 401) {
      const challenge = res.header('www-authenticate');
      res.discard();
      this.authorization = await this.answer(challenge);
      res = await this.request(url, { accept: ACCEPT });
    }
    const text = await this.body(res);
    if (!res.ok) throw this.httpFailure(res.status, text);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw this.fail('bad_response', `${res.status} answer is not JSON`, { cause: err, statusCode: res.status });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw this.fail('bad_response', `${res.status} answer is not a manifest object`, { statusCode: res.status });
    }
    return parsed as ManifestBody;
  }

  /** The Authorization header that answers a 401's challenge. */
  private async answer(header: string | undefined): Promise<string> {
    const challenge = header ? parseChallenge(header) : undefined;
    if (challenge?.scheme === 'basic') {
      if (!this.auth) throw this.fail('unauthorized', '401 the registry requires credentials and none were given', { statusCode: 401 });
      return this.basic();
    }
    if (challenge?.scheme === 'bearer' && challenge.params.realm) return `Bearer ${await this.token(challenge.params)}`;
    throw this.fail('unauthorized', `401 with an unsupported challenge (${header ?? 'no WWW-Authenticate header'})`, {
      statusCode: 401,
    });
  }

  /** Token-server flow (docker/distribution "token authentication"); anonymous when no credentials are given. */
  private async token(params: Record<string, string>): Promise<string> {
    let url: URL;
    try {
      url = new URL(params.realm!);
    } catch (err) {
      throw this.fail('bad_response', `the token realm ${JSON.stringify(params.realm)} is not a URL`, { cause: err });
    }
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? `repository:${this.location.repository}:pull`);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.auth) headers.authorization = this.basic();
    const res = await this.request(url.toString(), headers, `token server ${url.host}`);
    const text = await this.body(res);
    if (res.status === 401 || res.status === 403) {
      throw this.fail('unauthorized', `the token server ${url.host} refused: ${res.status} ${errorText(text, res.statusText)}`, {
        statusCode: res.status,
      });
    }
    if (!res.ok) {
      throw this.fail('bad_response', `the token server ${url.host} answered ${res.status} ${errorText(text, res.statusText)}`, {
        statusCode: res.status,
      });
    }
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (err) {
      throw this.fail('bad_response', `the token server ${url.host} answered with something that is not JSON`, { cause: err });
    }
    const token = typeof body?.token === 'string' && body.token ? body.token : body?.access_token;
    if (typeof token !== 'string' || token === '') throw this.fail('bad_response', `the token server ${url.host} returned no token`);
    return token;
  }

  private basic(): string {
    const { username, password = '' } = this.auth!;
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  private async request(url: string, headers: Record<string, string>, target = `registry ${this.location.host}`): Promise<HttpAnswer> {
    const withAuth = this.authorization && !headers.authorization ? { ...headers, authorization: this.authorization } : headers;
    try {
      return await this.get(url, { headers: withAuth, signal: this.signal });
    } catch (err) {
      throw this.networkFailure(err, target);
    }
  }

  private async body(res: HttpAnswer): Promise<string> {
    try {
      return await res.text(MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        throw this.fail('bad_response', `${res.status} answer exceeds ${MAX_BODY_BYTES} bytes`, { statusCode: res.status });
      }
      throw this.networkFailure(err, `registry ${this.location.host}`);
    }
  }

  private networkFailure(err: unknown, target: string): unknown {
    if (this.callerSignal?.aborted) return this.callerSignal.reason;
    if (this.signal.aborted) {
      return this.fail('unreachable', `${target} did not answer within ${formatSeconds(this.timeoutMs)}`, { cause: err });
    }
    return this.fail('unreachable', `${target} unreachable (${networkReason(err)})`, { cause: err });
  }

  private httpFailure(status: number, text: string): RegistryError {
    const detail = `${status} ${errorText(text, '')}`.trim();
    const code: RegistryErrorCode = status === 401 || status === 403 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_response';
    return this.fail(code, detail, { statusCode: status });
  }
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
function networkReason(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  const inner = cause instanceof Error ? cause : err instanceof Error ? err : undefined;
  if (!inner) return String(err);
  const code = (inner as { code?: unknown }).code;
  return typeof code === 'string' && !inner.message.includes(code) ? `${code}: ${inner.message}` : inner.message;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
