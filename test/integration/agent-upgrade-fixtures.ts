/**
 * What the agent-upgrade tests build: small synthetic release tarballs laid
 * out as docker/release-bundle.sh lays them (`flotilla/bin/flotilla`, a sh
 * script answering `--version`; package.json; docker/agent-launch.sh; a
 * random, incompressible filler so a download can be cut mid-file), a release
 * prefix (/opt/flotilla in miniature) whose `current` names a fake running
 * version, and a TCP proxy to the hub that cuts the first connection after N
 * bytes and may pace every connection, counting what it carried.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { DesiredAgent } from '../../shared/index.js';
import { REPO_ROOT } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

export const LAUNCHER = join(REPO_ROOT, 'docker/agent-launch.sh');

export interface FakeRelease {
  version: string;
  file: string;
  path: string;
  sha256: string;
  bytes: number;
  unpackedBytes: number;
}

export interface FakeReleaseOptions {
  /** Random filler bytes in the release (default 1 MiB). */
  fillerBytes?: number;
  /**
   * While this file exists, `bin/flotilla --version` (the agent's smoke test) writes its pid
   * to `<holdFile>.held` and waits: a test can stop the agent there.
   */
  holdFile?: string;
  /** What the release runs for anything but `--version` (`exec <command> "$@"`); default: it prints what it was started with. */
  exec?: string;
  /** What `--version` runs instead of printing the version (sh): a release that does not start. */
  onVersion?: string;
}

/** `bin/flotilla` of a fake release: `--version` prints it; anything else prints what it was started with. */
function script(version: string, holdFile: string | undefined, exec: string | undefined, onVersion: string | undefined): string {
  const hold = holdFile
    ? `  if [ -e '${holdFile}' ]; then echo $$ >'${holdFile}.held'; n=0; while [ -e '${holdFile}' ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done; fi\n`
    : '';
  const run = exec === undefined ? `echo "started ${version} trial=\${FLOTILLA_TRIAL:-0} $*"` : `exec ${exec} "$@"`;
  const answer = onVersion ?? `echo ${version}\n  exit 0`;
  return `#!/bin/sh\nif [ "$1" = --version ]; then\n${hold}  ${answer}\nfi\n${run}\n`;
}

/** A release folder `dir/flotilla/…` for `version` (also what a prefix's running version is made of). */
export function releaseTree(dir: string, version: string, options: FakeReleaseOptions = {}): string {
  const root = join(dir, 'flotilla');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'docker'), { recursive: true });
  writeFileSync(join(root, 'bin/flotilla'), script(version, options.holdFile, options.exec, options.onVersion));
  chmodSync(join(root, 'bin/flotilla'), 0o755);
  writeFileSync(join(root, 'package.json'), `${JSON.stringify({ name: 'flotilla', version })}\n`);
  copyFileSync(LAUNCHER, join(root, 'docker/agent-launch.sh'));
  writeFileSync(join(root, 'filler.bin'), randomBytes(options.fillerBytes ?? 1024 * 1024));
  return root;
}

/** `flotilla-<version>-linux-<arch>.tar.gz` in `releasesDir`, with its `.sha256` beside it as the release script writes it. */
export function fakeRelease(releasesDir: string, version: string, options: FakeReleaseOptions = {}, arch = hostDockerArch()): FakeRelease {
  const work = scratchDir('flotilla-fake-release-');
  const root = releaseTree(work, version, options);
  const file = `flotilla-${version}-linux-${arch}.tar.gz`;
  const path = join(releasesDir, file);
  execFileSync('tar', ['-czf', path, '-C', work, 'flotilla']);
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  writeFileSync(`${path}.sha256`, `${sha256}  ${file}\n`);
  return { version, file, path, sha256, bytes: statSync(path).size, unpackedBytes: treeBytes(root) };
}

export function desiredFor(release: FakeRelease, revision: number, over: Partial<DesiredAgent> = {}): DesiredAgent {
  return {
    version: release.version,
    revision,
    bundle: { url: `/releases/${release.file}`, sha256: release.sha256, bytes: release.bytes, unpackedBytes: release.unpackedBytes },
    healthTimeout: '2m',
    ...over,
  };
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? treeBytes(path) : statSync(path).size;
  }
  return total;
}

function hostDockerArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** A prefix whose `current` names `running` (a fake release folder) and whose `launch` is the real launcher. */
export function fakePrefix(running: string, dir = scratchDir('flotilla-prefix-'), exec?: string): string {
  const work = scratchDir('flotilla-running-');
  const root = releaseTree(work, running, { fillerBytes: 16, ...(exec !== undefined ? { exec } : {}) });
  execFileSync('mv', [root, join(dir, running)]);
  symlinkSync(running, join(dir, 'current'));
  copyFileSync(LAUNCHER, join(dir, 'launch'));
  chmodSync(join(dir, 'launch'), 0o755);
  return dir;
}

export function link(prefix: string, name: 'current' | 'previous'): string | undefined {
  try {
    return readlinkSync(join(prefix, name));
  } catch {
    return undefined;
  }
}

/** `key=value` lines of an upgrade/ file, or undefined. */
export function keyValues(path: string): Record<string, string> | undefined {
  try {
    return Object.fromEntries(
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
  } catch {
    return undefined;
  }
}

export interface CuttingProxy {
  url: string;
  /** Connections accepted. */
  readonly connections: number;
  /** Bytes carried toward the client, over all connections (headers included). */
  readonly bytesDown: number;
  close(): Promise<void>;
}

/**
 * Forwards loopback TCP to `targetPort`. The first connection is cut (both sockets
 * destroyed) once `cutAfter` bytes went down; `pauseMs` > 0 waits that long
 * after each chunk it forwards down, so a test can act mid-download.
 */
export async function cuttingProxy(targetPort: number, { cutAfter = Number.POSITIVE_INFINITY, pauseMs = 0 } = {}): Promise<CuttingProxy> {
  let connections = 0;
  let bytesDown = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const index = connections++;
    const target = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(client).add(target);
    let carried = 0;
    const cut = () => {
      client.destroy();
      target.destroy();
    };
    client.on('data', (chunk) => target.write(chunk));
    target.on('data', (chunk: Buffer) => {
      const limit = index === 0 ? cutAfter - carried : Number.POSITIVE_INFINITY;
      const part = chunk.length > limit ? chunk.subarray(0, limit) : chunk;
      carried += part.length;
      bytesDown += part.length;
      client.write(part);
      if (index === 0 && carried >= cutAfter) return cut();
      if (pauseMs > 0) {
        target.pause();
        setTimeout(() => target.resume(), pauseMs);
      }
    });
    for (const socket of [client, target]) {
      socket.on('error', cut);
      socket.on('close', () => {
        sockets.delete(socket);
        cut();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    get bytesDown() {
      return bytesDown;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
