/**
 * The operator's agent-upgrade commands through the real `flotilla` executable against a
 * real `flotilla server` process holding a releases dir (a small release tarball made by
 * tar): agent upgrade, agent targets, agent delete-target, rollout status|abort
 * agent/NAME, and the VERSION marker of get devices and describe device for devices
 * played by MQTT.js clients that publish state reports carrying `agentUpgrade`, as the
 * device's agent does.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentTargetView, AgentUpgradeReport, DesiredState, DeviceState, List } from '../../shared/index.js';
import { http } from '../support/http.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { type HubProcess, type RunResult, runCli, scratchDir, spawnCli, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine); tests make several. */
const SLOW = { timeout: 90_000 };

let hub: HubProcess;
const devices = new Map<string, { client: MqttClient; inbox: Inbox }>();

function flotilla(args: string[]): Promise<RunResult> {
  return runCli(args, { env: { FLOTILLA_HUB: hub.url } });
}

/** `flotilla-<version>-linux-amd64.tar.gz` as docker/release-bundle.sh names and lays it out: a stand-in `flotilla/bin/flotilla` and a package.json of the version (the hub refuses a tarball without them). */
function writeRelease(dir: string, version: string): void {
  const root = join(dir, `src-${version}`, 'flotilla');
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin/flotilla'), `#!/bin/sh\necho ${version}\n`, { mode: 0o755 });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'flotilla', version }));
  execFileSync('tar', ['-czf', join(dir, `flotilla-${version}-linux-amd64.tar.gz`), '-C', join(root, '..'), 'flotilla']);
}

/** A device as its agent shows itself to the hub: online status and a retained state report, optionally with `agentUpgrade`. */
async function reportState(id: string, labels: Record<string, string>, agentVersion: string, agentUpgrade?: AgentUpgradeReport) {
  let device = devices.get(id);
  if (device === undefined) {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    const inbox = new Inbox(client);
    await client.subscribeAsync(`flotilla/v1/devices/${id}/desired`, { qos: 1 });
    await client.publishAsync(`flotilla/v1/devices/${id}/status`, JSON.stringify({ online: true, at: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
    device = { client, inbox };
    devices.set(id, device);
  }
  const state: DeviceState = {
    deviceId: id,
    observedRevision: 0,
    reportedAt: new Date().toISOString(),
    host: { hostname: id, os: 'linux', arch: 'amd64', agentVersion },
    labels,
    apps: [],
    ...(agentUpgrade !== undefined ? { agentUpgrade } : {}),
  };
  await device.client.publishAsync(`flotilla/v1/devices/${id}/state`, JSON.stringify(state), { qos: 1, retain: true });
}

/** The hub's view of the device once it has taken in the state just published. */
async function deviceSeen(id: string, check: (body: Record<string, unknown>) => boolean): Promise<void> {
  await waitFor(`the hub's view of ${id}`, async () => {
    const response = await http(hub.url, 'GET', `/api/v1/devices/${id}`);
    return response.status === 200 && check(response.body);
  });
}

async function target(name: string): Promise<AgentTargetView | undefined> {
  return (await http<List<AgentTargetView>>(hub.url, 'GET', '/api/v1/agent/targets')).body.items.find((t) => t.name === name);
}

beforeAll(async () => {
  const releases = scratchDir('flotilla-releases-');
  writeRelease(releases, '0.3.0');
  hub = await startHubProcess(undefined, ['--releases-dir', releases]);
}, 60_000);

afterAll(async () => {
  for (const { client } of devices.values()) await closeClient(client);
  await stopAll();
});

/** What a device whose launcher went back from 0.3.0 reports about it. */
function rolledBack(revision: number): AgentUpgradeReport {
  return { version: '0.3.0', revision, phase: 'rolled-back', message: 'crashed 3 times in a row', since: new Date().toISOString() };
}

describe('flotilla agent upgrade, targets, delete-target', SLOW, () => {
  it('sets a target the device is then told about, lists it, marks the device’s upgrade and rollback, and deletes it', async () => {
    await reportState('gw-lab-1', { site: 'lab' }, '0.2.0');
    await deviceSeen('gw-lab-1', (body) => (body.host as { agentVersion?: string } | null)?.agentVersion === '0.2.0');

    const set = await flotilla(['agent', 'upgrade', '--selector', 'site=lab', '--version', '0.3.0']);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    const revision = Number(/\(revision (\d+)\)/.exec(set.stdout)?.[1]);
    expect(set.stdout).toBe(
      `agent target site-lab: version 0.3.0 (revision ${revision}); the devices it selects upgrade now: flotilla get devices\n`,
    );
    // The device is told, in its signed desired document, to run 0.3.0 from the hub's releases dir.
    const desired = await devices
      .get('gw-lab-1')!
      .inbox.waitFor<DesiredState>('flotilla/v1/devices/gw-lab-1/desired', (doc) => doc.agent?.version === '0.3.0');
    expect(desired.agent).toMatchObject({ version: '0.3.0', revision, bundle: { url: '/releases/flotilla-0.3.0-linux-amd64.tar.gz' } });

    expect(await flotilla(['agent', 'upgrade', '-l', 'site=lab', '--version', '0.3.0'])).toEqual({
      code: 0,
      stdout: `agent target site-lab: version 0.3.0 (revision ${revision}) unchanged\n`,
      stderr: '',
    });

    // Downloading: UPGRADING in get devices and the targets' counts, the progress in describe.
    const since = new Date().toISOString();
    await reportState('gw-lab-1', { site: 'lab' }, '0.2.0', {
      version: '0.3.0',
      revision,
      phase: 'downloading',
      bytes: 1024 * 1024,
      total: 4 * 1024 * 1024,
      since,
    });
    await deviceSeen('gw-lab-1', (body) => (body.agentUpgrade as AgentUpgradeReport | undefined)?.phase === 'downloading');
    const upgrading = await flotilla(['get', 'devices']);
    expect(upgrading.code).toBe(0);
    expect(upgrading.stdout).toMatch(/^gw-lab-1 +yes +0\/0 running +\S+ +0\.2\.0 → 0\.3\.0 UPGRADING +amd64 +site=lab +\S+$/m);
    const described = await flotilla(['describe', 'device', 'gw-lab-1']);
    expect(described.stdout).toContain(
      [
        'Agent Upgrade:',
        '  Running:   0.2.0',
        '  Desired:   0.3.0',
        `  Phase:     downloading 0.3.0 (revision ${revision}): UPGRADING`,
      ].join('\n'),
    );
    expect(described.stdout).toContain('  Progress:  1.0 MiB of 4.0 MiB (25%)\n');
    const targets = await flotilla(['agent', 'targets']);
    expect(targets.code).toBe(0);
    expect(targets.stdout.split('\n')[0]).toMatch(
      /^NAME +VERSION +REVISION +SELECTION +DEVICES +RUNNING +UPGRADING +FAILED +ROLLED-BACK +AGE$/,
    );
    expect(targets.stdout).toMatch(new RegExp(`^site-lab +0\\.3\\.0 +${revision} +site=lab +1 +0 +1 +0 +0 +\\d+[sm]$`, 'm'));

    // Rolled back by the device's launcher: the marker names the version that did not make it.
    await reportState('gw-lab-1', { site: 'lab' }, '0.2.0', rolledBack(revision));
    await deviceSeen('gw-lab-1', (body) => (body.agentUpgrade as AgentUpgradeReport | undefined)?.phase === 'rolled-back');
    expect((await flotilla(['get', 'device', 'gw-lab-1'])).stdout).toMatch(/^gw-lab-1 +yes +.* +0\.2\.0 ROLLED-BACK 0\.3\.0 +amd64 /m);
    expect((await flotilla(['describe', 'device', 'gw-lab-1'])).stdout).toContain('  Message:  crashed 3 times in a row\n');
    const json = await flotilla(['agent', 'targets', 'site-lab', '-o', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      name: 'site-lab',
      version: '0.3.0',
      revision,
      devices: { matched: 1, running: 0, upgrading: 0, failed: 0, rolledBack: 1 },
    });

    // --retry: a new revision of the same settings, so the device tries the version again.
    const retried = await flotilla(['agent', 'upgrade', '--selector', 'site=lab', '--version', '0.3.0', '--retry']);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toMatch(/^agent target site-lab: version 0\.3\.0 \(revision (\d+)\); the devices/);
    expect(Number(/\(revision (\d+)\)/.exec(retried.stdout)?.[1])).toBeGreaterThan(revision);

    expect(await flotilla(['agent', 'delete-target', 'site-lab'])).toEqual({
      code: 0,
      stdout: 'agent target site-lab deleted\n',
      stderr: '',
    });
    expect(await target('site-lab')).toBeUndefined();
    const gone = await flotilla(['agent', 'targets', 'site-lab']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toBe('error: agent target "site-lab" not found (flotilla agent targets lists them)\n');
    expect((await flotilla(['agent', 'delete-target', 'site-lab'])).code).toBe(3);
  });

  it('warns that a device named with --device is not known to the hub yet, and still sets the target', async () => {
    const result = await flotilla(['agent', 'upgrade', '--device', 'nosuch', '--version', '0.3.0']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^agent target device-nosuch: version 0\.3\.0 \(revision \d+\)/);
    expect(result.stderr).toBe('warning: device nosuch is not known to the hub yet: it gets agent 0.3.0 when it registers\n');
    expect(await target('device-nosuch')).toMatchObject({ version: '0.3.0' });
  });

  it('passes on the hub’s refusal of a version it does not hold, exit 2, naming what it has', async () => {
    const result = await flotilla(['agent', 'upgrade', '--all', '--version', '9.9.9']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^error: .*9\.9\.9/);
    expect(result.stderr).toContain('0.3.0');
  });

  it('refuses bad flags before the hub is asked: no target is made', async () => {
    const noSelection = await flotilla(['agent', 'upgrade', '--version', '0.3.0']);
    expect(noSelection).toEqual({
      code: 2,
      stdout: '',
      stderr: 'error: agent upgrade needs the devices to upgrade: --selector KEY=VALUE, --device ID or --all\n',
    });
    const badCanary = await flotilla(['agent', 'upgrade', '--all', '--version', '0.3.0', '--canary', 'half']);
    expect(badCanary.code).toBe(2);
    expect(badCanary.stderr).toContain("option '--canary <n|n%>' argument 'half' is invalid");
    expect(await target('all')).toBeUndefined();
  });
});

describe('flotilla agent upgrade -w', SLOW, () => {
  it('without a rollout, prints the target’s device counts on every change and returns once every device runs the version', async () => {
    await reportState('gw-watch-1', { ring: 'watch' }, '0.2.0');
    await deviceSeen('gw-watch-1', (body) => body.host !== null);
    const watching = flotilla(['agent', 'upgrade', '-l', 'ring=watch', '--version', '0.3.0', '-w']);
    await devices
      .get('gw-watch-1')!
      .inbox.waitFor<DesiredState>('flotilla/v1/devices/gw-watch-1/desired', (doc) => doc.agent?.version === '0.3.0');
    // The device comes back on the new version (its upgrade confirmed: no report left).
    await reportState('gw-watch-1', { ring: 'watch' }, '0.3.0');
    const result = await watching;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^agent target ring-watch: version 0\.3\.0 \(revision \d+\); the devices it selects upgrade now/);
    expect(lines.at(-1)).toBe('agent target ring-watch: 1/1 devices run 0.3.0, 0 upgrading, 0 failed, 0 rolled back');
  });
});

/** The revision of the agent section `id` is told to run once it names `version`. */
async function toldRevision(id: string, version: string): Promise<number> {
  const doc = await devices.get(id)!.inbox.waitFor<DesiredState>(`flotilla/v1/devices/${id}/desired`, (d) => d.agent?.version === version);
  return doc.agent!.revision;
}

describe('flotilla agent upgrade -w: failures', SLOW, () => {
  it('exits 1 once every device has settled with one rolled back, naming it and where to see why', async () => {
    await reportState('gw-back-1', { ring: 'back' }, '0.2.0');
    await deviceSeen('gw-back-1', (body) => body.host !== null);
    const watching = flotilla(['agent', 'upgrade', '-l', 'ring=back', '--version', '0.3.0', '-w']);
    const revision = await toldRevision('gw-back-1', '0.3.0');
    await reportState('gw-back-1', { ring: 'back' }, '0.2.0', rolledBack(revision));
    const result = await watching;
    expect(result.code).toBe(1);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe(
      'agent target ring-back: 0/1 devices run 0.3.0, 0 upgrading, 0 failed, 1 rolled back',
    );
    expect(result.stderr).toBe(
      'error: agent target ring-back: 1 of 1 devices did not upgrade to 0.3.0: 0 failed, 1 rolled back\n  see why: flotilla events gw-back-1\n',
    );
  });

  it('with a canary, ends with exit 1 when the failed canary pauses the rollout, as rollout status -w does', async () => {
    for (const id of ['gw-fail-1', 'gw-fail-2']) await reportState(id, { ring: 'fail' }, '0.2.0');
    await deviceSeen('gw-fail-2', (body) => body.host !== null);
    const watching = flotilla(['agent', 'upgrade', '-l', 'ring=fail', '--name', 'fail', '--version', '0.3.0', '--canary', '1', '-w']);
    const revision = await toldRevision('gw-fail-1', '0.3.0');
    await reportState('gw-fail-1', { ring: 'fail' }, '0.2.0', rolledBack(revision));
    const result = await watching;
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^agent/fail revision ${revision} \\(from \\d+\\): paused$`, 'm'));
    const expected = [
      `error: agent/fail revision ${revision} paused: 1 device(s) failed at revision ${revision} (failureThreshold 1): gw-fail-1; they were sent back to their previous revision`,
      '  see why: flotilla events gw-fail-1',
      '  go on with the next devices: flotilla rollout resume agent/fail',
      '  or send every device back: flotilla rollout abort agent/fail',
      '',
    ].join('\n');
    expect(result.stderr).toBe(expected);
    const status = await flotilla(['rollout', 'status', 'agent/fail', '-w']);
    expect(status.code).toBe(1);
    expect(status.stderr).toBe(expected);
  });

  it('rollout status -w watches on through a pause after a healthy canary, and says so plainly when a newer revision without a rollout replaces it', async () => {
    for (const id of ['gw-newer-1', 'gw-newer-2']) await reportState(id, { ring: 'newer' }, '0.2.0');
    await deviceSeen('gw-newer-2', (body) => body.host !== null);
    const set = await flotilla([
      'agent',
      'upgrade',
      '-l',
      'ring=newer',
      '--name',
      'newer',
      '--version',
      '0.3.0',
      '--canary',
      '1',
      '--pause-after-canary',
    ]);
    expect(set.code).toBe(0);
    const revision = await toldRevision('gw-newer-1', '0.3.0');
    await reportState('gw-newer-1', { ring: 'newer' }, '0.3.0');
    await waitFor(
      'the pause after the canary',
      async () =>
        (await target('newer')) !== undefined && (await flotilla(['rollout', 'status', 'agent/newer'])).stdout.includes(': paused\n'),
    );

    const watcher = spawnCli('rollout status -w', ['rollout', 'status', 'agent/newer', '-w'], { FLOTILLA_HUB: hub.url });
    await waitFor('the watched pause', () => watcher.output.includes(`agent/newer revision ${revision} (from `));
    const retried = await flotilla(['agent', 'upgrade', '-l', 'ring=newer', '--name', 'newer', '--version', '0.3.0', '--retry']);
    expect(retried.code).toBe(0);
    const newer = Number(/\(revision (\d+)\)/.exec(retried.stdout)?.[1]);
    expect(await watcher.exited).toBe(1);
    expect(watcher.output).toContain(
      `error: agent/newer has a newer revision ${newer} than the revision ${revision} this watched\n` +
        '  it was set without a rollout, so its devices upgrade at once: flotilla agent targets newer\n',
    );
    expect(watcher.output).not.toContain('has no rollout');
  });
});

describe('flotilla rollout status|abort agent/NAME', SLOW, () => {
  it('follows an agent target’s rollout like an app’s, and -w returns once it is aborted', async () => {
    for (const id of ['gw-roll-1', 'gw-roll-2']) await reportState(id, { ring: 'roll' }, '0.2.0');
    await deviceSeen('gw-roll-2', (body) => body.host !== null);

    const set = await flotilla([
      'agent',
      'upgrade',
      '--selector',
      'ring=roll',
      '--version',
      '0.3.0',
      '--name',
      'ring',
      '--canary',
      '1',
      '--pause-after-canary',
    ]);
    expect(set.stderr).toBe('');
    expect(set.stdout).toMatch(/^agent target ring: version 0\.3\.0 \(revision \d+\); rolling out: flotilla rollout status agent\/ring\n$/);

    const status = await flotilla(['rollout', 'status', 'agent/ring']);
    expect(status.code).toBe(0);
    const lines = status.stdout.split('\n');
    expect(lines[0]).toMatch(/^agent\/ring revision \d+ \(from \d+\): (progressing|paused)$/);
    expect(status.stdout).toMatch(/^canary +\[[#-]{10}\] \d\/1/m);
    expect(status.stdout).toMatch(/^DEVICE +STAGE +REVISION +STATE +SINCE +MESSAGE$/m);
    expect(status.stdout).toMatch(/^gw-roll-[12] +canary +\d+ +\S+/m);

    const json = await flotilla(['rollout', 'status', 'agent/ring', '-o', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ app: 'agent/ring', canary: 1, counts: { total: 2 } });

    const abort = await flotilla(['rollout', 'abort', 'agent/ring']);
    expect(abort).toMatchObject({ code: 0, stderr: '' });
    expect(abort.stdout).toMatch(/^agent\/ring rollout of revision \d+: aborted\n$/);
    const watched = await flotilla(['rollout', 'status', 'agent/ring', '-w']);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/^agent\/ring revision \d+ \(from \d+\): aborted$/m);

    const unknown = await flotilla(['rollout', 'status', 'agent/no-such-target']);
    expect(unknown.code).toBe(3);
  });
});
