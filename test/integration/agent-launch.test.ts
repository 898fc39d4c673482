/**
 * The agent's launcher (docker/agent-launch.sh) as systemd runs it on a device,
 * with real processes: the real script as `launch` in a temp prefix, releases
 * whose `bin/flotilla` are small sh scripts (one that runs until stopped, one
 * that crashes at once, one that hangs and ignores TERM), and a loop playing
 * `Restart=always`. What is checked is what a user of the device sees: which
 * release ran (its pid, arguments and environment), where `current` points,
 * `upgrade/rolled-back` and its reason, exit codes and the launcher's stderr.
 * Run under dash and busybox sh alike. Deadlines are a few seconds here.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { alive, Prefix, SHELLS, STOPPED_EXIT } from './agent-launch-prefix.js';

describe.each(SHELLS)('the agent launcher under $name', ({ command }) => {
  let prefix: Prefix;
  afterEach(() => prefix.killAll());

  /** A device upgraded from 0.2.0 (which runs) to 0.3.0 of `kind`, on trial. */
  const upgradedTo = (kind: 'runs' | 'crashes' | 'hangs', trial: { starts?: number; deadlineIn?: number } = {}) => {
    prefix = new Prefix(command).release('0.2.0', 'runs').release('0.3.0', kind).link('previous', '0.2.0').link('current', '0.3.0');
    return prefix.trial({ version: '0.3.0', ...trial });
  };

  const running = (version: string) => () => prefix.started().some((s) => s.version === version && alive(s.pid));

  it('with no trial, becomes the current release: its arguments, FLOTILLA_RELEASES_DIR, no shell left behind', async () => {
    prefix = new Prefix(command).release('0.2.0', 'runs').link('current', '0.2.0');
    const launch = prefix.launch(['agent', '--x', 'y z']);
    await waitFor('the release to start', running('0.2.0'));
    expect(prefix.started()).toEqual([{ version: '0.2.0', pid: launch.pid, trial: '', releasesDir: prefix.dir, args: 'agent --x y z' }]);
    expect(launch.stderr()).toBe('');
    launch.child.kill('SIGTERM');
    expect(await launch.exited).toBe(STOPPED_EXIT);
    expect(prefix.stopped()).toEqual(['0.2.0']);
  });

  it('discards a trial for a version current does not point to (a power cut before the switch)', async () => {
    prefix = new Prefix(command).release('0.2.0', 'runs').link('current', '0.2.0').trial({ version: '0.3.0' });
    const launch = prefix.launch();
    await waitFor('the current release to start', running('0.2.0'));
    expect(prefix.started()[0]).toMatchObject({ version: '0.2.0', pid: launch.pid, trial: '' });
    expect(prefix.upgradeFile('trial')).toBeUndefined();
    expect(prefix.upgradeFile('rolled-back')).toBeUndefined();
    expect(launch.stderr()).toBe('flotilla-launch: discarding upgrade/trial for release 0.3.0: current is 0.2.0\n');
  });

  it('rolls back a release that crashes at start after 3 starts; the previous one then runs', async () => {
    upgradedTo('crashes');
    const launches = await prefix.underSystemd(running('0.2.0'));
    expect(prefix.started().map((s) => [s.version, s.trial])).toEqual([
      ['0.3.0', '1'],
      ['0.3.0', '1'],
      ['0.3.0', '1'],
      ['0.2.0', ''],
    ]);
    expect(await Promise.all(launches.slice(0, 3).map((l) => l.exited))).toEqual([1, 1, 1]);
    expect(launches[3]!.pid).toBe(prefix.started()[3]!.pid);
    expect(prefix.linkTarget('current')).toBe('0.2.0');
    expect(prefix.upgradeFile('trial')).toBeUndefined();
    expect(prefix.upgradeFile('rolled-back')).toMatchObject({
      version: '0.3.0',
      revision: '12',
      reason: 'crashed 3 times in a row',
      reported: '0',
      at: expect.stringMatching(/^\d+$/),
    });
    expect(launches[0]!.stderr()).toMatch(/^flotilla-launch: release 0\.3\.0 on trial: start 1 of 3, to report healthy within \d+ s\n$/);
    expect(launches[3]!.stderr()).toBe('flotilla-launch: release 0.3.0 crashed 3 times in a row: going back to 0.2.0\n');
  });

  it('honours FLOTILLA_MAX_CRASHES', async () => {
    upgradedTo('crashes');
    await prefix.underSystemd(running('0.2.0'), { env: { FLOTILLA_MAX_CRASHES: '1' } });
    expect(prefix.started().map((s) => s.version)).toEqual(['0.3.0', '0.2.0']);
    expect(prefix.upgradeFile('rolled-back')).toMatchObject({ reason: 'crashed 1 times in a row' });
  });

  it('kills a release that runs but never confirms when the deadline passes (TERM ignored: KILL), and rolls it back', async () => {
    upgradedTo('hangs', { deadlineIn: 2 });
    const launches = await prefix.underSystemd(running('0.2.0'));
    const [onTrial, previous] = prefix.started();
    expect([onTrial?.version, previous?.version]).toEqual(['0.3.0', '0.2.0']);
    expect(alive(onTrial!.pid)).toBe(false);
    expect(await launches[0]!.exited).toBe(1);
    expect(launches[0]!.stderr()).toContain(
      'flotilla-launch: release 0.3.0 did not report healthy by its deadline: stopping it\n' +
        'flotilla-launch: release 0.3.0 did not report healthy within the health timeout: going back to 0.2.0\n',
    );
    expect(prefix.linkTarget('current')).toBe('0.2.0');
    expect(prefix.upgradeFile('trial')).toBeUndefined();
    expect(prefix.upgradeFile('rolled-back')).toMatchObject({
      version: '0.3.0',
      reason: 'did not report healthy within the health timeout',
    });
  }, 40_000);

  it('a trial whose deadline passed while the device was off is rolled back at the next start', async () => {
    upgradedTo('runs', { deadlineIn: -1, starts: 1 });
    await prefix.underSystemd(running('0.2.0'));
    expect(prefix.started().map((s) => s.version)).toEqual(['0.2.0']);
    expect(prefix.upgradeFile('rolled-back')).toMatchObject({ reason: 'did not report healthy within the health timeout' });
  });

  it.each([
    ['removes upgrade/trial', (trial: string) => rmSync(trial)],
    ["removes it and writes the next upgrade's trial at once", (trial: string) => writeFileSync(trial, 'version=0.4.0\nstarts=0\n')],
  ])('a release that confirms (%s) keeps running past the deadline, and the launcher ends with it', async (_, confirm) => {
    upgradedTo('runs', { deadlineIn: 2 });
    const launch = prefix.launch();
    await waitFor('the release on trial', running('0.3.0'));
    // What the agent does once healthy.
    confirm(prefix.path('upgrade/trial'));
    const deadline = Date.now() + 2_000;
    await waitFor('the deadline to be 2 s past', () => Date.now() > deadline + 2_000, { timeoutMs: 10_000 });
    const [started] = prefix.started();
    expect(alive(started!.pid)).toBe(true);
    expect(prefix.linkTarget('current')).toBe('0.3.0');
    expect(prefix.upgradeFile('rolled-back')).toBeUndefined();
    launch.child.kill('SIGTERM');
    expect(await launch.exited).toBe(STOPPED_EXIT);
    expect(prefix.stopped()).toEqual(['0.3.0']);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s to the launcher during a trial stops the release, and the launcher exits with its code',
    async (signal) => {
      upgradedTo('runs');
      const launch = prefix.launch();
      await waitFor('the release on trial', running('0.3.0'));
      const [started] = prefix.started();
      expect(started).toMatchObject({ trial: '1', releasesDir: prefix.dir });
      expect(started!.pid).not.toBe(launch.pid);
      launch.child.kill(signal);
      expect(await launch.exited).toBe(STOPPED_EXIT);
      expect(prefix.stopped()).toEqual(['0.3.0']);
      expect(alive(started!.pid)).toBe(false);
      // A stop is not a verdict: the trial goes on at the next start.
      expect(prefix.upgradeFile('trial')).toMatchObject({ version: '0.3.0', starts: '1' });
      expect(prefix.linkTarget('current')).toBe('0.3.0');
    },
  );

  it('with a rollback due and no previous release, starts current anyway and says why', async () => {
    prefix = new Prefix(command).release('0.3.0', 'runs').link('current', '0.3.0').trial({ version: '0.3.0', starts: 3 });
    const launch = prefix.launch();
    await waitFor('the release', running('0.3.0'));
    expect(prefix.started()[0]!.pid).toBe(launch.pid);
    expect(launch.stderr()).toBe(
      `flotilla-launch: release 0.3.0 crashed 3 times in a row, but there is no previous release to go back to (${prefix.dir}/previous is missing or not a release)\n` +
        'flotilla-launch: starting release 0.3.0 anyway\n',
    );
    // Left for the agent to confirm once healthy.
    expect(prefix.upgradeFile('trial')).toMatchObject({ version: '0.3.0' });
    expect(prefix.upgradeFile('rolled-back')).toBeUndefined();
  });

  it('a previous link to a folder that is not a release counts as none', async () => {
    upgradedTo('crashes', { starts: 3 });
    rmSync(prefix.path('0.2.0/bin'), { recursive: true });
    const launch = prefix.launch();
    expect(await launch.exited).toBe(1);
    expect(prefix.started().map((s) => s.version)).toEqual(['0.3.0']);
    expect(launch.stderr()).toContain('no previous release to go back to');
  });

  it('a trial naming no version is discarded; one with unreadable numbers is rolled back', async () => {
    prefix = new Prefix(command).release('0.2.0', 'runs').link('current', '0.2.0');
    writeFileSync(prefix.path('upgrade/trial'), 'vers');
    await prefix.underSystemd(running('0.2.0'));
    expect(prefix.upgradeFile('trial')).toBeUndefined();
    prefix.killAll();

    upgradedTo('runs');
    writeFileSync(prefix.path('upgrade/trial'), 'version=0.3.0\ndeadline=17649\nstarts=x\n');
    await prefix.underSystemd(running('0.2.0'));
    expect(prefix.started().map((s) => s.version)).toEqual(['0.2.0']);
    expect(prefix.upgradeFile('rolled-back')).toMatchObject({ version: '0.3.0', revision: '', reason: 'left an unreadable upgrade/trial' });
  });
});
