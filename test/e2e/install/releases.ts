/**
 * Release tarballs for the install and upgrade tests, made from this machine's
 * release bundle (docker/release-bundle.sh) without building anything: the
 * bundle is unpacked, its package.json given another version (the version the
 * CLI prints and the agent reports is read from there), optionally changed
 * further, and packed again under the name the hub's releases dir serves
 * (`flotilla-<version>-linux-<arch>.tar.gz`).
 *
 * A repacked release is the real thing in every other respect: the same Node
 * binary, the same compiled JS, the same launcher and install script.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../../support/processes.js';
import { HOST_ARCH } from './device.js';

export interface RepackOptions {
  /** The bundle to start from (device.ts bundlePath). */
  from: string;
  /** The version the new release says it is. */
  version: string;
  /** The folder to write the tarball into: the hub's --releases-dir. */
  releasesDir: string;
  /** Changes the unpacked release (its root, `flotilla/`) before it is packed. */
  change?: (root: string) => void;
}

/** The tarball's path. The unpacked copy is a scratch dir that the next stopAll() removes. */
export function repackRelease({ from, version, releasesDir, change }: RepackOptions): string {
  const work = scratchDir('flotilla-release-');
  execFileSync('tar', ['-xzf', from, '-C', work]);
  const root = join(work, 'flotilla');
  const pkgFile = join(root, 'package.json');
  writeFileSync(pkgFile, JSON.stringify({ ...JSON.parse(readFileSync(pkgFile, 'utf8')), version }));
  change?.(root);
  const tarball = join(releasesDir, `flotilla-${version}-linux-${HOST_ARCH}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', work, 'flotilla']);
  return tarball;
}

/**
 * A release that passes the upgrader's smoke test (`bin/flotilla --version`
 * prints its version) but whose agent exits 1 as it starts, every time: the
 * crash loop the launcher must roll back. The line goes right after bin.js's
 * shebang, so it runs before the CLI reads its arguments.
 */
export function crashAgentAtStart(root: string): void {
  const binFile = join(root, 'dist/cli/bin.js');
  const [shebang, ...rest] = readFileSync(binFile, 'utf8').split('\n');
  const crash =
    "if (process.argv[2] === 'agent') { process.stderr.write('this release is broken on purpose: the agent exits at start\\n'); process.exit(1); }";
  writeFileSync(binFile, [shebang, crash, ...rest].join('\n'));
}
