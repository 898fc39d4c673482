/**
 * The one-command install on a fresh Debian device (docker/install.sh,
 * docs/install.md), end to end: a real hub serving the script and the release
 * bundle, a debootstrapped Debian container with systemd as PID 1 playing the
 * device, and the host's Docker Engine running what the installed agent
 * deploys. What is checked is what the user sees: the script's output and
 * exit code, `flotilla get devices`, `docker ps`, systemd's view of the unit,
 * and the files on the device.
 *
 * Needs the device image (docker/device-image.sh) and this machine's release
 * bundle (docker/release-bundle.sh); without them it skips, saying so, and
 * with CI=true it fails instead. A solo test: a Node release unpacked and
 * started under systemd is heavy for two cores.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { flotillaVersion } from '../../../shared/version.js';
import { type HubProcess, runCli, scratchDir, startHubProcess, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker, removeContainersAndVolumes } from '../support/docker-cli.js';
import { TEST_REGISTRY } from '../support/engine.js';
import { ensureTestImages } from '../support/images.js';
import { agentImageProblem, bundlePath, type Device, installProblem, type ShResult, snapshot, startDevice } from './device.js';
import { repackRelease } from './releases.js';

const version = flotillaVersion();
const problem = await installProblem(version);
if (problem && process.env.CI === 'true') throw new Error(`the install test must run in CI: ${problem}`);
if (problem) console.warn(`[e2e install] skipping: ${problem}`);
/** The agent image docker/build-images.sh pushes: what `--mode image` runs. */
const AGENT_IMAGE = `${TEST_REGISTRY}/flotilla/agent:${version}`;
const imageProblem = problem ?? (await agentImageProblem(AGENT_IMAGE));
if (imageProblem && !problem && process.env.CI === 'true') throw new Error(`the image-mode install test must run in CI: ${imageProblem}`);
if (imageProblem && !problem) console.warn(`[e2e install] skipping --mode image: ${imageProblem}`);

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-install-${suffix}`;
const app = `e2e-installed-${suffix}`;
const UNIT = 'flotilla-agent.service';

/** The error lines of a run: what the user reads when it fails. */
const errorLines = (result: ShResult) =>
  result.stderr
    .trim()
    .split('\n')
    .filter((line) => line !== '');

(problem ? describe.skip : describe)('install the agent on a fresh Debian device in one command', { timeout: 180_000 }, () => {
  let hub: HubProcess;
  let device: Device;
  let readOnlyDir: string;
  let sharedDir: string;
  let releases: string;

  /** `curl -fsSL <hub>/install.sh | sh -s -- ARGS`, as the docs tell a user to run it. */
  const install = (args: string, env: Record<string, string> = {}) => device.sh(`curl -fsSL ${hub.url}/install.sh | sh -s -- ${args}`, env);

  const newToken = async () => {
    const created = await runCli(['--hub', hub.url, 'token', 'create']);
    expect(created.code, created.stderr).toBe(0);
    return created.stdout.trim();
  };

  const devices = async () =>
    JSON.parse((await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json'])).stdout) as {
      items: { id: string; online: boolean; host?: { agentVersion?: string } }[];
    };

  beforeAll(async () => {
    // The releases dir: this machine's bundle, and later a newer one made from it (the upgrade).
    releases = scratchDir('flotilla-install-releases-');
    symlinkSync(bundlePath(version), join(releases, basename(bundlePath(version))));
    hub = await startHubProcess(scratchDir('flotilla-install-hub-'), ['--releases-dir', releases]);
    readOnlyDir = mkdtempSync(join(tmpdir(), 'flotilla-install-ro-'));
    sharedDir = mkdtempSync(join(tmpdir(), 'flotilla-install-shared-'));
    device = await startDevice(`flotilla-e2e-device-${suffix}`, {
      extraArgs: [
        // A read-only mount and a 1 MiB tmpfs: an unwritable data dir and a full disk.
        ...['-v', `${readOnlyDir}:/ro:ro`, '--tmpfs', '/small:size=1m'],
        // For --mode image: the docker command a device with Docker has, and a folder at the
        // same path on the device and the host, since the engine that mounts the agent's data
        // dir is the host's.
        ...['-v', '/usr/bin/docker:/usr/bin/docker:ro', '-v', `${sharedDir}:${sharedDir}`],
      ],
    });
  });

  afterAll(async () => {
    await device?.remove();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    await stopAll();
    await docker('rm', '-f', 'flotilla-agent').catch(() => undefined);
    for (const dir of [readOnlyDir, sharedDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('bad input: one line naming the fix, a non-zero exit, nothing left behind', () => {
    let before: string;
    beforeAll(async () => {
      before = await snapshot(device);
    });

    const refused = async (result: ShResult, line: RegExp) => {
      expect(result.code).not.toBe(0);
      expect(errorLines(result)).toEqual([expect.stringMatching(line)]);
      expect(await snapshot(device)).toBe(before);
    };

    it('not root', async () => {
      const result = await device.sh(
        `curl -fsSL ${hub.url}/install.sh | setpriv --reuid=65534 --regid=65534 --clear-groups sh -s -- --token whatever`,
      );
      await refused(result, /^flotilla install: must run as root: curl -fsSL .*\| sudo sh -s -- --token/);
    });

    it('a hub the device cannot reach', async () => {
      await refused(
        await install('--token whatever --hub http://127.0.0.1:9'),
        /^flotilla install: hub http:\/\/127\.0\.0\.1:9 unreachable \(.*\); check --hub/,
      );
    });

    it('a Docker socket root may not use, and one that does not answer', async () => {
      // Sockets in the folder the device shares: one whose peer hangs up at once (an engine
      // that is not answering), and one owned by nobody, mode 600, tried as root without
      // CAP_DAC_OVERRIDE (root without the right to ignore file modes).
      const hangUp = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => hangUp.listen(join(sharedDir, 'mute.sock'), resolve));
      const locked = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => locked.listen(join(sharedDir, 'locked.sock'), resolve));
      try {
        chownSync(join(sharedDir, 'locked.sock'), 65534, 65534);
        chmodSync(join(sharedDir, 'locked.sock'), 0o600);
        const mute = await install('--token whatever', { FLOTILLA_DOCKER_SOCKET: join(sharedDir, 'mute.sock') });
        await refused(mute, /^flotilla install: the Docker Engine does not answer on .*mute\.sock; start it: systemctl start docker$/);
        const noCaps = 'setpriv --bounding-set=-dac_override,-dac_read_search --inh-caps=-dac_override,-dac_read_search';
        const denied = await device.sh(`curl -fsSL ${hub.url}/install.sh | ${noCaps} sh -s -- --token whatever`, {
          FLOTILLA_DOCKER_SOCKET: join(sharedDir, 'locked.sock'),
        });
        await refused(denied, /^flotilla install: no permission on .*locked\.sock \(nobody:nogroup 600\): the agent runs as root/);
      } finally {
        await Promise.all([hangUp, locked].map((server) => new Promise((resolve) => server.close(resolve))));
      }
    });

    it('an architecture without a release', async () => {
      const result = await install('--token whatever', { FLOTILLA_INSTALL_ARCH: 'armv7l' });
      await refused(result, /^flotilla install: no release for armv7l; supported: amd64, arm64$/);
    });

    it('no Docker Engine', async () => {
      const result = await install('--token whatever', { FLOTILLA_DOCKER_SOCKET: '/run/no-docker.sock' });
      await refused(
        result,
        /^flotilla install: no Docker Engine: \/run\/no-docker\.sock not found; install and start it: apt-get install docker\.io/,
      );
    });

    it('a data dir on a read-only file system', async () => {
      await refused(
        await install('--token whatever --data-dir /ro/agent'),
        /^flotilla install: data dir \/ro\/agent is not writable .*--data-dir/,
      );
    });

    it('not enough disk for the data dir', async () => {
      await refused(
        await install('--token whatever --data-dir /small/agent'),
        /^flotilla install: not enough disk for the agent's data dir: 1 MB free under \/small/,
      );
    });

    it('a token the hub refuses, after the release was downloaded and unpacked', async () => {
      const result = await install('--token flt-reg-not-a-token');
      expect(result.stdout).toContain('downloading');
      await refused(result, /^flotilla install: .*token.*; make a new one on the hub: flotilla token create$/);
      expect((await devices()).items).toEqual([]);
    });
  });

  describe('install, run an app, install again, uninstall', () => {
    let installed: string;
    let firstPid: string;
    /** The newer release the upgrade installs. */
    const next = `${version}-next`;

    it('one command installs, registers and starts the agent, which comes online', async () => {
      const result = await install(`--token ${await newToken()} --device-id ${deviceId} --label site=${suffix}`);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`device ${deviceId}: registered with ${hub.url}`);
      expect((await device.sh(`systemctl is-active ${UNIT}; systemctl is-enabled ${UNIT}`)).stdout).toBe('active\nenabled\n');
      expect((await device.sh('flotilla --version')).stdout.trim()).toContain(version);
      // The release, the link systemd's launcher starts, the launcher; no previous release yet.
      expect((await device.sh('ls /opt/flotilla; readlink /opt/flotilla/current')).stdout).toBe(
        `${version}\ncurrent\nlaunch\n${version}\n`,
      );
      expect((await device.sh(`cmp /opt/flotilla/launch /opt/flotilla/${version}/docker/agent-launch.sh`)).code).toBe(0);
      await waitFor('the device online at the hub', async () => (await devices()).items.find((d) => d.id === deviceId)?.online, {
        timeoutMs: 30_000,
      });
      installed = await snapshot(device);
      firstPid = (await device.sh(`systemctl show -p MainPID --value ${UNIT}`)).stdout.trim();
    });

    it('the unit passes systemd-analyze verify and runs sandboxed', async () => {
      const verify = await device.sh(`systemd-analyze verify /etc/systemd/system/${UNIT}`);
      expect(verify.code, verify.stderr).toBe(0);
      const shown = await device.sh(`systemctl show -p ProtectSystem -p ProtectHome -p NoNewPrivileges -p ReadWritePaths ${UNIT}`);
      expect(shown.stdout.split('\n').filter(Boolean).sort()).toEqual([
        'NoNewPrivileges=yes',
        'ProtectHome=yes',
        'ProtectSystem=strict',
        'ReadWritePaths=/var/lib/flotilla-agent /opt/flotilla',
      ]);
      const unit = (await device.sh(`cat /etc/systemd/system/${UNIT}`)).stdout;
      expect(unit).toContain('\nExecStart=/opt/flotilla/launch agent --data-dir /var/lib/flotilla-agent\n');
      expect(unit).toContain('\nKillMode=mixed\n');
      // With no release on trial the launcher leaves nothing of itself: the service's process is the agent's node.
      const pid = (await device.sh(`systemctl show -p MainPID --value ${UNIT}`)).stdout.trim();
      expect((await device.sh(`cat /proc/${pid}/comm`)).stdout.trim()).toBe('node');
      // The sandbox is real: the agent's own mount namespace cannot write outside its data dir and its releases.
      const write = await device.sh(`nsenter -t ${pid} -m sh -c 'touch /usr/local/bin/x' 2>&1`);
      expect(write.stdout).toContain('Read-only file system');
    });

    it('an applied app runs on the engine', async () => {
      const images = await ensureTestImages();
      const spec = join(scratchDir('flotilla-install-spec-'), 'app.yaml');
      writeFileSync(
        spec,
        stringify({ name: app, scheduling: { selectors: { site: suffix } }, spec: { containers: [{ name: 'web', image: images.v1 }] } }),
      );
      const applied = await runCli(['--hub', hub.url, 'apply', '-f', spec]);
      expect(applied.code, applied.stderr).toBe(0);
      await waitFor(
        'the app running on the engine',
        async () => (await docker('ps', '--filter', `label=flotilla.app=${app}`, '--format', '{{.State}}')) === 'running',
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    });

    it('a second run changes nothing and does not restart the service', async () => {
      const result = await install(`--token ${await newToken()} --device-id ${deviceId} --label site=${suffix}`);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/release .*: already installed/);
      expect(result.stdout).toContain(`device ${deviceId}: already registered`);
      expect(result.stdout).toContain(`${UNIT}: already installed`);
      expect(result.stdout).toContain(`${UNIT}: already running`);
      expect(await snapshot(device)).toBe(installed);
      expect((await device.sh(`systemctl show -p MainPID --value ${UNIT}`)).stdout.trim()).toBe(firstPid);
    });

    it('a newer release upgrades: switched atomically, the service restarted, the old release kept as previous', async () => {
      repackRelease({ from: bundlePath(version), version: next, releasesDir: releases });

      const result = await install(`--version ${next}`);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`release ${next}: installed in /opt/flotilla/${next}`);
      expect(result.stdout).toContain(`device ${deviceId}: already registered`);
      expect(result.stdout).toContain(`restarted ${UNIT}`);
      expect((await device.sh('readlink /opt/flotilla/current /opt/flotilla/previous; ls /opt/flotilla')).stdout).toBe(
        `${next}\n${version}\n${version}\n${next}\ncurrent\nlaunch\nprevious\n`,
      );
      expect((await device.sh(`systemctl show -p MainPID --value ${UNIT}`)).stdout.trim()).not.toBe(firstPid);
      await waitFor(
        'the device back online, reporting the new version',
        async () => {
          const found = (await devices()).items.find((d) => d.id === deviceId);
          return found?.online && found.host?.agentVersion === next;
        },
        { timeoutMs: 30_000 },
      );
    });

    it('a re-run while a release is on trial keeps that trial, and one installing another release ends it as a rollback, keeping previous at the last release known good', async () => {
      // What an agent that upgraded itself to the new release leaves until it confirms it (the
      // launcher reads it at its next start; the running agent looks for it only at its own).
      const deadline = Math.floor(Date.now() / 1000) + 600;
      const trial = `version=${next}\nprevious=${version}\nrevision=3\ndeadline=${deadline}\nstarts=1\n`;
      expect((await device.sh(`mkdir -p /opt/flotilla/upgrade && printf '${trial}' >/opt/flotilla/upgrade/trial`)).code).toBe(0);
      const same = await install(`--version ${next}`);
      expect(same.code, same.stderr).toBe(0);
      expect(same.stdout).toContain(`${UNIT}: already running`);
      expect((await device.sh('cat /opt/flotilla/upgrade/trial')).stdout).toBe(trial);

      // Another release: the one on trial is not made `previous`, and its trial ends as a rollback
      // would, recorded for the agent to report and hold, rather than dropped.
      const back = await install(`--version ${version}`);
      expect(back.code, back.stderr).toBe(0);
      expect(back.stdout).toContain(`release ${next} was on trial: ended, recorded in /opt/flotilla/upgrade/rolled-back`);
      expect(back.stdout).toContain(`restarted ${UNIT}`);
      expect(
        (await device.sh('readlink /opt/flotilla/current /opt/flotilla/previous; ls /opt/flotilla /opt/flotilla/upgrade')).stdout,
      ).toBe(
        `${version}\n${version}\n/opt/flotilla:\n${version}\ncurrent\nlaunch\nprevious\nupgrade\n\n/opt/flotilla/upgrade:\nrolled-back\n`,
      );
      expect((await device.sh('cat /opt/flotilla/upgrade/rolled-back')).stdout).toMatch(
        new RegExp(
          `^version=${next.replaceAll('.', '\\.')}\nrevision=3\nreason=replaced by install.sh with ${version.replaceAll('.', '\\.')} while on trial\nat=\\d+\nreported=[01]\n$`,
        ),
      );

      // And the new release again, for what follows: the release left becomes previous, as on any upgrade.
      const again = await install(`--version ${next}`);
      expect(again.code, again.stderr).toBe(0);
      expect((await device.sh('readlink /opt/flotilla/current /opt/flotilla/previous')).stdout).toBe(`${next}\n${version}\n`);
    });

    it('a release on trial that crashed its starts is rolled back by the launcher under systemd, with no hub needed', async () => {
      // The state an agent that upgraded itself to the new release and then crashed three times leaves.
      const deadline = Math.floor(Date.now() / 1000) + 600;
      const trial = `version=${next}\nprevious=${version}\nrevision=7\ndeadline=${deadline}\nstarts=3\n`;
      const since = (await device.sh('date "+%Y-%m-%d %H:%M:%S"')).stdout.trim();
      const written = await device.sh(
        `mkdir -p /opt/flotilla/upgrade && printf '${trial}' >/opt/flotilla/upgrade/trial && systemctl restart ${UNIT}`,
      );
      expect(written.code, written.stderr).toBe(0);
      await waitFor(
        'the device back online, reporting the previous version',
        async () => {
          const found = (await devices()).items.find((d) => d.id === deviceId);
          return found?.online && found.host?.agentVersion === version;
        },
        { timeoutMs: 30_000 },
      );
      expect((await device.sh('readlink /opt/flotilla/current; ls /opt/flotilla/upgrade')).stdout).toBe(`${version}\nrolled-back\n`);
      expect((await device.sh('cat /opt/flotilla/upgrade/rolled-back')).stdout).toMatch(
        new RegExp(`^version=${next}\nrevision=7\nreason=crashed 3 times in a row\nat=\\d+\nreported=[01]\n$`),
      );
      const journal = await device.sh(`journalctl -u ${UNIT} --since '${since}' -o cat | grep flotilla-launch`);
      expect(journal.stdout).toContain(`flotilla-launch: release ${next} crashed 3 times in a row: going back to ${version}\n`);
    });

    it('uninstall removes what install added and leaves the app running', async () => {
      const result = await install('--uninstall');
      expect(result.code, result.stderr).toBe(0);
      const left = await device.sh(
        `ls -d /opt/flotilla /usr/local/bin/flotilla /etc/systemd/system/${UNIT} /var/lib/flotilla-agent 2>/dev/null; systemctl list-unit-files ${UNIT} --no-legend`,
      );
      expect(left.stdout).toBe('');
      expect(await snapshot(device)).not.toContain('flotilla');
      expect(await docker('ps', '--filter', `label=flotilla.app=${app}`, '--format', '{{.State}}')).toBe('running');
      const again = await install('--uninstall');
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`${UNIT}: not installed`);
    });
  });
  (imageProblem ? describe.skip : describe)('--mode image: the agent image run by Docker instead of a unit', () => {
    const imageDevice = `e2e-install-img-${suffix}`;
    const args = () => `--mode image --image ${AGENT_IMAGE} --data-dir ${sharedDir}/agent`;
    let containerId: string;

    it('installs, registers and runs the agent container, which comes online', async () => {
      const result = await install(`${args()} --token ${await newToken()} --device-id ${imageDevice}`);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`started container flotilla-agent (${AGENT_IMAGE})`);
      const [state, policy] = (
        await docker('inspect', '--format', '{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}', 'flotilla-agent')
      ).split(' ');
      expect([state, policy]).toEqual(['running', 'always']);
      await waitFor('the image-mode device online', async () => (await devices()).items.find((d) => d.id === imageDevice)?.online, {
        timeoutMs: 30_000,
      });
      containerId = await docker('inspect', '--format', '{{.Id}}', 'flotilla-agent');
      expect((await device.sh(`systemctl list-unit-files ${UNIT} --no-legend`)).stdout).toBe('');
    });

    it('a second run keeps the running container', async () => {
      const result = await install(args());
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('container flotilla-agent: already running');
      expect(await docker('inspect', '--format', '{{.Id}}', 'flotilla-agent')).toBe(containerId);
    });

    it('uninstall removes the container and the data dir', async () => {
      const result = await install(`--uninstall ${args()}`);
      expect(result.code, result.stderr).toBe(0);
      expect(await docker('ps', '-aq', '--filter', 'name=^/flotilla-agent$')).toBe('');
      expect((await device.sh(`ls -A ${sharedDir}`)).stdout).toBe('');
    });
  });
});
