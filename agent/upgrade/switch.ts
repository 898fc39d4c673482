/**
 * The switch to a new release and the confirmation of a release on trial:
 * the only writes to `current`, `previous`, `upgrade/trial` and `launch`, and
 * the removal of releases no link names.
 *
 * Switch order, and why each power cut is safe (the launcher's rules in
 * docs/agent-upgrades.md):
 * 1. `upgrade/trial` naming the new version: cut here, `current` still names
 *    the old one, so the launcher drops the trial and starts the old;
 * 2. `previous` → the running version: cut here, the same;
 * 3. `current` → the new version (rename), fsync: from here the launcher
 *    starts the new one on trial, and goes back to `previous` by itself if it
 *    does not confirm.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from '../fsync-dir.js';
import { type ReleasePrefix, writeDurably, writeTrial } from './device-files.js';

export function switchTo(
  prefix: ReleasePrefix,
  target: { version: string; revision: number; healthTimeoutMs: number },
  running: string,
  nowMs: number,
): void {
  // The folder `current` names is the release that runs (its name is its version, as install.sh
  // unpacks it); going back to it, not to a folder named after the version string, cannot dangle.
  const back = prefix.linkTarget('current') ?? running;
  mkdirSync(prefix.upgradeDir, { recursive: true });
  writeTrial(prefix, {
    version: target.version,
    previous: back,
    revision: target.revision,
    deadline: Math.ceil((nowMs + target.healthTimeoutMs) / 1000),
    starts: 0,
  });
  prefix.pointAt('previous', back);
  prefix.pointAt('current', target.version);
  fsyncDir(prefix.dir);
}

/**
 * The running version is healthy: the trial ends (the launcher sees its file
 * gone and stops watching), and the launcher becomes this release's own when
 * it differs. True when the launcher was replaced.
 */
export function confirmTrial(prefix: ReleasePrefix): boolean {
  rmSync(prefix.trialFile, { force: true });
  fsyncDir(prefix.upgradeDir);
  return replaceLauncher(prefix);
}

/**
 * Removes the release folders other than `current` and `previous` (only what looks like a
 * release: a folder with bin/flotilla), asynchronously: tens of MB of small files on an SD
 * card would hold the event loop for seconds. Each is first renamed to `.removing-<name>/`
 * (which the agent's start removes too), so a stop mid-way never leaves a half-removed
 * `<version>/` whose `.sha256` still claims a whole release. Returns their names.
 */
export async function removeOldReleases(prefix: ReleasePrefix): Promise<string[]> {
  const keep = new Set([prefix.linkTarget('current'), prefix.linkTarget('previous')]);
  const removed: string[] = [];
  for (const entry of await readdir(prefix.dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === 'upgrade' || keep.has(entry.name)) continue;
    if (statSync(join(prefix.dir, entry.name, 'bin/flotilla'), { throwIfNoEntry: false }) === undefined) continue;
    const doomed = prefix.removing(entry.name);
    await rm(doomed, { recursive: true, force: true });
    renameSync(join(prefix.dir, entry.name), doomed);
    await rm(doomed, { recursive: true, force: true });
    removed.push(entry.name);
  }
  return removed;
}

/** `launch` from the current release's docker/agent-launch.sh, when it differs (write launch.new, fsync, rename). */
function replaceLauncher(prefix: ReleasePrefix): boolean {
  let shipped: Buffer;
  try {
    shipped = readFileSync(join(prefix.current, 'docker/agent-launch.sh'));
  } catch {
    return false;
  }
  let installed: Buffer | undefined;
  try {
    installed = readFileSync(prefix.launch);
  } catch {
    installed = undefined;
  }
  if (installed?.equals(shipped)) return false;
  writeDurably(prefix.launch, shipped, 0o755);
  return true;
}
