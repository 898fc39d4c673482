/**
 * A small Docker Engine API client over node:http: the dozen endpoints the
 * agent uses, and nothing else.
 *
 * Why not dockerode: loading it costs the agent ~27 MiB of its ~88 MiB RSS
 * (measured: a bare `node` process 43 MiB, after `import('dockerode')` 70 MiB),
 * because it pulls in @grpc/grpc-js and protobufjs (BuildKit sessions) and,
 * through docker-modem, ssh2 with a 16 MiB WebAssembly memory for Poly1305 —
 * none of which a device's agent ever calls. See BENCHMARKS.md, "Footprint".
 *
 * Errors carry `statusCode` and the engine's `json` body, the shape
 * errors.ts reads (dockerode's, so the seam's error mapping is unchanged).
 * Paths are unversioned, as dockerode's are: the engine serves its own API
 * version.
 *
 * The engine is found like the docker CLI finds it: `DOCKER_HOST`
 * (unix:///path, tcp://host:port, http:// or https://), TLS for tcp:// when
 * `DOCKER_TLS_VERIFY` is set (ca.pem, cert.pem, key.pem from
 * `DOCKER_CERT_PATH`, default ~/.docker), else /var/run/docker.sock.
 * ssh:// is not supported: the agent runs on the device it drives.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ContainerCreateOptions, ContainerInfo, ContainerInspectInfo, ImageInspectInfo } from 'dockerode';

/** An engine answer of 300 or more (304 included: "already started/stopped"), shaped as errors.ts expects. */
export class EngineError extends Error {
  override readonly name = 'EngineError';

  constructor(
    readonly statusCode: number,
    readonly json: unknown,
    what: string,
  ) {
    const message =
      typeof (json as { message?: unknown } | null)?.message === 'string' ? (json as { message: string }).message : String(json ?? '');
    super(`${what}: (HTTP code ${statusCode}) ${message}`.trim());
  }
}

export interface EngineEndpoint {
  protocol: 'http' | 'https';
  /** A unix socket, or host and port. */
  socketPath?: string;
  host?: string;
  port?: number;
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
}

/** Where the engine listens, from `DOCKER_HOST` and friends (see the file header). */
export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  const host = env.DOCKER_HOST;
  if (host === undefined || host === '') return { protocol: 'http', socketPath: '/var/run/docker.sock' };
  const url = new URL(host);
  if (url.protocol === 'unix:') return { protocol: 'http', socketPath: url.pathname };
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    const tlsVerify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '' && env.DOCKER_TLS_VERIFY !== '0';
    const https = url.protocol === 'https:' || (url.protocol === 'tcp:' && tlsVerify);
    const port = url.port === '' ? (https ? 2376 : 2375) : Number(url.port);
    if (!https) return { protocol: 'http', host: url.hostname, port };
    const dir = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
    const tls = tlsVerify
      ? { ca: readFileSync(join(dir, 'ca.pem')), cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }
      : undefined;
    return { protocol: 'https', host: url.hostname, port, ...(tls ? { tls } : {}) };
  }
  throw new Error(`DOCKER_HOST=${host}: the agent speaks to a local engine over unix://, tcp://, http:// or https:// only`);
}

type Query = Record<string, string | number | boolean | undefined>;

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  path: string;
  query?: Query;
  /** JSON, or raw bytes (a tar archive). */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Give up after this long without an answer. */
  timeoutMs?: number;
  /** An agent of the caller's own (no keep-alive, say). */
  agent?: HttpAgent;
}

export class EngineClient {
  private readonly endpoint: EngineEndpoint;
  /** Keep-alive: the agent talks to the engine every few seconds, over the same few sockets. */
  private readonly agent: HttpAgent;

  constructor(endpoint: EngineEndpoint = engineEndpoint()) {
    this.endpoint = endpoint;
    this.agent = this.newAgent(true);
  }

  info(): Promise<{ ServerVersion?: unknown; DockerRootDir?: unknown }> {
    return this.json({ method: 'GET', path: '/info' });
  }

  /**
   * GET /_ping on a connection of its own that is closed afterwards: a pooled
   * one could be a socket a shutting-down engine still answers on.
   */
  async pingFresh(timeoutMs: number): Promise<void> {
    const agent = this.newAgent(false);
    try {
      const res = await this.call({ method: 'GET', path: '/_ping', agent, timeoutMs });
      res.resume();
    } finally {
      agent.destroy();
    }
  }

  listContainers(filters: Record<string, string[]>): Promise<ContainerInfo[]> {
    return this.json({ method: 'GET', path: '/containers/json', query: { all: true, filters: JSON.stringify(filters) } });
  }

  inspectContainer(id: string): Promise<ContainerInspectInfo> {
    return this.json({ method: 'GET', path: `/containers/${enc(id)}/json` });
  }

  /** Creates the container; the name goes in the query, everything else in the body. */
  async createContainer(options: ContainerCreateOptions): Promise<string> {
    const { name, platform, ...body } = options as ContainerCreateOptions & { platform?: string };
    const created = await this.json<{ Id: string }>({ method: 'POST', path: '/containers/create', query: { name, platform }, body });
    return created.Id;
  }

  async startContainer(id: string): Promise<void> {
    await this.empty({ method: 'POST', path: `/containers/${enc(id)}/start` });
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    // The engine waits up to t seconds before killing: the request must not time out before that.
    await this.empty({ method: 'POST', path: `/containers/${enc(id)}/stop`, query: { t: timeoutSeconds } });
  }

  async removeContainer(id: string, options: { force: boolean; volumes: boolean }): Promise<void> {
    await this.empty({ method: 'DELETE', path: `/containers/${enc(id)}`, query: { force: options.force, v: options.volumes } });
  }

  async renameContainer(id: string, name: string): Promise<void> {
    await this.empty({ method: 'POST', path: `/containers/${enc(id)}/rename`, query: { name } });
  }

  async updateContainer(id: string, body: object): Promise<void> {
    await this.empty({ method: 'POST', path: `/containers/${enc(id)}/update`, body });
  }

  containerStats(id: string): Promise<unknown> {
    return this.json({ method: 'GET', path: `/containers/${enc(id)}/stats`, query: { stream: false, 'one-shot': true } });
  }

  /** Whether `path` exists in the container's filesystem (HEAD /archive). */
  async pathExists(id: string, path: string): Promise<boolean> {
    try {
      await this.empty({ method: 'HEAD', path: `/containers/${enc(id)}/archive`, query: { path } });
      return true;
    } catch (err) {
      if (err instanceof EngineError && err.statusCode === 404) return false;
      throw err;
    }
  }

  /** Unpacks a tar archive into the container at `path`. */
  async putArchive(id: string, path: string, tar: Buffer): Promise<void> {
    await this.empty({
      method: 'PUT',
      path: `/containers/${enc(id)}/archive`,
      query: { path },
      body: tar,
      headers: { 'content-type': 'application/x-tar' },
    });
  }

  /** The multiplexed (or, for a TTY container, raw) log stream. */
  containerLogs(id: string, query: Query): Promise<IncomingMessage> {
    return this.call({ method: 'GET', path: `/containers/${enc(id)}/logs`, query });
  }

  inspectImage(image: string): Promise<ImageInspectInfo> {
    return this.json({ method: 'GET', path: `/images/${encodeURI(image)}/json` });
  }

  async removeImage(image: string): Promise<void> {
    await this.empty({ method: 'DELETE', path: `/images/${encodeURI(image)}` });
  }

  async disconnectNetwork(network: string, container: string): Promise<void> {
    await this.empty({ method: 'POST', path: `/networks/${enc(network)}/disconnect`, body: { Container: container } });
  }

  /**
   * POST /images/create: the answer is a stream of JSON progress lines, and
   * a pull that fails after the 200 reports it as a line with `error`.
   */
  pull(image: string, auth: object | undefined, signal: AbortSignal): Promise<IncomingMessage> {
    const { repository, tag } = splitRepositoryTag(image);
    return this.call({
      method: 'POST',
      path: '/images/create',
      query: { fromImage: repository, tag },
      ...(auth ? { headers: { 'x-registry-auth': registryAuthHeader(auth) } } : {}),
      signal,
    });
  }

  /** GET /events: one JSON object per line, for as long as the engine runs. */
  events(filters: Record<string, string[]>): Promise<IncomingMessage> {
    return this.call({ method: 'GET', path: '/events', query: { filters: JSON.stringify(filters) } });
  }

  /** Closes the pooled connections. */
  close(): void {
    this.agent.destroy();
  }

  private newAgent(keepAlive: boolean): HttpAgent {
    const { protocol, tls } = this.endpoint;
    return protocol === 'https' ? new HttpsAgent({ keepAlive, ...(tls ?? {}) }) : new HttpAgent({ keepAlive });
  }

  private async json<T>(call: Call): Promise<T> {
    const res = await this.call(call);
    return JSON.parse((await readBody(res)).toString('utf8')) as T;
  }

  private async empty(call: Call): Promise<void> {
    const res = await this.call(call);
    res.resume();
  }

  /** Resolves with the response once its status is below 300; otherwise rejects with the engine's message. */
  private call(call: Call): Promise<IncomingMessage> {
    const what = `${call.method} ${call.path}`;
    const { socketPath, host, port, protocol } = this.endpoint;
    const raw = Buffer.isBuffer(call.body);
    const body = call.body === undefined ? undefined : raw ? (call.body as Buffer) : Buffer.from(JSON.stringify(call.body));
    const headers: Record<string, string | number> = { ...call.headers };
    if (body !== undefined) {
      headers['content-length'] = body.length;
      headers['content-type'] ??= 'application/json';
    }
    const options: RequestOptions = {
      method: call.method,
      path: call.path + queryString(call.query),
      headers,
      agent: call.agent ?? this.agent,
      ...(socketPath !== undefined ? { socketPath } : { host, port }),
      ...(call.signal ? { signal: call.signal } : {}),
      ...(call.timeoutMs !== undefined ? { timeout: call.timeoutMs } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (protocol === 'https' ? httpsRequest : httpRequest)(options, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 300) {
          resolve(res);
          return;
        }
        readBody(res).then((buf) => reject(new EngineError(status, parseBody(buf), what)), reject);
      });
      req.once('timeout', () => req.destroy(new Error(`${what}: no answer from the engine within ${call.timeoutMs} ms`)));
      req.once('error', reject);
      req.end(body);
    });
  }
}

/**
 * URL-safe base64 *with* padding: the engine (20.10) decodes with Go's
 * base64.URLEncoding, which requires the padding Node's 'base64url' leaves out.
 */
export function registryAuthHeader(auth: object): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function queryString(query: Query | undefined): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

function readBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', reject);
  });
}

function parseBody(buf: Buffer): unknown {
  const text = buf.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * "host:5000/web:v1" → fromImage "host:5000/web", tag "v1"; a digest is the
 * tag parameter too ("web@sha256:…" → "web", "sha256:…"); neither → "latest"
 * (an empty tag would pull every tag of the repository).
 */
export function splitRepositoryTag(image: string): { repository: string; tag: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { repository: image.slice(0, at), tag: image.slice(at + 1) };
  const colon = image.lastIndexOf(':');
  // A colon before the last "/" belongs to a registry port, not a tag.
  if (colon > image.lastIndexOf('/')) return { repository: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { repository: image, tag: 'latest' };
}

/**
 * Splits the engine's multiplexed stream (8-byte frame headers: stream type,
 * three zero bytes, payload length big-endian) into stdout and stderr
 * payloads, handled synchronously as each frame completes. A frame whose
 * type is not 0, 1 or 2 means the stream is not multiplexed after all: from
 * there on everything goes to stdout as it comes.
 */
export function demuxFrames(stream: Readable, onStdout: (chunk: Buffer) => void, onStderr: (chunk: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  let raw = false;
  stream.on('data', (chunk: Buffer) => {
    if (raw) {
      onStdout(chunk);
      return;
    }
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const type = pending[0];
      if (type !== 0 && type !== 1 && type !== 2) {
        raw = true;
        onStdout(pending);
        pending = Buffer.alloc(0);
        return;
      }
      const length = pending.readUInt32BE(4);
      if (pending.length < 8 + length) break;
      const payload = pending.subarray(8, 8 + length);
      pending = pending.subarray(8 + length);
      if (type === 2) onStderr(payload);
      else onStdout(payload);
    }
  });
}
