/**
 * What a device fetches from the hub to install itself (broker/http/install.ts):
 * the script, with the hub's URL and version written in, and the release
 * files with their checksums; nothing outside the releases dir.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { flotillaVersion } from '../../../shared/version.js';
import { Cleanup } from '../../support/cleanup.js';
import { startTestHub, type TestHub } from '../../support/hub.js';
import { REPO_ROOT } from '../../support/processes.js';
import { scratchDir } from '../../support/scratch.js';

const SCRIPT = readFileSync(join(REPO_ROOT, 'docker/install.sh'), 'utf8');

/** GET with a chosen Host header (fetch does not let a caller set it). */
function get(url: string, host?: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host === undefined ? {} : { host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the hub serves the install script and the releases', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const hubWithReleases = async (files: Record<string, Buffer>): Promise<TestHub> => {
    const dir = scratchDir('flotilla-releases-');
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const hub = await startTestHub({ config: { releasesDir: dir } });
    cleanup.add('hub', () => hub.close());
    return hub;
  };

  it('GET /install.sh is the repository script with this hub’s URL and version filled in', async () => {
    const hub = await hubWithReleases({});
    const res = await get(`${hub.httpUrl}/install.sh`);
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/x-shellscript; charset=utf-8');
    const served = res.body.toString();
    expect(served).toContain(`\nserved_hub='${hub.httpUrl}'\n`);
    expect(served).toContain(`\nserved_version='${flotillaVersion()}'\n`);
    const unfilled = served.replace(/^served_hub='.*'$/m, "served_hub=''").replace(/^served_version='.*'$/m, "served_version=''");
    expect(unfilled).toBe(SCRIPT);
  });

  it('a Host header that is not a plain host:port is not written into the script', async () => {
    const hub = await hubWithReleases({});
    const res = await get(`${hub.httpUrl}/install.sh`, "x';rm -rf /;'");
    expect(res.status).toBe(200);
    expect(res.body.toString()).toContain("\nserved_hub=''\n");
  });

  it('serves a release file and its SHA-256, and nothing else of the file system', async () => {
    const bundle = Buffer.from('a release bundle stand-in\n'.repeat(1000));
    const hub = await hubWithReleases({ 'flotilla-1.2.3-linux-arm64.tar.gz': bundle, '.hidden': Buffer.from('no') });
    const file = await get(`${hub.httpUrl}/releases/flotilla-1.2.3-linux-arm64.tar.gz`);
    expect(file.status).toBe(200);
    expect(file.body.equals(bundle)).toBe(true);
    const sum = await get(`${hub.httpUrl}/releases/flotilla-1.2.3-linux-arm64.tar.gz.sha256`);
    expect(sum.body.toString()).toBe(`${createHash('sha256').update(bundle).digest('hex')}  flotilla-1.2.3-linux-arm64.tar.gz\n`);
    for (const path of [
      '/releases/.hidden',
      '/releases/..%2Fhub.db',
      '/releases/%2Fetc%2Fpasswd',
      '/releases/flotilla-9.9.9-linux-amd64.tar.gz',
    ]) {
      const res = await get(`${hub.httpUrl}${path}`);
      expect(res.status, path).toBe(404);
    }
  });
});
