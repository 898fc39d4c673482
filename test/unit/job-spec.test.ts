import { describe, expect, it } from 'vitest';
import { abortThreshold, jobDeadline, retryDelayMs, validateJobSpec } from '../../shared/job-spec.js';

const NOW = new Date('2026-12-06T12:00:00Z');
const containers = [{ name: 'task', image: '127.0.0.1:5000/flotilla-test/web:v1', command: ['true'] }];

function issues(value: unknown): Array<[string, string]> {
  const result = validateJobSpec(value, NOW);
  return result.ok ? [] : result.issues.map((issue) => [issue.path, issue.message]);
}

function job(spec: Record<string, unknown> = {}, rest: Record<string, unknown> = {}) {
  return { name: 'diag', scheduling: { selectors: { site: 'lab' } }, spec: { containers, ...spec }, ...rest };
}

describe('job spec', () => {
  it('takes a job with every field', () => {
    const result = validateJobSpec(
      job({
        timeout: '5m',
        retries: { limit: 2, backoff: '30s', on: ['failed'] },
        deadline: '3d',
        window: { days: ['mon-fri'], from: '02:00', to: '04:00', timezone: 'Europe/Berlin' },
        rollout: { maxConcurrent: 20, abortAfterFailurePercent: '10%' },
      }),
      NOW,
    );
    expect(result.ok).toBe(true);
  });

  it('names what a target is when there is none, whether scheduling is missing or empty', () => {
    expect(issues({ name: 'diag', spec: { containers } })).toEqual([
      ['scheduling', expect.stringMatching(/^is required: a job names its devices with scheduling\.selectors .* or scheduling\.devices/)],
    ]);
    expect(issues(job({}, { scheduling: {} }))).toEqual([
      ['scheduling', expect.stringMatching(/^must name the devices: scheduling\.selectors/)],
    ]);
  });

  it('lists the problems the schema finds and those past it in one answer', () => {
    expect(
      issues({
        name: 'diag',
        spec: { containers, timeout: '0s', retry: 1, window: { from: '02:00', to: '02:00', timezone: 'Europe/Berln' } },
      }),
    ).toEqual([
      ['scheduling', expect.stringMatching(/^is required/)],
      ['spec.retry', 'is not a known field'],
      ['spec.timeout', 'must be longer than 0'],
      ['spec.window.timezone', 'unknown time zone "Europe/Berln": use an IANA name such as Europe/Berlin or UTC'],
      ['spec.window.to', 'must differ from "from": the window would be empty'],
    ]);
  });

  it('says what a deadline, a window day and a window time are, instead of the patterns they failed', () => {
    expect(issues(job({ deadline: 'yesterday' }))).toEqual([
      ['spec.deadline', expect.stringMatching(/^must be a duration from now \(12h, 7d\) or an RFC 3339 time/)],
    ]);
    expect(issues(job({ window: { days: ['sunday'], from: '2am', to: '04:00' } }))).toEqual([
      ['spec.window.days[0]', 'must be a weekday (mon, tue, wed, thu, fri, sat, sun) or a range of them (mon-fri)'],
      ['spec.window.from', 'must be a 24-hour time, HH:MM or HH:MM:SS (02:00, 23:30:15)'],
    ]);
  });

  it('refuses a restart policy and a health check: a job runs once and its exit code decides', () => {
    expect(issues(job({ containers: [{ ...containers[0], restartPolicy: 'always' }] }))).toEqual([
      ['spec.containers[0].restartPolicy', expect.stringMatching(/^a job's containers run once: leave restartPolicy out/)],
    ]);
    expect(
      issues(job({ containers: [{ ...containers[0], restartPolicy: { name: 'on-failure' }, healthcheck: { tcp: 'localhost:80' } }] })),
    ).toEqual([
      ['spec.containers[0].restartPolicy', expect.stringMatching(/the only restart policy is "no"/)],
      ['spec.containers[0].healthcheck', 'a job runs to completion: its exit code decides, not a health check'],
    ]);
    expect(issues(job({ containers: [{ ...containers[0], restartPolicy: { name: 'no' } }] }))).toEqual([]);
  });

  it('refuses a deadline in the past, and one before a zoned window first opens', () => {
    expect(issues(job({ deadline: '2026-12-01T00:00:00Z' }))).toEqual([
      ['spec.deadline', 'must be in the future (it is 2026-12-01T00:00:00.000Z)'],
    ]);
    expect(issues(job({ deadline: '15s', window: { from: '02:00', to: '03:00', timezone: 'UTC' } }))).toEqual([
      [
        'spec.deadline',
        'is 2026-12-06T12:00:15.000Z, before the window (02:00–03:00 UTC) first opens at 2026-12-07T02:00:00.000Z: no device could start the job',
      ],
    ]);
    // Inside the window now, or opening before the deadline: fine. Without a zone each device judges in its own.
    expect(issues(job({ deadline: '15s', window: { from: '11:00', to: '13:00', timezone: 'UTC' } }))).toEqual([]);
    expect(issues(job({ deadline: '1d', window: { from: '02:00', to: '03:00', timezone: 'UTC' } }))).toEqual([]);
    expect(issues(job({ deadline: '15s', window: { from: '02:00', to: '03:00' } }))).toEqual([]);
  });

  it('refuses both abort thresholds at once, and a backoff over an hour', () => {
    expect(
      issues(job({ rollout: { abortAfterFailures: 2, abortAfterFailurePercent: '10%' }, retries: { limit: 1, backoff: '2h' } })),
    ).toEqual([
      ['spec.retries.backoff', 'must be at most 1h'],
      ['spec.rollout', 'has both "abortAfterFailures" and "abortAfterFailurePercent": give one'],
    ]);
  });

  it('counts a deadline from the job, doubles the backoff per attempt up to an hour, and rounds a percentage threshold up', () => {
    expect(jobDeadline(undefined, NOW).toISOString()).toBe('2026-12-13T12:00:00.000Z');
    expect(jobDeadline('12h', NOW).toISOString()).toBe('2026-12-07T00:00:00.000Z');
    expect(jobDeadline('2026-12-24T18:00:00Z', NOW).toISOString()).toBe('2026-12-24T18:00:00.000Z');
    expect([2, 3, 4].map((attempt) => retryDelayMs('30s', attempt))).toEqual([30_000, 60_000, 120_000]);
    expect(retryDelayMs(undefined, 2)).toBe(10_000);
    expect(retryDelayMs('40m', 5)).toBe(3_600_000);
    expect(abortThreshold({ abortAfterFailurePercent: '10%' }, 25)).toBe(3);
    expect(abortThreshold({ abortAfterFailurePercent: '1%' }, 3)).toBe(1);
    expect(abortThreshold({ abortAfterFailures: 4 }, 3)).toBe(4);
    expect(abortThreshold(undefined, 3)).toBeUndefined();
  });
});
