/**
 * DockerRuntime.followLogs against the real engine: demultiplexed streams,
 * TTY output, the line cap, the last line without a newline, and `since` at
 * nanosecond precision (what the log collector's resume relies on).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import type { LogEntry } from '../../agent/runtime/runtime.js';
import { waitFor } from '../support/wait.js';
import { removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages } from './support/images.js';

const run = promisify(execFile);
const label = `org.flotilla-test.logs=${randomBytes(4).toString('hex')}`;

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: 60_000 });
  return stdout.trim();
}

describeDocker('DockerRuntime.followLogs on a real engine', () => {
  const runtime = new DockerRuntime(new Dockerode());
  let image: string;
  const stops: (() => void)[] = [];

  /** Starts a container running `script` in sh; returns its id. */
  const start = (script: string, ...flags: string[]) => docker('run', '-d', '--label', label, ...flags, image, '/bin/sh', '-c', script);

  /** Follows until the stream ends; resolves with every entry. */
  const followToEnd = (id: string, options: { since?: string; maxLineBytes: number }) =>
    new Promise<{ entries: LogEntry[]; err?: Error }>((resolve) => {
      const entries: LogEntry[] = [];
      stops.push(
        runtime.followLogs(
          id,
          options,
          (e) => entries.push(e),
          (err) => resolve({ entries, ...(err ? { err } : {}) }),
        ),
      );
    });

  beforeAll(async () => {
    image = (await ensureTestImages()).v1;
    await docker('pull', '-q', image);
  }, 120_000);

  afterAll(async () => {
    for (const stop of stops) stop();
    await removeContainersAndVolumes(label);
  });

  it('splits stdout and stderr, cuts a long line at the cap, and keeps a last line without a newline', async () => {
    const id = await start(
      [
        'echo "to stdout"',
        'sleep 0.2',
        'echo "to stderr" >&2',
        'sleep 0.2',
        // 100 KB in one line: Docker splits it into 16 KiB messages, the cap cuts the first.
        "head -c 100000 /dev/zero | tr '\\0' x; echo",
        'sleep 0.2',
        'echo "after the long one"',
        'sleep 0.2',
        'printf "no newline"',
      ].join('\n'),
    );
    const followed = await followToEnd(id, { maxLineBytes: 1024 });
    expect(followed.err).toBeUndefined();
    // Docker's follow may end before the engine wrote the last line when it has
    // no newline (the collector reads a stopped run once more for that): the
    // stopped container's whole log is the reference.
    expect(followed.entries.length).toBeGreaterThanOrEqual(4);
    const { entries } = await followToEnd(id, { maxLineBytes: 1024 });
    expect(
      entries.map((e) => [e.stream, e.line.length > 50 ? `${e.line.slice(0, 3)}…(${e.line.length})` : e.line, e.truncated ?? false]),
    ).toEqual([
      ['stdout', 'to stdout', false],
      ['stderr', 'to stderr', false],
      ['stdout', 'xxx…(1024)', true],
      ['stdout', 'after the long one', false],
      ['stdout', 'no newline', false],
    ]);
    for (const e of entries) expect(e.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  });

  it('joins a line Docker split into 16 KiB parts when the cap allows more', async () => {
    const id = await start("head -c 40000 /dev/zero | tr '\\0' y; echo; head -c 100000 /dev/zero | tr '\\0' z; echo; echo done");
    const { entries } = await followToEnd(id, { maxLineBytes: 64 * 1024 });
    expect(entries.map((e) => [e.line.replace(/^(.)\1*$/, (all, c: string) => `${c}×${all.length}`), e.truncated ?? false])).toEqual([
      ['y×40000', false],
      ['z×65536', true],
      ['done', false],
    ]);
  });

  it('reads a TTY container as one raw stream (no multiplexing), without the CRs', async () => {
    const id = await start('echo "on a tty"; sleep 0.2; echo "second"', '-t');
    const { entries } = await followToEnd(id, { maxLineBytes: 1024 });
    expect(entries.map((e) => [e.stream, e.line])).toEqual([
      ['stdout', 'on a tty'],
      ['stdout', 'second'],
    ]);
  });

  it('follows a running container live, and `since` is inclusive at nanosecond precision', async () => {
    const id = await start('trap \'exit 0\' TERM; i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo "line $i"; sleep 0.1; done; sleep 60');
    const live: LogEntry[] = [];
    stops.push(
      runtime.followLogs(
        id,
        { maxLineBytes: 1024 },
        (e) => live.push(e),
        () => undefined,
      ),
    );
    await waitFor('five live lines', () => live.length >= 5, { timeoutMs: 15_000 });
    expect(live.map((e) => e.line)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);

    const again = await start('echo one; sleep 0.1; echo two; sleep 0.1; echo three');
    const all = await followToEnd(again, { maxLineBytes: 1024 });
    const second = all.entries[1];
    if (!second) throw new Error('no second line');
    const resumed = await followToEnd(again, { since: second.ts, maxLineBytes: 1024 });
    expect(resumed.entries.map((e) => e.line)).toEqual(['two', 'three']);
    expect(resumed.entries[0]?.ts).toBe(second.ts);
  });
});
