/**
 * A device's limits on remote sessions, end to end: an agent started with
 * `--max-sessions 1 --session-idle-timeout 3s` refuses a second session while
 * one runs (the CLI says busy and exits 1, and the first is unharmed), and
 * ends a session with no data either way once it has been idle that long
 * (the CLI says so and exits 1; the command is gone from the container).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditRecord } from '../../../shared/api/results.js';
import { spawnCli, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { deployApp, type RemoteHub, startRegisteredAgent, startRemoteHub } from '../support/remote-fleet.js';
import { describeRemote } from '../support/remote-gate.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-limits-${suffix}`;
const deviceId = `e2e-limits-${suffix}`;
const IDLE_S = 3;

describeRemote('a device’s session limits: at most N at once, idle ones ended', () => {
  let remote: RemoteHub;
  let containerId: string;

  beforeAll(async () => {
    const images = await ensureTestImages();
    remote = await startRemoteHub();
    await startRegisteredAgent(remote, deviceId, { extraArgs: ['--max-sessions', '1', '--session-idle-timeout', `${IDLE_S}s`] });
    containerId = await deployApp(remote, deviceId, app, { image: images.v1 });
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  const running = async (what: string) => (await docker('top', containerId, '-o', 'pid,args')).includes(what);

  it('a second session while one runs is refused as busy; the first carries on', async () => {
    // Output every second keeps the first session from going idle.
    const first = spawnCli('exec ticking', [
      ...remote.globals(),
      'exec',
      deviceId,
      app,
      '--',
      'sh',
      '-c',
      'for i in 1 2 3 4; do echo tick-$i; sleep 1; done',
    ]);
    await waitFor('the first session to print', () => first.output.includes('tick-1'));

    const second = await remote.cli(['exec', deviceId, app, '--', 'echo', 'second']);
    expect(second.stdout).toBe('');
    expect(second.stderr).toMatch(/^error: .*(busy|sessions open)/im);
    expect(second.code).toBe(1);

    expect(await first.exited).toBe(0);
    expect(first.output).toContain('tick-4');
    // The slot is free again.
    const third = await remote.cli(['exec', deviceId, app, '--', 'echo', 'third']);
    expect(third.stdout).toBe('third\n');
    expect(third.code).toBe(0);
  });

  it(`a session with no data either way for ${IDLE_S} s is ended: the CLI says so, exits 1, the command is gone`, async () => {
    const started = performance.now();
    const quiet = spawnCli('exec quiet', [...remote.globals(), 'exec', deviceId, app, '--', 'sleep', '603']);
    await waitFor('the sleep to run', () => running('sleep 603'));
    const code = await quiet.exited;
    const tookS = (performance.now() - started) / 1000;
    expect(code).toBe(1);
    expect(quiet.output).toMatch(/^error: .*idle/im);
    expect(tookS).toBeGreaterThanOrEqual(IDLE_S);
    expect(tookS).toBeLessThan(IDLE_S + 15);
    await waitFor('the sleep to be gone', async () => !(await running('sleep 603')));
    const audited = JSON.parse((await remote.cli(['audit', '--device', deviceId, '-o', 'json'])).stdout) as { items: AuditRecord[] };
    expect(audited.items.find((r) => r.what.includes('sleep 603'))).toMatchObject({ outcome: 'idle' });
  });
});
