/**
 * The job runner (agent/jobs/) on a real Docker Engine, with images pulled
 * from the loopback registry: what `docker ps -a` and `docker inspect` show
 * of a job's containers, what the state report says of each execution, and
 * the events. The runner looks again on the engine's events, as in the agent.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import type { JobEvent } from '../../agent/jobs/events.js';
import { JobStore } from '../../agent/jobs/job-store.js';
import { JobRunner, type JobRunnerOptions, jobRuntimeOf } from '../../agent/jobs/runner.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { LogCollector, type LogSink } from '../../agent/telemetry/logs/log-collector.js';
import {
  type DesiredJob,
  FINAL_JOB_EXECUTION_STATES,
  type JobExecutionReport,
  type LogBatch,
  LogBatch as LogBatchSchema,
  type LogLine,
  validate,
} from '../../shared/index.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from '../e2e/support/docker-cli.js';
import { describeDocker, TEST_REGISTRY } from '../e2e/support/engine.js';
import { ensureTestImages } from '../e2e/support/images.js';
import { Cleanup } from '../support/cleanup.js';
import { LogCapture } from '../support/logs.js';
import { freePort } from '../support/ports.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const RUN = randomBytes(3).toString('hex');
/** On every job container of this file, whichever device it is for: what the cleanup removes. */
const RUN_LABEL = 'org.flotilla-test.jobs';
let devices = 0;

describeDocker('jobs on a real Docker Engine', () => {
  const cleanup = new Cleanup();
  let image: string;

  beforeAll(async () => {
    image = (await ensureTestImages()).v1;
  }, 120_000);
  afterEach(() => cleanup.run());
  afterAll(() => removeContainersAndVolumes(`${RUN_LABEL}=${RUN}`));

  /** Each test is a device of its own: a runner takes every job container of its device for its own. */
  let device: string;
  beforeEach(() => {
    device = `it-jobs-${RUN}-${++devices}`;
  });

  function runtime(): DockerRuntime {
    return new DockerRuntime(new Dockerode(), undefined, { deviceId: device });
  }

  /** A runner over `dataDir` as the agent wires it: woken by the engine's events about this device's containers. */
  function startRunner(dataDir: string, over: Pick<JobRunnerOptions, 'pullRetry'> = {}) {
    const logs = new LogCapture('info');
    const engine = runtime();
    const store = new JobStore(dataDir, logs.logger);
    const events: JobEvent[] = [];
    const runner = new JobRunner({
      runtime: jobRuntimeOf(engine),
      store,
      deviceId: device,
      namePrefix: `${device}-`,
      stopTimeoutSeconds: 1,
      logger: logs.logger,
      event: (event) => events.push(event),
      ...over,
    });
    const unwatch = engine.watch(
      () => runner.trigger(),
      () => undefined,
    );
    let closed = false;
    const stop = async () => {
      if (closed) return;
      closed = true;
      unwatch();
      await runner.close();
      store.close();
    };
    cleanup.add('job runner', stop);
    return { runner, events, logs, stop };
  }

  function job(name: string, script: string, over: Partial<DesiredJob> = {}): DesiredJob {
    return {
      name,
      execution: `${name}.${randomBytes(4).toString('hex')}`,
      containers: [{ name: 'main', image, command: ['/bin/sh', '-c', script], labels: { [RUN_LABEL]: RUN } }],
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      ...over,
    };
  }

  const reportOf = (runner: JobRunner, execution: string) => runner.reports().find((r) => r.execution === execution);

  function finalReport(runner: JobRunner, execution: string, timeoutMs = 60_000): Promise<JobExecutionReport> {
    return waitFor(
      `${execution} to end`,
      () => {
        const report = reportOf(runner, execution);
        return report && FINAL_JOB_EXECUTION_STATES.has(report.state) ? report : undefined;
      },
      { timeoutMs },
    );
  }

  const containersOf = (execution: string) => containerIds(`flotilla.job-execution=${execution}`);

  async function runningContainer(execution: string): Promise<string> {
    return waitFor(`a running container of ${execution}`, async () => {
      for (const id of await containersOf(execution)) if ((await inspect(id)).State.Running) return id;
      return undefined;
    });
  }

  it('runs a job that exits 0: succeeded with its output, a container of its own the app reconciler never sees, removed once no longer desired', async () => {
    const { runner, events } = startRunner(scratchDir('flotilla-it-jobs-'));
    // Docker stamps each stream's lines as it reads them: lines written apart keep their order across the two.
    const hello = job('hello', 'echo hello; sleep 0.2; echo "to stderr" >&2; exit 0');
    runner.setDesired([hello]);
    const report = await finalReport(runner, hello.execution);
    expect(report).toMatchObject({ name: 'hello', execution: hello.execution, state: 'succeeded', attempt: 1, exitCode: 0 });
    expect(report.output).toEqual(['hello', 'to stderr']);
    expect(events.map((e) => `${e.type} ${e.app}`)).toEqual(['job-started hello', 'job-succeeded hello']);

    const [id, ...more] = await containersOf(hello.execution);
    expect(more).toEqual([]);
    const inspected = await inspect(id as string);
    expect(inspected.Name).toBe(`/${device}-job_${hello.execution}_1_main`);
    expect(inspected.HostConfig.RestartPolicy.Name).toBe('no');
    expect(inspected.Config.Labels).toMatchObject({
      'flotilla.job': 'hello',
      'flotilla.job-execution': hello.execution,
      'flotilla.job-attempt': '1',
      'flotilla.container': 'main',
      'flotilla.device': device,
    });
    expect(inspected.Config.Labels['flotilla.app']).toBeUndefined();
    expect(await runtime().listManaged()).toEqual([]);

    // Kept while the desired state names it (docker logs), removed once it does not.
    runner.setDesired([]);
    await waitFor('its container removed', async () => (await containersOf(hello.execution)).length === 0);
    expect(runner.reports()).toEqual([]);
  });

  it('retries a job that exits 3, then fails it with exit code 3 after its second attempt', async () => {
    const { runner, events } = startRunner(scratchDir('flotilla-it-jobs-'));
    const flaky = job('flaky', 'echo "about to fail"; exit 3', { retries: { limit: 1, backoff: '500ms' } });
    runner.setDesired([flaky]);
    const report = await finalReport(runner, flaky.execution);
    expect(report).toMatchObject({ state: 'failed', attempt: 2, exitCode: 3, container: 'main', output: ['about to fail'] });
    expect(report.message).toBe('container main exited with code 3 (attempt 2)');
    expect(events.map((e) => e.type)).toEqual(['job-started', 'job-retrying', 'job-started', 'job-failed']);
    expect(events[1]?.message).toMatch(/^attempt 1 of 2 failed: container main exited with code 3; attempt 2 at \d{4}-/);
    const attempts = await Promise.all(
      (await containersOf(flaky.execution)).map(async (id) => (await inspect(id)).Config.Labels['flotilla.job-attempt']),
    );
    expect(attempts.sort()).toEqual(['1', '2']);
  });

  it('kills a job past its timeout: timed-out, its container no longer running', async () => {
    const { runner, events } = startRunner(scratchDir('flotilla-it-jobs-'));
    const slow = job('slow', 'sleep 60', { timeout: '2s' });
    runner.setDesired([slow]);
    const report = await finalReport(runner, slow.execution);
    expect(report).toMatchObject({ state: 'timed-out', attempt: 1, message: 'killed at its timeout of 2s' });
    const [id] = await containersOf(slow.execution);
    const state = (await inspect(id as string)).State;
    expect(state.Running).toBe(false);
    expect(state.Status).toBe('exited');
    expect(events.map((e) => e.type)).toEqual(['job-started', 'job-timed-out']);
  });

  it('stops a running job that is canceled', async () => {
    const { runner, events } = startRunner(scratchDir('flotilla-it-jobs-'));
    const long = job('long', 'echo started; sleep 60');
    runner.setDesired([long]);
    const id = await runningContainer(long.execution);
    await waitFor('reported running', () => reportOf(runner, long.execution)?.state === 'running');
    runner.setDesired([{ ...long, cancel: true }]);
    const report = await finalReport(runner, long.execution);
    expect(report).toMatchObject({ state: 'canceled', attempt: 1, message: 'attempt 1 stopped: canceled at the hub', output: ['started'] });
    expect((await inspect(id)).State.Running).toBe(false);
    expect(events.map((e) => e.type)).toEqual(['job-started', 'job-canceled']);
  });

  it('adopts a running job after the runner stops: one container, its result reported, and it never runs again', async () => {
    const dataDir = scratchDir('flotilla-it-jobs-');
    const first = startRunner(dataDir);
    const once = job('once', 'sleep 3; echo done');
    first.runner.setDesired([once]);
    await runningContainer(once.execution);
    await first.stop();

    const second = startRunner(dataDir);
    second.runner.setDesired([once]);
    const report = await finalReport(second.runner, once.execution);
    expect(report).toMatchObject({ state: 'succeeded', attempt: 1, output: ['done'] });
    expect(second.events.map((e) => e.type)).toEqual(['job-succeeded']);
    expect(await containersOf(once.execution)).toHaveLength(1);
    await second.stop();

    // Named again, by a restarted agent and after its container is gone: remembered, not run.
    const third = startRunner(dataDir);
    third.runner.setDesired([once]);
    expect(await finalReport(third.runner, once.execution)).toMatchObject({ state: 'succeeded', attempt: 1 });
    third.runner.setDesired([]);
    await waitFor('its container removed', async () => (await containersOf(once.execution)).length === 0);
    third.runner.setDesired([once]);
    await third.runner.idle();
    expect(reportOf(third.runner, once.execution)).toMatchObject({ state: 'succeeded', attempt: 1 });
    expect(await containersOf(once.execution)).toEqual([]);
    expect(third.events).toEqual([]);
  });

  it('reports an attempt failed, without running it again, when its container is gone after a restart', async () => {
    const dataDir = scratchDir('flotilla-it-jobs-');
    const first = startRunner(dataDir);
    const lost = job('lost', 'sleep 30');
    first.runner.setDesired([lost]);
    const id = await runningContainer(lost.execution);
    await first.stop();
    await docker('rm', '-f', id);

    const second = startRunner(dataDir);
    second.runner.setDesired([lost]);
    const report = await finalReport(second.runner, lost.execution);
    expect(report).toMatchObject({ state: 'failed', attempt: 1, container: 'main' });
    expect(report.message).toMatch(/^container main of attempt 1 is gone .*: the attempt is not run again$/);
    expect(await containersOf(lost.execution)).toEqual([]);
  });

  it("fails, with the engine's reason, a job whose image does not exist or whose device is missing, and goes on running", async () => {
    const { runner } = startRunner(scratchDir('flotilla-it-jobs-'));
    const noImage = job('no-image', 'true');
    noImage.containers = [{ name: 'main', image: `${TEST_REGISTRY}/flotilla-test/does-not-exist:v1`, labels: { [RUN_LABEL]: RUN } }];
    const noDevice = job('no-device', 'true');
    noDevice.containers = [
      { ...(noDevice.containers[0] as DesiredJob['containers'][number]), devices: [{ hostPath: '/dev/flotilla-missing' }] },
    ];
    const fine = job('fine', 'echo fine');
    runner.setDesired([noImage, noDevice, fine]);
    const [image, device, ok] = await Promise.all([noImage, noDevice, fine].map((j) => finalReport(runner, j.execution)));
    expect(image).toMatchObject({ state: 'failed', container: 'main' });
    expect(image?.message).toMatch(/^pull .*does-not-exist:v1: /);
    expect(device).toMatchObject({ state: 'failed', container: 'main' });
    expect(device?.message).toMatch(/flotilla-missing/);
    expect(ok).toMatchObject({ state: 'succeeded', output: ['fine'] });
  });

  it('keeps a job queued while its registry is out of reach, pulls again with a backoff, and runs it once a registry answers', async () => {
    // A registry port nothing listens on yet: the engine's pull is refused, as behind a link that is down.
    const port = await freePort();
    const offline = image.replace(TEST_REGISTRY, `127.0.0.1:${port}`);
    cleanup.add(`image ${offline}`, () =>
      docker('rmi', '-f', offline).then(
        () => undefined,
        () => undefined,
      ),
    );
    const { runner, events } = startRunner(scratchDir('flotilla-it-jobs-'), {
      pullRetry: { firstDelayMs: 300, maxDelayMs: 1_000, eventIntervalMs: 60_000 },
    });
    const seen: JobExecutionReport[] = [];
    const unlisten = runner.changed.on(() => seen.push(...runner.reports()));
    cleanup.add('report listener', unlisten);
    const patient = job('patient', 'echo "pulled at last"');
    patient.containers = [{ ...(patient.containers[0] as DesiredJob['containers'][number]), image: offline }];
    runner.setDesired([patient]);

    const waiting = (r: JobExecutionReport) => r.state === 'queued' && r.message?.startsWith(`pulling ${offline} failed: `);
    // Tried again: two different times for the next try, before any registry answers.
    const retried = await waitFor('two failed pulls', () => {
      const tries = new Set(seen.filter(waiting).map((r) => r.nextAttemptAt));
      return tries.size >= 2 ? tries : undefined;
    });
    expect(retried.size).toBeGreaterThanOrEqual(2);
    const first = seen.find(waiting);
    expect(first).toMatchObject({ state: 'queued', attempt: 0 });
    expect(first?.message).toMatch(
      new RegExp(`^pulling ${escapeRegExp(offline)} failed: .*connection refused; trying again at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z$`),
    );
    expect(first?.message).toContain(`trying again at ${first?.nextAttemptAt}`);
    expect(await containersOf(patient.execution)).toEqual([]);

    // The registry answers on that port now: a relay to the loopback registry.
    const relay = await startRelay(port, Number(TEST_REGISTRY.split(':')[1] ?? 5000));
    cleanup.add('registry relay', relay.close);
    const report = await finalReport(runner, patient.execution);
    expect(report).toMatchObject({ state: 'succeeded', attempt: 1, exitCode: 0, output: ['pulled at last'] });
    // One event for the outage (not one per try), then the attempt as usual.
    expect(events.map((e) => e.type)).toEqual(['job-pull-failed', 'job-started', 'job-succeeded']);
    expect(events[0]).toMatchObject({ app: 'patient', container: 'main' });
    expect(events[0]?.message).toMatch(new RegExp(`^pulling ${escapeRegExp(offline)} failed: .*connection refused; trying again at `));
    expect(seen.every((r) => r.state !== 'failed')).toBe(true);
  });

  it("fails at once, with the engine's message and no retry, a job whose tag the registry does not have", async () => {
    const { runner, events } = startRunner(scratchDir('flotilla-it-jobs-'), {
      pullRetry: { firstDelayMs: 300, maxDelayMs: 1_000, eventIntervalMs: 60_000 },
    });
    const missing = image.replace(/:[^:/]+$/, ':no-such-tag');
    const typo = job('typo', 'true', { retries: { limit: 2, backoff: '1s' } });
    typo.containers = [{ ...(typo.containers[0] as DesiredJob['containers'][number]), image: missing }];
    runner.setDesired([typo]);
    const report = await finalReport(runner, typo.execution);
    expect(report).toMatchObject({ state: 'failed', attempt: 1, container: 'main' });
    expect(report.message).toBe(`pull ${missing}: manifest for ${missing} not found: manifest unknown: manifest unknown`);
    expect(events.map((e) => e.type)).toEqual(['job-failed']);
    expect(events[0]?.message).toBe(report.message);
  });

  it("sends a job's lines through the log pipeline, marked as a job's", async () => {
    const batches: LogBatch[] = [];
    const sink: LogSink = {
      canSendLogs: true,
      publishLogs(batch) {
        const checked = validate(LogBatchSchema, batch);
        if (!checked.ok) throw new Error(`invalid log batch: ${JSON.stringify(checked.issues)}`);
        batches.push(batch);
        return true;
      },
    };
    const engine = runtime();
    let seq = 0;
    const collector = new LogCollector({
      runtime: engine,
      sink,
      nextSeq: () => ++seq,
      logger: new LogCapture('warn').logger,
      rateLinesPerSecond: 100,
      bufferBytes: 1024 * 1024,
      lineMaxBytes: 1024,
      batchBytes: 64 * 1024,
      batchMs: 100,
    });
    const unwatch = engine.watch(
      () => collector.refresh(),
      () => undefined,
    );
    cleanup.add('log collector', () => {
      unwatch();
      collector.close();
    });
    collector.start();

    const { runner } = startRunner(scratchDir('flotilla-it-jobs-'));
    const chatty = job('chatty', 'echo "first line"; echo "second line" >&2');
    runner.setDesired([chatty]);
    await finalReport(runner, chatty.execution);
    collector.refresh();
    const lines = await waitFor('the job lines sent', () => {
      const mine = batches.flatMap((b) => b.lines).filter((l) => l.app === 'chatty');
      return mine.length >= 2 ? mine : undefined;
    });
    // stdout and stderr are followed apart: their order between the two is not kept.
    expect(lines.map((l: LogLine) => [l.app, l.container, l.stream, l.line, l.job]).sort()).toEqual([
      ['chatty', 'main', 'stderr', 'second line', true],
      ['chatty', 'main', 'stdout', 'first line', true],
    ]);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A registry coming back: a TCP relay on `port` to the loopback registry, as a link that comes up again. */
async function startRelay(port: number, targetPort: number): Promise<{ close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
