/**
 * A power cut (SIGKILL of the real agent process) at each step of its own
 * upgrade, and the restart that follows through the real launcher
 * (docker/agent-launch.sh), as systemd would run it: the device always starts
 * into a working release and finishes the upgrade.
 *
 * The prefix's running release is a folder whose `bin/flotilla` execs this
 * checkout's CLI (so the agent it starts is the real one, of this checkout's
 * version); the new release is a synthetic tarball from a real hub process's
 * --releases-dir, set for the device through the hub's agent.upgrade. The
 * agent reaches the hub's HTTP through a proxy that paces the download, so a
 * test can cut it mid-file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceView } from '../../shared/api/results.js';
import { flotillaVersion } from '../../shared/version.js';
import { Cleanup } from '../support/cleanup.js';
import { CLI, type HubProcess, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { type CuttingProxy, cuttingProxy, type FakeRelease, fakePrefix, fakeRelease, keyValues, link } from './agent-upgrade-fixtures.js';

const MiB = 1024 * 1024;
const SLOW = { timeout: 180_000 };
const RUNNING = flotillaVersion();

interface Launched {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | string>;
}

describe('a power cut at each step of the agent upgrade', () => {
  const cleanup = new Cleanup();
  afterEach(async () => {
    await cleanup.run();
    await stopAll();
  });

  interface Device {
    hub: HubProcess;
    proxy: CuttingProxy;
    release: FakeRelease;
    prefix: string;
    launch(): Launched;
  }

  async function device(id: string, options: { holdFile?: string; pauseMs?: number } = {}): Promise<Device> {
    const releasesDir = scratchDir('flotilla-releases-');
    const release = fakeRelease(releasesDir, '9.9.9', {
      fillerBytes: 3 * MiB,
      ...(options.holdFile ? { holdFile: options.holdFile } : {}),
    });
    const hub = await startHubProcess(undefined, ['--releases-dir', releasesDir]);
    const proxy = await cuttingProxy(hub.httpPort, { pauseMs: options.pauseMs ?? 0 });
    cleanup.add('proxy', () => proxy.close());
    const prefix = fakePrefix(RUNNING, scratchDir('flotilla-prefix-'), `'${process.execPath}' '${CLI}'`);
    const dataDir = scratchDir(`flotilla-${id}-`);
    const args = ['agent', '--device-id', id, '--hub-url', hub.mqttUrl, '--data-dir', dataDir, '--hub-http-url', proxy.url];
    const launch = (): Launched => {
      const child = spawn(join(prefix, 'launch'), args, { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
      cleanup.add('launched agent', async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      });
      return { child, output: () => output, exited };
    };
    return { hub, proxy, release, prefix, launch };
  }

  async function online(hub: HubProcess, id: string): Promise<void> {
    await waitFor(
      `${id} online`,
      async () => ((await (await fetch(`${hub.url}/api/v1/devices/${id}`)).json()) as DeviceView).online || undefined,
      {
        timeoutMs: 30_000,
      },
    );
  }

  async function upgradeTo(hub: HubProcess, id: string, version: string): Promise<void> {
    const res = await fetch(`${hub.url}/api/v1/agent/targets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ devices: [id], version, healthTimeout: '2m' }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }

  /** SIGKILL: no graceful stop, nothing flushed; the launcher exec'd the agent, so this pid is the agent. */
  async function powerCut(launched: Launched): Promise<void> {
    launched.child.kill('SIGKILL');
    expect(await launched.exited).toBe('SIGKILL');
  }

  /** The next start finishes the upgrade: it switches and stops itself gracefully with exit code 0. */
  async function restartFinishes(dev: Device): Promise<void> {
    const again = dev.launch();
    const code = await Promise.race([again.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 60_000))]);
    expect(code, again.output().slice(-3000)).toBe(0);
    expect(link(dev.prefix, 'current')).toBe('9.9.9');
    expect(link(dev.prefix, 'previous')).toBe(RUNNING);
    expect(keyValues(join(dev.prefix, 'upgrade/trial'))).toMatchObject({ version: '9.9.9', previous: RUNNING, starts: '0' });
    expect(readdirSync(dev.prefix).filter((name) => name.startsWith('.staging'))).toEqual([]);
  }

  /** Then the launcher starts the new release on trial (the synthetic one prints that it started, and how). */
  async function launcherStartsNewOnTrial(dev: Device): Promise<void> {
    const next = dev.launch();
    await next.exited;
    expect(next.output()).toContain('started 9.9.9 trial=1 agent --device-id');
    expect(keyValues(join(dev.prefix, 'upgrade/trial'))?.starts).toBe('1');
  }

  it('during the download: the old release starts, resumes the download and finishes', SLOW, async () => {
    const dev = await device('cut-download', { pauseMs: 40 });
    const first = dev.launch();
    await online(dev.hub, 'cut-download');
    await upgradeTo(dev.hub, 'cut-download', '9.9.9');
    const part = join(dev.prefix, '.download', `${dev.release.file}.part`);
    await waitFor('part of the download', () => (statSync(part, { throwIfNoEntry: false })?.size ?? 0) > 512 * 1024 || undefined, {
      timeoutMs: 30_000,
    });
    await powerCut(first);
    const kept = statSync(part).size;
    expect(kept).toBeLessThan(dev.release.bytes);
    expect(link(dev.prefix, 'current')).toBe(RUNNING);
    expect(existsSync(join(dev.prefix, 'upgrade/trial'))).toBe(false);

    await restartFinishes(dev);
    // The second start asked only for what was missing.
    expect(dev.proxy.bytesDown).toBeLessThanOrEqual(1.05 * dev.release.bytes + 64 * 1024);
    await launcherStartsNewOnTrial(dev);
  });

  it('after the checksum, during the smoke test, before the switch: the old release starts and installs again', SLOW, async () => {
    const hold = join(scratchDir('flotilla-hold-'), 'hold');
    writeFileSync(hold, '');
    const dev = await device('cut-verified', { holdFile: hold });
    const first = dev.launch();
    await online(dev.hub, 'cut-verified');
    await upgradeTo(dev.hub, 'cut-verified', '9.9.9');
    await waitFor('the smoke test running', () => existsSync(`${hold}.held`) || undefined, { timeoutMs: 30_000 });
    await powerCut(first);
    process.kill(Number(readFileSync(`${hold}.held`, 'utf8')), 'SIGKILL');
    rmSync(hold);
    expect(existsSync(join(dev.prefix, '.staging-9.9.9'))).toBe(true);
    expect(existsSync(join(dev.prefix, '9.9.9'))).toBe(false);
    expect(link(dev.prefix, 'current')).toBe(RUNNING);
    expect(existsSync(join(dev.prefix, 'upgrade/trial'))).toBe(false);

    await restartFinishes(dev);
    await launcherStartsNewOnTrial(dev);
  });

  it('after the switch: the launcher starts the new release on trial', SLOW, async () => {
    const dev = await device('cut-switched');
    const first = dev.launch();
    await online(dev.hub, 'cut-switched');
    await upgradeTo(dev.hub, 'cut-switched', '9.9.9');
    await waitFor('current switched', () => link(dev.prefix, 'current') === '9.9.9' || undefined, { timeoutMs: 30_000, intervalMs: 5 });
    // The agent stops itself right after the switch; the cut lands before that or finds it gone.
    first.child.kill('SIGKILL');
    // Killed, or already gone by its own graceful stop (exit 0): the files on disk are the same either way.
    expect([0, 'SIGKILL']).toContain(await first.exited);
    expect(link(dev.prefix, 'previous')).toBe(RUNNING);
    expect(keyValues(join(dev.prefix, 'upgrade/trial'))).toMatchObject({ version: '9.9.9', previous: RUNNING, starts: '0' });
    await launcherStartsNewOnTrial(dev);
  });
});
