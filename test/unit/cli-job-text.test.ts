/**
 * What the job commands print for people (cli/job-text.ts, cli/commands/job.ts), from
 * the hub's views at a fixed instant: the `get jobs` table, the `describe job` sections,
 * the counts a watch prints, how a watched job ended, and the `run` and `job cancel`
 * lines. The commands themselves, in-process, are cli-job-commands.test.ts; against a
 * real hub, test/integration/cli-jobs.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { canceledText } from '../../cli/commands/job.js';
import {
  completions,
  countsText,
  createdText,
  describeJob,
  durationCell,
  executionsTable,
  jobOutcome,
  jobsTable,
  progressLine,
} from '../../cli/job-text.js';
import type { JobCounts, JobDetail, JobExecutionView } from '../../shared/index.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

function counts(values: Partial<JobCounts>): JobCounts {
  const all = { queued: 0, running: 0, succeeded: 0, failed: 0, 'timed-out': 0, canceled: 0, expired: 0, ...values };
  const total = all.queued + all.running + all.succeeded + all.failed + all['timed-out'] + all.canceled + all.expired;
  return { ...all, total };
}

/** A job whose counts are those of its executions, as the hub gives them. */
function job(executions: JobExecutionView[], overrides: Partial<JobDetail> = {}): JobDetail {
  const tally: Partial<JobCounts> = {};
  for (const e of executions) tally[e.state] = (tally[e.state] ?? 0) + 1;
  return {
    name: 'diag',
    phase: 'active',
    counts: counts(tally),
    createdAt: ago(300),
    deadline: new Date(NOW + 3 * 86_400_000).toISOString(),
    spec: {
      name: 'diag',
      scheduling: { selectors: { site: 'lab' } },
      spec: { containers: [{ name: 'collect', image: 'busybox:1.36', command: ['sh', '-c', 'uname -a; exit 3'] }] },
    },
    executions,
    ...overrides,
  };
}

const FLEET: JobExecutionView[] = [
  { device: 'gw-3', state: 'queued', attempt: 0, updatedAt: ago(300), message: 'waiting for its window, opens 02:00 Europe/Berlin' },
  { device: 'gw-1', state: 'succeeded', attempt: 1, updatedAt: ago(100), startedAt: ago(200), finishedAt: ago(110), exitCode: 0 },
  {
    device: 'gw-2',
    state: 'failed',
    attempt: 3,
    updatedAt: ago(100),
    startedAt: ago(200),
    finishedAt: ago(195),
    exitCode: 3,
    container: 'collect',
    message: 'collect exited 3',
    output: ['Linux gw-2 6.1.0', '', 'df: no space left'],
  },
  { device: 'gw-4', state: 'running', attempt: 1, updatedAt: ago(100), startedAt: ago(3900) },
  {
    device: 'gw-5',
    state: 'succeeded',
    attempt: 2,
    updatedAt: ago(100),
    startedAt: ago(200),
    finishedAt: ago(190),
    exitCode: 0,
    output: ['all fine'],
  },
];

describe('get jobs', () => {
  it('has one row per job: phase, succeeded of all, each state, age and the time left to the deadline', () => {
    const active = job(FLEET);
    const complete = job([], {
      name: 'rotate-certs',
      phase: 'complete',
      counts: counts({ succeeded: 40, 'timed-out': 1, expired: 2 }),
      createdAt: ago(2 * 86_400),
    });
    const late = job([], {
      name: 'late',
      counts: counts({ queued: 2 }),
      deadline: ago(7200),
    });
    expect(jobsTable([active, complete, late], NOW)).toBe(
      [
        'NAME           PHASE      COMPLETIONS   QUEUED   RUNNING   FAILED   TIMED-OUT   CANCELED   EXPIRED   AGE   DEADLINE',
        'diag           active     2/5           1        1         1        0           0          0         5m    in 3d',
        'rotate-certs   complete   40/43         0        0         0        1           0          2         2d    -',
        'late           active     0/2           2        0         0        0           0          0         5m    passed 2h ago',
        '',
      ].join('\n'),
    );
  });
});

describe('describe job', () => {
  it('shows the spec, the progress and counts, a row per device sorted by id, and the output of failed executions', () => {
    const detail = job(FLEET, {
      spec: {
        name: 'diag',
        scheduling: { selectors: { site: 'lab' } },
        spec: {
          containers: [{ name: 'collect', image: 'busybox:1.36', command: ['sh', '-c', 'uname -a; exit 3'] }],
          timeout: '5m',
          retries: { limit: 2, backoff: '30s' },
          window: { days: ['mon-fri'], from: '02:00', to: '04:00', timezone: 'Europe/Berlin' },
          rollout: { maxConcurrent: 2, abortAfterFailurePercent: '10%' },
        },
      },
    });
    expect(describeJob(detail, NOW)).toBe(
      [
        'Name:        diag',
        'Phase:       active',
        'Created:     2026-06-01T11:55:00.000Z (5m ago)',
        'Deadline:    2026-06-04T12:00:00.000Z (in 3d)',
        'Scheduling:  site=lab',
        'Timeout:     5m per attempt',
        'Retries:     up to 2 more attempts when one ends failed or timed-out; first backoff 30s, doubling',
        'Window:      mon-fri 02:00–04:00 Europe/Berlin',
        'Rollout:     at most 2 devices at once, abort after 10% of devices failed',
        'Progress:    [######----] 3/5 finished',
        'Counts:      1 queued, 1 running, 2 succeeded, 1 failed',
        'Containers:',
        '  collect:',
        '    Image:    busybox:1.36',
        '    Command:  sh -c "uname -a; exit 3"',
        'Executions:',
        '  DEVICE   STATE       ATTEMPT   EXIT   STARTED     DURATION   MESSAGE',
        '  gw-1     succeeded   1         0      3m20s ago   1m30s',
        '  gw-2     failed      3         3      3m20s ago   5s         collect exited 3',
        '  gw-3     queued      0         -      -           -          waiting for its window, opens 02:00 Europe/Berlin',
        '  gw-4     running     1         -      65m ago     1h5m',
        '  gw-5     succeeded   2         0      3m20s ago   10s',
        'Output of failed executions (last lines):',
        '  gw-2 (failed, exit 3 in collect, attempt 3):',
        '    Linux gw-2 6.1.0',
        '',
        '    df: no space left',
        '',
      ].join('\n'),
    );
  });

  it('names the defaults a spec leaves out, and a window without a zone as each device’s own', () => {
    const text = describeJob(
      job([], {
        spec: {
          name: 'diag',
          scheduling: { devices: ['gw-1', 'gw-2'] },
          spec: { containers: [{ name: 'collect', image: 'busybox:1.36' }], window: { from: '22:00', to: '04:00' } },
        },
      }),
      NOW,
    );
    expect(text).toContain('Scheduling:  devices: gw-1,gw-2\n');
    expect(text).toContain('Timeout:     1h (default) per attempt\n');
    expect(text).toContain('Retries:     none (one attempt)\n');
    expect(text).toContain("Window:      22:00–04:00 (each device's own time zone)\n");
    expect(text).toContain('Rollout:     every device at once, never aborted\n');
    expect(text).toContain('Executions:  <none>\n');
    expect(text).not.toContain('Command:');
  });

  it('gives the phase with its reason once a job was aborted, and the deadline that passed', () => {
    const text = describeJob(job([], { phase: 'aborted', reason: '2 devices failed', deadline: ago(60) }), NOW);
    expect(text).toContain('Phase:       aborted: 2 devices failed\n');
    expect(text).toContain(`Deadline:    ${ago(60)} (passed 1m ago)\n`);
  });

  it('names the container whose exit decided when the job has several, and when the next attempt starts', () => {
    const detail = job(
      [
        { device: 'gw-1', state: 'failed', attempt: 1, updatedAt: ago(10), exitCode: 2, container: 'migrate' },
        {
          device: 'gw-2',
          state: 'queued',
          attempt: 1,
          updatedAt: ago(10),
          message: 'attempt 1 failed (exit 1)',
          nextAttemptAt: new Date(NOW + 20_000).toISOString(),
        },
      ],
      {
        spec: {
          name: 'diag',
          scheduling: { selectors: {} },
          spec: {
            containers: [
              { name: 'migrate', image: 'db:2' },
              { name: 'notify', image: 'busybox:1.36' },
            ],
          },
        },
      },
    );
    const table = executionsTable(detail, NOW);
    expect(table).toMatch(/^gw-1 +failed +1 +2 \(migrate\) +- +- *$/m);
    expect(table).toMatch(/^gw-2 +queued +1 +- +- +- +attempt 1 failed \(exit 1\); next attempt in 20s$/m);
  });

  it('keeps what devices sent on one line, without terminal escapes', () => {
    const text = describeJob(
      job([
        {
          device: 'gw-1',
          state: 'timed-out',
          attempt: 1,
          updatedAt: ago(10),
          message: 'killed\nafter 5m\u001b[2J',
          output: ['\u001b]0;owned\u0007progress\r100%'],
        },
      ]),
      NOW,
    );
    expect(text).toContain('killed after 5m?[2J');
    expect(text).toContain('  gw-1 (timed-out, attempt 1):\n    ?]0;owned?progress 100%\n');
    expect(text).not.toContain('\u001b');
  });
});

describe('STARTED and DEADLINE', () => {
  it('leaves STARTED empty for an execution whose container never started, even with an attempt made', () => {
    const table = executionsTable(
      job([
        {
          device: 'gw-1',
          state: 'failed',
          attempt: 1,
          updatedAt: ago(10),
          finishedAt: ago(10),
          container: 'collect',
          message: 'pull access denied for nosuch',
        },
        { device: 'gw-2', state: 'running', attempt: 1, updatedAt: ago(10), startedAt: ago(45) },
      ]),
      NOW,
    );
    expect(table).toMatch(/^gw-1 +failed +1 +- +- +- +pull access denied for nosuch$/m);
    expect(table).toMatch(/^gw-2 +running +1 +- +45s ago +45s$/m);
  });

  it('rounds the time to the deadline to its nearest unit: a fresh 7d deadline is in 7d', () => {
    const in7d = new Date(NOW + 7 * 86_400_000 - 60_000).toISOString();
    expect(jobsTable([job([], { deadline: in7d })], NOW)).toMatch(/ in 7d\n$/);
    expect(describeJob(job([], { deadline: in7d }), NOW)).toContain(`Deadline:    ${in7d} (in 7d)\n`);
    const in23h50m = new Date(NOW + 23 * 3_600_000 + 50 * 60_000).toISOString();
    expect(jobsTable([job([], { deadline: in23h50m })], NOW)).toMatch(/ in 1d\n$/);
    const passed = new Date(NOW - 100 * 60_000).toISOString();
    expect(jobsTable([job([], { deadline: passed })], NOW)).toMatch(/ passed 2h ago\n$/);
  });
});

describe('durationCell', () => {
  it('gives the largest unit and the next one down', () => {
    expect(durationCell(400)).toBe('0s');
    expect(durationCell(45_000)).toBe('45s');
    expect(durationCell(60_000)).toBe('1m');
    expect(durationCell(90_000)).toBe('1m30s');
    expect(durationCell(3_600_000)).toBe('1h');
    expect(durationCell(7_530_000)).toBe('2h5m');
    expect(durationCell(3 * 86_400_000 + 4 * 3_600_000 + 59_000)).toBe('3d4h');
  });
});

describe('the lines of run, watches and cancel', () => {
  it('says how many devices a job was made for, and how to follow it unless a watch does', () => {
    expect(createdText(job(FLEET), false)).toBe('job/diag created: 5 devices\nfollow it: flotilla describe job diag -w\n');
    expect(createdText(job([], { counts: counts({ queued: 1 }) }), true)).toBe('job/diag created: 1 device\n');
  });

  it('counts the states that have executions, in the order they come in', () => {
    expect(progressLine(job(FLEET))).toBe('job/diag active: 1 queued, 1 running, 2 succeeded, 1 failed\n');
    expect(countsText(counts({}))).toBe('no devices');
    expect(completions(counts({ succeeded: 3, failed: 2 }))).toBe('3/5');
  });

  it('says what a cancel did from its executions: dropped before they started, being stopped, told not to start', () => {
    const e = (device: string, state: JobExecutionView['state'], started: boolean): JobExecutionView => ({
      device,
      state,
      attempt: started ? 1 : 0,
      updatedAt: ago(1),
      ...(started ? { startedAt: ago(60) } : {}),
    });
    const canceled = (executions: JobExecutionView[]) => job(executions, { phase: 'canceled', reason: 'canceled by admin' });
    // Three queued that no device had: the hub dropped them; nothing is being stopped.
    expect(canceledText(canceled([e('gw-1', 'canceled', false), e('gw-2', 'canceled', false), e('gw-3', 'canceled', false)]))).toBe(
      'job/diag canceled: 3 dropped before they started\n',
    );
    expect(
      canceledText(
        canceled([
          e('gw-1', 'succeeded', true),
          e('gw-2', 'succeeded', true),
          e('gw-3', 'canceled', false),
          e('gw-4', 'running', true),
          e('gw-5', 'queued', false),
          e('gw-6', 'queued', false),
        ]),
      ),
    ).toBe(
      'job/diag canceled: 2 succeeded; 1 dropped before it started; 1 running is being stopped on its device; 2 queued are told not to start on their devices\n',
    );
    // Asked again once the devices reported: what they stopped is canceled.
    expect(canceledText(canceled([e('gw-1', 'canceled', true), e('gw-2', 'running', true), e('gw-3', 'running', true)]))).toBe(
      'job/diag canceled: 1 canceled; 2 running are being stopped on their devices\n',
    );
    expect(canceledText(job([e('gw-1', 'succeeded', true)], { phase: 'complete' }))).toBe(
      'job/diag was already complete: nothing to cancel (1 succeeded)\n',
    );
  });
});

describe('how a watched job ended', () => {
  it('is a success only when every device succeeded', () => {
    expect(jobOutcome(job([], { phase: 'complete', counts: counts({ succeeded: 3 }) }))).toBeUndefined();
  });

  it('names each device that did not succeed with why, failures first, and where to read its output, exit 1', () => {
    const error = jobOutcome(
      job(
        [
          {
            device: 'gw-2',
            state: 'failed',
            attempt: 2,
            updatedAt: ago(1),
            startedAt: ago(9),
            exitCode: 3,
            container: 'collect',
            message: 'collect exited 3',
          },
          { device: 'gw-1', state: 'timed-out', attempt: 1, updatedAt: ago(1), startedAt: ago(400), message: 'killed after 5m' },
          { device: 'gw-3', state: 'expired', attempt: 0, updatedAt: ago(1), message: 'not started by its deadline, 2026-06-01T11:00:00Z' },
          { device: 'gw-5', state: 'failed', attempt: 1, updatedAt: ago(1), startedAt: ago(9), exitCode: 2, container: 'collect' },
          { device: 'gw-4', state: 'succeeded', attempt: 1, updatedAt: ago(1) },
        ],
        { phase: 'complete' },
      ),
    );
    expect(error?.exitCode).toBe(1);
    expect(error?.format()).toBe(
      [
        'error: job/diag is complete, but 4 of 5 devices did not succeed: 1 succeeded, 2 failed, 1 timed-out, 1 expired',
        '  gw-2 (failed, attempt 2): collect exited 3',
        '  gw-5 (failed, attempt 1): exit 2 in collect',
        '  gw-1 (timed-out, attempt 1): killed after 5m',
        '  gw-3 (expired): not started by its deadline, 2026-06-01T11:00:00Z',
        "  see each device's state and output: flotilla describe job diag",
        "  one device's whole output: flotilla logs gw-2 --job diag",
        '',
      ].join('\n'),
    );
  });

  it('gives the engine’s reason for an image it could not pull, and no logs to read where no container ran', () => {
    const pull = 'Error response from daemon: manifest for registry.local/nosuch:1 not found: manifest unknown';
    const error = jobOutcome(
      job(
        [
          { device: 'trial-a', state: 'failed', attempt: 1, updatedAt: ago(1), container: 'noimg', message: pull },
          { device: 'trial-b', state: 'failed', attempt: 1, updatedAt: ago(1), container: 'noimg', message: pull },
        ],
        { name: 'noimg', phase: 'complete' },
      ),
    );
    expect(error?.format()).toBe(
      [
        'error: job/noimg is complete, but 2 of 2 devices did not succeed: 2 failed',
        `  trial-a (failed, attempt 1): ${pull}`,
        `  trial-b (failed, attempt 1): ${pull}`,
        "  see each device's state and output: flotilla describe job noimg",
        '',
      ].join('\n'),
    );
    // An exit code the message does not give goes first; a number inside another (HTTP 401) is not it.
    const denied = jobOutcome(
      job([{ device: 'gw-1', state: 'failed', attempt: 1, updatedAt: ago(1), startedAt: ago(5), exitCode: 1, message: 'HTTP 401' }], {
        phase: 'complete',
      }),
    );
    expect(denied?.lines[0]).toBe('gw-1 (failed, attempt 1): exit 1: HTTP 401');
    expect(denied?.lines.at(-1)).toBe("one device's whole output: flotilla logs gw-1 --job diag");
  });

  it('says a job was canceled or aborted, and why', () => {
    expect(jobOutcome(job([], { phase: 'canceled', reason: 'canceled by admin', counts: counts({ canceled: 2 }) }))?.message).toBe(
      'job/diag was canceled (canceled by admin): 2 canceled',
    );
    const many = Array.from(
      { length: 7 },
      (_, i): JobExecutionView => ({ device: `gw-${i}`, state: 'failed', attempt: 1, updatedAt: ago(1) }),
    );
    const aborted = jobOutcome(job(many, { phase: 'aborted', reason: '7 devices failed' }));
    expect(aborted?.message).toBe('job/diag was aborted (7 devices failed): 7 failed');
    expect(aborted?.lines).toContain('and 2 more');
    expect(aborted?.lines.filter((line) => line.startsWith('gw-'))).toHaveLength(5);
  });
});
