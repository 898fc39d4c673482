/**
 * A power cut at every step of the agent's launcher (docker/agent-launch.sh)
 * between two of its writes: the launcher is run with FLOTILLA_LAUNCH_CUT_AT
 * naming a step, where it SIGKILLs its process group (itself and the release it
 * started) as the power going would; then it is started again, as systemd does
 * at the next boot, and the device must end running a working release with the
 * rollback, when one was due, recorded once and complete. Real processes, the
 * real script; see agent-launch-prefix.ts for the fake releases.
 */
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, type Launch, Prefix, SHELLS } from './agent-launch-prefix.js';

/** Steps on the way of a release that crashes at every start: counting the starts, then the rollback. */
const CRASH_STEPS = [
  'start',
  'trial.tmp',
  'counted',
  'child-started',
  'rolled-back.tmp',
  'rolled-back-written',
  'link-made',
  'switched',
  'trial-removed',
];
/** Steps of a release that runs but never confirms: started, stopped at the deadline, rolled back. */
const DEADLINE_STEPS = ['child-started', 'child-stopped', 'rolled-back-written', 'switched'];

describe.each(SHELLS)('a power cut in the agent launcher under $name', ({ command }) => {
  let prefix: Prefix;
  afterEach(() => prefix.killAll());

  const upgradedTo = (kind: 'crashes' | 'runs', deadlineIn: number) => {
    prefix = new Prefix(command).release('0.2.0', 'runs').release('0.3.0', kind).link('previous', '0.2.0').link('current', '0.3.0');
    prefix.trial({ version: '0.3.0', deadlineIn });
  };

  /** Starts the launcher with the cut at `step` (again after each ordinary exit) until it is cut there. */
  const cutAt = async (step: string): Promise<Launch> => {
    for (let start = 1; start <= 5; start++) {
      const launch = prefix.launch(undefined, { FLOTILLA_LAUNCH_CUT_AT: step });
      if ((await launch.exited) === 'SIGKILL') return launch;
    }
    throw new Error(`the launcher never reached step ${step}`);
  };

  /** After the cut: systemd's restarts until the previous release runs, as the launcher's own process. */
  const recovers = async (reason: string) => {
    const launches = await prefix.underSystemd(() => prefix.started().some((s) => s.version === '0.2.0' && alive(s.pid)));
    const running = prefix.started().filter((s) => alive(s.pid));
    expect(running.map((s) => [s.version, s.pid])).toEqual([['0.2.0', launches.at(-1)!.pid]]);
    expect(prefix.linkTarget('current')).toBe('0.2.0');
    expect(prefix.upgradeFile('trial')).toBeUndefined();
    expect(prefix.upgradeFile('rolled-back')).toMatchObject({ version: '0.3.0', revision: '12', reason, reported: '0' });
  };

  it.each(CRASH_STEPS)('crashing release, cut at %s: the next starts finish the rollback', async (step) => {
    upgradedTo('crashes', 600);
    await cutAt(step);
    await recovers('crashed 3 times in a row');
  });

  it.each(DEADLINE_STEPS)('release never confirming, cut at %s: the next starts finish the rollback', async (step) => {
    upgradedTo('runs', 2);
    await cutAt(step);
    await recovers('did not report healthy within the health timeout');
  });

  it('half-written .tmp files beside no trial are ignored: the current release runs', async () => {
    prefix = new Prefix(command).release('0.3.0', 'runs').link('current', '0.3.0');
    writeFileSync(prefix.path('upgrade/trial.tmp'), 'version=0.3.0\nprev');
    writeFileSync(prefix.path('upgrade/rolled-back.tmp'), 'version=0.');
    const [launch] = await prefix.underSystemd(() => prefix.started().some((s) => alive(s.pid)));
    expect(prefix.started().map((s) => [s.version, s.pid])).toEqual([['0.3.0', launch!.pid]]);
    expect(launch!.stderr()).toBe('');
  });
});
