/**
 * The real `flotilla` executable, run as a child process, against a real hub
 * (Aedes, HTTP API, SQLite) started in this process on loopback ports. A
 * device is simulated by a real MQTT.js client publishing its retained state,
 * as an agent would.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Hub, startHub } from '../../broker/hub.js';
import type { DeviceState } from '../../shared/index.js';
import { freePort } from '../support/ports.js';
import { CLI, REPO_ROOT, type RunResult, runCli } from '../support/processes.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine); some tests make several. */
const SLOW = { timeout: 60_000 };

let hub: Hub;
let hubUrl: string;
let dir: string;

/** `flotilla ARGS…` against the test hub (FLOTILLA_HUB), with optional stdin; never throws on a non-zero exit. */
function flotilla(args: string[], options: { stdin?: string; hub?: string } = {}): Promise<RunResult> {
  return runCli(args, { env: { FLOTILLA_HUB: options.hub ?? hubUrl }, ...(options.stdin !== undefined ? { input: options.stdin } : {}) });
}

async function fixture(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function appSpec(name: string, extra = ''): string {
  return `name: ${name}
scheduling:
  selectors: { site: roof }
spec:
  containers:
    - name: main
      image: registry.local/${name}:1.0.0
      ports: ["8080:80"]
${extra}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-'));
  hub = await startHub({ dataDir: join(dir, 'hub'), host: '127.0.0.1', mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: 'silent' });
  hubUrl = `http://127.0.0.1:${hub.ports.http}`;
});

afterAll(async () => {
  await hub?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('flotilla apply', SLOW, () => {
  it('applies a valid spec, then reports it unchanged when applied again', async () => {
    const file = await fixture('gateway.yaml', appSpec('gateway'));
    const first = await flotilla(['apply', '-f', file]);
    expect(first).toEqual({ code: 0, stdout: 'app/gateway created (revision 1)\n', stderr: '' });
    const again = await flotilla(['apply', '-f', file]);
    expect(again).toEqual({ code: 0, stdout: 'app/gateway unchanged (revision 1)\n', stderr: '' });
  });

  it('applies every document of a multi-document stdin, in order', async () => {
    const stdin = `${appSpec('first')}---\n${appSpec('second')}`;
    const result = await flotilla(['apply', '-f', '-'], { stdin });
    expect(result).toEqual({ code: 0, stdout: 'app/first created (revision 1)\napp/second created (revision 1)\n', stderr: '' });
  });

  it('refuses a bad spec with exit 2, naming the field, and applies nothing', async () => {
    const file = await fixture('bad.yaml', appSpec('broken').replace('["8080:80"]', '["8080:80", "http"]'));
    const result = await flotilla(['apply', '-f', file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.startsWith(`error: ${file}: spec.containers[0].ports[1]: must match pattern`)).toBe(true);
    expect((await fetch(`${hubUrl}/api/v1/apps/broken`)).status).toBe(404);
  });
});

describe('flotilla get apps', SLOW, () => {
  it('prints a kubectl-style table, and the hub body with -o json', async () => {
    await seed(appSpec('listed'));

    const table = await flotilla(['get', 'apps']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +REVISION +SELECTOR +CONTAINERS +DEVICES +AGE$/);
    expect(lines).toContainEqual(expect.stringMatching(/^listed +1 +site=roof +1 +0\/0 +\d+s$/));

    const json = await flotilla(['get', 'apps', '-o', 'json']);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { items: { name: string; revision: number; containers: number }[] };
    expect(body.items.find((app) => app.name === 'listed')).toMatchObject({ name: 'listed', revision: 1, containers: 1 });
  });
});

describe('flotilla delete app', SLOW, () => {
  it('deletes, after which describe exits 3', async () => {
    await seed(appSpec('doomed'));
    expect(await flotilla(['delete', 'app', 'doomed'])).toEqual({ code: 0, stdout: 'app/doomed deleted\n', stderr: '' });
    expect(await flotilla(['describe', 'app', 'doomed'])).toEqual({ code: 3, stdout: '', stderr: 'error: app "doomed" not found\n' });
  });
});

describe('devices', SLOW, () => {
  it('label on an unknown device exits 3', async () => {
    const result = await flotilla(['label', 'device', 'no-such-device', 'site=roof']);
    expect(result).toEqual({ code: 3, stdout: '', stderr: 'error: device "no-such-device" not found\n' });
  });

  it('lists, labels and describes a device that reported its state over MQTT', async () => {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.ports.mqtt}`, { clientId: 'sim-pi-1', protocolVersion: 4 });
    try {
      const state: DeviceState = {
        deviceId: 'sim-pi-1',
        observedRevision: 0,
        reportedAt: new Date().toISOString(),
        host: { hostname: 'sim-pi-1', os: 'linux', arch: 'arm64', agentVersion: '0.1.0' },
        labels: { arch: 'arm64' },
        apps: [],
      };
      await client.publishAsync('flotilla/v1/devices/sim-pi-1/status', JSON.stringify({ online: true, at: new Date().toISOString() }), {
        qos: 1,
        retain: true,
      });
      await client.publishAsync('flotilla/v1/devices/sim-pi-1/state', JSON.stringify(state), { qos: 1, retain: true });
      await waitForDevice('sim-pi-1');

      expect(await flotilla(['label', 'device', 'sim-pi-1', 'site=roof'])).toEqual({
        code: 0,
        stdout: 'device/sim-pi-1 labeled\n',
        stderr: '',
      });

      const table = await flotilla(['get', 'devices']);
      expect(table.code).toBe(0);
      const lines = table.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME +ONLINE +APPS +REVISION +VERSION +ARCH +LABELS +LAST SEEN$/);
      expect(lines).toContainEqual(
        expect.stringMatching(/^sim-pi-1 +yes +0\/0 running +0\/\d+ +0\.1\.0 +arm64 +arch=arm64,site=roof +\S+$/),
      );

      const described = await flotilla(['describe', 'device', 'sim-pi-1']);
      expect(described.code).toBe(0);
      expect(described.stdout).toMatch(/^Name: +sim-pi-1$/m);
      expect(described.stdout).toMatch(/^ +site=roof \(operator\)$/m);
      expect(described.stdout).toMatch(/^ {2}OS\/Arch: +linux\/arm64$/m);

      // Removing a label the agent reports: the hub keeps a tombstone, so it stays removed.
      expect(await flotilla(['label', 'device', 'sim-pi-1', 'arch-'])).toEqual({
        code: 0,
        stdout: 'device/sim-pi-1 labeled\n',
        stderr: '',
      });
      const json = await flotilla(['get', 'device', 'sim-pi-1', '-o', 'json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ id: 'sim-pi-1', labels: { site: 'roof' }, reportedLabels: { arch: 'arm64' } });
      expect(JSON.parse(json.stdout).labels).not.toHaveProperty('arch');
    } finally {
      await client.endAsync();
    }
  });
});

describe('an unreachable hub', SLOW, () => {
  it('exits 1 and says which hub could not be reached', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await flotilla(['get', 'devices'], { hub: url });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^error: cannot reach the hub at ${url}: .*ECONNREFUSED`));
  });
});

/** Applies a spec through the HTTP API directly, for tests about other commands. */
async function seed(yamlText: string): Promise<void> {
  const response = await fetch(`${hubUrl}/api/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(parse(yamlText)),
  });
  expect(response.status).toBe(200);
}

async function waitForDevice(id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const response = await fetch(`${hubUrl}/api/v1/devices/${id}`);
    await response.body?.cancel();
    if (response.ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`device ${id} did not appear on the hub within 10s`);
}

describe('a reader that stops reading', SLOW, () => {
  it('ends the CLI quietly (exit 0, no EPIPE trace), as `flotilla --help | head` does', async () => {
    const child = spawn(process.execPath, [CLI, '--help'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // Closed before the CLI has written anything: every write it makes meets a closed pipe.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE/);
    expect(code).toBe(0);
  });
});
