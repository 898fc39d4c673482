/**
 * The release as a user gets it: `npm pack` of this checkout, installed with
 * `npm install -g` into a fresh prefix, run from that prefix's bin/ — the
 * built code, with the production dependencies only.
 *
 * Solo and slow: npm resolves the dependencies (from its cache where it can:
 * `npm ci` has filled it) and better-sqlite3 compiles from source here, since
 * its prebuilt download is out of reach (~1–2 min on 2 cores).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_MAX_SEMI_SPACE_MIB, HUB_NODE_FLAG } from '../../broker/v8-young-generation.js';
import { hubServerArgs, REPO_ROOT } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const INSTALL_TIMEOUT_MS = 6 * 60_000;
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let prefix: string;
let flotilla: string;
let tarballFiles: string[];
let server: ChildProcess | undefined;

/** Runs the installed `flotilla`, from a directory outside the checkout so nothing resolves into it. */
async function installed(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(flotilla, args, { cwd: work, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** True when nothing listens on the port: it can be bound again. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

beforeAll(async () => {
  work = scratchDir('flotilla-release-');
  prefix = join(work, 'prefix');
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarballFiles = info.files.map((file) => file.path);
  await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, info.filename)], {
    cwd: work,
    timeout: INSTALL_TIMEOUT_MS,
    maxBuffer: 16 << 20,
  });
  flotilla = join(prefix, 'bin/flotilla');
}, INSTALL_TIMEOUT_MS + 60_000);

afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) process.kill(-server.pid, 'SIGKILL');
});

describe('the release installed with npm install -g', () => {
  it('ships the built code and the dashboard, not sources, tests or docs', () => {
    expect(tarballFiles).toContain('dist/cli/bin.js');
    expect(tarballFiles).toContain('examples/dashboard/index.html');
    expect(tarballFiles.filter((path) => /\.ts$|^test\/|^bench\/|^docs\/|^cli\/|^shared\/|^broker\/|^agent\//.test(path))).toEqual([]);
  });

  it('runs the built executable with no TypeScript loader or compiler installed', async () => {
    const version = await installed(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const packageDir = join(prefix, 'lib/node_modules/flotilla');
    expect(readFileSync(join(packageDir, 'dist/cli/bin.js'), 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${HUB_NODE_FLAG}`);
    const modules = readdirSync(join(packageDir, 'node_modules'));
    expect(modules).toContain('better-sqlite3');
    // dockerode is a production dependency (the agent drives the engine with it, bundled into dist/).
    expect(modules).toContain('dockerode');
    expect(modules.filter((name) => ['tsx', 'typescript', 'esbuild', 'vitest'].includes(name))).toEqual([]);
    expect(existsSync(join(packageDir, 'node_modules/.bin/tsx'))).toBe(false);
  });

  it('starts a hub that answers get devices and serves the dashboard, and SIGTERM stops it and frees its ports', async () => {
    const dataDir = join(work, 'hub-data');
    const { args, mqttPort, wsPort, httpPort } = await hubServerArgs(dataDir);
    // Its own process group: the signal reaches the hub as `kill` of a service would, with no npm in between.
    server = spawn(flotilla, args, { cwd: work, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    server.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    server.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => server?.on('exit', (code) => resolve(code)));
    const hub = `http://127.0.0.1:${httpPort}`;
    await waitFor(`the installed hub on ${httpPort} (output: ${output.slice(-500)})`, async () => (await fetch(`${hub}/healthz`)).ok, {
      timeoutMs: 30_000,
    });

    // Its shebang gave node the hub's young-generation cap (broker/v8-young-generation.ts).
    const ready = () => output.split('\n').find((line) => line.includes('"msg":"hub ready"'));
    await waitFor('the installed hub\'s "hub ready" line', () => ready() !== undefined, { timeoutMs: 10_000 });
    expect(JSON.parse(ready()!)).toMatchObject({ maxSemiSpaceMiB: HUB_MAX_SEMI_SPACE_MIB });

    const devices = await installed(['--hub', hub, '-o', 'json', 'get', 'devices']);
    expect(devices.code).toBe(0);
    expect(JSON.parse(devices.stdout)).toEqual({ items: [] });
    // `-o yaml` output loads YAML from the installed node_modules on first use (cli/yaml.ts).
    expect(await installed(['--hub', hub, '-o', 'yaml', 'get', 'devices'])).toMatchObject({ code: 0, stdout: 'items: []\n' });
    // `apply` parses with the bundle's own YAML chunk and checks with the app spec's precompiled validator (shared/validators/).
    const spec = join(work, 'app.yaml');
    const app = (name: string) =>
      `name: ${name}\nscheduling:\n  devices: [gw-1]\nspec:\n  containers:\n    - name: web\n      image: nginx:1.27\n`;
    writeFileSync(spec, app('Web'));
    expect(await installed(['--hub', hub, 'apply', '-f', spec])).toMatchObject({
      code: 2,
      stderr: `error: ${spec}: name: must match pattern "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" (e.g. "sensor-gateway")\n`,
    });
    writeFileSync(spec, app('web'));
    expect(await installed(['--hub', hub, 'apply', '-f', spec])).toMatchObject({ code: 0, stdout: 'app/web created (revision 1)\n' });
    const page = await fetch(`${hub}/dashboard/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    expect(existsSync(join(dataDir, 'admin.key'))).toBe(true);

    process.kill(-server.pid!, 'SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 10_000)),
    ]);
    expect(code, output.slice(-2000)).toBe(0);
    for (const port of [mqttPort, wsPort, httpPort]) expect(await portFree(port)).toBe(true);
  });
});
