/**
 * From a whole tarball to `<prefix>/<version>/`: its SHA-256 checked (a
 * mismatch deletes it), unpacked by the system `tar` into
 * `.staging-<version>/`, smoke-tested (`bin/flotilla --version` must print the
 * version), and moved into place by one rename. Nothing the launcher reads
 * changes here: `current`, `previous` and the trial file are switch.ts's.
 *
 * Invariant: `<prefix>/<version>/` exists only complete and tested (the rename
 * is the last act), so a power cut anywhere before leaves a staging dir that
 * the next start removes, and decide.ts may trust a `<version>/` whose
 * `.sha256` is the signed one. A folder of the same version from another
 * tarball is moved into the staging dir first (one rename: never half
 * removed, so its `.sha256` never outlives its files) and removed with it;
 * the folder `current` points at is never replaced.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncDir } from '../fsync-dir.js';
import type { ReleasePrefix } from './device-files.js';
import { printedLine } from './printed-line.js';

const run = promisify(execFile);

/** What execFile's promise rejects with: `code` is the exit code, or the spawn error's code. */
type RunError = Error & { code?: number | string; signal?: NodeJS.Signals | null; killed?: boolean; stdout?: string; stderr?: string };

/** Why a program could not be started at all, in the words of a release that ships it. */
const START_ERRORS: Record<string, string> = {
  ENOENT: 'bin/flotilla, or the interpreter its first line names, is missing',
  EACCES: 'bin/flotilla is not executable',
  ENOEXEC: 'bin/flotilla is not a program for this system',
};

/** How long `bin/flotilla --version` of the new release may take (a cold Node start on a slow SD card). */
const SMOKE_TEST_TIMEOUT_MS = 60_000;

export class InstallError extends Error {
  override readonly name = 'InstallError';
}

/** SHA-256 of a file, read as a stream: the event loop sees one chunk at a time. */
export function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, signal ? { signal } : {})
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Throws InstallError (and deletes the file) when the tarball is not the one the signed section names. */
export async function verifyTarball(part: string, version: string, expected: string, signal: AbortSignal): Promise<void> {
  const actual = await sha256File(part, signal);
  if (actual === expected) return;
  rmSync(part, { force: true });
  throw new InstallError(
    `sha256 mismatch for agent ${version}: expected ${expected}, got ${actual}; the download was deleted. ` +
      `Likely cause: the hub's release file changed after the target was set; run flotilla agent upgrade again to pin the new one`,
  );
}

/** Unpacks, smoke-tests and moves the release to `<prefix>/<version>/`; the tarball is removed once it is there. */
export async function unpackRelease(
  prefix: ReleasePrefix,
  part: string,
  version: string,
  sha256: string,
  signal: AbortSignal,
): Promise<void> {
  const staging = prefix.staging(version);
  const dest = prefix.release(version);
  if (prefix.linkTarget('current') === version)
    throw new InstallError(`${dest}/ is the folder 'current' points at: the release that runs is not replaced`);
  // Staging dirs hold a whole release's files: removed without holding the event loop.
  await rm(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    await run('tar', ['-xzf', part, '-C', staging], { signal }).catch((err: RunError) => {
      throw new InstallError(`could not unpack agent ${version}: ${printedLine(err.stderr || err.message)}`);
    });
    const root = join(staging, 'flotilla');
    const printed = await run(join(root, 'bin/flotilla'), ['--version'], { signal, timeout: SMOKE_TEST_TIMEOUT_MS }).then(
      ({ stdout }) => stdout.trim(),
      (err: RunError) => {
        throw doesNotRun(version, err);
      },
    );
    if (!printed.split(/\s+/).includes(version)) {
      throw new InstallError(
        `the release tarball for agent ${version} holds another version: bin/flotilla --version printed "${printedLine(printed, 100)}"`,
      );
    }
    // What docker/install.sh writes too: which tarball this release came from.
    writeFileSync(join(root, '.sha256'), `${sha256}\n`);
    signal.throwIfAborted();
    if (lstatSync(dest, { throwIfNoEntry: false }) !== undefined) renameSync(dest, join(staging, 'replaced'));
    renameSync(root, dest);
    fsyncDir(prefix.dir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  rmSync(part, { force: true });
}

/** The smoke test's failure: how bin/flotilla --version ended, and what it printed, in one line. */
function doesNotRun(version: string, err: RunError): InstallError {
  const printed = printedLine(err.stderr || err.stdout || '');
  const how =
    typeof err.code === 'string'
      ? `could not start (${err.code}${START_ERRORS[err.code] ? `: ${START_ERRORS[err.code]}` : ''})`
      : err.killed
        ? `did not answer within ${SMOKE_TEST_TIMEOUT_MS / 1000} s`
        : err.signal
          ? `was killed by ${err.signal}`
          : `exited with code ${err.code ?? 'unknown'}`;
  return new InstallError(
    `agent ${version} does not run on this device: bin/flotilla --version ${how}${printed ? `, printing "${printed}"` : ''}`,
  );
}
