/**
 * The job commands in-process, with the hub's answers given by the test: what `flotilla
 * run` sends for its two forms, every input refused before the hub is asked (exit 2, the
 * field or flag named), `run -w` and `describe job -w` exiting by how the job ended,
 * and the requests and lines of `get jobs`, `describe job`, `job cancel|delete`,
 * `delete job` and `logs --job`. A real hub and the real executable:
 * test/integration/cli-jobs.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { HubClient } from '../../cli/client.js';
import { exitByOutcome, watchJob } from '../../cli/commands/job-watch.js';
import type { CliIO } from '../../cli/context.js';
import { CliError } from '../../cli/errors.js';
import { EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_OK } from '../../cli/main.js';
import type { JobCounts, JobDetail, LogRecord } from '../../shared/index.js';
import { jsonResponse, runCliInProcess } from '../support/cli-in-process.js';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  requests: { method: string; path: string; query: string; body?: unknown }[];
}

type Respond = (path: string, method: string, call: number) => unknown;

/** Runs `flotilla ARGS…` in-process; the hub answers with `respond` (a body, or a whole Response), or must not be called. */
async function cli(args: string[], respond?: Respond, files: Record<string, string> = {}, stdin = ''): Promise<Captured> {
  const requests: Captured['requests'] = [];
  const fetch: CliIO['fetch'] = async (input, init) => {
    const url = new URL(String(input));
    requests.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      query: url.search,
      ...(typeof init?.body === 'string' ? { body: JSON.parse(init.body) } : {}),
    });
    if (!respond) throw new Error('the hub must not be contacted');
    const answer = respond(url.pathname, init?.method ?? 'GET', requests.length);
    return answer instanceof Response ? answer : jsonResponse(200, answer);
  };
  return { ...(await runCliInProcess(args, { fetch, files, stdin })), requests };
}

function counts(values: Partial<JobCounts>): JobCounts {
  const all = { queued: 0, running: 0, succeeded: 0, failed: 0, 'timed-out': 0, canceled: 0, expired: 0, ...values };
  return { ...all, total: Object.values(all).reduce((sum, n) => sum + n, 0) };
}

const CREATED_AT = '2026-06-01T12:00:00.000Z';

function detail(phase: JobDetail['phase'], values: Partial<JobCounts>, overrides: Partial<JobDetail> = {}): JobDetail {
  return {
    name: 'diag',
    phase,
    counts: counts(values),
    createdAt: CREATED_AT,
    deadline: '2026-06-08T12:00:00.000Z',
    spec: { name: 'diag', scheduling: { selectors: { site: 'lab' } }, spec: { containers: [{ name: 'diag', image: 'busybox:1.36' }] } },
    executions: [],
    ...overrides,
  };
}

function notFound(message: string): Response {
  return new Response(JSON.stringify({ error: { code: 'not_found', message } }), {
    status: 404,
    headers: { 'content-type': 'application/json' },
  });
}

const JOB_FILE = `
name: diag
scheduling:
  selectors: { site: lab }
spec:
  containers:
    - name: collect
      image: busybox:1.36
      command: [sh, -c, "uname -a"]
  timeout: 5m
  window: { from: "02:00", to: "04:00", timezone: Europe/Berlin }
`;

describe('flotilla run: what it sends', () => {
  it('builds one container named after the job from the flags, the words after -- its command', async () => {
    const result = await cli(
      [
        'run',
        'diag',
        '--image',
        'busybox:1.36',
        '-l',
        'site=lab,tier=edge',
        '--selector',
        'zone=b',
        '--device',
        'gw-1',
        '--device',
        'gw-1',
        '--timeout',
        '10m',
        '--retries',
        '2',
        '--backoff',
        '30s',
        '--deadline',
        '24h',
        '--max-concurrent',
        '5',
        '--abort-after-failures',
        '2',
        '-e',
        'LEVEL=debug',
        '--env',
        'EMPTY=',
        '--env',
        'EQ=a=b',
        '--',
        'sh',
        '-c',
        'uname -a; df -h /',
      ],
      () => detail('active', { queued: 3 }),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests).toEqual([
      {
        method: 'POST',
        path: '/api/v1/jobs',
        query: '',
        // The spec is the whole body, as for apps.apply.
        body: {
          name: 'diag',
          scheduling: { selectors: { site: 'lab', tier: 'edge', zone: 'b' }, devices: ['gw-1'] },
          spec: {
            containers: [
              {
                name: 'diag',
                image: 'busybox:1.36',
                command: ['sh', '-c', 'uname -a; df -h /'],
                env: [
                  { name: 'LEVEL', value: 'debug' },
                  { name: 'EMPTY', value: '' },
                  { name: 'EQ', value: 'a=b' },
                ],
              },
            ],
            timeout: '10m',
            retries: { limit: 2, backoff: '30s' },
            deadline: '24h',
            rollout: { maxConcurrent: 5, abortAfterFailures: 2 },
          },
        },
      },
    ]);
    expect(result.stdout).toBe('job/diag created: 3 devices\nfollow it: flotilla describe job diag -w\n');
  });

  it("leaves the command to the image's CMD without one, and takes --all as every device", async () => {
    const result = await cli(['run', 'diag', '--image', 'busybox:1.36', '--all'], () => detail('active', { queued: 1 }));
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests[0]?.body).toEqual({
      name: 'diag',
      scheduling: { selectors: {} },
      spec: { containers: [{ name: 'diag', image: 'busybox:1.36' }] },
    });
  });

  it('sends the spec of a YAML file as written, or of JSON on stdin, and prints the hub’s body with -o json', async () => {
    const fromFile = await cli(['run', '-f', 'job.yaml'], () => detail('active', { queued: 2 }), { 'job.yaml': JOB_FILE });
    expect(fromFile.code).toBe(EXIT_OK);
    expect(fromFile.requests[0]?.body).toEqual({
      name: 'diag',
      scheduling: { selectors: { site: 'lab' } },
      spec: {
        containers: [{ name: 'collect', image: 'busybox:1.36', command: ['sh', '-c', 'uname -a'] }],
        timeout: '5m',
        window: { from: '02:00', to: '04:00', timezone: 'Europe/Berlin' },
      },
    });
    const spec = { name: 'diag', scheduling: { devices: ['gw-1'] }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } };
    const body = detail('active', { queued: 1 });
    const fromStdin = await cli(['-o', 'json', 'run', '-f', '-'], () => body, {}, JSON.stringify(spec));
    expect(fromStdin.code).toBe(EXIT_OK);
    expect(fromStdin.requests[0]?.body).toEqual(spec);
    expect(JSON.parse(fromStdin.stdout)).toEqual(body);
  });
});

describe('flotilla run: input refused before the hub is asked', () => {
  const image = ['--image', 'busybox:1.36'];
  it.each([
    [[], 'run needs a job: -f FILE, or NAME --image IMAGE with --selector, --device or --all'],
    [['diag', '--all'], 'run needs the image to run: --image IMAGE'],
    [['diag', ...image], 'run needs the devices to run the job on: --selector KEY=VALUE, --device ID or --all'],
    [['diag', ...image, '--all', '--device', 'gw-1'], '--all selects every device: leave out --selector and --device'],
    [['diag', ...image, '--selector', 'site'], 'invalid label "site": expected key=value'],
    [['diag', ...image, '--all', '--timeout', '-5s'], "option '--timeout <duration>' argument '-5s' is invalid"],
    [['diag', ...image, '--all', '--timeout', '0s'], 'expected a duration more than zero'],
    [['diag', ...image, '--all', '--retries', '-1'], "option '--retries <n>' argument '-1' is invalid"],
    [['diag', ...image, '--all', '--max-concurrent', '0'], 'expected a whole number, 1 or more'],
    [['diag', ...image, '--all', '--backoff', '30s'], '--backoff is the wait before a retry: give --retries N too'],
    [['diag', ...image, '--all', '--env', 'LEVEL'], 'invalid --env "LEVEL": expected KEY=VALUE'],
    [['--image', 'busybox:1.36', '--all', '--', 'sh', '-c', 'date'], "run needs the job's name before --"],
    [['-f', 'job.yaml', '--image', 'busybox:1.36', '--all'], '-f takes the whole job from the file: leave out --image, --all'],
    [['-f', 'job.yaml', 'diag'], '-f takes the whole job from the file: leave out NAME "diag"'],
    [['-f', 'missing.yaml'], 'missing.yaml: no such file'],
  ])('refuses %j, exit 2', async (args, message) => {
    const result = await cli(['run', ...args], undefined, { 'job.yaml': JOB_FILE });
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
    expect(result.stdout).toBe('');
  });

  it('names the flag of each field the spec’s rules refuse, in one error', async () => {
    const result = await cli([
      'run',
      'Diag_1',
      '--image',
      'busy box',
      '--device',
      'GW 1',
      '--deadline',
      '2020-01-01T00:00:00Z',
      '--env',
      '1X=y',
      '--',
      'true',
    ]);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
    const [head, ...lines] = result.stderr.trimEnd().split('\n');
    expect(head).toBe('error: invalid job "Diag_1"');
    expect(lines).toEqual([
      expect.stringMatching(/^ {2}NAME: must match pattern/),
      expect.stringMatching(/^ {2}--device: must match pattern/),
      expect.stringMatching(/^ {2}--image: must match pattern/),
      expect.stringMatching(/^ {2}--env 1X=y: must match pattern/),
    ]);
    // The deadline is only checked once the schema passes: alone, it is named too.
    const past = await cli(['run', 'diag', '--image', 'busybox:1.36', '--all', '--deadline', '2020-01-01T00:00:00Z']);
    expect(past.stderr).toBe('error: invalid job "diag"\n  --deadline: must be in the future (it is 2020-01-01T00:00:00.000Z)\n');
    expect(past.code).toBe(EXIT_INVALID_INPUT);
  });

  it('lists every problem of a job file in one error naming each field: no target, a negative timeout, an unknown field', async () => {
    const bad = `
name: diag
spec:
  containers: [{ name: c, image: busybox:1.36 }]
  timeout: -5s
  retry: 3
`;
    const result = await cli(['run', '-f', 'bad.yaml'], undefined, { 'bad.yaml': bad });
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('error: bad.yaml: invalid job spec');
    expect(lines.slice(1).sort()).toEqual([
      expect.stringMatching(/^ {2}scheduling: is required: .*scheduling\.selectors.* or scheduling\.devices/),
      '  spec.retry: is not a known field',
      expect.stringMatching(/^ {2}spec\.timeout: must match pattern/),
    ]);
  });

  it('takes one job per file', async () => {
    const two = `${JOB_FILE}\n---\n${JOB_FILE}`;
    const result = await cli(['run', '-f', 'two.yaml'], undefined, { 'two.yaml': two });
    expect(result.stderr).toBe('error: two.yaml: holds 2 documents: flotilla run takes one job (one file each)\n');
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    const empty = await cli(['run', '-f', 'empty.yaml'], undefined, { 'empty.yaml': '# nothing\n' });
    expect(empty.stderr).toBe('error: empty.yaml: no job spec found\n');
  });

  it('passes on the hub’s refusal with its issues, exit 2', async () => {
    const result = await cli(
      ['run', 'diag', '--image', 'busybox:1.36', '--selector', 'site=nowhere'],
      () =>
        new Response(
          JSON.stringify({
            error: {
              code: 'invalid_request',
              message: 'invalid job spec',
              details: { issues: [{ path: 'scheduling', message: 'selects no device' }] },
            },
          }),
          { status: 400, headers: { 'content-type': 'application/json' } },
        ),
    );
    expect(result).toMatchObject({
      code: EXIT_INVALID_INPUT,
      stdout: '',
      stderr: 'error: invalid job spec\n  scheduling: selects no device\n',
    });
  });

  it('prints each of the hub’s issues once, though its message repeats the first in parentheses', async () => {
    const refusal = (message: string, issues: { path: string; message: string }[]) => () =>
      new Response(JSON.stringify({ error: { code: 'invalid_request', message, details: { issues } } }), {
        status: 400,
        headers: { 'content-type': 'application/json' },
      });
    const unknown = 'unknown devices nosuch: register them first (flotilla token create) or leave them out';
    const one = await cli(
      ['run', 'diag', '--image', 'busybox:1.36', '--device', 'nosuch'],
      refusal(`invalid job spec (scheduling.devices: ${unknown})`, [{ path: 'scheduling.devices', message: unknown }]),
    );
    expect(one).toMatchObject({ code: EXIT_INVALID_INPUT, stderr: `error: invalid job spec\n  scheduling.devices: ${unknown}\n` });
    const two = await cli(
      ['run', 'diag', '--image', 'busybox:1.36', '--all'],
      refusal('invalid job spec (spec.timeout: must be longer than 0, and 1 more)', [
        { path: 'spec.timeout', message: 'must be longer than 0' },
        { path: '', message: 'too big' },
      ]),
    );
    expect(two.stderr).toBe('error: invalid job spec\n  spec.timeout: must be longer than 0\n  (document): too big\n');
    // A message that does not end in its first issue is the hub's own words: kept whole.
    const own = await cli(
      ['run', 'diag', '--image', 'busybox:1.36', '--all'],
      refusal('invalid job spec (see the docs)', [{ path: 'spec', message: 'x' }]),
    );
    expect(own.stderr).toBe('error: invalid job spec (see the docs)\n  spec: x\n');
  });
});

describe('flotilla run -w and describe job -w', () => {
  it('prints the counts as they change and exits 0 once every device succeeded', async () => {
    const states = [
      detail('active', { queued: 2 }),
      detail('active', { queued: 2 }, { executions: [] }),
      detail('active', { running: 1, succeeded: 1 }),
      detail('complete', { succeeded: 2 }),
    ];
    const result = await cli(['run', 'diag', '--image', 'busybox:1.36', '--all', '-w'], (_path, method, call) =>
      method === 'POST' ? detail('active', { queued: 2 }) : states[Math.min(call - 1, states.length - 1)],
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    // The same counts twice are printed once.
    expect(result.stdout).toBe(
      [
        'job/diag created: 2 devices',
        'job/diag active: 2 queued',
        'job/diag active: 1 running, 1 succeeded',
        'job/diag complete: 2 succeeded',
        '',
      ].join('\n'),
    );
    expect(result.requests.slice(1).every((r) => r.method === 'GET' && r.path === '/api/v1/jobs/diag')).toBe(true);
  });

  it('exits 1 when a device failed, naming it and where to read why', async () => {
    const failed = detail(
      'complete',
      { succeeded: 1, failed: 1 },
      {
        executions: [
          {
            device: 'gw-2',
            state: 'failed',
            attempt: 1,
            updatedAt: CREATED_AT,
            startedAt: CREATED_AT,
            exitCode: 3,
            message: 'diag exited 3',
          },
        ],
      },
    );
    const result = await cli(['run', 'diag', '--image', 'busybox:1.36', '--all', '-w'], (_path, method) =>
      method === 'POST' ? detail('active', { queued: 2 }) : failed,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('job/diag created: 2 devices\njob/diag complete: 1 succeeded, 1 failed\n');
    expect(result.stderr).toBe(
      [
        'error: job/diag is complete, but 1 of 2 devices did not succeed: 1 succeeded, 1 failed',
        '  gw-2 (failed, attempt 1): diag exited 3',
        "  see each device's state and output: flotilla describe job diag",
        "  one device's whole output: flotilla logs gw-2 --job diag",
        '',
      ].join('\n'),
    );
  });

  it('ends with exit 3 when the job is deleted, and 1 when another of its name replaced it', async () => {
    const deleted = await cli(['run', 'diag', '--image', 'busybox:1.36', '--all', '-w'], (_path, method) =>
      method === 'POST' ? detail('active', { queued: 2 }) : notFound('job "diag" not found'),
    );
    expect(deleted.code).toBe(EXIT_NOT_FOUND);
    expect(deleted.stderr).toBe('error: job/diag was deleted while it was watched\n');
    const replaced = await cli(['describe', 'job', 'diag', '-w'], (_path, _method, call) =>
      call === 1 ? detail('active', { queued: 1 }) : detail('active', { queued: 1 }, { createdAt: '2026-06-01T12:05:00.000Z' }),
    );
    expect(replaced.code).toBe(1);
    expect(replaced.stderr).toContain('error: job/diag was deleted and made again (at 2026-06-01T12:05:00.000Z) while it was watched');
  });

  it('describe job -w prints the whole view until the job ends, and exits by its outcome', async () => {
    const result = await cli(['describe', 'job', 'diag', '-w'], () => detail('canceled', { canceled: 2 }, { reason: 'canceled by admin' }));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^Name: +diag\nPhase: +canceled: canceled by admin\n/);
    expect(result.stderr).toBe(
      "error: job/diag was canceled (canceled by admin): 2 canceled\n  see each device's state and output: flotilla describe job diag\n",
    );
  });

  it('after a cancel, goes on while devices stop their running executions, then exits by the outcome', async () => {
    const running = { device: 'gw-1', state: 'running' as const, attempt: 1, updatedAt: CREATED_AT, startedAt: CREATED_AT };
    const states = [
      detail('active', { running: 2 }, { executions: [running, { ...running, device: 'gw-2' }] }),
      detail('canceled', { running: 2 }, { executions: [running, { ...running, device: 'gw-2' }] }),
      detail('canceled', { running: 1, canceled: 1 }, { executions: [running, { ...running, device: 'gw-2', state: 'canceled' }] }),
      detail('canceled', { canceled: 2 }, { reason: 'canceled by admin' }),
    ];
    const result = await cli(['run', 'diag', '--image', 'busybox:1.36', '--all', '-w'], (_path, method, call) =>
      method === 'POST' ? detail('active', { queued: 2 }) : states[Math.min(call - 2, states.length - 1)],
    );
    expect(result.stdout).toBe(
      [
        'job/diag created: 2 devices',
        'job/diag active: 2 running',
        'job/diag canceled: 2 running',
        '2 still stopping on their devices',
        'job/diag canceled: 1 running, 1 canceled',
        '1 still stopping on its device',
        'job/diag canceled: 2 canceled',
        '',
      ].join('\n'),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: job\/diag was canceled \(canceled by admin\): 2 canceled\n/);
    expect(result.requests).toHaveLength(5);
  });

  it('stops waiting for a device that never confirms the stop, naming it; the note goes to stderr with -o json', async () => {
    const stuck = detail(
      'aborted',
      { running: 1, failed: 1 },
      {
        reason: '1 device failed',
        executions: [
          {
            device: 'gw-1',
            state: 'failed',
            attempt: 1,
            updatedAt: CREATED_AT,
            startedAt: CREATED_AT,
            exitCode: 1,
            message: 'diag exited 1',
          },
          { device: 'gw-9', state: 'running', attempt: 1, updatedAt: CREATED_AT, startedAt: CREATED_AT },
        ],
      },
    );
    let stdout = '';
    let stderr = '';
    const io = {
      stdout: (text: string) => {
        stdout += text;
      },
      stderr: (text: string) => {
        stderr += text;
      },
    } as CliIO;
    let asked = 0;
    const client = new HubClient('http://127.0.0.1:7070', {
      fetch: async () => {
        asked++;
        return new Response(JSON.stringify(stuck), { status: 200, headers: { 'content-type': 'application/json' } });
      },
    });
    const end = await watchJob(io, client, 'diag', { format: 'json', show: () => '', intervalMs: 5, stopWaitMs: 60 });
    expect(asked).toBeGreaterThan(1);
    expect(end.unconfirmed).toEqual(['gw-9']);
    expect(
      stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line).phase),
    ).toEqual(['aborted']);
    expect(stderr).toBe('1 still stopping on its device\n');
    let error: unknown;
    try {
      exitByOutcome(end);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).lines).toContainEqual(
      expect.stringMatching(/^gw-9 had not confirmed the stop after \d+s: still running there as far as the hub knows/),
    );
    expect((error as CliError).exitCode).toBe(1);
  });

  it('with -o json prints the job as made, then one JSON line per change', async () => {
    const end = detail('complete', { succeeded: 1 });
    const result = await cli(['-o', 'json', 'run', 'diag', '--image', 'busybox:1.36', '--all', '-w'], (_path, method) =>
      method === 'POST' ? detail('active', { queued: 1 }) : end,
    );
    expect(result.code).toBe(EXIT_OK);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.map((line) => JSON.parse(line).phase)).toEqual(['active', 'complete']);
  });
});

describe('get jobs, describe job, job cancel|delete, delete job', () => {
  it('lists jobs, says when there are none, and gets one by name', async () => {
    const empty = await cli(['get', 'jobs'], () => ({ items: [] }));
    expect(empty).toMatchObject({ code: EXIT_OK, stdout: '', stderr: 'No jobs found.\n' });
    const list = await cli(['get', 'jobs'], () => ({ items: [detail('complete', { succeeded: 3 })] }));
    expect(list.requests).toEqual([{ method: 'GET', path: '/api/v1/jobs', query: '' }]);
    expect(list.stdout.split('\n')[0]).toMatch(
      /^NAME +PHASE +COMPLETIONS +QUEUED +RUNNING +FAILED +TIMED-OUT +CANCELED +EXPIRED +AGE +DEADLINE$/,
    );
    expect(list.stdout.split('\n')[1]).toMatch(/^diag +complete +3\/3 +0 +0 +0 +0 +0 +0 +\S+ +-$/);
    const one = await cli(['get', 'job', 'diag'], () => detail('active', { running: 1 }));
    expect(one.requests).toEqual([{ method: 'GET', path: '/api/v1/jobs/diag', query: '' }]);
    expect(one.stdout).toMatch(/^diag +active +0\/1 +0 +1 /m);
    const missing = await cli(['describe', 'job', 'nosuch'], () => notFound('job "nosuch" not found'));
    expect(missing).toMatchObject({ code: EXIT_NOT_FOUND, stderr: 'error: job "nosuch" not found\n' });
  });

  it('get jobs -w prints the header once, then a row for each job that changes, in the first table’s columns', async () => {
    const other = detail('complete', { succeeded: 1 }, { name: 'rotate-certificates' });
    const lists = [
      [detail('active', { queued: 2 }), other],
      [detail('active', { queued: 2 }), other],
      [detail('active', { running: 1, succeeded: 1 }), other],
      [detail('complete', { succeeded: 2 }), other],
    ];
    const result = await cli(['get', 'jobs', '-w'], (_path, _method, call) => {
      // Ctrl-C once the last list was read.
      if (call === lists.length) setImmediate(() => process.emit('SIGINT'));
      return { items: lists[Math.min(call - 1, lists.length - 1)] };
    });
    expect(result.code).toBe(EXIT_OK);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^NAME {18}PHASE +COMPLETIONS/);
    expect(lines[1]).toMatch(/^diag {18}active +0\/2 +2 +0 /);
    expect(lines[2]).toMatch(/^rotate-certificates {3}complete +1\/1 /);
    // The changed rows only, padded as the table was.
    expect(lines[3]).toMatch(/^diag {18}active +1\/2 +0 +1 /);
    expect(lines[4]).toMatch(/^diag {18}complete +2\/2 +0 +0 /);
    expect(lines[4]!.indexOf('2/2')).toBe(lines[0]!.indexOf('COMPLETIONS'));
  });

  it('cancels and deletes through the job verbs and kubectl’s delete', async () => {
    const executions: JobDetail['executions'] = [
      { device: 'gw-1', state: 'succeeded', attempt: 1, updatedAt: CREATED_AT, startedAt: CREATED_AT },
      { device: 'gw-2', state: 'canceled', attempt: 0, updatedAt: CREATED_AT, message: 'canceled by admin' },
      { device: 'gw-3', state: 'running', attempt: 1, updatedAt: CREATED_AT, startedAt: CREATED_AT },
    ];
    const cancel = await cli(['job', 'cancel', 'diag'], () =>
      detail('canceled', { succeeded: 1, canceled: 1, running: 1 }, { executions }),
    );
    expect(cancel.requests).toEqual([{ method: 'POST', path: '/api/v1/jobs/diag/cancel', query: '', body: {} }]);
    expect(cancel.stdout).toBe('job/diag canceled: 1 succeeded; 1 dropped before it started; 1 running is being stopped on its device\n');
    const deletedAnswer = { name: 'diag', deleted: true };
    for (const args of [
      ['job', 'delete', 'diag'],
      ['delete', 'job', 'diag'],
    ]) {
      const deleted = await cli(args, (_path, method) => (method === 'DELETE' ? deletedAnswer : detail('complete', { succeeded: 1 })));
      expect(deleted.requests).toEqual([
        { method: 'GET', path: '/api/v1/jobs/diag', query: '' },
        { method: 'DELETE', path: '/api/v1/jobs/diag', query: '' },
      ]);
      expect(deleted).toMatchObject({ code: EXIT_OK, stdout: 'job/diag deleted\n', stderr: '' });
    }
  });

  it('says a job deleted while active was canceled first, and what that stopped', async () => {
    const active = await cli(['delete', 'job', 'diag'], (_path, method) =>
      method === 'DELETE' ? { name: 'diag', deleted: true } : detail('active', { running: 1, queued: 2, succeeded: 1 }),
    );
    expect(active).toMatchObject({
      code: EXIT_OK,
      stdout: 'job/diag canceled, then deleted: 1 running is being stopped on its device, 2 queued will not start\n',
      stderr: '',
    });
    // -o json prints the hub's answer, which needs no look before.
    const json = await cli(['-o', 'json', 'job', 'delete', 'diag'], () => ({ name: 'diag', deleted: true }));
    expect(json.requests).toEqual([{ method: 'DELETE', path: '/api/v1/jobs/diag', query: '' }]);
    expect(JSON.parse(json.stdout)).toEqual({ name: 'diag', deleted: true });
    const missing = await cli(['job', 'delete', 'nosuch'], () => notFound('job "nosuch" not found'));
    expect(missing).toMatchObject({ code: EXIT_NOT_FOUND, stderr: 'error: job "nosuch" not found\n' });
  });
});

describe('events --job', () => {
  it("asks for one job's events, and refuses an app and a job together", async () => {
    const event = {
      id: 1,
      device: 'gw-1',
      seq: -1,
      ts: '2026-06-01T12:00:00.000Z',
      type: 'job-queued',
      app: 'diag',
      message: 'job diag queued',
    };
    const result = await cli(['events', 'gw-1', '--job', 'diag'], () => ({ events: [event] }));
    expect(result.requests).toEqual([{ method: 'GET', path: '/api/v1/events', query: '?device=gw-1&job=diag' }]);
    expect(result.code).toBe(EXIT_OK);
    expect(result.stdout).toMatch(/^2026-06-01T12:00:00Z +gw-1 +job-queued +diag +job diag queued$/m);
    const both = await cli(['events', '--app', 'web', '--job', 'diag']);
    expect(both).toMatchObject({
      code: EXIT_INVALID_INPUT,
      stderr: "error: give --app web or --job diag, not both: a job's events are not an app's\n",
    });
    expect(both.requests).toEqual([]);
  });
});

describe('logs --job', () => {
  const line = (app: string, job: boolean): LogRecord => ({
    id: 1,
    device: 'gw-1',
    app,
    container: app,
    stream: 'stdout',
    ts: '2026-06-01T12:00:00.000Z',
    line: 'hello',
    ...(job ? { job: true as const } : {}),
  });

  /** The hub's answers: the lines, and the job (or a 404 when `job` is undefined). */
  const hub =
    (lines: LogRecord[], job: JobDetail | undefined): Respond =>
    (path) =>
      path.endsWith('/logs') ? { lines } : (job ?? notFound('job "diag" not found'));

  it("asks for the job's lines and prefixes them as a job's", async () => {
    const result = await cli(['logs', 'gw-1', '--job', 'diag', '--tail', '5'], hub([line('diag', true)], detail('complete', {})));
    expect(result.requests).toEqual([
      { method: 'GET', path: '/api/v1/devices/gw-1/logs', query: '?job=diag&tail=5' },
      { method: 'GET', path: '/api/v1/jobs/diag', query: '' },
    ]);
    expect(result).toMatchObject({ code: EXIT_OK, stdout: 'job/diag/diag | hello\n', stderr: '' });
    const mixed = await cli(['logs', 'gw-1'], () => ({ lines: [line('diag', false), line('diag', true)] }));
    expect(mixed.stdout).toBe('diag/diag     | hello\njob/diag/diag | hello\n');
  });

  it('says the hub has no such job when no line of it is stored, and warns before the lines of a deleted one', async () => {
    const typo = await cli(['logs', 'gw-1', '--job', 'daig'], hub([], undefined));
    expect(typo).toMatchObject({
      code: EXIT_NOT_FOUND,
      stdout: '',
      stderr: 'error: no job daig on the hub\n  the jobs it has: flotilla get jobs\n',
    });
    const deleted = await cli(['logs', 'gw-1', '--job', 'diag'], hub([line('diag', true)], undefined));
    expect(deleted).toMatchObject({
      code: EXIT_OK,
      stdout: 'job/diag/diag | hello\n',
      stderr: 'warning: no job diag on the hub (deleted?): these are the lines stored from when it ran\n',
    });
    // A job the hub has that sent nothing yet is no error.
    const quiet = await cli(['logs', 'gw-1', '--job', 'diag'], hub([], detail('active', { queued: 1 })));
    expect(quiet).toMatchObject({ code: EXIT_OK, stdout: '', stderr: '' });
  });

  it('refuses an app and a job together', async () => {
    const result = await cli(['logs', 'gw-1', 'web', '--job', 'diag']);
    expect(result).toMatchObject({
      code: EXIT_INVALID_INPUT,
      stderr: "error: give an app (web) or --job diag, not both: a job's lines are not an app's\n",
    });
  });
});
