/**
 * The job commands through the real `flotilla` executable against a real `flotilla
 * server` process: run -f and run NAME -- CMD make a job the devices find in their signed
 * desired documents; get jobs and describe job show the counts and each device's row once
 * the devices report; job cancel, job delete and delete job; run -w exits 0 when every
 * device succeeded and 1 when one failed; bad input is refused with every field named
 * and nothing made; logs --job shows only the job's lines. The devices are MQTT.js
 * clients that read their desired document and publish state reports carrying `jobs`,
 * as the device's agent does.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DesiredJob, DesiredState, DeviceEvent, DeviceState, JobDetail, JobExecutionReport, LogBatch } from '../../shared/index.js';
import { http } from '../support/http.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { type HubProcess, type RunResult, runCli, scratchDir, spawnCli, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine); tests make several. */
const SLOW = { timeout: 120_000 };

let hub: HubProcess;
let files: string;

interface SimDevice {
  id: string;
  labels: Record<string, string>;
  client: MqttClient;
  inbox: Inbox;
  /** What the device last reported of each execution, by execution id: every report carries them all. */
  reports: Map<string, JobExecutionReport>;
  revision: number;
  logSeq: number;
}

const devices = new Map<string, SimDevice>();

function flotilla(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return runCli(args, { env: { FLOTILLA_HUB: hub.url, NO_COLOR: '1' }, ...options });
}

/** A device as its agent shows itself: online, with a retained state report; it then reads its desired documents. */
async function connectDevice(id: string, labels: Record<string, string>): Promise<SimDevice> {
  const client = await connectClient(hub.mqttUrl, { clientId: id });
  const inbox = new Inbox(client);
  await client.subscribeAsync(`flotilla/v1/devices/${id}/desired`, { qos: 1 });
  await client.publishAsync(`flotilla/v1/devices/${id}/status`, JSON.stringify({ online: true, at: new Date().toISOString() }), {
    qos: 1,
    retain: true,
  });
  const device: SimDevice = { id, labels, client, inbox, reports: new Map(), revision: 0, logSeq: 0 };
  devices.set(id, device);
  await publishState(device);
  await waitFor(`the hub to know ${id}`, async () => (await http(hub.url, 'GET', `/api/v1/devices/${id}`)).status === 200);
  return device;
}

async function publishState(device: SimDevice): Promise<void> {
  const state: DeviceState = {
    deviceId: device.id,
    observedRevision: device.revision,
    reportedAt: new Date().toISOString(),
    host: { hostname: device.id, os: 'linux', arch: 'amd64', agentVersion: '0.1.0' },
    labels: device.labels,
    apps: [],
    ...(device.reports.size > 0 ? { jobs: [...device.reports.values()] } : {}),
  };
  await device.client.publishAsync(`flotilla/v1/devices/${device.id}/state`, JSON.stringify(state), { qos: 1, retain: true });
}

/** The job as the device's signed desired document names it, once it does (and `where` holds). */
async function desiredJob(device: SimDevice, name: string, where: (job: DesiredJob) => boolean = () => true): Promise<DesiredJob> {
  const doc = await device.inbox.waitFor<DesiredState>(`flotilla/v1/devices/${device.id}/desired`, (d) =>
    (d.jobs ?? []).some((job) => job.name === name && where(job)),
  );
  expect(doc.signature).toBeDefined();
  device.revision = Math.max(device.revision, doc.revision);
  return doc.jobs!.find((job) => job.name === name && where(job))!;
}

/** Reports an execution as the agent would, in the device's state report. */
async function report(device: SimDevice, job: DesiredJob, state: Omit<JobExecutionReport, 'name' | 'execution'>): Promise<void> {
  device.reports.set(job.execution, { name: job.name, execution: job.execution, ...state });
  await publishState(device);
}

async function jobView(name: string): Promise<JobDetail | undefined> {
  const response = await http<JobDetail>(hub.url, 'GET', `/api/v1/jobs/${name}`);
  return response.status === 200 ? response.body : undefined;
}

async function jobSeen(name: string, check: (job: JobDetail) => boolean): Promise<JobDetail> {
  return waitFor(`the hub's view of job ${name}`, async () => {
    const job = await jobView(name);
    return job !== undefined && check(job) ? job : undefined;
  });
}

const since = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();

/** A run that succeeded on a device: started, then ended 0, with output. */
async function succeed(device: SimDevice, job: DesiredJob, output: string[] = ['done']): Promise<void> {
  await report(device, job, { state: 'succeeded', attempt: 1, exitCode: 0, startedAt: since(5), finishedAt: since(1), output });
}

async function fail(device: SimDevice, job: DesiredJob, exitCode: number, output: string[]): Promise<void> {
  await report(device, job, {
    state: 'failed',
    attempt: 1,
    exitCode,
    container: job.containers[0]!.name,
    message: `${job.containers[0]!.name} exited ${exitCode}`,
    startedAt: since(5),
    finishedAt: since(2),
    output,
  });
}

beforeAll(async () => {
  hub = await startHubProcess();
  files = scratchDir('flotilla-jobs-cli-');
  await connectDevice('gw-1', { site: 'lab' });
  await connectDevice('gw-2', { site: 'lab' });
  await connectDevice('gw-3', { site: 'roof' });
}, 60_000);

afterAll(async () => {
  for (const { client } of devices.values()) await closeClient(client);
  await stopAll();
});

function device(id: string): SimDevice {
  return devices.get(id)!;
}

describe('flotilla run, get jobs, describe job', SLOW, () => {
  it('makes a job from a file that the devices get; get and describe show their reports', async () => {
    const file = join(files, 'diag.yaml');
    writeFileSync(
      file,
      [
        'name: diag',
        'scheduling:',
        '  selectors: { site: lab }',
        'spec:',
        '  containers:',
        '    - name: collect',
        '      image: busybox:1.36',
        '      command: [sh, -c, "uname -a; df -h /"]',
        '  timeout: 5m',
        '  retries: { limit: 1, backoff: 30s }',
        '',
      ].join('\n'),
    );
    const made = await flotilla(['run', '-f', file]);
    expect(made).toEqual({ code: 0, stdout: 'job/diag created: 2 devices\nfollow it: flotilla describe job diag -w\n', stderr: '' });

    // Both lab devices find it in their signed desired documents; the roof device does not.
    const [one, two] = [await desiredJob(device('gw-1'), 'diag'), await desiredJob(device('gw-2'), 'diag')];
    expect(one.containers).toEqual(
      [{ name: 'collect', image: 'busybox:1.36', command: ['sh', '-c', 'uname -a; df -h /'] }].map((c) => expect.objectContaining(c)),
    );
    expect(one).toMatchObject({ timeout: '5m', retries: { limit: 1, backoff: '30s' } });
    expect(one.execution).not.toBe('');

    const queued = await flotilla(['get', 'jobs']);
    expect(queued.code).toBe(0);
    expect(queued.stdout.split('\n')[0]).toMatch(
      /^NAME +PHASE +COMPLETIONS +QUEUED +RUNNING +FAILED +TIMED-OUT +CANCELED +EXPIRED +AGE +DEADLINE$/,
    );
    expect(queued.stdout).toMatch(/^diag +active +0\/2 +2 +0 +0 +0 +0 +0 +\d+s +in 7d$/m);

    await report(device('gw-1'), one, { state: 'running', attempt: 1, startedAt: since(3) });
    await fail(device('gw-2'), two, 3, ['Linux gw-2', 'df: /: no space left on device']);
    await jobSeen('diag', (job) => job.counts.running === 1 && job.counts.failed === 1);
    const running = await flotilla(['get', 'jobs', 'diag']);
    expect(running.stdout).toMatch(/^diag +active +0\/2 +0 +1 +1 +0 +0 +0 +\d+s +in 7d$/m);

    await succeed(device('gw-1'), one, ['Linux gw-1']);
    await jobSeen('diag', (job) => job.phase === 'complete');
    const described = await flotilla(['describe', 'job', 'diag']);
    expect(described.stderr).toBe('');
    expect(described.code).toBe(0);
    const text = described.stdout;
    expect(text).toMatch(/^Name: +diag\nPhase: +complete\n/);
    expect(text).toContain('Scheduling:  site=lab\n');
    expect(text).toContain('Timeout:     5m per attempt\n');
    expect(text).toContain('Retries:     up to 1 more attempt when one ends failed or timed-out; first backoff 30s, doubling\n');
    expect(text).toContain('Progress:    [##########] 2/2 finished\n');
    expect(text).toContain('Counts:      1 succeeded, 1 failed\n');
    expect(text).toContain('    Image:    busybox:1.36\n    Command:  sh -c "uname -a; df -h /"\n');
    expect(text).toMatch(/^ {2}DEVICE +STATE +ATTEMPT +EXIT +STARTED +DURATION +MESSAGE$/m);
    expect(text).toMatch(/^ {2}gw-1 +succeeded +1 +0 +\d+s ago +\d+s$/m);
    expect(text).toMatch(/^ {2}gw-2 +failed +1 +3 +\d+s ago +\d+s +collect exited 3$/m);
    expect(text).toContain(
      'Output of failed executions (last lines):\n  gw-2 (failed, exit 3 in collect, attempt 1):\n    Linux gw-2\n    df: /: no space left on device\n',
    );
    // The device's own view lists what it reported of its jobs; the output stays with the job's view.
    const gw2 = await flotilla(['describe', 'device', 'gw-2']);
    expect(gw2.code).toBe(0);
    expect(gw2.stdout).toMatch(/^Jobs:\n {2}JOB +STATE +ATTEMPT +EXIT +MESSAGE\n {2}diag +failed +1 +3 \(collect\) +collect exited 3\n/m);
    const view = await http<{ jobs?: JobExecutionReport[] }>(hub.url, 'GET', '/api/v1/devices/gw-2');
    expect(view.body.jobs).toEqual([expect.objectContaining({ name: 'diag', state: 'failed', exitCode: 3, container: 'collect' })]);
    expect(view.body.jobs?.[0]).not.toHaveProperty('output');

    const complete = await flotilla(['get', 'jobs']);
    expect(complete.stdout).toMatch(/^diag +complete +1\/2 +0 +0 +1 +0 +0 +0 +\d+s +-$/m);

    const json = await flotilla(['get', 'jobs', '-o', 'json']);
    const list = JSON.parse(json.stdout) as { items: JobDetail[] };
    expect(list.items.find((job) => job.name === 'diag')).toMatchObject({
      phase: 'complete',
      counts: { succeeded: 1, failed: 1, total: 2 },
    });
  });

  it('makes a job from NAME --image … -- CMD, cancels it while it runs, then deletes it', async () => {
    const made = await flotilla([
      'run',
      'hello',
      '--image',
      'busybox:1.36',
      '--device',
      'gw-3',
      '--timeout',
      '2m',
      '-e',
      'GREETING=hi there',
      '--',
      'sh',
      '-c',
      'echo "$GREETING"; sleep 600',
    ]);
    expect(made).toEqual({ code: 0, stdout: 'job/hello created: 1 device\nfollow it: flotilla describe job hello -w\n', stderr: '' });
    const job = await desiredJob(device('gw-3'), 'hello');
    expect(job.containers).toEqual([
      expect.objectContaining({
        name: 'hello',
        image: 'busybox:1.36',
        command: ['sh', '-c', 'echo "$GREETING"; sleep 600'],
        env: [{ name: 'GREETING', value: 'hi there' }],
      }),
    ]);
    expect(job.timeout).toBe('2m');
    await report(device('gw-3'), job, { state: 'running', attempt: 1, startedAt: since(1) });
    await jobSeen('hello', (view) => view.counts.running === 1);

    const canceled = await flotilla(['job', 'cancel', 'hello']);
    expect(canceled).toEqual({
      code: 0,
      stdout: 'job/hello canceled: 1 running is being stopped on its device\n',
      stderr: '',
    });
    // The device is told to stop it, and reports it canceled.
    await desiredJob(device('gw-3'), 'hello', (desired) => desired.cancel === true);
    await report(device('gw-3'), job, { state: 'canceled', attempt: 1, startedAt: since(2), finishedAt: since(0) });
    await jobSeen('hello', (view) => view.counts.canceled === 1);
    expect((await flotilla(['get', 'jobs', 'hello'])).stdout).toMatch(/^hello +canceled +0\/1 +0 +0 +0 +0 +1 +0 +\d+s +-$/m);
    // Again: the job stays as it is, and the line says how it stands.
    expect(await flotilla(['job', 'cancel', 'hello'])).toEqual({ code: 0, stdout: 'job/hello canceled: 1 canceled\n', stderr: '' });

    expect(await flotilla(['job', 'delete', 'hello'])).toEqual({ code: 0, stdout: 'job/hello deleted\n', stderr: '' });
    expect(await jobView('hello')).toBeUndefined();
    const gone = await flotilla(['describe', 'job', 'hello']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/^error: .*hello/);
  });

  it('says what a cancel dropped before any device had it, and what a device is told not to start', async () => {
    expect(
      (await flotilla(['run', 'capped', '--image', 'busybox:1.36', '-l', 'site=lab', '--max-concurrent', '1', '--', 'true'])).code,
    ).toBe(0);
    // One lab device is given it; the other waits for the slot, and no document names it.
    const lab = [device('gw-1'), device('gw-2')];
    await waitFor('one lab device to be given the job', () =>
      lab.some((d) =>
        d.inbox
          .on(`flotilla/v1/devices/${d.id}/desired`)
          .some((m) => ((m.json as DesiredState).jobs ?? []).some((j) => j.name === 'capped')),
      ),
    );
    expect(await flotilla(['job', 'cancel', 'capped'])).toEqual({
      code: 0,
      stdout: 'job/capped canceled: 1 dropped before it started; 1 queued is told not to start on its device\n',
      stderr: '',
    });
  });

  it('delete job, kubectl’s way, deletes one too, canceling it first while it runs', async () => {
    expect((await flotilla(['run', 'scratch', '--image', 'busybox:1.36', '--device', 'gw-3', '--', 'true'])).code).toBe(0);
    const job = await desiredJob(device('gw-3'), 'scratch');
    await report(device('gw-3'), job, { state: 'running', attempt: 1, startedAt: since(1) });
    await jobSeen('scratch', (view) => view.counts.running === 1);
    // Still running: the hub cancels it before it forgets it, and the line says so.
    expect(await flotilla(['delete', 'job', 'scratch'])).toEqual({
      code: 0,
      stdout: 'job/scratch canceled, then deleted: 1 running is being stopped on its device\n',
      stderr: '',
    });
    expect(await jobView('scratch')).toBeUndefined();
  });
});

describe('flotilla run -w', SLOW, () => {
  it('exits 0 once every device succeeded, printing the counts as they change', async () => {
    // Spawned rather than run to its end, so the test sees each change printed before making the next.
    const watching = spawnCli('run -w', ['run', 'ok', '--image', 'busybox:1.36', '-l', 'site=lab', '-w', '--', 'true'], {
      FLOTILLA_HUB: hub.url,
    });
    const [one, two] = [await desiredJob(device('gw-1'), 'ok'), await desiredJob(device('gw-2'), 'ok')];
    await waitFor('run -w to print the queued job', () => watching.output.includes('job/ok active: 2 queued\n'));
    await succeed(device('gw-1'), one);
    await waitFor('run -w to print the first success', () => watching.output.includes('job/ok active: 1 queued, 1 succeeded\n'));
    await succeed(device('gw-2'), two);
    expect(await watching.exited).toBe(0);
    // stdout and stderr together: nothing went to stderr.
    expect(watching.output).toBe(
      [
        'job/ok created: 2 devices',
        'job/ok active: 2 queued',
        'job/ok active: 1 queued, 1 succeeded',
        'job/ok complete: 2 succeeded',
        '',
      ].join('\n'),
    );
  });

  it('exits 1 when a device failed, naming it and where to read why', async () => {
    const watching = flotilla(['run', 'bad', '--image', 'busybox:1.36', '-l', 'site=lab', '-w', '--', 'false'], { timeoutMs: 60_000 });
    const [one, two] = [await desiredJob(device('gw-1'), 'bad'), await desiredJob(device('gw-2'), 'bad')];
    await succeed(device('gw-1'), one);
    await fail(device('gw-2'), two, 1, ['nope']);
    const result = await watching;
    expect(result.code).toBe(1);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('job/bad complete: 1 succeeded, 1 failed');
    expect(result.stderr).toBe(
      [
        'error: job/bad is complete, but 1 of 2 devices did not succeed: 1 succeeded, 1 failed',
        '  gw-2 (failed, attempt 1): bad exited 1',
        "  see each device's state and output: flotilla describe job bad",
        "  one device's whole output: flotilla logs gw-2 --job bad",
        '',
      ].join('\n'),
    );
  });
});

describe('flotilla run -w after a cancel', SLOW, () => {
  it('goes on until the devices stopped what ran, saying how many are still stopping, then exits 1', async () => {
    const watching = spawnCli('run -w', ['run', 'halted', '--image', 'busybox:1.36', '-l', 'site=lab', '-w', '--', 'sleep', '600'], {
      FLOTILLA_HUB: hub.url,
    });
    const [one, two] = [await desiredJob(device('gw-1'), 'halted'), await desiredJob(device('gw-2'), 'halted')];
    await report(device('gw-1'), one, { state: 'running', attempt: 1, startedAt: since(1) });
    await report(device('gw-2'), two, { state: 'running', attempt: 1, startedAt: since(1) });
    await waitFor('run -w to print both running', () => watching.output.includes('job/halted active: 2 running\n'));

    expect((await flotilla(['job', 'cancel', 'halted'])).code).toBe(0);
    // The job is canceled at once; its devices are still stopping their containers.
    await waitFor('run -w to say both are stopping', () => watching.output.includes('2 still stopping on their devices\n'));
    await desiredJob(device('gw-1'), 'halted', (desired) => desired.cancel === true);
    await report(device('gw-1'), one, { state: 'canceled', attempt: 1, startedAt: since(2), finishedAt: since(0) });
    await waitFor('run -w to say one is stopping', () => watching.output.includes('1 still stopping on its device\n'));
    expect(watching.running).toBe(true);
    await report(device('gw-2'), two, { state: 'canceled', attempt: 1, startedAt: since(2), finishedAt: since(0) });
    expect(await watching.exited).toBe(1);
    // Whether the watch saw the devices' executions queued before they reported running depends
    // on how soon after delivery its poll came: that line may or may not be there.
    const lines = watching.output
      .trimEnd()
      .split('\n')
      .filter((line) => line !== 'job/halted active: 2 queued');
    expect(lines.slice(0, 6)).toEqual([
      'job/halted created: 2 devices',
      'job/halted active: 2 running',
      'job/halted canceled: 2 running',
      '2 still stopping on their devices',
      'job/halted canceled: 1 running, 1 canceled',
      '1 still stopping on its device',
    ]);
    expect(lines.slice(6, 8)).toEqual([
      'job/halted canceled: 2 canceled',
      expect.stringMatching(/^error: job\/halted was canceled \(canceled by .+\): 2 canceled$/),
    ]);
  });
});

describe('get jobs -w and describe job -w', SLOW, () => {
  it('print on every change: get a row under its one header until Ctrl-C, describe the job until it ends, exiting by how it ended', async () => {
    expect((await flotilla(['run', 'watched', '--image', 'busybox:1.36', '--device', 'gw-3', '--', 'true'])).code).toBe(0);
    const job = await desiredJob(device('gw-3'), 'watched');
    const env = { FLOTILLA_HUB: hub.url, NO_COLOR: '1' };
    const table = spawnCli('get jobs -w', ['get', 'jobs', 'watched', '-w'], env);
    const described = spawnCli('describe job -w', ['describe', 'job', 'watched', '-w'], env);
    const row = (phase: string, cells: string) => new RegExp(`^watched +${phase} +${cells} +\\d+s +\\S+`, 'm');
    await waitFor('get -w to show it queued', () => row('active', '0/1 +1 +0 +0 +0 +0 +0').test(table.output));
    await waitFor('describe -w to show it queued', () => described.output.includes('Counts:      1 queued\n'));

    await report(device('gw-3'), job, { state: 'running', attempt: 1, startedAt: since(1) });
    await waitFor('get -w to show it running', () => row('active', '0/1 +0 +1 +0 +0 +0 +0').test(table.output));
    await waitFor('describe -w to show it running', () => described.output.includes('Counts:      1 running\n'));

    await succeed(device('gw-3'), job);
    expect(await described.exited).toBe(0);
    expect(described.output).toContain('Phase:       complete\n');
    await waitFor('get -w to show it complete', () => row('complete', '1/1 +0 +0 +0 +0 +0 +0').test(table.output));
    expect(table.running).toBe(true);
    table.child.kill('SIGINT');
    expect(await table.exited).toBe(0);
    // One header, as kubectl get -w prints, then a row per change.
    expect(table.output.match(/^NAME +PHASE/gm)).toHaveLength(1);
    expect(table.output.trimEnd().split('\n')).toHaveLength(4);
  });
});

describe('bad input', SLOW, () => {
  it('refuses a job file without a target, with a negative timeout and an unknown field: one error naming each, nothing made, exit 2', async () => {
    const bad = ['name: broken', 'spec:', '  containers: [{ name: c, image: busybox:1.36 }]', '  timeout: -5s', '  retry: 3', ''].join(
      '\n',
    );
    const result = await flotilla(['run', '-f', '-'], { input: bad });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('error: <stdin>: invalid job spec');
    expect(lines.slice(1).sort()).toEqual([
      expect.stringMatching(/^ {2}scheduling: is required: .*scheduling\.selectors.* or scheduling\.devices/),
      '  spec.retry: is not a known field',
      expect.stringMatching(/^ {2}spec\.timeout: must match pattern/),
    ]);
    expect(await jobView('broken')).toBeUndefined();
  });

  it('refuses flags without a target or with a negative timeout, and passes on the hub’s refusal of a selection that finds no device', async () => {
    expect(await flotilla(['run', 'broken', '--image', 'busybox:1.36', '--', 'true'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'error: run needs the devices to run the job on: --selector KEY=VALUE, --device ID or --all\n',
    });
    const negative = await flotilla(['run', 'broken', '--image', 'busybox:1.36', '--all', '--timeout', '-5s']);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain("error: option '--timeout <duration>' argument '-5s' is invalid");
    const nowhere = await flotilla(['run', 'broken', '--image', 'busybox:1.36', '--selector', 'site=nowhere']);
    expect(nowhere.code).toBe(2);
    // The hub's reason once, under its message.
    expect(nowhere.stderr).toMatch(/^error: invalid job spec\n {2}scheduling: selects no device: [^\n]+\n$/);
    const nosuch = await flotilla(['run', 'broken', '--image', 'busybox:1.36', '--device', 'nosuch']);
    expect(nosuch.code).toBe(2);
    expect(nosuch.stderr).toMatch(/^error: invalid job spec\n {2}scheduling\.devices: [^\n]*nosuch[^\n]*\n$/);
    expect(nosuch.stderr.match(/nosuch/g)).toHaveLength(1);
    expect(await jobView('broken')).toBeUndefined();
    const list = await http<{ items: JobDetail[] }>(hub.url, 'GET', '/api/v1/jobs');
    expect(list.body.items.map((job) => job.name)).not.toContain('broken');
  });
});

describe('flotilla events --job', SLOW, () => {
  it("shows one job's events on a device, and --app of the same name none of them", async () => {
    const gw1 = device('gw-1');
    // An app named like the job: its event is the app's.
    const appEvent: DeviceEvent = { seq: 1, ts: since(1), type: 'started', app: 'diag', container: 'main', message: 'started main' };
    await gw1.client.publishAsync('flotilla/v1/devices/gw-1/events', JSON.stringify(appEvent), { qos: 1 });
    await waitFor('the app event stored', async () => {
      const response = await http<{ events: unknown[] }>(hub.url, 'GET', '/api/v1/events?device=gw-1&app=diag');
      return response.body.events.length === 1;
    });
    const job = await flotilla(['events', 'gw-1', '--job', 'diag']);
    expect(job.code).toBe(0);
    const rows = job.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^TIME +DEVICE +TYPE +APP +MESSAGE$/);
    // The hub's own event when the job was made, for this device.
    expect(rows.slice(1)).toEqual([expect.stringMatching(/^\S+Z +gw-1 +job-queued +diag +job diag queued /)]);
    const app = await flotilla(['events', 'gw-1', '--app', 'diag']);
    expect(app.stdout.trimEnd().split('\n').slice(1)).toEqual([expect.stringMatching(/^\S+Z +gw-1 +started +diag\/main +started main$/)]);
  });
});

describe('flotilla logs --job', SLOW, () => {
  it("shows the job's lines only, not an app's of the same name", async () => {
    const gw1 = device('gw-1');
    const ts = since(1);
    const batch: LogBatch = {
      seq: ++gw1.logSeq,
      lines: [
        { app: 'diag', container: 'main', stream: 'stdout', ts, line: 'an app called diag' },
        { app: 'diag', container: 'collect', stream: 'stdout', ts, line: 'Linux gw-1', job: true },
        { app: 'diag', container: 'collect', stream: 'stderr', ts, line: 'df: warning', job: true },
      ],
    };
    await gw1.client.publishAsync('flotilla/v1/devices/gw-1/logs', JSON.stringify(batch), { qos: 1 });
    await waitFor('the log lines stored', async () => {
      const response = await http<{ lines: unknown[] }>(hub.url, 'GET', '/api/v1/devices/gw-1/logs');
      return response.body.lines.length >= 3;
    });
    expect(await flotilla(['logs', 'gw-1', '--job', 'diag'])).toEqual({
      code: 0,
      stdout: 'job/diag/collect | Linux gw-1\njob/diag/collect | [stderr] df: warning\n',
      stderr: '',
    });
    expect((await flotilla(['logs', 'gw-1', 'diag'])).stdout).toBe('diag/main | an app called diag\n');
  });

  it('says the hub has no such job when no line of it is stored, and warns before the stored lines of a job it no longer has', async () => {
    expect(await flotilla(['logs', 'gw-1', '--job', 'nosuch'])).toEqual({
      code: 3,
      stdout: '',
      stderr: 'error: no job nosuch on the hub\n  the jobs it has: flotilla get jobs\n',
    });
    const gw1 = device('gw-1');
    const line = {
      app: 'gone',
      container: 'gone',
      stream: 'stdout' as const,
      ts: since(1),
      line: 'before it was deleted',
      job: true as const,
    };
    await gw1.client.publishAsync('flotilla/v1/devices/gw-1/logs', JSON.stringify({ seq: ++gw1.logSeq, lines: [line] }), { qos: 1 });
    await waitFor('the line stored', async () => {
      const response = await http<{ lines: unknown[] }>(hub.url, 'GET', '/api/v1/devices/gw-1/logs?job=gone');
      return response.body.lines.length === 1;
    });
    expect(await flotilla(['logs', 'gw-1', '--job', 'gone'])).toEqual({
      code: 0,
      stdout: 'job/gone/gone | before it was deleted\n',
      stderr: 'warning: no job gone on the hub (deleted?): these are the lines stored from when it ran\n',
    });
  });

  it("follows the job's lines with -f, and none of the app's", async () => {
    const gw1 = device('gw-1');
    const follower = spawnCli('logs -f', ['logs', 'gw-1', '--job', 'diag', '-f'], { FLOTILLA_HUB: hub.url, NO_COLOR: '1' });
    await waitFor('the backlog printed', () => follower.output.includes('job/diag/collect | [stderr] df: warning\n'));
    const ts = since(0);
    for (const line of [
      { app: 'diag', container: 'main', stream: 'stdout' as const, ts, line: 'the app again' },
      { app: 'diag', container: 'collect', stream: 'stdout' as const, ts, line: 'collected', job: true as const },
    ]) {
      const batch: LogBatch = { seq: ++gw1.logSeq, lines: [line] };
      await gw1.client.publishAsync('flotilla/v1/devices/gw-1/logs', JSON.stringify(batch), { qos: 1 });
    }
    // The app's line was stored first: had the follow let it through, it would be there by now.
    await waitFor('the new job line followed', () => follower.output.includes('job/diag/collect | collected\n'));
    await follower.stop();
    expect(await follower.exited).toBe(0);
    expect(follower.output).toBe('job/diag/collect | Linux gw-1\njob/diag/collect | [stderr] df: warning\njob/diag/collect | collected\n');
  });
});
