/**
 * The web console's files as the hub serves them: index.html at `/` and
 * `/console/` with its Content-Security-Policy and uncached, the hashed assets
 * immutable and compressed as the client accepts, ETags and HEAD; public on a
 * hub that requires a key; nothing outside the build's folder reachable; a
 * clear page when the console is not built; a rebuild served without a restart.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../broker/auth/identity.js';
import { CONSOLE_CSP, consoleDir, consoleRoutes } from '../../broker/http/console.js';
import type { RawRoute } from '../../broker/http/server.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/hub.js';
import { scratchDir } from '../support/scratch.js';

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** node:http rather than fetch: fetch decompresses by itself and hides what went over the wire. */
function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The routes alone on a loopback server, for a console folder the test writes itself. */
async function serveRoutes(routes: RawRoute[], cleanup: Cleanup): Promise<string> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://hub').pathname;
    for (const route of routes) {
      const match = route.method === req.method ? path.match(route.pattern) : null;
      if (match) return void route.handle(req, res, match, new URL(req.url ?? '/', 'http://hub'), ANONYMOUS);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add('server', () => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function writeConsole(dir: string, script: string, code: string): void {
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'assets', script), code);
  writeFileSync(join(dir, 'index.html'), `<!doctype html><script type="module" src="/console/assets/${script}"></script>\n`);
}

describe('the web console served by the hub', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves the built console at / and /console/ to anyone, its assets compressed and immutable', async () => {
    const hub = await startTestHub({ config: { allowAnonymous: false } });
    cleanup.add('hub', () => hub.close());
    const built = readFileSync(join(consoleDir()!, 'index.html'));

    for (const path of ['/', '/console/']) {
      const page = await get(hub.httpUrl, path);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['cache-control']).toBe('no-cache');
      expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(page.headers['x-frame-options']).toBe('DENY');
      expect(page.body.equals(built)).toBe(true);
    }
    const redirect = await get(hub.httpUrl, '/console');
    expect([redirect.status, redirect.headers.location]).toEqual([308, '/console/']);

    const names = [...built.toString('utf8').matchAll(/\/console\/assets\/([^"]+)"/g)].map((m) => m[1]!);
    expect(names.some((name) => name.endsWith('.js'))).toBe(true);
    for (const name of names) {
      const plain = await get(hub.httpUrl, `/console/assets/${name}`);
      expect(plain.status).toBe(200);
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(plain.headers.vary).toBe('Accept-Encoding');
      expect(plain.headers['content-encoding']).toBeUndefined();
      expect(plain.body.equals(readFileSync(join(consoleDir()!, 'assets', name)))).toBe(true);

      const gzip = await get(hub.httpUrl, `/console/assets/${name}`, { 'accept-encoding': 'gzip, deflate' });
      expect(gzip.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gzip.body).equals(plain.body)).toBe(true);
      const br = await get(hub.httpUrl, `/console/assets/${name}`, { 'accept-encoding': 'gzip, deflate, br' });
      expect(br.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);
      expect(br.body.length).toBeLessThan(plain.body.length);
      expect(new Set([plain.headers.etag, gzip.headers.etag, br.headers.etag]).size).toBe(3);

      const again = await get(hub.httpUrl, `/console/assets/${name}`, { 'accept-encoding': 'br', 'if-none-match': br.headers.etag! });
      expect([again.status, again.body.length]).toEqual([304, 0]);
      const head = await get(hub.httpUrl, `/console/assets/${name}`, { 'accept-encoding': 'br' }, 'HEAD');
      expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(br.body.length), 0]);
    }
  });

  it('tells the page whether it must ask for a key: only a hub that lets anonymous clients in opens without one', async () => {
    for (const allowAnonymous of [false, true]) {
      const hub = await startTestHub({ config: { allowAnonymous } });
      cleanup.add('hub', () => hub.close());
      const answer = await get(hub.httpUrl, '/console/hub.json');
      expect([answer.status, answer.headers['content-type'], answer.headers['cache-control']]).toEqual([
        200,
        'application/json',
        'no-cache',
      ]);
      expect(JSON.parse(answer.body.toString('utf8'))).toEqual({ keyRequired: !allowAnonymous });
      const whoami = await fetch(`${hub.httpUrl}/api/v1/whoami`);
      expect(whoami.status).toBe(allowAnonymous ? 200 : 401);
    }
  });

  it('serves only the names in the build: other paths and escapes are 404', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    for (const path of [
      '/console/assets/nope.js',
      '/console/assets/..%2Findex.html',
      '/console/assets/%2E%2E%2F%2E%2E%2Fpackage.json',
      '/console/assets/',
      '/console/index.html',
      '/console/assets/../../package.json',
    ]) {
      expect((await get(hub.httpUrl, path)).status, path).toBe(404);
    }
  });

  it('says how to build the console when it is not built', async () => {
    const base = await serveRoutes(consoleRoutes({ keyRequired: true }, join(scratchDir('flotilla-console-'), 'missing')), cleanup);
    const page = await get(base, '/');
    expect(page.status).toBe(503);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body.toString('utf8')).toContain('npm run build');
    expect((await get(base, '/console/assets/main-X.js')).status).toBe(404);
  });

  it('serves a rebuilt console without a restart, and the old hashed assets as long as they exist', async () => {
    const dir = scratchDir('flotilla-console-');
    writeConsole(dir, 'main-AAAA.js', `console.log(${JSON.stringify('a'.repeat(400))});\n`);
    const base = await serveRoutes(consoleRoutes({ keyRequired: true }, dir), cleanup);
    expect((await get(base, '/')).body.toString('utf8')).toContain('main-AAAA.js');
    expect((await get(base, '/console/assets/main-AAAA.js')).status).toBe(200);

    writeConsole(dir, 'main-BBBB.js', 'console.log("b");\n');
    const page = await get(base, '/console/');
    expect(page.body.toString('utf8')).toContain('main-BBBB.js');
    const small = await get(base, '/console/assets/main-BBBB.js', { 'accept-encoding': 'br' });
    // Too small to gain from compression: sent as it is.
    expect([small.status, small.headers['content-encoding'], small.body.toString('utf8')]).toEqual([200, undefined, 'console.log("b");\n']);
  });
});
