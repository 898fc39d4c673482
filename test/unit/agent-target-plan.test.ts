/**
 * The pure side of agent targets (broker/dispatcher/agent-plan.ts): the default target name, the
 * target a device follows among overlapping ones, its agent section through a rollout, what the
 * rollout machine reads of a device's report, and the counts agent.targets and Prometheus show.
 */
import { describe, expect, it } from 'vitest';
import {
  type AgentPass,
  agentFleetCounts,
  agentFor,
  agentReport,
  defaultTargetName,
  followedTarget,
  reportedAgent,
  targetCounts,
} from '../../broker/dispatcher/agent-plan.js';
import { startRollout } from '../../broker/dispatcher/rollout-plan.js';
import { desiredHash } from '../../broker/dispatcher/scheduling.js';
import type { AgentRelease, StoredAgentTarget } from '../../broker/store/agent-targets.js';
import { type AgentUpgradeReport, type DeviceState, NAME_PATTERN, type Scheduling } from '../../shared/index.js';
import { deviceState } from '../support/fixtures.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const SHA = (c: string) => c.repeat(64);

function release(version: string, arches: string[] = ['amd64', 'arm64']): AgentRelease {
  return {
    version,
    bundles: Object.fromEntries(
      arches.map((arch, i) => [
        arch,
        { file: `flotilla-${version}-linux-${arch}.tar.gz`, sha256: SHA(String(i)), bytes: 100 + i, unpackedBytes: 300 + i },
      ]),
    ),
  };
}

function target(
  name: string,
  revision: number,
  scheduling: Scheduling,
  version: string,
  extra: Partial<StoredAgentTarget> = {},
): StoredAgentTarget {
  return { name, revision, scheduling, release: release(version), createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(), ...extra };
}

const upgrade = (revision: number, phase: AgentUpgradeReport['phase'], version = '0.3.0'): AgentUpgradeReport => ({
  version,
  revision,
  phase,
  since: NOW.toISOString(),
});

function device(id: string, labels: Record<string, string>, host: Partial<DeviceState['host']> = {}, agentUpgrade?: AgentUpgradeReport) {
  const base = deviceState(id, { labels });
  const state: DeviceState = { ...base, host: { ...base.host, ...host }, ...(agentUpgrade ? { agentUpgrade } : {}) };
  return { id, labels, state };
}

describe('default target names', () => {
  it('name the selection as a DNS label', () => {
    expect(defaultTargetName({ selectors: {} })).toBe('all');
    expect(defaultTargetName({ selectors: { site: 'lab' } })).toBe('site-lab');
    expect(defaultTargetName({ selectors: { tier: 'edge', site: 'lab' } })).toBe('site-lab-tier-edge');
    expect(defaultTargetName({ devices: ['gw-1'] })).toBe('device-gw-1');
    expect(defaultTargetName({ devices: ['gw-2', 'gw-1'] })).toBe('devices-gw-1-gw-2');
    expect(defaultTargetName({ selectors: {}, devices: ['pi.roof_1'] })).toBe('device-pi-roof-1');
    expect(defaultTargetName({ selectors: { 'example.com/Site': 'Lab' } })).toBe('example-com-site-lab');
  });

  it('cut a long selection and end it in a hash of the whole, so two long ones stay apart', () => {
    const many = (n: number) => Array.from({ length: 12 }, (_, i) => `device-number-${n}-${i}`);
    const a = defaultTargetName({ devices: many(1) });
    const b = defaultTargetName({ devices: many(2) });
    expect(a).not.toBe(b);
    for (const name of [a, b]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(new RegExp(NAME_PATTERN));
      expect(name).toMatch(/^devices-device-number-.*-[0-9a-f]{8}$/);
    }
    expect(defaultTargetName({ devices: many(1) })).toBe(a);
  });
});

describe('the target a device follows', () => {
  const all = target('all', 3, { selectors: {} }, '0.2.0');
  const lab = target('site-lab', 5, { selectors: { site: 'lab' } }, '0.3.0');
  const gw1 = target('device-gw-1', 4, { devices: ['gw-1'] }, '0.2.5');

  it('is the one set last among those that select it', () => {
    const targets = [all, lab, gw1];
    expect(followedTarget(targets, 'gw-1', { site: 'lab' })?.name).toBe('site-lab');
    expect(followedTarget(targets, 'gw-1', { site: 'roof' })?.name).toBe('device-gw-1');
    expect(followedTarget(targets, 'gw-2', { site: 'roof' })?.name).toBe('all');
    // The newest deleted: the device falls back to the next.
    expect(followedTarget([all, gw1], 'gw-1', { site: 'lab' })?.name).toBe('device-gw-1');
    expect(followedTarget([lab], 'gw-2', { site: 'roof' })).toBeUndefined();
  });

  it("gets the followed target's release for its architecture, without a bundle where there is none", () => {
    const pass: AgentPass = {
      targets: [all, lab, { ...gw1, release: release('0.2.5', ['amd64']) }],
      rollouts: new Map(),
      releases: new Map(),
    };
    expect(agentFor(pass, device('gw-1', { site: 'lab' }, { arch: 'amd64' }))).toEqual({
      version: '0.3.0',
      revision: 5,
      bundle: { url: '/releases/flotilla-0.3.0-linux-amd64.tar.gz', sha256: SHA('0'), bytes: 100, unpackedBytes: 300 },
    });
    expect(agentFor(pass, device('gw-3', { site: 'lab' }, { arch: 'arm64' }))?.bundle?.url).toBe(
      '/releases/flotilla-0.3.0-linux-arm64.tar.gz',
    );
    expect(agentFor(pass, device('gw-1', { site: 'roof' }, { arch: 'arm64' }))).toEqual({ version: '0.2.5', revision: 4 });
    const image = { ...lab, release: { ...release('0.3.0'), image: 'reg/flotilla@sha256:abc', healthTimeout: '2m' } };
    expect(agentFor({ ...pass, targets: [image] }, device('gw-9', { site: 'lab' }, { arch: 'riscv64' }))).toEqual({
      version: '0.3.0',
      revision: 5,
      image: 'reg/flotilla@sha256:abc',
      healthTimeout: '2m',
    });
    expect(agentFor({ ...pass, targets: [lab] }, device('gw-2', { site: 'roof' }))).toBeUndefined();
  });

  it('gets an older revision, or none, while the rollout has not reached it', () => {
    const rolling = { ...lab, rollout: { canary: 1 } };
    // gw-1 follows `all` (revision 3) now, gw-2 runs what it runs (0), gw-3 the lab's older revision 2.
    const rollout = startRollout(
      {
        app: 'agent/site-lab',
        revision: 5,
        previousRevision: 2,
        policy: { canary: 1 },
        devices: [
          { id: 'gw-1', from: 3 },
          { id: 'gw-2', from: 0 },
          { id: 'gw-3', from: 2 },
        ],
      },
      () => undefined,
      NOW,
    );
    const pass: AgentPass = {
      targets: [all, rolling],
      rollouts: new Map([['site-lab', rollout]]),
      releases: new Map([
        [3, all.release],
        [2, release('0.2.9')],
      ]),
    };
    const lab1 = device('gw-1', { site: 'lab' });
    expect(agentFor(pass, lab1)).toMatchObject({ version: '0.3.0', revision: 5 });
    expect(agentFor(pass, device('gw-2', { site: 'lab' }))).toBeUndefined();
    expect(agentFor(pass, device('gw-3', { site: 'lab' }))).toMatchObject({ version: '0.2.9', revision: 2 });
    // A device that joined since the rollout was last advanced waits on the previous revision.
    expect(agentFor(pass, device('gw-4', { site: 'lab' }))).toMatchObject({ version: '0.2.9', revision: 2 });
    // A rollout of an older revision of the target no longer decides.
    expect(agentFor({ ...pass, targets: [all, { ...rolling, revision: 6 }] }, device('gw-2', { site: 'lab' }))).toMatchObject({
      revision: 6,
    });
  });
});

describe("a device's report as the agent rollout reads it", () => {
  const state = (version: string, agentUpgrade?: AgentUpgradeReport) => device('gw-1', {}, { agentVersion: version }, agentUpgrade).state;
  const v3 = release('0.3.0');

  it('is running once the device runs the version, failed or rolled back as it says, else still updating', () => {
    expect(agentReport(state('0.3.0'), 7, v3)).toEqual({ revision: 7, phase: 'running' });
    expect(agentReport(state('0.3.0', upgrade(6, 'rolled-back')), 7, v3)).toEqual({ revision: 7, phase: 'running' });
    expect(agentReport(state('0.2.0', upgrade(7, 'rolled-back')), 7, v3)).toEqual({ revision: 7, phase: 'rolled-back' });
    expect(agentReport(state('0.2.0', upgrade(7, 'failed')), 7, v3)).toEqual({ revision: 7, phase: 'failed' });
    // On trial: the new version runs but has not confirmed yet.
    expect(agentReport(state('0.3.0', upgrade(7, 'confirming')), 7, v3)).toBeUndefined();
    expect(agentReport(state('0.2.0', upgrade(7, 'downloading')), 7, v3)).toBeUndefined();
    expect(agentReport(state('0.2.0'), 7, v3)).toBeUndefined();
    // A failure of an older revision says nothing of this one.
    expect(agentReport(state('0.2.0', upgrade(6, 'failed')), 7, v3)).toBeUndefined();
    expect(agentReport(null, 7, v3)).toBeUndefined();
  });
});

describe('counts', () => {
  it('per target: the devices that follow it, running its version, upgrading, failed and rolled back at its revision', () => {
    const all = target('all', 3, { selectors: {} }, '0.2.0');
    const lab = target('site-lab', 5, { selectors: { site: 'lab' } }, '0.3.0');
    const devices = [
      device('a', { site: 'lab' }, { agentVersion: '0.3.0' }),
      device('b', { site: 'lab' }, { agentVersion: '0.2.0' }, upgrade(5, 'downloading')),
      device('c', { site: 'lab' }, { agentVersion: '0.2.0' }, upgrade(5, 'rolled-back')),
      device('d', { site: 'lab' }, { agentVersion: '0.2.0' }, upgrade(5, 'failed')),
      device('e', { site: 'lab' }, { agentVersion: '0.2.0' }, upgrade(4, 'failed')),
      device('f', { site: 'roof' }, { agentVersion: '0.2.0' }),
      device('g', { site: 'roof' }, { agentVersion: '0.1.0' }),
      { id: 'h', labels: { site: 'roof' }, state: null },
    ];
    const counts = targetCounts([all, lab], devices);
    expect(counts.get('site-lab')).toEqual({ matched: 5, running: 1, upgrading: 1, failed: 1, rolledBack: 1 });
    expect(counts.get('all')).toEqual({ matched: 2, running: 1, upgrading: 0, failed: 0, rolledBack: 0 });
  });

  it('count a device its rollout sent back as rolled back (failed while not yet sent back) when it reports nothing of the revision', () => {
    const lab = target('site-lab', 5, { selectors: { site: 'lab' } }, '0.3.0', { rollout: { canary: 1 } });
    const devices = ['a', 'b', 'c', 'd', 'e'].map((id) => device(id, { site: 'lab' }, { agentVersion: '0.2.0' }));
    // d still reports its own rollback: counted once, as it says.
    devices[3] = device('d', { site: 'lab' }, { agentVersion: '0.2.0' }, upgrade(5, 'rolled-back'));
    const states = { a: 'reverted', b: 'failed', c: 'pending', d: 'reverted', e: 'updating' } as const;
    const rollout = {
      ...startRollout(
        { app: 'agent/site-lab', revision: 5, previousRevision: 0, policy: { canary: 1 }, devices: [] },
        () => undefined,
        NOW,
      ),
      phase: 'paused' as const,
      devices: Object.entries(states).map(([id, state]) => ({ id, from: 0, canary: id === 'a', state, since: NOW.toISOString() })),
    };
    expect(targetCounts([lab], devices, new Map([['site-lab', rollout]])).get('site-lab')).toEqual({
      matched: 5,
      running: 0,
      upgrading: 0,
      failed: 1,
      rolledBack: 2,
    });
    // A rollout of an older revision says nothing of this one.
    expect(targetCounts([lab], devices, new Map([['site-lab', { ...rollout, revision: 4 }]])).get('site-lab')).toMatchObject({
      failed: 0,
      rolledBack: 1,
    });
    expect(targetCounts([lab], devices).get('site-lab')).toMatchObject({ failed: 0, rolledBack: 1 });
  });

  it('for Prometheus: devices per reported version, and per upgrade phase with every phase present', () => {
    const row = (state: DeviceState | null) => ({ state: state === null ? null : JSON.stringify(state) });
    const counts = agentFleetCounts(
      [
        row(device('a', {}, { agentVersion: '0.3.0' }).state),
        row(device('b', {}, { agentVersion: '0.2.0' }, upgrade(5, 'rolled-back')).state),
        row(device('c', {}, { agentVersion: '0.2.0' }, upgrade(5, 'downloading')).state),
        row(null),
      ].map(reportedAgent),
    );
    expect(counts.versions).toEqual([
      { version: '0.2.0', devices: 2 },
      { version: '0.3.0', devices: 1 },
    ]);
    expect(Object.fromEntries(counts.upgrades.map((u) => [u.phase, u.devices]))).toEqual({
      downloading: 1,
      verifying: 0,
      switching: 0,
      restarting: 0,
      confirming: 0,
      failed: 0,
      'rolled-back': 1,
    });
  });
});

describe('the desired hash', () => {
  it('covers the agent section, and is the apps-only hash without one', () => {
    const agent = { version: '0.3.0', revision: 5 };
    expect(desiredHash([], agent)).not.toBe(desiredHash([]));
    expect(desiredHash([], agent)).toBe(desiredHash([], { ...agent }));
    expect(desiredHash([], agent)).not.toBe(desiredHash([], { ...agent, revision: 6 }));
    expect(desiredHash([], undefined)).toBe(desiredHash([]));
  });
});
