/**
 * A real agent and a real hub process around the agent's own upgrade: a
 * release on trial confirms once the hub acknowledges its first state report
 * (trial gone, launcher replaced from the release, older releases removed,
 * `agent-upgraded` at the hub); a rollback the launcher wrote reaches the hub
 * as one `agent-rolled-back` event across restarts, after which the releases
 * no link names are removed, and that version and revision are held while a
 * newer revision (`--retry`) is installed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import type { AgentUpgradeResult, DeviceView } from '../../shared/api/results.js';
import { flotillaVersion } from '../../shared/version.js';
import { Cleanup } from '../support/cleanup.js';
import { type HubProcess, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { fakePrefix, fakeRelease, keyValues, LAUNCHER, link, releaseTree } from './agent-upgrade-fixtures.js';

const SLOW = { timeout: 120_000 };
const RUNNING = flotillaVersion();

interface HubEvent {
  type: string;
  message: string;
}

describe("the agent's own upgrade with a real hub", () => {
  const cleanup = new Cleanup();
  afterEach(async () => {
    await cleanup.run();
    await stopAll();
  });

  async function events(hub: HubProcess, device: string): Promise<HubEvent[]> {
    const res = await fetch(`${hub.url}/api/v1/events?device=${device}`);
    return ((await res.json()) as { events: HubEvent[] }).events;
  }

  async function device(hub: HubProcess, id: string): Promise<DeviceView> {
    return (await (await fetch(`${hub.url}/api/v1/devices/${id}`)).json()) as DeviceView;
  }

  async function upgrade(hub: HubProcess, body: Record<string, unknown>): Promise<AgentUpgradeResult> {
    const res = await fetch(`${hub.url}/api/v1/agent/targets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as AgentUpgradeResult;
    expect(res.status, JSON.stringify(answer)).toBe(200);
    return answer;
  }

  async function agentOn(hub: HubProcess, id: string, dataDir: string, prefix: string | undefined, onRestart = () => {}): Promise<Agent> {
    const agent = await startAgent(
      { deviceId: id, hubUrl: hub.mqttUrl, hubHttpUrl: hub.url, dataDir, logLevel: 'silent', stateIntervalMs: 50 },
      {
        runtime: new DockerRuntime(new Dockerode({ socketPath: '/nonexistent/docker.sock' })),
        logger: pino({ level: 'silent' }),
        upgrade: { releasesDir: prefix, restart: onRestart },
      },
    );
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= agent.close();
      return closing;
    };
    cleanup.add(`agent ${id}`, close);
    return { ...agent, close };
  }

  it('confirms a release on trial once the hub acknowledges its first state report', SLOW, async () => {
    const hub = await startHubProcess();
    const prefix = fakePrefix(RUNNING);
    for (const version of ['0.0.9', '0.0.5'])
      renameSync(releaseTree(scratchDir(`flotilla-${version}-`), version, { fillerBytes: 16 }), join(prefix, version));
    symlinkSync('0.0.9', join(prefix, 'previous'));
    writeFileSync(join(prefix, 'launch'), '#!/bin/sh\n# the launcher of an older release\n');
    mkdirSync(join(prefix, 'upgrade'));
    const deadline = Math.floor(Date.now() / 1000) + 300;
    writeFileSync(join(prefix, 'upgrade/trial'), `version=${RUNNING}\nprevious=0.0.9\nrevision=3\ndeadline=${deadline}\nstarts=1\n`);

    const agent = await agentOn(hub, 'trial-1', scratchDir('flotilla-trial-agent-'), prefix);
    expect(agent.upgrader.report).toMatchObject({ version: RUNNING, revision: 3, phase: 'confirming' });
    await waitFor('the trial confirmed', () => !existsSync(join(prefix, 'upgrade/trial')) || undefined);

    const upgraded = await waitFor('agent-upgraded at the hub', async () => {
      const found = (await events(hub, 'trial-1')).filter((e) => e.type === 'agent-upgraded');
      return found.length > 0 && found;
    });
    expect(upgraded.map((e) => e.message)).toEqual([`agent upgraded from 0.0.9 to ${RUNNING}`]);
    expect(readFileSync(join(prefix, 'launch')).equals(readFileSync(LAUNCHER))).toBe(true);
    await waitFor('the older release removed', () => !existsSync(join(prefix, '0.0.5')) || undefined);
    expect(existsSync(join(prefix, '0.0.9/bin/flotilla'))).toBe(true);
    expect(link(prefix, 'current')).toBe(RUNNING);
    expect(link(prefix, 'previous')).toBe('0.0.9');
    expect(agent.upgrader.report).toBeUndefined();
    // The hub's last word on the device carries no upgrade any more.
    await waitFor('no agentUpgrade on the hub', async () => (await device(hub, 'trial-1')).agentUpgrade === undefined || undefined);
  });

  it('reports a rollback once, holds that version and revision, and installs it at a newer revision', SLOW, async () => {
    const releasesDir = scratchDir('flotilla-releases-');
    const release = fakeRelease(releasesDir, '9.9.9');
    const hub = await startHubProcess(undefined, ['--releases-dir', releasesDir]);
    const prefix = fakePrefix(RUNNING);
    const dataDir = scratchDir('flotilla-rb-agent-');
    // The device is known to the hub (with its architecture) before its target is set.
    const first = await agentOn(hub, 'rb-1', dataDir, prefix);
    await waitFor('rb-1 online', async () => (await device(hub, 'rb-1')).online || undefined);
    await first.close();

    const target = await upgrade(hub, { devices: ['rb-1'], version: '9.9.9', healthTimeout: '2m' });
    // What the launcher's rollback leaves: current and previous both at the running release, the
    // rolled-back build (from the signed tarball) and an older release beside them.
    for (const version of ['9.9.9', '0.0.5'])
      renameSync(releaseTree(scratchDir(`flotilla-${version}-`), version, { fillerBytes: 16 }), join(prefix, version));
    writeFileSync(join(prefix, '9.9.9/.sha256'), `${release.sha256}\n`);
    symlinkSync(RUNNING, join(prefix, 'previous'));
    mkdirSync(join(prefix, 'upgrade'));
    writeFileSync(
      join(prefix, 'upgrade/rolled-back'),
      `version=9.9.9\nrevision=${target.revision}\nreason=crashed 3 times in a row\nat=1764961300\nreported=0\n`,
    );

    let restarts = 0;
    const second = await agentOn(hub, 'rb-1', dataDir, prefix, () => restarts++);
    const held = await waitFor('the rolled-back report at the hub', async () => {
      const view = await device(hub, 'rb-1');
      return view.agentUpgrade?.phase === 'rolled-back' && view.agentUpgrade;
    });
    expect(held).toMatchObject({ version: '9.9.9', revision: target.revision });
    expect(held.message).toMatch(/^agent 9\.9\.9 rolled back at revision \d+ \(crashed 3 times in a row\); not tried again/);
    expect(keyValues(join(prefix, 'upgrade/rolled-back'))?.reported).toBe('1');
    // Told, the rollback frees the disk: only the release current and previous name stays.
    await waitFor(
      'the releases no link names removed',
      () =>
        readdirSync(prefix)
          .filter((name) => /^\d/.test(name))
          .join() === RUNNING || undefined,
    );
    expect(readdirSync(prefix).filter((name) => name.startsWith('.removing-'))).toEqual([]);
    expect(link(prefix, 'current')).toBe(RUNNING);
    expect(link(prefix, 'previous')).toBe(RUNNING);
    await second.close();

    // Started again: the rollback was told already, and the same revision is still held.
    const third = await agentOn(hub, 'rb-1', dataDir, prefix, () => restarts++);
    await waitFor('the agent connected again', () => third.link.connected || undefined);
    await waitFor('the held report again', () => third.upgrader.report?.phase === 'rolled-back' || undefined);
    const rolledBack = await waitFor('agent-rolled-back at the hub', async () => {
      const found = (await events(hub, 'rb-1')).filter((e) => e.type === 'agent-rolled-back');
      return found.length > 0 && found;
    });
    expect(rolledBack.map((e) => e.message)).toEqual([
      `agent 9.9.9 (revision ${target.revision}) rolled back to ${RUNNING}: crashed 3 times in a row`,
    ]);
    expect(existsSync(join(prefix, '.download'))).toBe(false);
    expect(restarts).toBe(0);

    // The operator asks again: a newer revision of the same version is installed.
    const retried = await upgrade(hub, { devices: ['rb-1'], version: '9.9.9', healthTimeout: '2m', retry: true });
    expect(retried.revision).toBeGreaterThan(target.revision);
    await waitFor('the switch to 9.9.9', () => restarts === 1 || undefined, { timeoutMs: 60_000 });
    expect(link(prefix, 'current')).toBe('9.9.9');
    expect(keyValues(join(prefix, 'upgrade/trial'))).toMatchObject({
      version: '9.9.9',
      previous: RUNNING,
      revision: `${retried.revision}`,
    });
    expect(readFileSync(join(prefix, '9.9.9/.sha256'), 'utf8').trim()).toBe(release.sha256);
    const types = (
      await waitFor('the restarting event at the hub', async () => {
        const all = await events(hub, 'rb-1');
        return all.some((e) => e.type === 'agent-upgrade-restarting') && all;
      })
    ).map((e) => e.type);
    expect(types.filter((t) => t.startsWith('agent-'))).toEqual([
      'agent-rolled-back',
      'agent-upgrade-started',
      'agent-upgrade-downloaded',
      'agent-upgrade-restarting',
    ]);
  });

  it('a device offline across two upgrades installs only the newest when it comes back', SLOW, async () => {
    const releasesDir = scratchDir('flotilla-releases-');
    fakeRelease(releasesDir, '9.9.8');
    fakeRelease(releasesDir, '9.9.9');
    const hub = await startHubProcess(undefined, ['--releases-dir', releasesDir]);
    const prefix = fakePrefix(RUNNING);
    const dataDir = scratchDir('flotilla-offline-agent-');
    const first = await agentOn(hub, 'away-1', dataDir, prefix);
    await waitFor('away-1 online', async () => (await device(hub, 'away-1')).online || undefined);
    await first.close();
    await waitFor('away-1 offline', async () => !(await device(hub, 'away-1')).online || undefined);

    await upgrade(hub, { devices: ['away-1'], version: '9.9.8' });
    const newest = await upgrade(hub, { devices: ['away-1'], version: '9.9.9' });
    expect((await device(hub, 'away-1')).desiredAgentVersion).toBe('9.9.9');

    let restarts = 0;
    await agentOn(hub, 'away-1', dataDir, prefix, () => restarts++);
    await waitFor('the switch to 9.9.9', () => restarts === 1 || undefined, { timeoutMs: 60_000 });
    expect(link(prefix, 'current')).toBe('9.9.9');
    expect(keyValues(join(prefix, 'upgrade/trial'))).toMatchObject({ version: '9.9.9', revision: `${newest.revision}` });
    // 9.9.8 was never fetched nor unpacked, and no step of the device's names it.
    expect(existsSync(join(prefix, '9.9.8'))).toBe(false);
    const steps = await waitFor('the restarting event at the hub', async () => {
      const all = (await events(hub, 'away-1')).filter((e) => e.type.startsWith('agent-'));
      return all.some((e) => e.type === 'agent-upgrade-restarting') && all;
    });
    expect(steps.map((e) => e.type)).toEqual(['agent-upgrade-started', 'agent-upgrade-downloaded', 'agent-upgrade-restarting']);
    for (const step of steps) expect(step.message).not.toContain('9.9.8');
  });

  it('says in its report and one event per revision that an agent not started by the launcher cannot upgrade itself', SLOW, async () => {
    const releasesDir = scratchDir('flotilla-releases-');
    fakeRelease(releasesDir, '9.9.9');
    const hub = await startHubProcess(undefined, ['--releases-dir', releasesDir]);
    const dataDir = scratchDir('flotilla-nolauncher-agent-');
    const agent = await agentOn(hub, 'plain-1', dataDir, undefined);
    await waitFor('plain-1 online', async () => (await device(hub, 'plain-1')).online || undefined);
    await upgrade(hub, { devices: ['plain-1'], version: '9.9.9' });

    const report = await waitFor('the failed report at the hub', async () => {
      const view = await device(hub, 'plain-1');
      return view.agentUpgrade?.phase === 'failed' && view.agentUpgrade;
    });
    expect(report.message).toMatch(
      /^this agent was not started by the Flotilla launcher \(FLOTILLA_RELEASES_DIR with a 'current' link\), so it cannot install agent 9\.9\.9/,
    );
    // A newer revision is refused again, with its own event; nothing else repeats it.
    await upgrade(hub, { devices: ['plain-1'], version: '9.9.9', healthTimeout: '3m' });
    await waitFor('the newer revision reported', async () => {
      const view = await device(hub, 'plain-1');
      return (view.agentUpgrade?.revision ?? 0) > report.revision || undefined;
    });
    // The event travels apart from the state report (the outbox, then the hub's ingest commit): wait for it too.
    const failed = await waitFor('the failed event of each revision', async () => {
      const all = (await events(hub, 'plain-1')).filter((e) => e.type === 'agent-upgrade-failed');
      return all.length >= 2 && all;
    });
    expect(failed.map((e) => e.message.match(/\(revision (\d+)\)/)?.[1])).toEqual([`${report.revision}`, `${report.revision + 1}`]);
    expect(agent.upgrader.report?.phase).toBe('failed');
  });
});
