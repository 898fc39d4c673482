/**
 * A fresh Debian device for the install test: the image docker/device-image.sh
 * makes (debootstrapped Debian 12, systemd as PID 1), run as a container that
 * shares the host's network (so it reaches a hub on 127.0.0.1 as a device on
 * the LAN would reach its hub) and the host's Docker socket (so the agent it
 * installs deploys to the real engine).
 *
 * systemd runs as PID 1 here: it needs CAP_SYS_ADMIN and its own cgroup
 * namespace, and no seccomp or AppArmor profile in its way. `--privileged` is
 * refused on this engine (one capability, CAP_SYS_RESOURCE, is not ours to
 * give), so every capability but that one is added instead.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker } from '../support/docker-cli.js';
import { engineProblem } from '../support/engine.js';

export const DEVICE_IMAGE = process.env.FLOTILLA_DEVICE_IMAGE ?? 'flotilla-test/device:bookworm';

/** This machine's architecture as the release bundles name it. */
export const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';

export function bundlePath(version: string): string {
  return join(REPO_ROOT, 'dist/bundles', `flotilla-${version}-linux-${HOST_ARCH}.tar.gz`);
}

/** Why the install test cannot run here, or undefined when it can. */
export async function installProblem(version: string): Promise<string | undefined> {
  if (engineProblem) return engineProblem;
  if (!existsSync(bundlePath(version))) return `no release bundle ${bundlePath(version)} (run docker/release-bundle.sh ${HOST_ARCH})`;
  const found = await docker('image', 'ls', '-q', DEVICE_IMAGE).catch(() => '');
  if (found === '') return `no device image ${DEVICE_IMAGE} (run docker/device-image.sh)`;
  return undefined;
}

/** Why `--mode image` cannot be tried: the agent image is neither on the engine nor pullable. */
export async function agentImageProblem(image: string): Promise<string | undefined> {
  if ((await docker('image', 'ls', '-q', image).catch(() => '')) !== '') return undefined;
  const pulled = await docker('pull', '-q', image).then(
    () => true,
    () => false,
  );
  return pulled ? undefined : `no agent image ${image} (run docker/build-images.sh)`;
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Device {
  name: string;
  /** Runs `sh -c script` in the device as root; never throws on a non-zero exit. */
  sh(script: string, env?: Record<string, string>): Promise<ShResult>;
  remove(): Promise<void>;
}

export interface DeviceOptions {
  /** Mount the host's Docker socket at /run/docker.sock (the default). */
  dockerSocket?: boolean;
  /** Extra `docker run` arguments: mounts that play a read-only or a full disk. */
  extraArgs?: string[];
}

export async function startDevice(name: string, { dockerSocket = true, extraArgs = [] }: DeviceOptions = {}): Promise<Device> {
  await docker(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--cgroupns',
    'private',
    '--cap-add',
    'ALL',
    '--cap-drop',
    'SYS_RESOURCE',
    '--security-opt',
    'seccomp=unconfined',
    '--security-opt',
    'apparmor=unconfined',
    '--tmpfs',
    '/run',
    '--tmpfs',
    '/run/lock',
    // /var/run is a link to /run: the socket goes where Debian's docker.io puts it.
    ...(dockerSocket ? ['-v', '/var/run/docker.sock:/run/docker.sock'] : []),
    ...extraArgs,
    DEVICE_IMAGE,
  );
  const device: Device = {
    name,
    sh: (script, env = {}) => execIn(name, script, env),
    remove: async () => {
      await docker('rm', '-f', name).catch(() => undefined);
    },
  };
  // `--wait` returns once boot is over: running, or degraded if a unit failed (not ours to judge here).
  await waitFor(
    `systemd to finish booting in ${name}`,
    async () => /^(running|degraded)/.test((await device.sh('systemctl is-system-running --wait')).stdout),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  return device;
}

function execIn(name: string, script: string, env: Record<string, string>): Promise<ShResult> {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  return new Promise((resolve) => {
    execFile(
      'docker',
      ['exec', ...envArgs, name, 'sh', '-c', script],
      { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Every path install may touch, with a checksum for files and the target for
 * links: equal snapshots mean nothing was added, removed or rewritten. Of the
 * data dir only the agent's config counts: the running agent writes its own
 * state there all the time.
 */
export async function snapshot(device: Device, dataDir = '/var/lib/flotilla-agent'): Promise<string> {
  const paths = `(find /opt /usr/local/bin /etc/systemd/system -xdev; find /var/lib "$(dirname ${dataDir})" -maxdepth 1; ls -d ${dataDir}/agent.json) 2>/dev/null | sort -u`;
  const listing = await device.sh(
    `${paths} | while IFS= read -r p; do
       if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"; elif [ -d "$p" ]; then echo "$p/"; fi
     done
     ${paths} | while IFS= read -r p; do [ -f "$p" ] && [ ! -L "$p" ] && printf '%s\\0' "$p"; done | xargs -0 -r sha256sum`,
  );
  return listing.stdout;
}
