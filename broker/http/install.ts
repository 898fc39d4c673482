/**
 * What a device needs to install itself from the hub (docs/install.md):
 *
 *   GET /install.sh                 docker/install.sh, with this hub's URL and version filled in
 *   GET /releases/<file>            a file of the releases dir (--releases-dir): the per-arch bundles;
 *                                   `Range: bytes=N-` answers 206 from byte N (a device resumes a cut
 *                                   download), 416 past the end; HEAD gives the size alone
 *   GET /releases/<file>.sha256     its SHA-256 (`<hex>  <file>`, as sha256sum prints it)
 *
 * All public: the script and the bundles hold no secrets (the registration
 * token is the user's, on the command line). Only plain file names of the
 * releases dir are served; no path from the URL reaches the file system.
 *
 * The served script knows where it came from, so `curl …/install.sh | sh -s --
 * --token T` needs no `--hub`: the hub writes the URL the request reached it by
 * (Host header, http or https by the socket) into the line `served_hub=''`,
 * and its version into `served_version=''`, so a device installs the release
 * its hub runs. The Host header is the requester's own; it is used only if it
 * is a plain host[:port], so it cannot inject shell into the script.
 */

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { RawRoute } from './server.js';
import { sendUncached } from './uncached.js';

export interface InstallRoutesConfig {
  /** docker/install.sh, found from the package root; undefined: GET /install.sh answers 404 with the reason. */
  script: string | undefined;
  /** Where the release bundles are; undefined: no releases are served. */
  releasesDir: string | undefined;
  /** The hub's own version: the release a device installs by default. */
  version: string;
}

/** docker/install.sh under the package root (the checkout, or the installed package, whose "files" ship it). */
export function installScriptPath(packageRoot: string | undefined): string | undefined {
  const path = packageRoot && join(packageRoot, 'docker/install.sh');
  return path && existsSync(path) ? path : undefined;
}

/** dist/bundles under the package root, where docker/release-bundle.sh writes them, if it exists. */
export function defaultReleasesDir(packageRoot: string | undefined): string | undefined {
  const dir = packageRoot && join(packageRoot, 'dist/bundles');
  return dir && existsSync(dir) ? dir : undefined;
}

const RELEASE_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
const HOST_HEADER = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

export function installRoutes(config: InstallRoutesConfig): RawRoute[] {
  const checksums = new ChecksumCache();
  return [
    {
      method: 'GET',
      pattern: /^\/install\.sh$/,
      public: true,
      async handle(req, res) {
        if (config.script === undefined)
          return sendText(res, 404, 'this hub has no install script (docker/install.sh is missing from its package)\n');
        const script = servedScript(await readFile(config.script, 'utf8'), hubUrlOf(req), config.version);
        sendUncached(res, 200, 'text/x-shellscript; charset=utf-8', script);
      },
    },
    ...(['GET', 'HEAD'] as const).map(
      (method): RawRoute => ({
        method,
        pattern: /^\/releases\/([^/]+)$/,
        public: true,
        handle: (req, res, match) => serveRelease(req, res, match[1] ?? '', config.releasesDir, checksums),
      }),
    ),
  ];
}

/** A release file, whole or from a byte on (Range), or its SHA-256; HEAD: the headers alone. */
async function serveRelease(
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  releasesDir: string | undefined,
  checksums: ChecksumCache,
): Promise<void> {
  if (releasesDir === undefined) return sendText(res, 404, 'this hub serves no releases (start it with --releases-dir)\n');
  const sha = name.endsWith('.sha256');
  const file = sha ? name.slice(0, -'.sha256'.length) : name;
  const path = RELEASE_FILE.test(file) ? join(releasesDir, file) : undefined;
  const info = path === undefined ? undefined : await stat(path).catch(() => undefined);
  if (path === undefined || !info?.isFile()) return sendText(res, 404, `no release file ${name} on this hub\n`);
  if (sha) return sendText(res, 200, `${await checksums.of(path, info.size, info.mtimeMs)}  ${file}\n`);
  const range = rangeStart(req.headers.range);
  const headers = { 'content-type': 'application/gzip', 'cache-control': 'no-cache', 'accept-ranges': 'bytes' };
  if (range !== undefined && range >= info.size) {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${info.size}`, 'content-length': 0 }).end();
    return;
  }
  const from = range ?? 0;
  res.writeHead(range === undefined ? 200 : 206, {
    ...headers,
    'content-length': info.size - from,
    ...(range === undefined ? {} : { 'content-range': `bytes ${from}-${info.size - 1}/${info.size}` }),
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(path, { start: from }).pipe(res);
}

/**
 * The N of `Range: bytes=N-`, the one form a resuming download sends; any other
 * range (several, a suffix, an end) is ignored and the whole file is served,
 * which RFC 9110 §14.2 allows and the downloader takes as "start over".
 */
export function rangeStart(header: string | undefined): number | undefined {
  const match = header === undefined ? null : /^bytes=([0-9]{1,15})-$/.exec(header.trim());
  return match ? Number(match[1]) : undefined;
}

/** The script with the hub's URL and version written into its `served_…=''` lines. */
export function servedScript(script: string, hubUrl: string | undefined, version: string): string {
  const quoted = (value: string) => `'${value.replace(/'/g, '')}'`;
  let out = script.replace(/^served_version=''$/m, `served_version=${quoted(version)}`);
  if (hubUrl !== undefined) out = out.replace(/^served_hub=''$/m, `served_hub=${quoted(hubUrl)}`);
  return out;
}

/** The URL the request reached the hub by, if its Host header is a plain host[:port]. */
export function hubUrlOf(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (host === undefined || !HOST_HEADER.test(host)) return undefined;
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  return `${scheme}://${host}`;
}

/** SHA-256 of a release file, computed once per (size, mtime): a bundle is tens of MB and many devices ask. */
class ChecksumCache {
  private readonly sums = new Map<string, { key: string; hex: Promise<string> }>();

  of(path: string, size: number, mtimeMs: number): Promise<string> {
    const key = `${size}:${mtimeMs}`;
    const cached = this.sums.get(path);
    if (cached?.key === key) return cached.hex;
    const hex = new Promise<string>((resolve, reject) => {
      const hash = createHash('sha256');
      createReadStream(path)
        .on('data', (chunk) => hash.update(chunk))
        .on('error', reject)
        .on('end', () => resolve(hash.digest('hex')));
    });
    hex.catch(() => this.sums.delete(path));
    this.sums.set(path, { key, hex });
    return hex;
  }
}

function sendText(res: ServerResponse, status: number, body: string): void {
  sendUncached(res, status, 'text/plain; charset=utf-8', body);
}
