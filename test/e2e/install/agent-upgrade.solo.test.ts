/**
 * The agent upgrades itself on a real device, end to end (issue 19,
 * docs/agent-upgrades.md): a real hub with a releases dir, a debootstrapped
 * Debian container with systemd as PID 1 playing the device, installed with the
 * one-command install, and the host's Docker Engine running its app.
 *
 * The device goes from the release as built (N) to a release that only says it
 * is newer (N+1), then to a release whose agent exits at start (N+2), which the
 * launcher on the device rolls back by itself while the hub is stopped. What is
 * checked is what an operator sees: the CLI's output (`agent upgrade`, `get
 * devices`, `events`), `docker inspect` of the app's containers (the agent's
 * restarts never touch them: same ids, same StartedAt), systemd's view of the
 * unit, and the files under /opt/flotilla.
 *
 * Needs the device image (docker/device-image.sh) and this machine's release
 * bundle (docker/release-bundle.sh); without them it skips, saying so, and with
 * CI=true it fails instead. A solo test: three Node releases unpacked and
 * started under systemd are heavy for two cores. The time each stage took is
 * printed at the end (the cost goes to .ci/README.md, never into an assertion).
 */
import { symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { flotillaVersion } from '../../../shared/version.js';
import { type HubProcess, runCli, scratchDir, startHubProcess, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { bundlePath, type Device, installProblem, startDevice } from './device.js';
import { crashAgentAtStart, repackRelease } from './releases.js';

const version = flotillaVersion();
const problem = await installProblem(version);
if (problem && process.env.CI === 'true') throw new Error(`the agent upgrade test must run in CI: ${problem}`);
if (problem) console.warn(`[e2e agent upgrade] skipping: ${problem}`);

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-upgrade-${suffix}`;
const app = `e2e-upgraded-${suffix}`;
const UNIT = 'flotilla-agent.service';
const PREFIX = '/opt/flotilla';
/** N+1: the same release under a newer version string. */
const next = `${version}-e2e.1`;
/** N+2: a release whose agent exits 1 at every start. */
const broken = `${version}-e2e.2`;
const CRASH_REASON = 'crashed 3 times in a row';
const BROKEN_LINE = 'this release is broken on purpose';

interface DeviceJson {
  id: string;
  online: boolean;
  host?: { agentVersion?: string };
  agentUpgrade?: { phase: string; version: string; revision: number; message?: string };
  desiredAgentVersion?: string;
}

interface ContainerRun {
  id: string;
  startedAt: string;
}

/** The revision in `agent target NAME: version V (revision R)`. */
const revisionOf = (out: string) => Number(/\(revision (\d+)\)/.exec(out)?.[1]);

const stages: [string, number][] = [];
/** Runs one stage of the scenario and keeps how long it took. */
async function timed<T>(stage: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    stages.push([stage, Math.round((performance.now() - started) / 100) / 10]);
  }
}

(problem ? describe.skip : describe)('the agent upgrades itself on a Debian device with systemd', { timeout: 300_000 }, () => {
  let hub: HubProcess;
  let device: Device;
  let releases: string;
  let appRuns: ContainerRun[];
  /** The agent-target revision that asked for the broken release the first time. */
  let firstRevision: number;

  const cli = async (...args: string[]) => {
    const result = await runCli(['--hub', hub.url, ...args]);
    expect(result.code, `flotilla ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };
  const sh = async (script: string) => (await device.sh(script)).stdout.trim();

  const deviceJson = async () =>
    (JSON.parse(await cli('get', 'devices', '-o', 'json')) as { items: DeviceJson[] }).items.find((d) => d.id === deviceId);
  /** This device's line of the `get devices` table. */
  const deviceLine = async () => (await cli('get', 'devices')).split('\n').find((line) => line.startsWith(`${deviceId} `)) ?? '';
  /** The agent-* events of this device as `flotilla events` prints them: [type, message] per row, oldest first. */
  const agentEvents = async () =>
    (await cli('events', deviceId, '--tail', '1000'))
      .split('\n')
      .slice(1)
      .map((line) => line.split(/ {3,}/))
      .filter((cells) => cells[2]?.startsWith('agent-'))
      .map((cells) => [cells[2], cells.slice(4).join('   ')] as [string, string]);

  /** The app's containers, by `docker inspect`: what must not change when the agent restarts. */
  const appContainers = async (): Promise<ContainerRun[]> => {
    const ids = await containerIds(`flotilla.app=${app}`);
    const runs = await Promise.all(ids.map(async (id) => ({ id, startedAt: (await inspect(id)).State.StartedAt })));
    return runs.sort((a, b) => a.id.localeCompare(b.id));
  };
  const link = (name: string) => sh(`readlink ${PREFIX}/${name}`);
  const upgradeFiles = () => sh(`ls ${PREFIX}/upgrade 2>/dev/null | grep -v '\\.tmp$'`);
  /**
   * Which release's Node the unit runs: its main process, or the main process's child (the
   * launcher stays the main process once it has started a release on trial).
   */
  const runningRelease = () =>
    sh(
      `main=$(systemctl show -p MainPID --value ${UNIT})
       for stat in /proc/[0-9]*/stat; do
         awk -v main="$main" '$1 == main || $4 == main { print $1 }' "$stat" 2>/dev/null
       done | while read -r pid; do readlink "/proc/$pid/exe"; done | grep '/node$'`,
    );
  const restarts = async () => Number(await sh(`systemctl show -p NRestarts --value ${UNIT}`));
  const brokenStarts = async () => Number(await sh(`journalctl -u ${UNIT} --no-pager -o cat | grep -c '${BROKEN_LINE}'`));

  /** Waits for the device online on `agentVersion` with no upgrade marker; an upgrade reported failed ends the wait at once. */
  const onlineOn = async (agentVersion: string) => {
    const found = await waitFor(
      `${deviceId} online on ${agentVersion} with no upgrade under way`,
      async () => {
        const shown = await deviceJson();
        if (shown?.agentUpgrade?.phase === 'failed') return shown;
        return shown?.online && shown.host?.agentVersion === agentVersion && shown.agentUpgrade === undefined && shown;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    expect(found.agentUpgrade).toBeUndefined();
    return found;
  };

  /** What the device and the hub show, printed when a step failed: the cause of a failure is in one of them. */
  const explain = async () => {
    const files = await device.sh(
      `ls -la ${PREFIX} ${PREFIX}/upgrade; head -n 20 ${PREFIX}/upgrade/*; systemctl status --no-pager ${UNIT}; journalctl -u ${UNIT} --no-pager -o cat -n 60`,
    );
    const shown = hub.proc.running ? await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json']) : undefined;
    console.log(
      `[e2e agent upgrade] the device:\n${files.stdout}${files.stderr}\n[e2e agent upgrade] the hub: ${shown?.stdout ?? 'stopped'}\n${hub.proc.output.slice(-3000)}`,
    );
  };
  let failed = false;
  beforeEach((context) => {
    // Each step starts where the one before left the device: after a failure there is nothing to check.
    if (failed) context.skip();
  });
  afterEach(async ({ task }) => {
    if (task.result?.state !== 'fail') return;
    failed = true;
    await explain();
  });

  beforeAll(async () => {
    releases = scratchDir('flotilla-upgrade-releases-');
    symlinkSync(bundlePath(version), join(releases, basename(bundlePath(version))));
    hub = await startHubProcess(scratchDir('flotilla-upgrade-hub-'), ['--releases-dir', releases]);
    device = await startDevice(`flotilla-e2e-upgrade-${suffix}`);
  });

  afterAll(async () => {
    await device?.remove();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    await stopAll();
    console.log(`[e2e agent upgrade] seconds per stage: ${stages.map(([stage, s]) => `${stage} ${s}`).join(', ')}`);
  });

  it(`installs ${version} in one command and runs an app`, async () => {
    await timed('install', async () => {
      const token = (await cli('token', 'create')).trim();
      const installed = await device.sh(
        `curl -fsSL ${hub.url}/install.sh | sh -s -- --token ${token} --device-id ${deviceId} --label site=${suffix}`,
      );
      expect(installed.code, installed.stderr).toBe(0);
      await onlineOn(version);
      expect(await link('current')).toBe(version);
    });
    await timed('app', async () => {
      const images = await ensureTestImages();
      const spec = join(scratchDir('flotilla-upgrade-spec-'), 'app.yaml');
      writeFileSync(
        spec,
        stringify({ name: app, scheduling: { selectors: { site: suffix } }, spec: { containers: [{ name: 'web', image: images.v1 }] } }),
      );
      await cli('apply', '-f', spec);
      await waitFor(
        'the app running on the engine',
        async () => (await docker('ps', '--filter', `label=flotilla.app=${app}`, '--format', '{{.State}}')) === 'running',
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    });
    appRuns = await appContainers();
    expect(appRuns).toHaveLength(1);
  });

  it(`upgrades to ${next} by itself: switched, confirmed, the app untouched`, async () => {
    await timed('repack N+1', async () => repackRelease({ from: bundlePath(version), version: next, releasesDir: releases }));
    await timed('upgrade to N+1', async () => {
      const out = await cli('agent', 'upgrade', '--device', deviceId, '--version', next);
      expect(out).toContain(`agent target device-${deviceId}: version ${next} (revision ${revisionOf(out)})`);
      await onlineOn(next);
    });

    expect(await deviceLine()).not.toMatch(/UPGRADING|ROLLED-BACK|FAILED/);
    expect(await deviceLine()).toContain(next);
    expect(await link('current')).toBe(next);
    expect(await link('previous')).toBe(version);
    expect(await upgradeFiles()).toBe('');
    expect(await runningRelease()).toBe(`${PREFIX}/${next}/node`);
    expect(await sh(`systemctl is-active ${UNIT}`)).toBe('active');
    expect(await appContainers()).toEqual(appRuns);

    const events = await agentEvents();
    expect(events.map(([type]) => type)).toEqual([
      'agent-upgrade-started',
      'agent-upgrade-downloaded',
      'agent-upgrade-restarting',
      'agent-upgraded',
    ]);
    expect(events.at(-1)?.[1]).toContain(`from ${version} to ${next}`);
  });

  it(`rolls a crashing ${broken} back to ${next} by itself, with no hub reachable`, async () => {
    await timed('repack N+2', async () =>
      repackRelease({ from: bundlePath(version), version: broken, releasesDir: releases, change: crashAgentAtStart }),
    );
    const restartsBefore = await restarts();

    await timed('upgrade to N+2 until switched', async () => {
      firstRevision = revisionOf(await cli('agent', 'upgrade', '--device', deviceId, '--version', broken));
      await waitFor(`the device switched to ${broken}`, async () => (await link('current')) === broken, {
        timeoutMs: 120_000,
        intervalMs: 200,
      });
    });
    await hub.proc.stop();

    await timed('rollback with the hub stopped', async () => {
      await waitFor(
        `systemd running ${next} again`,
        async () => (await link('current')) === next && (await runningRelease()) === `${PREFIX}/${next}/node`,
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    });
    expect(await sh(`systemctl is-active ${UNIT}`)).toBe('active');
    expect(await restarts()).toBeGreaterThanOrEqual(restartsBefore + 3);
    expect(await brokenStarts()).toBe(3);
    expect(await upgradeFiles()).toBe('rolled-back');
    const rolledBack = await sh(`cat ${PREFIX}/upgrade/rolled-back`);
    expect(rolledBack).toContain(`version=${broken}`);
    expect(rolledBack).toContain(`revision=${firstRevision}`);
    expect(rolledBack).toContain(`reason=${CRASH_REASON}`);

    await timed('hub back, rollback reported', async () => {
      await hub.restart();
      await waitFor(
        'the hub to show the rollback',
        async () => {
          const found = await deviceJson();
          return found?.online && found.host?.agentVersion === next && found.agentUpgrade?.phase === 'rolled-back';
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
    });
    const shown = await deviceJson();
    expect(shown?.agentUpgrade).toMatchObject({ phase: 'rolled-back', version: broken, message: expect.stringContaining(CRASH_REASON) });
    expect(await deviceLine()).toContain(`${next} ROLLED-BACK ${broken}`);
    const events = await agentEvents();
    expect(events.filter(([type]) => type === 'agent-rolled-back')).toEqual([['agent-rolled-back', expect.stringContaining(CRASH_REASON)]]);
    expect(await appContainers()).toEqual(appRuns);
  });

  it(`does not try ${broken} again until the operator retries it`, async () => {
    // A fresh start reads the same desired document and the rolled-back file: it must not try again.
    const pid = await sh(`systemctl show -p MainPID --value ${UNIT}`);
    await device.sh(`systemctl restart ${UNIT}`);
    await waitFor('the restarted agent online', async () => {
      const restarted = await sh(`systemctl show -p MainPID --value ${UNIT}`);
      const found = await deviceJson();
      return restarted !== pid && restarted !== '0' && found?.online && found.agentUpgrade?.phase === 'rolled-back';
    });
    const eventsBefore = await agentEvents();
    await timed('not retried (held)', async () => {
      // Nothing to wait for: the check is that nothing happens across two of the agent's 10 s resyncs.
      const until = Date.now() + 20_000;
      while (Date.now() < until) {
        expect(await link('current')).toBe(next);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    });
    expect(await agentEvents()).toEqual(eventsBefore);
    expect((await deviceJson())?.agentUpgrade).toMatchObject({ phase: 'rolled-back', version: broken });

    const restartsBefore = await restarts();
    await timed('retry: tried and rolled back again', async () => {
      const retried = revisionOf(await cli('agent', 'upgrade', '--device', deviceId, '--version', broken, '--retry'));
      expect(retried).toBeGreaterThan(firstRevision);
      await waitFor(`the device switched to ${broken} again`, async () => (await link('current')) === broken, {
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      await waitFor(
        `systemd running ${next} again`,
        async () => (await link('current')) === next && (await runningRelease()) === `${PREFIX}/${next}/node`,
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      await waitFor(
        'the hub to show the second rollback',
        async () => (await agentEvents()).filter(([type]) => type === 'agent-rolled-back').length === 2,
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
    });
    expect(await restarts()).toBeGreaterThanOrEqual(restartsBefore + 3);
    expect(await brokenStarts()).toBe(6);
    expect(await sh(`cat ${PREFIX}/upgrade/rolled-back`)).toContain(`version=${broken}`);
    expect(await deviceLine()).toContain(`${next} ROLLED-BACK ${broken}`);
    expect(await appContainers()).toEqual(appRuns);
  });
});
