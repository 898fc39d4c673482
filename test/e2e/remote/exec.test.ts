/**
 * `flotilla exec` as an operator uses it, end to end: a real hub that requires
 * keys, a registered agent, an app's container on the real Docker Engine, and
 * the `flotilla` command; checked by what the command prints and exits with,
 * and by what `docker exec` sees in the container.
 */

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, stopAll } from '../../support/processes.js';
import { Terminal } from '../../support/pty.js';
import { waitFor } from '../../support/wait.js';
import { runCliHashed, sha256 } from '../support/cli-stream.js';
import { docker, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { deployApp, type RemoteHub, startRegisteredAgent, startRemoteHub } from '../support/remote-fleet.js';
import { describeRemote } from '../support/remote-gate.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-exec-${suffix}`;
const deviceId = `e2e-exec-${suffix}`;

describeRemote('flotilla exec into an app container on a device', () => {
  let remote: RemoteHub;
  let containerId: string;

  beforeAll(async () => {
    const images = await ensureTestImages();
    remote = await startRemoteHub();
    await startRegisteredAgent(remote, deviceId);
    containerId = await deployApp(remote, deviceId, app, { image: images.v1 });
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('prints the command’s stdout and stderr apart and exits 0', async () => {
    const result = await remote.cli(['exec', deviceId, app, '--', 'sh', '-c', 'echo out-$((6*7)); echo err-1 >&2; cat /www/index.html']);
    expect(result.stdout).toBe('out-42\nv1\n');
    expect(result.stderr).toBe('err-1\n');
    expect(result.code).toBe(0);
  });

  it('names the container as APP/CONTAINER', async () => {
    const result = await remote.cli(['exec', deviceId, `${app}/web`, '--', 'hostname']);
    expect(result.stdout.trim()).toBe(containerId.slice(0, 12));
    expect(result.code).toBe(0);
  });

  it('passes stdin with -i: echo x | flotilla exec -i … -- cat, and 2 MiB through sha256sum', async () => {
    const echoed = await remote.cli(['exec', deviceId, app, '-i', '--', 'cat'], { input: 'x\n' });
    expect(echoed.stdout).toBe('x\n');
    expect(echoed.code).toBe(0);

    const input = randomBytes(2 * 1024 * 1024);
    const summed = await runCliHashed([...remote.globals(), 'exec', deviceId, app, '-i', '--', 'sha256sum'], { input });
    expect(summed.stderr).toBe('');
    expect(summed.head.split(/\s+/)[0]).toBe(sha256(input));
    expect(summed.code).toBe(0);
  });

  it('exits with the command’s exit code', async () => {
    const result = await remote.cli(['exec', deviceId, app, '--', 'sh', '-c', 'exit 7']);
    // The command's own failure is not the CLI's: no "error:" line of its own.
    expect(result.stderr).toBe('');
    expect(result.code).toBe(7);
    const failed = await remote.cli(['exec', deviceId, app, '--', 'false']);
    expect(failed.code).toBe(1);
  });

  it('streams 50 MB of stdout whole and in order (sha256 of what arrived = sha256 in the container)', async () => {
    const size = 50 * 1024 * 1024;
    const blob = `/tmp/stream-${suffix}`;
    try {
      const arrived = await runCliHashed(
        [...remote.globals(), 'exec', deviceId, app, '--', 'sh', '-c', `mkdir -p /tmp && head -c ${size} /dev/urandom | tee ${blob}`],
        { timeoutMs: 120_000 },
      );
      // What the hub counted on the way says which side lost bytes, should any be missing.
      const audited = await remote.cli(['audit', '--device', deviceId, '--limit', '1', '-o', 'json']);
      expect(arrived.stderr).toBe('');
      expect(arrived.code).toBe(0);
      expect(arrived.bytes, `the hub's last audit record: ${audited.stdout}`).toBe(size);
      const inContainer = (await docker('exec', containerId, 'sha256sum', blob)).split(/\s+/)[0];
      expect(arrived.sha256).toBe(inContainer);
      console.log(`[exec] 50 MB stdout in ${Math.round(arrived.ms)} ms (${(size / 1e6 / (arrived.ms / 1000)).toFixed(1)} MB/s)`);
    } finally {
      await docker('exec', containerId, 'rm', '-f', blob).catch(() => undefined);
    }
  });

  it('-it gives a terminal: its size, a resize, Ctrl-C to the command, Ctrl-D ends it with 0', async () => {
    const command = [process.execPath, CLI, ...remote.globals(), 'exec', deviceId, app, '-it', '--', 'sh'].map(quote).join(' ');
    const terminal = await Terminal.start(command, { cols: 80, rows: 24 });
    try {
      // Type at the prompt, as a person would: keys typed before the session is up are the local terminal's.
      // The CLI's start alone has taken over 20 s beside a dozen other test files on a loaded two-core machine.
      await terminal.waitForScreen(/^\/ # $/m, 45_000);
      await terminal.type('stty size');
      await terminal.waitForScreen(/^24 80\s*$/m);
      await terminal.resize(100, 30);
      // The new size reaches the container's TTY through the engine's exec resize, which a command typed at
      // once can overtake (docker exec -it alike): ask again until it shows, but it must show.
      await waitFor(
        'stty size to say 30 100',
        async () => {
          await terminal.type('stty size');
          return terminal.waitForScreen(/^30 100\s*$/m, 1_000).catch(() => undefined);
        },
        { timeoutMs: 10_000 },
      );
      // Ctrl-C reaches the command in the container, not the CLI: the shell is still there after it.
      await terminal.type('sleep 300');
      await waitFor('sleep 300 to run', async () => (await docker('top', containerId)).includes('sleep 300'));
      await terminal.press('C-c');
      await terminal.type('echo alive-$((40+2))');
      await terminal.waitForScreen(/^alive-42\s*$/m);
      await terminal.press('C-d');
      expect(await terminal.waitForExit(), await terminal.screen()).toBe(0);
      expect(await docker('top', containerId)).not.toContain('sleep 300');
    } finally {
      await terminal.close();
    }
  });
});

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
