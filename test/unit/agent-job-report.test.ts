/**
 * What a job execution's report carries and what the agent keeps of it: the
 * last lines of output (from the engine's answer to a tailed `logs` request),
 * the report of each execution, and the bounded record file (a real SQLite
 * file in a scratch dir).
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { JOB_STORE_FILE, JobStore, MAX_FORGOTTEN } from '../../agent/jobs/job-store.js';
import { reportedOutput } from '../../agent/jobs/output.js';
import type { JobRecord } from '../../agent/jobs/record.js';
import { executionReports } from '../../agent/jobs/report.js';
import { tailLines } from '../../agent/runtime/log-tail.js';
import { type DesiredJob, JobExecutionReport, MAX_REPORTED_OUTPUT_LINE, validate } from '../../shared/index.js';
import { scratchDir } from '../support/scratch.js';

const silent = pino({ level: 'silent' });

/** One frame of a multiplexed log: stream type, three zero bytes, the payload's length, the payload. */
function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header.writeUInt8(stream, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('tailLines', () => {
  it('merges stdout and stderr by their timestamps and keeps the last ones', () => {
    const raw = Buffer.concat([
      frame(1, '2026-12-07T12:00:00.000000001Z out 1\n'),
      frame(1, '2026-12-07T12:00:00.000000003Z out 2\n'),
      frame(2, '2026-12-07T12:00:00.000000002Z err 1\n'),
      frame(2, '2026-12-07T12:00:00.000000004Z err 2 without a newline'),
    ]);
    expect(tailLines(raw, false, 3, 512).map((e) => `${e.stream} ${e.line}`)).toEqual([
      'stderr err 1',
      'stdout out 2',
      'stderr err 2 without a newline',
    ]);
  });

  it("reads a TTY container's single stream, and cuts a long line", () => {
    const raw = Buffer.from(`2026-12-07T12:00:00Z short\r\n2026-12-07T12:00:01Z ${'x'.repeat(600)}\r\n`);
    const entries = tailLines(raw, true, 20, 512);
    expect(entries.map((e) => [e.line.length, e.truncated ?? false])).toEqual([
      [5, false],
      [512, true],
    ]);
  });
});

describe('reportedOutput', () => {
  const entry = (ts: string, line: string) => ({ stream: 'stdout' as const, ts, line });

  it("is one container's lines as they are", () => {
    expect(
      reportedOutput([{ container: 'main', entries: [entry('2026-12-07T12:00:00Z', 'a'), entry('2026-12-07T12:00:01Z', 'b')] }]),
    ).toEqual(['a', 'b']);
  });

  it('interleaves several containers by time, each line naming its container, the last 20 kept, each at most 512 characters', () => {
    const many = Array.from({ length: 15 }, (_, i) => entry(`2026-12-07T12:00:${String(i * 2).padStart(2, '0')}Z`, `m${i}`));
    const side = Array.from({ length: 15 }, (_, i) => entry(`2026-12-07T12:00:${String(i * 2 + 1).padStart(2, '0')}Z`, `s${i}`));
    side[14] = entry('2026-12-07T12:00:29Z', 'é'.repeat(600));
    const output = reportedOutput([
      { container: 'migrate', entries: many },
      { container: 'side', entries: side },
    ]);
    expect(output).toHaveLength(20);
    expect(output.slice(0, 3)).toEqual(['migrate: m5', 'side: s5', 'migrate: m6']);
    expect(output[19]).toHaveLength(MAX_REPORTED_OUTPUT_LINE);
    expect(output[19]?.startsWith('side: éé')).toBe(true);
  });
});

describe('executionReports', () => {
  const desired = (execution: string): DesiredJob => ({
    name: 'rotate-cert',
    execution,
    containers: [{ name: 'main', image: 'tools:1' }],
    deadline: '2026-12-08T00:00:00Z',
  });

  it('reports every execution the desired state names, in its order, then those still being stopped; each valid', () => {
    const records = new Map<string, JobRecord>([
      [
        'b.1',
        { execution: 'b.1', job: 'rotate-cert', attempt: 1, state: 'failed', exitCode: 3, container: 'main', message: 'x'.repeat(2000) },
      ],
      ['gone.1', { execution: 'gone.1', job: 'old', attempt: 1, state: 'running', startedAt: '2026-12-07T11:00:00Z' }],
      ['done.1', { execution: 'done.1', job: 'older', attempt: 1, state: 'succeeded' }],
      [
        'c.1',
        {
          execution: 'c.1',
          job: 'rotate-cert',
          attempt: 1,
          state: 'queued',
          nextAttemptAt: '2026-12-07T12:00:10Z',
          message: 'attempt 1 of 2 failed',
        },
      ],
    ]);
    const reports = executionReports({
      desired: [desired('a.1'), desired('b.1'), desired('c.1')],
      records,
      preparing: new Map([['a.1', 'pulling tools:1 for attempt 1']]),
    });
    expect(reports.map((r) => [r.execution, r.state])).toEqual([
      ['a.1', 'queued'],
      ['b.1', 'failed'],
      ['c.1', 'queued'],
      ['gone.1', 'running'],
    ]);
    expect(reports[0]).toEqual({
      name: 'rotate-cert',
      execution: 'a.1',
      state: 'queued',
      attempt: 0,
      message: 'pulling tools:1 for attempt 1',
    });
    expect(reports[1]?.message).toHaveLength(1024);
    expect(reports[2]?.nextAttemptAt).toBe('2026-12-07T12:00:10Z');
    for (const report of reports) expect(validate(JobExecutionReport, report).ok).toBe(true);
  });
});

describe('JobStore', () => {
  const final = (i: number, finishedAt: number): JobRecord => ({
    execution: `job.${i}`,
    job: 'job',
    attempt: 1,
    state: 'succeeded',
    finishedAt: new Date(finishedAt).toISOString(),
    output: ['done'],
  });
  const NOW = Date.parse('2026-12-07T12:00:00Z');

  it('keeps what it saved across a reopen', () => {
    const dir = scratchDir('flotilla-job-store-');
    const store = new JobStore(dir, silent);
    store.save({ execution: 'a.1', job: 'a', attempt: 1, state: 'running', startedAt: '2026-12-07T12:00:00Z' });
    store.save({ execution: 'a.1', job: 'a', attempt: 1, state: 'succeeded', exitCode: 0 });
    store.close();
    const again = new JobStore(dir, silent);
    expect(again.load()).toEqual([{ execution: 'a.1', job: 'a', attempt: 1, state: 'succeeded', exitCode: 0 }]);
    again.close();
  });

  it('forgets the output of final executions no longer named, drops those older than 30 days and beyond the newest 500', () => {
    const store = new JobStore(scratchDir('flotilla-job-store-'), silent);
    for (let i = 0; i < MAX_FORGOTTEN + 10; i++) store.save(final(i, NOW - i * 1_000));
    store.save(final(9999, NOW - 31 * 86_400_000));
    store.save({ execution: 'queued.1', job: 'q', attempt: 0, state: 'queued' });
    store.prune(new Set(['job.505']), NOW);
    const kept = new Map(store.load().map((r) => [r.execution, r]));
    // 500 forgotten ones (the newest), the one still named, the queued one.
    expect(kept.size).toBe(MAX_FORGOTTEN + 2);
    const { output: _forgotten, ...withoutOutput } = final(0, NOW);
    expect(kept.get('job.0')).toEqual(withoutOutput);
    expect(kept.has(`job.${MAX_FORGOTTEN}`)).toBe(false);
    expect(kept.get('job.505')?.output).toEqual(['done']);
    expect(kept.has('job.9999')).toBe(false);
    expect(kept.has('queued.1')).toBe(true);
    store.close();
  });

  it('moves an unreadable file aside and begins a new one', () => {
    const dir = scratchDir('flotilla-job-store-');
    writeFileSync(join(dir, JOB_STORE_FILE), 'not a database, but long enough to be read as one '.repeat(100));
    const store = new JobStore(dir, silent);
    expect(store.load()).toEqual([]);
    store.save({ execution: 'a.1', job: 'a', attempt: 0, state: 'queued' });
    store.close();
    expect(readdirSync(dir).filter((name) => name.startsWith(`${JOB_STORE_FILE}.unreadable-`))).toHaveLength(1);
  });
});
