/**
 * The files under the release prefix (/opt/flotilla) that the agent shares
 * with the launcher (docker/agent-launch.sh; docs/agent-upgrades.md, "On the
 * device"):
 *
 *   <version>/                 one unpacked release each; its `.sha256` names the tarball it came from
 *   current, previous          relative symlinks to a <version>/
 *   upgrade/trial              present while `current` runs on trial
 *   upgrade/rolled-back        written by the launcher when it went back
 *   .download/<file>.part      a tarball being downloaded
 *   .staging-<version>/        a release being unpacked and smoke-tested
 *   .removing-<version>/       an older release being removed (renamed first, so it is gone or whole)
 *
 * Invariants: every file and link is replaced by rename of a complete new one
 * (written, fsynced) and the directory is fsynced after, so a power cut leaves
 * the old or the new, never half of either; a reader ignores `*.tmp`. The
 * trial and rolled-back files are `key=value` lines, as POSIX sh reads them.
 */
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { fsyncDir } from '../fsync-dir.js';

export class ReleasePrefix {
  constructor(readonly dir: string) {}

  get current(): string {
    return join(this.dir, 'current');
  }
  get previous(): string {
    return join(this.dir, 'previous');
  }
  get launch(): string {
    return join(this.dir, 'launch');
  }
  get upgradeDir(): string {
    return join(this.dir, 'upgrade');
  }
  get trialFile(): string {
    return join(this.upgradeDir, 'trial');
  }
  get rolledBackFile(): string {
    return join(this.upgradeDir, 'rolled-back');
  }
  get downloadDir(): string {
    return join(this.dir, '.download');
  }
  release(version: string): string {
    return join(this.dir, version);
  }
  staging(version: string): string {
    return join(this.dir, `.staging-${version}`);
  }
  removing(version: string): string {
    return join(this.dir, `.removing-${version}`);
  }
  part(file: string): string {
    return join(this.downloadDir, `${file}.part`);
  }

  /** The version a link points at (its target's name), or undefined when it is missing or not a link. */
  linkTarget(link: 'current' | 'previous'): string | undefined {
    try {
      return basename(readlinkSync(join(this.dir, link)));
    } catch {
      return undefined;
    }
  }

  /** Points `link` at `<version>/` by renaming a new relative link over it: never a moment without one. */
  pointAt(link: 'current' | 'previous', version: string): void {
    const tmp = join(this.dir, `.${link}.tmp`);
    rmSync(tmp, { force: true });
    symlinkSync(version, tmp);
    renameSync(tmp, join(this.dir, link));
  }
}

/**
 * The sha256 of the tarball `<version>/` was unpacked from (its `.sha256`, written by the agent
 * and by docker/install.sh as the whole file or its first word), or undefined when it has none.
 */
export function releaseSha256(prefix: ReleasePrefix, version: string): string | undefined {
  try {
    return (
      readFileSync(join(prefix.release(version), '.sha256'), 'utf8')
        .trim()
        .split(/\s+/)[0] || undefined
    );
  } catch {
    return undefined;
  }
}

export interface TrialFile {
  version: string;
  previous: string;
  revision: number;
  /** Unix seconds. */
  deadline: number;
  starts: number;
}

export interface RolledBackFile {
  version: string;
  revision: number;
  reason: string;
  /** Unix seconds. */
  at: number;
  reported: boolean;
}

/** `key=value` lines; undefined when the file is absent or unreadable. */
export function readKeyValues(path: string): Record<string, string> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return values;
}

/** Written as the contract says: `<file>.tmp`, fsync, rename over `<file>`, fsync the directory. */
export function writeKeyValues(path: string, values: Record<string, string | number>): void {
  const text = Object.entries(values)
    .map(([key, value]) => `${key}=${String(value).replace(/\n/g, ' ')}\n`)
    .join('');
  writeDurably(path, text);
}

export function writeDurably(path: string, content: string | Buffer, mode = 0o644): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(join(path, '..'));
}

export function readTrial(prefix: ReleasePrefix): TrialFile | undefined {
  const v = readKeyValues(prefix.trialFile);
  if (v?.version === undefined) return undefined;
  return {
    version: v.version,
    previous: v.previous ?? '',
    revision: Number(v.revision ?? 0),
    deadline: Number(v.deadline ?? 0),
    starts: Number(v.starts ?? 0),
  };
}

export function writeTrial(prefix: ReleasePrefix, trial: TrialFile): void {
  writeKeyValues(prefix.trialFile, { ...trial });
}

export function readRolledBack(prefix: ReleasePrefix): RolledBackFile | undefined {
  const v = readKeyValues(prefix.rolledBackFile);
  if (v?.version === undefined) return undefined;
  return {
    version: v.version,
    revision: Number(v.revision ?? 0),
    reason: v.reason ?? 'rolled back',
    at: Number(v.at ?? 0),
    reported: v.reported === '1',
  };
}

export function writeRolledBack(prefix: ReleasePrefix, file: RolledBackFile): void {
  writeKeyValues(prefix.rolledBackFile, { ...file, reported: file.reported ? 1 : 0 });
}
