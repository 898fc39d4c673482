/**
 * Jobs end to end: a real hub process, three real agents on the Docker Engine
 * (one engine, each agent with its own data dir and container name prefix),
 * jobs made through the CLI (`flotilla run`) and the HTTP API. What a user
 * observes: the executions `flotilla describe job` reads (jobs.get), the job's
 * containers as Docker shows them (`docker ps` by label, and Docker's event
 * log, which still has a container the agent removed once its execution was
 * over), and `flotilla logs DEVICE --job NAME`.
 *
 * - a device offline when the job is made runs it once its agent is back (its
 *   execution stays queued meanwhile), the others at once;
 * - a failing job retries, then fails with its exit code and output;
 * - a job past its timeout is killed and `timed-out`;
 * - cancel stops a running execution;
 * - an agent killed with SIGKILL mid-job, started again, reports the job it
 *   left running as it ended, and never runs it a second time;
 * - `abortAfterFailures` cancels the rest, which never start anywhere;
 * - a job's window makes it wait for the device's clock;
 * - the job's lines reach `flotilla logs --job`; a bad spec makes nothing.
 *
 * One hub and the three agents serve every case; the jobs are short and the
 * timeouts and backoffs a second or a few.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { JobSpec } from '../../shared/index.js';
import {
  type AgentProcess,
  type HubProcess,
  runCli,
  scratchDir,
  startAgentProcess,
  startHubProcess,
  stopAll,
} from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry } from './support/images.js';
import { executionOf, JobsApi, jobContainerEvents, jobContainers, jobContainersCreated, seen, statesOf } from './support/jobs.js';
import { describeDevice } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const selectors = { fleet: `e2e-jobs-${suffix}` };
const [first, second, late] = ['a', 'b', 'c'].map((x) => `e2e-job-${suffix}-${x}`) as [string, string, string];
const devices = [first, second, late];

/** Ends at once on `docker stop`'s SIGTERM, as a well-behaved job does (a shell as PID 1 ignores it otherwise). */
const SLEEPS_UNTIL_STOPPED = ["trap 'exit 143' TERM", 'sleep 600 & wait'].join('\n');

describeDocker('jobs on real agents and the Docker Engine', () => {
  let hub: HubProcess;
  let image: string;
  const agents = new Map<string, AgentProcess>();
  const dir = scratchDir('flotilla-e2e-jobs-');
  const jobs = new JobsApi(() => hub);
  const cli = (...args: string[]) => runCli(['--hub', hub.url, ...args]);

  /** A one-container job on `target`, the container running `script` under sh. */
  function job(name: string, target: JobSpec['scheduling'], script: string, spec: Partial<JobSpec['spec']> = {}): JobSpec {
    return { name, scheduling: target, spec: { containers: [{ name: 'task', image, command: ['sh', '-c', script] }], ...spec } };
  }

  /** Log lines reach the hub half a second after they are written, not at the default 10 s batch window. */
  function startAgent(id: string): AgentProcess {
    const agent = startAgentProcess(hub, id, selectors, { namePrefix: `${id}.`, extraArgs: ['--log-batch-window', '500ms'] });
    agents.set(id, agent);
    return agent;
  }

  const agent = (id: string) => agents.get(id)!;
  const online = (id: string, timeoutMs = 30_000) =>
    waitFor(`${id} online`, async () => (await describeDevice(hub, id)).online, { timeoutMs });

  beforeAll(async () => {
    const images = await ensureTestImages();
    // A tag of this file's own, pulled before any agent looks for it. An agent
    // removes the images it pulled once nothing it runs needs them; here three
    // agents share one engine, and one would remove the image of a job another
    // is about to create, which no device with an engine of its own sees.
    image = await retagInRegistry(images.v1, `jobs-${suffix}`);
    await docker('pull', '-q', image);
    hub = await startHubProcess();
    for (const id of devices) startAgent(id);
    for (const id of devices) await online(id);
  });

  afterAll(async () => {
    await stopAll();
    for (const id of devices) await removeContainersAndVolumes(`flotilla.device=${id}`);
    if (image) await docker('rmi', image).catch(() => undefined);
  });

  it('runs a job on three devices, the one offline when it was made once its agent is back', async () => {
    const name = `fanout-${suffix}`;
    await agent(late).proc.stop();
    await waitFor(`${late} offline`, async () => !(await describeDevice(hub, late)).online);

    const since = Date.now();
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify(job(name, { selectors }, 'echo "collected on $(hostname)"; echo "report done"')));
    const made = await cli('run', '-f', file);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toContain(`job/${name} created: 3 devices`);

    const partial = await jobs.until(name, 'the two online devices to succeed', (j) => {
      const states = statesOf(j);
      return states[first] === 'succeeded' && states[second] === 'succeeded';
    });
    // The offline device's execution waits for it, untouched: nothing ran on its behalf.
    expect(partial.phase, seen(partial)).toBe('active');
    expect(executionOf(partial, late), seen(partial)).toMatchObject({ state: 'queued', attempt: 0 });
    expect(await jobContainersCreated(name, since, late)).toEqual([]);
    for (const id of [first, second]) {
      expect(executionOf(partial, id), seen(partial)).toMatchObject({ attempt: 1, exitCode: 0 });
      expect(executionOf(partial, id).output).toContain('report done');
    }

    // The device comes back as it was: the same agent on the same data dir.
    await agent(late).restart();
    const done = await jobs.settled(name, 60_000);
    expect(done.phase, seen(done)).toBe('complete');
    expect(statesOf(done), seen(done)).toEqual({ [first]: 'succeeded', [second]: 'succeeded', [late]: 'succeeded' });
    expect(executionOf(done, late), seen(done)).toMatchObject({ attempt: 1, exitCode: 0 });
    expect(executionOf(done, late).output).toContain('report done');
    expect(done.counts).toMatchObject({ succeeded: 3, total: 3 });
    // One container per device, each its own device's.
    for (const id of devices) expect(await jobContainersCreated(name, since, id)).toHaveLength(1);
  });

  it('retries a failing job once after its backoff, then reports it failed with its exit code and output', async () => {
    const name = `failing-${suffix}`;
    const since = Date.now();
    await jobs.create(
      job(name, { devices: [first] }, 'echo "checking the peripheral"; echo "no answer on /dev/ttyUSB0" >&2; exit 3', {
        retries: { limit: 1, backoff: '1s' },
      }),
    );
    const done = await jobs.settled(name);
    expect(done.phase, seen(done)).toBe('complete');
    const execution = executionOf(done, first);
    expect(execution).toMatchObject({ state: 'failed', attempt: 2, exitCode: 3, container: 'task' });
    expect(execution.output).toEqual(expect.arrayContaining(['checking the peripheral', 'no answer on /dev/ttyUSB0']));
    // Two attempts, each in a container of its own, each ending with exit code 3.
    const events = await jobContainerEvents(name, since, first);
    expect(events.filter((e) => e.action === 'create')).toHaveLength(2);
    expect(events.filter((e) => e.action === 'die').map((e) => e.attributes.exitCode)).toEqual(['3', '3']);
  });

  it('kills a job past its timeout and reports it timed-out', async () => {
    const name = `overdue-${suffix}`;
    const since = Date.now();
    await jobs.create({
      name,
      scheduling: { devices: [first] },
      spec: { containers: [{ name: 'task', image, command: ['sleep', '600'] }], timeout: '3s' },
    });
    const done = await jobs.settled(name);
    expect(done.phase, seen(done)).toBe('complete');
    expect(executionOf(done, first), seen(done)).toMatchObject({ state: 'timed-out', attempt: 1 });
    const events = await jobContainerEvents(name, since, first);
    expect(events.filter((e) => e.action === 'create')).toHaveLength(1);
    // Its container was ended (`sleep` ignores SIGTERM as PID 1: only a kill ends it), and none of the job's runs.
    expect(events.filter((e) => e.action === 'die')).toHaveLength(1);
    expect((await jobContainers(name)).filter((c) => c.state === 'running')).toEqual([]);
  });

  it('cancel stops a running execution: its container ends, the execution and the job are canceled', async () => {
    const name = `canceled-${suffix}`;
    const since = Date.now();
    await jobs.create(job(name, { devices: [second] }, SLEEPS_UNTIL_STOPPED));
    await waitFor(
      'the job container running',
      async () => (await jobContainers(name)).some((c) => c.device === second && c.state === 'running'),
      { timeoutMs: 30_000 },
    );
    await jobs.until(name, 'the device to report it running', (j) => executionOf(j, second).state === 'running');

    const canceled = await cli('job', 'cancel', name);
    expect(canceled.stderr).toBe('');
    expect(canceled.code).toBe(0);
    const done = await jobs.until(name, 'the device to report it canceled', (j) => executionOf(j, second).state === 'canceled');
    expect(done.phase, seen(done)).toBe('canceled');
    expect(done.reason).toMatch(/cancel/);
    expect((await jobContainers(name)).filter((c) => c.state === 'running')).toEqual([]);
    const events = await jobContainerEvents(name, since, second);
    expect(events.filter((e) => e.action === 'create')).toHaveLength(1);
    expect(events.filter((e) => e.action === 'die')).toHaveLength(1);
  });

  it('an agent killed mid-job and started again reports how the job ended, and never runs it twice', async () => {
    const name = `survivor-${suffix}`;
    const since = Date.now();
    await jobs.create(job(name, { devices: [first] }, 'echo "migration started"; sleep 6; echo "migration finished"'));
    const [row] = await waitFor(
      'the job container running',
      async () => {
        const rows = (await jobContainers(name)).filter((c) => c.state === 'running');
        return rows.length === 1 && rows;
      },
      { timeoutMs: 30_000 },
    );

    const killed = agent(first);
    await killed.proc.stop(true);
    expect(killed.proc.child.signalCode).toBe('SIGKILL');
    // The job outlives its agent: Docker keeps running it.
    expect((await jobContainers(name)).find((c) => c.id === row!.id)?.state).toBe('running');

    await killed.restart();
    const done = await jobs.settled(name, 60_000);
    expect(done.phase, seen(done)).toBe('complete');
    const execution = executionOf(done, first);
    expect(execution).toMatchObject({ state: 'succeeded', attempt: 1, exitCode: 0 });
    expect(execution.output).toEqual(['migration started', 'migration finished']);
    // The one container Docker ever made for it, started once.
    const events = await jobContainerEvents(name, since, first);
    expect(events.filter((e) => e.action === 'create').map((e) => e.id)).toEqual([row!.id]);
    expect(events.filter((e) => e.action === 'start')).toHaveLength(1);
    await online(first);
  });

  it('abortAfterFailures 1 cancels the rest after the first failure, and they never start anywhere', async () => {
    const name = `aborted-${suffix}`;
    const since = Date.now();
    await jobs.create(
      job(name, { selectors }, 'echo "firmware image rejected" >&2; exit 1', { rollout: { maxConcurrent: 1, abortAfterFailures: 1 } }),
    );
    const done = await jobs.settled(name, 60_000);
    expect(done.phase, seen(done)).toBe('aborted');
    expect(done.counts, seen(done)).toMatchObject({ failed: 1, canceled: 2, total: 3 });
    const failed = done.executions.find((e) => e.state === 'failed')!;
    expect(failed).toMatchObject({ attempt: 1, exitCode: 1 });
    // Why it stopped, naming the device that failed.
    expect(done.reason, seen(done)).toMatch(/fail/);
    expect(done.reason).toContain(failed.device);
    for (const execution of done.executions.filter((e) => e.state === 'canceled')) expect(execution.attempt).toBe(0);

    // Every device has taken the desired state that followed the abort: had one been sent the job, it would show now.
    await waitFor('every device in sync', async () => {
      for (const id of devices) {
        const view = await describeDevice(hub, id);
        if (view.observedRevision !== view.desiredRevision) return false;
      }
      return true;
    });
    const created = await jobContainersCreated(name, since);
    expect(created.map((e) => e.attributes['flotilla.device'])).toEqual([failed.device]);
  });

  it('waits for its window on the device clock, then runs', async () => {
    const name = `windowed-${suffix}`;
    // Whole seconds, as a window's HH:MM:SS says them.
    const opensAt = Math.ceil((Date.now() + 8_000) / 1000) * 1000;
    const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);
    const since = Date.now();
    await jobs.create(
      job(name, { devices: [second] }, 'echo "rotated the certificate"', {
        window: { from: clock(opensAt), to: clock(opensAt + 3_600_000), timezone: 'UTC' },
      }),
    );
    const waiting = await jobs.until(name, 'the device to say it waits for the window', (j) => {
      const e = executionOf(j, second);
      return e.state === 'queued' && /window/.test(e.message ?? '');
    });
    expect(executionOf(waiting, second).attempt).toBe(0);
    expect(await jobContainersCreated(name, since)).toEqual([]);

    const done = await jobs.settled(name);
    expect(statesOf(done), seen(done)).toEqual({ [second]: 'succeeded' });
    const started = (await jobContainerEvents(name, since, second)).filter((e) => e.action === 'start');
    expect(started).toHaveLength(1);
    expect(started[0]!.at).toBeGreaterThanOrEqual(opensAt);
    expect(Date.parse(executionOf(done, second).startedAt!)).toBeGreaterThanOrEqual(opensAt);
  });

  it('flotilla run NAME -w -- CMD waits for the job, and flotilla logs DEVICE --job NAME shows its lines', async () => {
    const name = `logged-${suffix}`;
    const run = await cli(
      'run',
      name,
      '--device',
      second,
      '--image',
      image,
      '-w',
      '--',
      'sh',
      '-c',
      // Apart in time: Docker orders the two streams' lines by when it read them.
      'echo "line one"; sleep 0.2; echo "line two" >&2',
    );
    expect(run.code).toBe(0);
    expect(statesOf(await jobs.get(name))).toEqual({ [second]: 'succeeded' });

    const shown = await waitFor('flotilla logs --job to show both lines', async () => {
      const out = await cli('logs', second, '--job', name);
      return out.code === 0 && out.stdout.includes('line two') && out.stdout;
    });
    const lines = shown.split('\n').filter((l) => l.includes('line '));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/line one$/);
    expect(lines[1]).toMatch(/\[stderr\].*line two$/);
    // Asked for as an app, the name matches no job's lines.
    expect((await cli('logs', second, name)).stdout).not.toContain('line one');
  });

  it('refuses a bad spec through the CLI with one error naming each field, and makes nothing', async () => {
    const name = `bad-${suffix}`;
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({ name, spec: { containers: [{ name: 'task', image, command: ['true'] }], timeout: '-5s', retry: { limit: 1 } } }),
    );
    const refused = await cli('run', '-f', file);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/scheduling/);
    expect(refused.stderr).toMatch(/spec\.timeout/);
    expect(refused.stderr).toMatch(/retry/);
    const listed = await cli('get', 'jobs', '-o', 'json');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { items: { name: string }[] }).items.map((j) => j.name)).not.toContain(name);
  });
});
