/**
 * The agent upgrade's decision (agent/upgrade/decide.ts): every branch, with
 * the reason an operator reads.
 */
import { describe, expect, it } from 'vitest';
import { DISK_RECHECK_MS, decideUpgrade, MAX_ATTEMPTS, RETRY_BACKOFF_MS, type UpgradeSituation } from '../../agent/upgrade/decide.js';
import type { DesiredAgent } from '../../shared/index.js';

const MiB = 1024 * 1024;
const NOW = Date.parse('2026-12-05T12:00:00Z');

const desired: DesiredAgent = {
  version: '0.3.0',
  revision: 12,
  bundle: { url: '/releases/flotilla-0.3.0-linux-arm64.tar.gz', sha256: 'a'.repeat(64), bytes: 41 * MiB, unpackedBytes: 79 * MiB },
};

function situation(over: Partial<UpgradeSituation> = {}): UpgradeSituation {
  return {
    desired,
    running: '0.2.0',
    prefix: '/opt/flotilla',
    onTrial: false,
    rolledBack: undefined,
    failures: undefined,
    installed: false,
    partBytes: 0,
    freeBytes: 10_000 * MiB,
    now: NOW,
    ...over,
  };
}

describe('decideUpgrade', () => {
  it('does nothing when no agent version is desired, or the desired one runs', () => {
    expect(decideUpgrade(situation({ desired: undefined }))).toEqual({ action: 'none', reason: 'no agent version is desired' });
    expect(decideUpgrade(situation({ running: '0.3.0' }))).toEqual({ action: 'none', reason: 'agent 0.3.0 runs, as desired' });
    // Even without a launcher: there is nothing to install.
    expect(decideUpgrade(situation({ running: '0.3.0', prefix: undefined })).action).toBe('none');
  });

  it('refuses when the agent was not started by the launcher', () => {
    const decision = decideUpgrade(situation({ prefix: undefined }));
    expect(decision).toMatchObject({ action: 'refuse', kind: 'no launcher' });
    expect(decision.reason).toMatch(/^this agent was not started by the Flotilla launcher .* cannot install agent 0\.3\.0 \(revision 12\)/);
  });

  it('refuses a section with no tarball, and a version named like a launcher file', () => {
    const { bundle: _none, ...imageOnly } = desired;
    expect(decideUpgrade(situation({ desired: { ...imageOnly, image: 'r/flotilla/agent@sha256:abc' } }))).toMatchObject({
      action: 'refuse',
      kind: 'no tarball',
      reason: expect.stringMatching(/names no release tarball for this device/),
    });
    expect(decideUpgrade(situation({ desired: { ...desired, version: 'current' } }))).toEqual({
      action: 'refuse',
      kind: 'reserved name',
      reason: 'agent version "current" is the name of a file the launcher uses under /opt/flotilla, not a release',
    });
  });

  it('holds a version that rolled back at this revision, and tries it at a newer one or another version', () => {
    const rolledBack = { version: '0.3.0', revision: 12, reason: 'crashed 3 times in a row' };
    expect(decideUpgrade(situation({ rolledBack }))).toEqual({
      action: 'hold',
      reason:
        'agent 0.3.0 rolled back at revision 12 (crashed 3 times in a row); not tried again until a newer revision asks for it (flotilla agent upgrade --retry)',
    });
    expect(decideUpgrade(situation({ rolledBack, desired: { ...desired, revision: 13 } })).action).toBe('download');
    expect(decideUpgrade(situation({ rolledBack: { ...rolledBack, version: '0.2.9' } })).action).toBe('download');
  });

  it('waits while the running version is on trial', () => {
    expect(decideUpgrade(situation({ onTrial: true }))).toEqual({
      action: 'wait',
      reason: 'agent 0.2.0 runs on trial: it confirms before agent 0.3.0 (revision 12) is installed',
      at: NOW,
    });
  });

  it('waits out the backoff after a failure, tries again after it, and gives up after the last attempt', () => {
    const failures = { version: '0.3.0', revision: 12, count: 1, lastAt: NOW - 1000, message: 'sha256 mismatch' };
    expect(decideUpgrade(situation({ failures }))).toEqual({
      action: 'wait',
      reason: `sha256 mismatch (attempt 2 of ${MAX_ATTEMPTS} at ${new Date(NOW - 1000 + (RETRY_BACKOFF_MS[0] ?? 0)).toISOString()})`,
      at: NOW - 1000 + (RETRY_BACKOFF_MS[0] ?? 0),
    });
    expect(decideUpgrade(situation({ failures, now: NOW + (RETRY_BACKOFF_MS[0] ?? 0) })).action).toBe('download');
    const second = { ...failures, count: 2 };
    expect(decideUpgrade(situation({ failures: second, now: NOW + (RETRY_BACKOFF_MS[0] ?? 0) })).action).toBe('wait');
    expect(decideUpgrade(situation({ failures: { ...failures, count: MAX_ATTEMPTS } }))).toEqual({
      action: 'refuse',
      kind: 'gave up',
      reason: 'sha256 mismatch (gave up after 3 attempts; a newer revision tries again)',
    });
  });

  it('switches to a release already unpacked, installs a whole download, and resumes a partial one', () => {
    expect(decideUpgrade(situation({ installed: true }))).toEqual({
      action: 'switch',
      reason: 'agent 0.3.0 (revision 12) is unpacked and tested: switching to it',
    });
    expect(decideUpgrade(situation({ partBytes: 41 * MiB }))).toEqual({
      action: 'install',
      reason: 'agent 0.3.0 (revision 12) is downloaded: verifying and unpacking it',
    });
    expect(decideUpgrade(situation({ partBytes: 10 * MiB }))).toEqual({
      action: 'download',
      reason: 'resuming the download of agent 0.3.0 (revision 12) at 10.0 MiB of 41.0 MiB',
      from: 10 * MiB,
    });
    expect(decideUpgrade(situation())).toEqual({ action: 'download', reason: 'downloading agent 0.3.0 (revision 12)', from: 0 });
    expect(decideUpgrade(situation({ partBytes: 42 * MiB }))).toEqual({
      action: 'download',
      reason: 'the partial download of agent 0.3.0 (revision 12) is larger than the release: starting over',
      from: 0,
    });
  });

  it('replaces a folder of the version unpacked from another tarball, unless current points at it', () => {
    // observe() passes installed only when the folder's .sha256 is the signed one.
    expect(decideUpgrade(situation({ otherBuild: 'unused' }))).toEqual({
      action: 'download',
      reason: 'downloading agent 0.3.0 (revision 12) (/opt/flotilla/0.3.0/ came from another tarball than the signed one: it is replaced)',
      from: 0,
    });
    expect(decideUpgrade(situation({ otherBuild: 'unused', partBytes: 41 * MiB })).action).toBe('install');
    expect(decideUpgrade(situation({ otherBuild: 'current' }))).toEqual({
      action: 'refuse',
      kind: 'current folder',
      reason: `/opt/flotilla/0.3.0/ is the folder 'current' points at, but it was not unpacked from the signed tarball (sha256 ${'a'.repeat(64)}) and agent 0.2.0 runs from it, so it cannot be replaced; reinstall the agent with docker/install.sh`,
    });
  });

  it('refuses with the numbers when the tarball, its files and the reserve do not fit', () => {
    expect(decideUpgrade(situation({ freeBytes: 61 * MiB }))).toEqual({
      action: 'refuse',
      kind: 'disk',
      recheckAt: NOW + DISK_RECHECK_MS,
      reason:
        'not enough disk for agent 0.3.0: 61.0 MiB free under /opt/flotilla, 152.0 MiB needed (tarball 41.0 MiB, unpacked 79.0 MiB, reserve 32.0 MiB); ' +
        'free space on the disk of /opt/flotilla (docker image prune, apt-get clean): it is checked again every 5 min',
    });
    // What is downloaded already is on the disk: only the rest is needed.
    expect(decideUpgrade(situation({ freeBytes: 130 * MiB, partBytes: 30 * MiB })).action).toBe('download');
    expect(decideUpgrade(situation({ freeBytes: 152 * MiB })).action).toBe('download');
    // A whole download or an unpacked release needs no more room.
    expect(decideUpgrade(situation({ freeBytes: 0, partBytes: 41 * MiB })).action).toBe('install');
    expect(decideUpgrade(situation({ freeBytes: 0, installed: true })).action).toBe('switch');
  });
});
