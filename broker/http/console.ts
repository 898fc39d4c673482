/**
 * The web console (broker/console/web/, built into dist/console/ by
 * broker/console/build.mjs), served by the hub itself so it works offline on
 * a plant network with nothing but the hub:
 *
 *   GET /, GET /console/         index.html (no-cache, with the console's Content-Security-Policy)
 *   GET /console                 redirect to /console/
 *   GET /console/assets/NAME     a hashed script, style or chunk: immutable, gzip or brotli when accepted
 *   GET /console/hub.json        {keyRequired}: whether the page must ask for an API key before calling the API
 *
 * HEAD answers the same headers. Only names read from the build's folder are
 * served (the URL is a key into that listing, never a path to open). The page
 * holds no credentials (the operator types an API key, kept in session
 * storage), so every file is public even where the API requires a key.
 *
 * Assets carry their content hash in their name, so each is read and
 * compressed once and kept for the hub's life; index.html names the current
 * assets, so it is checked against its modification time on every request
 * and a rebuilt console is served without restarting the hub.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib';
import { packageRoot } from '../../shared/version.js';
import type { RawRoute } from './server.js';

export const CONSOLE_CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
};
/** Already compressed (fonts, images) or too small to gain: sent as they are. */
const COMPRESSIBLE = new Set(['.html', '.js', '.css', '.txt', '.json', '.svg']);
const MIN_COMPRESS_BYTES = 256;

type Encoding = 'br' | 'gzip' | 'identity';

interface Prepared {
  type: string;
  etag: string;
  bodies: Partial<Record<Encoding, Buffer>> & { identity: Buffer };
}

/** dist/console under the package root: where a checkout's build and the installed release keep it. */
export function consoleDir(): string | undefined {
  const root = packageRoot();
  return root && join(root, 'dist/console');
}

export interface ConsoleHub {
  /** False on a hub that lets anonymous clients in: the page then opens without asking for a key. */
  keyRequired: boolean;
}

export function consoleRoutes(hub: ConsoleHub, dir: string | undefined = consoleDir()): RawRoute[] {
  const files = consoleFiles(dir);
  const index = async (req: IncomingMessage, res: ServerResponse) => {
    const file = await files.index();
    if (!file) return sendUnbuilt(req, res);
    // No framing: the page has destructive buttons a framing page could trick a click onto.
    sendPrepared(req, res, file, { 'cache-control': 'no-cache', 'content-security-policy': CONSOLE_CSP, 'x-frame-options': 'DENY' });
  };
  const asset = async (req: IncomingMessage, res: ServerResponse, match: RegExpMatchArray) => {
    const file = await files.asset(match[1]!);
    if (!file) return sendText(req, res, 404, 'not found\n');
    sendPrepared(req, res, file, { 'cache-control': 'public, max-age=31536000, immutable' });
  };
  return (['GET', 'HEAD'] as const).flatMap((method): RawRoute[] => [
    { method, pattern: /^\/(?:console\/)?$/, public: true, handle: index },
    {
      method,
      pattern: /^\/console$/,
      public: true,
      handle(_req, res) {
        res.writeHead(308, { location: '/console/', 'content-length': 0 }).end();
      },
    },
    { method, pattern: /^\/console\/assets\/([^/]+)$/, public: true, handle: asset },
    {
      // Asked before the API is: a probe of whoami without a key would be a 401 in the
      // browser's console on every hub that requires one.
      method,
      pattern: /^\/console\/hub\.json$/,
      public: true,
      handle(req, res) {
        sendText(req, res, 200, `${JSON.stringify(hub)}\n`, 'application/json');
      },
    },
  ]);
}

/** The build's files, prepared (read, hashed, compressed) on first request. */
function consoleFiles(dir: string | undefined) {
  const assets = new Map<string, Promise<Prepared>>();
  let index: { mtimeMs: number; size: number; file: Promise<Prepared> } | undefined;
  const assetsDir = dir && join(dir, 'assets');
  return {
    async index(): Promise<Prepared | undefined> {
      if (!dir) return undefined;
      const path = join(dir, 'index.html');
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) return undefined;
      if (index?.mtimeMs !== info.mtimeMs || index.size !== info.size) {
        index = { mtimeMs: info.mtimeMs, size: info.size, file: prepare(path) };
      }
      return index.file;
    },
    async asset(name: string): Promise<Prepared | undefined> {
      if (!assetsDir) return undefined;
      const known = assets.get(name);
      if (known) return known;
      // Listed again on every miss: a rebuild while the hub runs adds names, and misses are rare.
      const listing = await readdir(assetsDir).catch(() => [] as string[]);
      if (!listing.includes(name)) return undefined;
      const file = prepare(join(assetsDir, name));
      assets.set(name, file);
      // A file deleted between the listing and the read is a miss, not a cached failure.
      file.catch(() => assets.delete(name));
      return file;
    },
  };
}

async function prepare(path: string): Promise<Prepared> {
  const identity = await readFile(path);
  const ext = extname(path);
  const etag = createHash('sha256').update(identity).digest('base64url').slice(0, 27);
  const bodies: Prepared['bodies'] = { identity };
  if (COMPRESSIBLE.has(ext) && identity.length >= MIN_COMPRESS_BYTES) {
    bodies.gzip = gzipSync(identity, { level: 9 });
    bodies.br = brotliCompressSync(identity, {
      params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: identity.length },
    });
  }
  return { type: TYPES[ext] ?? 'application/octet-stream', etag, bodies };
}

/** The client's preferred encoding among those prepared: brotli, then gzip (unless refused with q=0). */
export function chooseEncoding(acceptEncoding: string | undefined, available: readonly Encoding[]): Encoding {
  const accepted = new Map<string, number>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [token, ...params] = part.trim().toLowerCase().split(';');
    if (!token) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    accepted.set(token, q ? Number(q.slice(2)) || 0 : 1);
  }
  const acceptable = (encoding: Encoding) => (accepted.get(encoding) ?? accepted.get('*') ?? 0) > 0;
  return (['br', 'gzip'] as const).find((encoding) => available.includes(encoding) && acceptable(encoding)) ?? 'identity';
}

function sendPrepared(req: IncomingMessage, res: ServerResponse, file: Prepared, headers: Record<string, string>): void {
  const encoding = chooseEncoding(req.headers['accept-encoding'], Object.keys(file.bodies) as Encoding[]);
  const body = file.bodies[encoding]!;
  // One ETag per representation: a cache must not answer a gzip request with brotli bytes.
  const etag = `"${file.etag}${encoding === 'identity' ? '' : `-${encoding}`}"`;
  const common = {
    ...headers,
    etag,
    vary: 'Accept-Encoding',
    'x-content-type-options': 'nosniff',
  };
  if (matchesEtag(req.headers['if-none-match'], etag)) return void res.writeHead(304, common).end();
  res.writeHead(200, {
    ...common,
    'content-type': file.type,
    'content-length': body.length,
    ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === etag || tag === '*');
}

function sendUnbuilt(req: IncomingMessage, res: ServerResponse): void {
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flotilla: console not built</title></head>
<body><h1>The web console is not built</h1>
<p>This hub has no <code>dist/console/</code>. In a checkout, run <code>npm run build</code> and reload this page.
The API (<code>/api/v1/</code>) works without it.</p></body></html>
`;
  res.writeHead(503, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(page),
    'cache-control': 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : page);
}

function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}
