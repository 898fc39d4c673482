/**
 * The hub serves release tarballs so that a device resumes a cut download
 * (broker/http/install.ts): `Range: bytes=N-` answers 206 with the rest and its
 * Content-Range, a start past the end 416, HEAD the size alone; other ranges
 * get the whole file.
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { scratchDir } from '../support/scratch.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(url: string, method: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /releases/<file> with a Range', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  const bundle = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
  const name = 'flotilla-9.9.9-linux-arm64.tar.gz';

  const hub = async (): Promise<TestHub> => {
    const dir = scratchDir('flotilla-releases-');
    writeFileSync(join(dir, name), bundle);
    const started = await startTestHub({ config: { releasesDir: dir } });
    cleanup.add('hub', () => started.close());
    return started;
  };

  it('answers bytes=N- with 206, the rest of the file and its Content-Range', async () => {
    const { httpUrl } = await hub();
    const res = await send(`${httpUrl}/releases/${name}`, 'GET', { range: 'bytes=60000-' });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 60000-99999/100000`);
    expect(res.headers['content-length']).toBe('40000');
    expect(res.body.equals(bundle.subarray(60_000))).toBe(true);
  });

  it('answers a start at or past the end with 416 and the size', async () => {
    const { httpUrl } = await hub();
    for (const start of [100_000, 250_000]) {
      const res = await send(`${httpUrl}/releases/${name}`, 'GET', { range: `bytes=${start}-` });
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */100000');
      expect(res.body.length).toBe(0);
    }
  });

  it('serves the whole file without a Range, or with one it does not take, and says it takes bytes', async () => {
    const { httpUrl } = await hub();
    for (const range of [undefined, 'bytes=0-99', 'bytes=-500', 'items=3-']) {
      const res = await send(`${httpUrl}/releases/${name}`, 'GET', range === undefined ? {} : { range });
      expect(res.status, range).toBe(200);
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.body.equals(bundle), range).toBe(true);
    }
  });

  it('answers HEAD with the size and no body, and 404 for a file it does not have', async () => {
    const { httpUrl } = await hub();
    const head = await send(`${httpUrl}/releases/${name}`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('100000');
    expect(head.body.length).toBe(0);
    const resumed = await send(`${httpUrl}/releases/${name}`, 'HEAD', { range: 'bytes=99000-' });
    expect(resumed.status).toBe(206);
    expect(resumed.headers['content-length']).toBe('1000');
    expect((await send(`${httpUrl}/releases/flotilla-0.0.1-linux-arm64.tar.gz`, 'HEAD')).status).toBe(404);
  });
});
