/**
 * The agent's upgrader (agent/upgrade/) driven with a desired agent section
 * against a real hub process serving a synthetic release from its
 * --releases-dir, in a release prefix whose `current` names a fake running
 * version: the download resumes after its connection is cut mid-file, a wrong
 * sha256 and a full disk are refused before anything switches, and a
 * successful install leaves the trial and the links as the launcher reads them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentUpgrader } from '../../agent/upgrade/upgrader.js';
import type { DesiredAgent } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { makeTestCerts } from '../support/dev-certs.js';
import { startTestHub } from '../support/hub.js';
import { type HubProcess, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import {
  cuttingProxy,
  desiredFor,
  type FakeRelease,
  fakePrefix,
  fakeRelease,
  keyValues,
  link,
  releaseTree,
} from './agent-upgrade-fixtures.js';

const MiB = 1024 * 1024;
const SLOW = { timeout: 90_000 };

interface Driven {
  upgrader: AgentUpgrader;
  events: { type: string; message: string }[];
  restarts: () => number;
}

describe('the agent upgrader against a real hub', () => {
  const cleanup = new Cleanup();
  afterEach(async () => {
    await cleanup.run();
    await stopAll();
  });

  async function hubWith(release: (dir: string) => FakeRelease): Promise<{ hub: HubProcess; release: FakeRelease }> {
    const releasesDir = scratchDir('flotilla-releases-');
    const made = release(releasesDir);
    const hub = await startHubProcess(undefined, ['--releases-dir', releasesDir]);
    return { hub, release: made };
  }

  function drive(prefix: string, hubHttpUrl: string, over: { freeBytes?: (path: string) => Promise<number>; ca?: string } = {}): Driven {
    const events: { type: string; message: string }[] = [];
    let restarts = 0;
    const upgrader = new AgentUpgrader({
      releasesDir: prefix,
      running: '0.2.0',
      hubHttpUrl,
      logger: pino({ level: process.env.UPGRADE_LOG ?? 'silent' }),
      event: (event) => events.push({ type: event.type, message: event.message }),
      restart: () => {
        restarts++;
      },
      progressIntervalMs: 100,
      ...over,
    });
    cleanup.add('upgrader', () => upgrader.close());
    upgrader.start();
    return { upgrader, events, restarts: () => restarts };
  }

  it('resumes a download cut mid-file, fetching the file about once, then installs and switches', SLOW, async () => {
    const { hub, release } = await hubWith((dir) => fakeRelease(dir, '9.9.9', { fillerBytes: 3 * MiB }));
    const proxy = await cuttingProxy(hub.httpPort, { cutAfter: MiB });
    cleanup.add('proxy', () => proxy.close());
    const prefix = fakePrefix('0.2.0');
    const { upgrader, events, restarts } = drive(prefix, proxy.url);

    upgrader.setDesired(desiredFor(release, 5));
    await waitFor('the switch and the restart', () => restarts() === 1 || undefined, { timeoutMs: 60_000 });

    expect(proxy.connections).toBe(2);
    expect(proxy.bytesDown).toBeLessThanOrEqual(1.05 * release.bytes);
    expect(link(prefix, 'current')).toBe('9.9.9');
    expect(link(prefix, 'previous')).toBe('0.2.0');
    const trial = keyValues(join(prefix, 'upgrade/trial'));
    expect(trial).toMatchObject({ version: '9.9.9', previous: '0.2.0', revision: '5', starts: '0' });
    const deadline = Number(trial?.deadline);
    expect(deadline - Date.now() / 1000).toBeGreaterThan(100);
    expect(deadline - Date.now() / 1000).toBeLessThanOrEqual(121);
    expect(execFileSync(join(prefix, 'current/bin/flotilla'), ['--version']).toString().trim()).toBe('9.9.9');
    // The tarball and the staging dir are gone; the release says where it came from.
    expect(readdirSync(join(prefix, '.download'))).toEqual([]);
    expect(readdirSync(prefix).filter((name) => name.startsWith('.staging'))).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['agent-upgrade-started', 'agent-upgrade-downloaded', 'agent-upgrade-restarting']);
    expect(events[0]?.message).toMatch(/^upgrading the agent from 0\.2\.0 to 9\.9\.9 \(revision 5\): downloading 3\.0 MiB$/);
    expect(upgrader.report).toMatchObject({ version: '9.9.9', revision: 5, phase: 'restarting' });
  });

  it('refuses a tarball whose sha256 is not the signed one before anything switches', SLOW, async () => {
    const { hub, release } = await hubWith((dir) => fakeRelease(dir, '9.9.9'));
    const prefix = fakePrefix('0.2.0');
    const before = readdirSync(prefix).sort();
    const { upgrader, events, restarts } = drive(prefix, hub.url);
    const wrong = 'b'.repeat(64);

    upgrader.setDesired(
      desiredFor(release, 6, { bundle: { ...(desiredFor(release, 6).bundle as NonNullable<DesiredAgent['bundle']>), sha256: wrong } }),
    );
    const report = await waitFor('a failed report', () => (upgrader.report?.phase === 'failed' ? upgrader.report : undefined));

    const expected =
      `sha256 mismatch for agent 9.9.9: expected ${wrong}, got ${release.sha256}; the download was deleted. ` +
      `Likely cause: the hub's release file changed after the target was set; run flotilla agent upgrade again to pin the new one`;
    expect(report).toMatchObject({ version: '9.9.9', revision: 6, phase: 'failed', message: expected });
    expect(events.map((e) => e.type)).toEqual(['agent-upgrade-started', 'agent-upgrade-failed']);
    expect(events[1]?.message).toBe(`agent 9.9.9 (revision 6): ${expected}`);
    // Links and files as they were; the .part gone; no release folder, no trial.
    expect(link(prefix, 'current')).toBe('0.2.0');
    expect(link(prefix, 'previous')).toBeUndefined();
    expect(readdirSync(prefix).sort()).toEqual([...before, '.download'].sort());
    expect(readdirSync(join(prefix, '.download'))).toEqual([]);
    expect(restarts()).toBe(0);
  });

  it(
    'replaces a folder of the same version from another tarball with the signed release, and switches straight to one from it',
    SLOW,
    async () => {
      const { hub, release } = await hubWith((dir) => fakeRelease(dir, '9.9.9'));
      const proxy = await cuttingProxy(hub.httpPort);
      cleanup.add('proxy', () => proxy.close());
      // What a rolled-back build leaves: 9.9.9/ unpacked from the tarball the hub served before a fixed one replaced it.
      const prefix = fakePrefix('0.2.0');
      const old = releaseTree(scratchDir('flotilla-old-build-'), '9.9.9', { fillerBytes: 16 });
      writeFileSync(join(old, '.sha256'), `${'c'.repeat(64)}\n`);
      writeFileSync(join(old, 'old-build'), 'the build that crashed\n');
      renameSync(old, join(prefix, '9.9.9'));
      const { upgrader, events, restarts } = drive(prefix, proxy.url);

      upgrader.setDesired(desiredFor(release, 10));
      await waitFor('the switch and the restart', () => restarts() === 1 || undefined, { timeoutMs: 60_000 });

      expect(proxy.connections).toBe(1);
      expect(events.map((e) => e.type)).toEqual(['agent-upgrade-started', 'agent-upgrade-downloaded', 'agent-upgrade-restarting']);
      expect(link(prefix, 'current')).toBe('9.9.9');
      expect(readFileSync(join(prefix, '9.9.9/.sha256'), 'utf8').trim()).toBe(release.sha256);
      expect(existsSync(join(prefix, '9.9.9/old-build'))).toBe(false);
      expect(readdirSync(prefix).filter((name) => name.startsWith('.staging'))).toEqual([]);

      // A folder unpacked from the signed tarball is switched to without fetching anything.
      const again = fakePrefix('0.2.0');
      renameSync(join(prefix, '9.9.9'), join(again, '9.9.9'));
      const second = drive(again, proxy.url);
      second.upgrader.setDesired(desiredFor(release, 11));
      await waitFor('the second switch', () => second.restarts() === 1 || undefined, { timeoutMs: 60_000 });
      expect(proxy.connections).toBe(1);
      expect(second.events.map((e) => e.type)).toEqual(['agent-upgrade-restarting']);
      expect(link(again, 'current')).toBe('9.9.9');
    },
  );

  it('refuses a release that does not run here, saying in one line what it printed', SLOW, async () => {
    // Its --version is a real Node crash: location, source echo, caret row, stack, footer.
    const crash = `exec '${process.execPath}' -e 'require("./nope-module")'`;
    const { hub, release } = await hubWith((dir) => fakeRelease(dir, '9.9.9', { onVersion: crash }));
    const prefix = fakePrefix('0.2.0');
    const { upgrader, events, restarts } = drive(prefix, hub.url);

    upgrader.setDesired(desiredFor(release, 12));
    const report = await waitFor('a failed report', () => (upgrader.report?.phase === 'failed' ? upgrader.report : undefined));

    const expected = `agent 9.9.9 does not run on this device: bin/flotilla --version exited with code 1, printing "Error: Cannot find module './nope-module'"`;
    expect(report.message).toBe(expected);
    expect(events.map((e) => e.type)).toEqual(['agent-upgrade-started', 'agent-upgrade-downloaded', 'agent-upgrade-failed']);
    expect(events[2]?.message).toBe(`agent 9.9.9 (revision 12): ${expected}`);
    expect(existsSync(join(prefix, '9.9.9'))).toBe(false);
    expect(readdirSync(prefix).filter((name) => name.startsWith('.staging'))).toEqual([]);
    expect(link(prefix, 'current')).toBe('0.2.0');
    expect(restarts()).toBe(0);
  });

  describe('on a full disk', () => {
    let mounted: string | undefined;
    afterEach(() => {
      if (mounted) execFileSync('umount', ['-l', mounted]);
      mounted = undefined;
    });

    it('refuses with the numbers before downloading anything', SLOW, async () => {
      const { hub, release } = await hubWith((dir) => fakeRelease(dir, '9.9.9', { fillerBytes: 3 * MiB }));
      const proxy = await cuttingProxy(hub.httpPort);
      cleanup.add('proxy', () => proxy.close());
      const dir = scratchDir('flotilla-tmpfs-');
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
      mounted = dir;
      mkdirSync(join(dir, 'opt'));
      const prefix = fakePrefix('0.2.0', join(dir, 'opt'));
      const { upgrader, events } = drive(prefix, proxy.url);

      upgrader.setDesired(desiredFor(release, 7));
      const report = await waitFor('a failed report', () => (upgrader.report?.phase === 'failed' ? upgrader.report : undefined));

      expect(report.message).toMatch(
        new RegExp(
          `^not enough disk for agent 9\\.9\\.9: [0-9.]+ (KiB|MiB) free under ${prefix}, [0-9.]+ MiB needed \\(tarball 3\\.0 MiB, unpacked 3\\.0 MiB, reserve 32\\.0 MiB\\); ` +
            `free space on the disk of ${prefix} \\(docker image prune, apt-get clean\\): it is checked again every 5 min$`,
        ),
      );
      expect(events.map((e) => e.type)).toEqual(['agent-upgrade-failed']);
      expect(proxy.connections).toBe(0);
      expect(existsSync(join(prefix, '.download'))).toBe(false);
      expect(link(prefix, 'current')).toBe('0.2.0');
    });
  });

  it('abandons a download when a section for another release arrives, keeping only the new one', SLOW, async () => {
    const releasesDir = scratchDir('flotilla-releases-');
    const first = fakeRelease(releasesDir, '9.9.8', { fillerBytes: 3 * MiB });
    const second = fakeRelease(releasesDir, '9.9.9');
    const hub = await startHubProcess(undefined, ['--releases-dir', releasesDir]);
    const proxy = await cuttingProxy(hub.httpPort, { pauseMs: 50 });
    cleanup.add('proxy', () => proxy.close());
    const prefix = fakePrefix('0.2.0');
    const { upgrader, events, restarts } = drive(prefix, proxy.url);

    upgrader.setDesired(desiredFor(first, 8));
    await waitFor('part of the first download', () => (upgrader.report?.bytes ?? 0) > 0 || undefined);
    upgrader.setDesired(desiredFor(second, 9));
    await waitFor('the switch to the second', () => restarts() === 1 || undefined, { timeoutMs: 60_000 });

    expect(link(prefix, 'current')).toBe('9.9.9');
    expect(existsSync(join(prefix, '9.9.8'))).toBe(false);
    expect(readdirSync(join(prefix, '.download'))).toEqual([]);
    expect(events.map((e) => e.type)).toEqual([
      'agent-upgrade-started',
      'agent-upgrade-started',
      'agent-upgrade-downloaded',
      'agent-upgrade-restarting',
    ]);
    expect(events[1]?.message).toMatch(/to 9\.9\.9 \(revision 9\)/);
  });

  it('fetches over https trusting the pinned CA only', SLOW, async () => {
    const [certs, other] = await Promise.all([makeTestCerts(), makeTestCerts()]);
    const releasesDir = scratchDir('flotilla-releases-');
    const release = fakeRelease(releasesDir, '9.9.9');
    const hub = await startTestHub({ config: { ...certs.hubConfig, releasesDir } });
    cleanup.add('tls hub', () => hub.close());
    const https = `https://127.0.0.1:${hub.hub.ports.https}`;

    const refused = drive(fakePrefix('0.2.0'), https, { ca: other.ca });
    refused.upgrader.setDesired(desiredFor(release, 3));
    const report = await waitFor(
      'a failed report',
      () => (refused.upgrader.report?.phase === 'failed' ? refused.upgrader.report : undefined),
      {
        timeoutMs: 60_000,
      },
    );
    expect(report.message).toMatch(
      /^cannot download https:\/\/127\.0\.0\.1:\d+\/releases\/flotilla-9\.9\.9-linux-\w+\.tar\.gz: .*(certificate|self.signed)/i,
    );

    const prefix = fakePrefix('0.2.0');
    const trusted = drive(prefix, https, { ca: certs.ca });
    trusted.upgrader.setDesired(desiredFor(release, 3));
    await waitFor('the switch', () => trusted.restarts() === 1 || undefined, { timeoutMs: 60_000 });
    expect(link(prefix, 'current')).toBe('9.9.9');
  });
});
