/**
 * The next step of the agent's own upgrade, decided from what is observed,
 * with the reason an operator sees. Pure: the desired section, the running
 * version, the launcher's files, what is downloaded and free, the failures so
 * far and the time all come in as arguments (upgrader.ts observes them and
 * acts), so every branch is a unit test.
 *
 * The order of the checks is the order of precedence:
 * 1. nothing desired, or the desired version runs: nothing to do;
 * 2. it cannot be done here (no launcher, no tarball in the section): refused;
 * 3. the launcher rolled this version back at this revision: held until a newer revision;
 * 4. the running version is still on trial: it confirms before anything else is installed;
 * 5. failures of this revision: wait out the backoff, give up after MAX_ATTEMPTS;
 * 6. the release is unpacked already from the signed tarball: switch; unpacked from
 *    another tarball (a release file replaced under the same version) and running as
 *    `current`: refused, since that folder cannot be replaced; the tarball is whole:
 *    install; else the disk check, then download from what is there.
 */
import type { DesiredAgent } from '../../shared/index.js';
import { formatBytes } from '../runtime/disk.js';

/** Left free under the prefix after the tarball and its unpacked files. */
export const UPGRADE_DISK_RESERVE_BYTES = 32 * 1024 * 1024;
/** Attempts per revision (a bad checksum, a broken download), then the operator must ask again with a newer revision. */
export const MAX_ATTEMPTS = 3;
/** Wait before attempt n+1 after n failures. */
export const RETRY_BACKOFF_MS: readonly number[] = [30_000, 120_000];

/** Names under the prefix that are not release folders: a version so named is refused. */
const RESERVED_NAMES = new Set(['current', 'previous', 'launch', 'upgrade']);

export type RefusalKind = 'no launcher' | 'reserved name' | 'no tarball' | 'gave up' | 'disk' | 'current folder';

/** How often a full disk is looked at again (an operator may free space without asking anew). */
export const DISK_RECHECK_MS = 5 * 60_000;

export interface UpgradeFailures {
  version: string;
  revision: number;
  count: number;
  /** When the last one happened (ms). */
  lastAt: number;
  message: string;
}

export interface UpgradeSituation {
  desired: DesiredAgent | undefined;
  running: string;
  /** Started by the launcher (FLOTILLA_RELEASES_DIR, with a `current` link): undefined when not, with why. */
  prefix: string | undefined;
  /** The running version is on trial (upgrade/trial names it). */
  onTrial: boolean;
  rolledBack: { version: string; revision: number; reason: string } | undefined;
  /** Failures of the desired revision so far (other revisions' are not passed in). */
  failures: UpgradeFailures | undefined;
  /**
   * `<prefix>/<desired version>/` exists and its `.sha256` is the desired bundle's: unpacked
   * from the signed tarball and smoke-tested already.
   */
  installed: boolean;
  /**
   * `<prefix>/<desired version>/` exists but came from another tarball (another `.sha256`, or
   * none): 'unused' is replaced by the install, 'current' is the folder `current` points at.
   */
  otherBuild?: 'unused' | 'current' | undefined;
  /** Size of `.download/<file>.part` (0: none). */
  partBytes: number;
  /** Free bytes under the prefix. */
  freeBytes: number;
  now: number;
}

export type UpgradeDecision =
  | { action: 'none'; reason: string }
  /**
   * Reported as `failed`, with one event per revision and kind; not retried until the desired
   * section changes, except a full disk, which is looked at again at `recheckAt`.
   */
  | { action: 'refuse'; kind: RefusalKind; reason: string; recheckAt?: number }
  /** Reported as `rolled-back`. */
  | { action: 'hold'; reason: string }
  /** A failure's backoff: try again at `at`; the `failed` report stays meanwhile. */
  | { action: 'wait'; reason: string; at: number }
  | { action: 'download'; reason: string; from: number }
  /** Verify the whole tarball, unpack, smoke-test and move it into place. */
  | { action: 'install'; reason: string }
  | { action: 'switch'; reason: string };

export function decideUpgrade(s: UpgradeSituation): UpgradeDecision {
  const { desired } = s;
  if (desired === undefined) return { action: 'none', reason: 'no agent version is desired' };
  const target = `agent ${desired.version} (revision ${desired.revision})`;
  if (desired.version === s.running) return { action: 'none', reason: `agent ${s.running} runs, as desired` };
  if (s.prefix === undefined) {
    return {
      action: 'refuse',
      kind: 'no launcher',
      reason: `this agent was not started by the Flotilla launcher (FLOTILLA_RELEASES_DIR with a 'current' link), so it cannot install ${target}; install it with docker/install.sh, or upgrade the agent the way it was installed`,
    };
  }
  if (RESERVED_NAMES.has(desired.version)) {
    return {
      action: 'refuse',
      kind: 'reserved name',
      reason: `agent version "${desired.version}" is the name of a file the launcher uses under ${s.prefix}, not a release`,
    };
  }
  if (desired.bundle === undefined) {
    return {
      action: 'refuse',
      kind: 'no tarball',
      reason: `the desired ${target} names no release tarball for this device (an image install's section?); publish the bundle for its architecture in the hub's --releases-dir`,
    };
  }
  const rb = s.rolledBack;
  if (rb && rb.version === desired.version && rb.revision >= desired.revision) {
    return {
      action: 'hold',
      reason: `agent ${rb.version} rolled back at revision ${rb.revision} (${rb.reason}); not tried again until a newer revision asks for it (flotilla agent upgrade --retry)`,
    };
  }
  if (s.onTrial)
    return { action: 'wait', reason: `agent ${s.running} runs on trial: it confirms before ${target} is installed`, at: s.now };
  const failed = s.failures;
  if (failed && failed.count >= MAX_ATTEMPTS) {
    return {
      action: 'refuse',
      kind: 'gave up',
      reason: `${failed.message} (gave up after ${failed.count} attempts; a newer revision tries again)`,
    };
  }
  if (failed) {
    const at = failed.lastAt + (RETRY_BACKOFF_MS[failed.count - 1] ?? RETRY_BACKOFF_MS.at(-1) ?? 0);
    if (s.now < at)
      return {
        action: 'wait',
        reason: `${failed.message} (attempt ${failed.count + 1} of ${MAX_ATTEMPTS} at ${new Date(at).toISOString()})`,
        at,
      };
  }
  if (s.installed) return { action: 'switch', reason: `${target} is unpacked and tested: switching to it` };
  if (s.otherBuild === 'current') {
    return {
      action: 'refuse',
      kind: 'current folder',
      reason:
        `${s.prefix}/${desired.version}/ is the folder 'current' points at, but it was not unpacked from the signed tarball ` +
        `(sha256 ${desired.bundle.sha256}) and agent ${s.running} runs from it, so it cannot be replaced; reinstall the agent with docker/install.sh`,
    };
  }
  const { bytes, unpackedBytes } = desired.bundle;
  const replacing =
    s.otherBuild === 'unused' ? ` (${s.prefix}/${desired.version}/ came from another tarball than the signed one: it is replaced)` : '';
  if (s.partBytes === bytes) return { action: 'install', reason: `${target} is downloaded: verifying and unpacking it${replacing}` };
  const from = s.partBytes < bytes ? s.partBytes : 0;
  const needed = bytes - from + unpackedBytes + UPGRADE_DISK_RESERVE_BYTES;
  if (s.freeBytes < needed) {
    return {
      action: 'refuse',
      kind: 'disk',
      recheckAt: s.now + DISK_RECHECK_MS,
      reason:
        `not enough disk for agent ${desired.version}: ${formatBytes(s.freeBytes)} free under ${s.prefix}, ${formatBytes(needed)} needed ` +
        `(tarball ${formatBytes(bytes - from)}, unpacked ${formatBytes(unpackedBytes)}, reserve ${formatBytes(UPGRADE_DISK_RESERVE_BYTES)}); ` +
        `free space on the disk of ${s.prefix} (docker image prune, apt-get clean): it is checked again every ${DISK_RECHECK_MS / 60_000} min`,
    };
  }
  if (s.partBytes > bytes)
    return { action: 'download', reason: `the partial download of ${target} is larger than the release: starting over`, from: 0 };
  if (from > 0)
    return {
      action: 'download',
      reason: `resuming the download of ${target} at ${formatBytes(from)} of ${formatBytes(bytes)}${replacing}`,
      from,
    };
  return { action: 'download', reason: `downloading ${target}${replacing}`, from: 0 };
}
