/**
 * A whole agent runs the jobs of its desired state: a real agent on a real
 * Docker Engine, its desired document published on a bare Aedes broker on
 * loopback by a test playing the hub, which reads what the hub would: the
 * state reports, the events and the log batches.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import {
  type DesiredJob,
  type DesiredState,
  type DeviceEvent,
  DeviceEvent as DeviceEventSchema,
  type DeviceState,
  DeviceState as DeviceStateSchema,
  type LogBatch,
  type LogLine,
  Topics,
  validate,
} from '../../shared/index.js';
import { containerIds, removeContainersAndVolumes } from '../e2e/support/docker-cli.js';
import { describeDocker } from '../e2e/support/engine.js';
import { ensureTestImages } from '../e2e/support/images.js';
import { Cleanup } from '../support/cleanup.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const DEVICE = `it-jobs-agent-${randomBytes(3).toString('hex')}`;
const topics = new Topics();

/** One message of the device as the broker delivered it. */
type Wire = { channel: 'state'; body: DeviceState } | { channel: 'events'; body: DeviceEvent } | { channel: 'logs'; body: LogBatch };

describeDocker('an agent runs the jobs of its desired state (real broker, real Docker Engine)', () => {
  const cleanup = new Cleanup();
  let image: string;

  beforeAll(async () => {
    image = (await ensureTestImages()).v1;
  }, 120_000);
  afterEach(() => cleanup.run());
  afterAll(() => removeContainersAndVolumes(`flotilla.device=${DEVICE}`));

  async function broker(): Promise<string> {
    const aedes = await Aedes.createBroker();
    const server: Server = createServer(aedes.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add('broker', async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  /** A test playing the hub on the broker: every message of the device, in the order the broker delivered them. */
  async function hubDouble(url: string) {
    const hub = await connectClient(url, { clientId: `hub-double-${randomBytes(2).toString('hex')}` });
    cleanup.add('hub client', () => closeClient(hub));
    const wire: Wire[] = [];
    hub.on('message', (topic, payload) => {
      const parsed = topics.parse(topic);
      if (parsed?.kind !== 'device') return;
      const body = JSON.parse(payload.toString());
      if (parsed.channel === 'state' || parsed.channel === 'events' || parsed.channel === 'logs')
        wire.push({ channel: parsed.channel, body } as Wire);
    });
    await hub.subscribeAsync(['state', 'events', 'logs'].map((channel) => topics.device(DEVICE, channel as 'state')));
    const publish = (desired: Omit<DesiredState, 'deviceId' | 'issuedAt'>) =>
      hub.publishAsync(
        topics.device(DEVICE, 'desired'),
        JSON.stringify({ deviceId: DEVICE, issuedAt: new Date().toISOString(), ...desired }),
        { qos: 1, retain: true },
      );
    return {
      wire,
      publish,
      states: () => wire.flatMap((m) => (m.channel === 'state' ? [m.body] : [])),
      events: () => wire.flatMap((m) => (m.channel === 'events' ? [m.body] : [])),
      lines: (): LogLine[] => wire.flatMap((m) => (m.channel === 'logs' ? m.body.lines : [])),
    };
  }

  async function agentOn(url: string, dataDir: string, config: Record<string, unknown> = {}) {
    const logs = new LogCapture('warn');
    const agent = await startAgent(
      {
        deviceId: DEVICE,
        hubUrl: url,
        dataDir,
        outboxPath: 'memory',
        containerNamePrefix: `${DEVICE}-`,
        telemetryEncoding: 'off',
        stateIntervalMs: 0,
        logBatchMs: 100,
        logLevel: 'silent',
        ...config,
      },
      { runtime: new DockerRuntime(new Dockerode(), undefined, { deviceId: DEVICE }), logger: logs.logger },
    );
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await agent.close();
    };
    cleanup.add('agent', close);
    return { agent, logs, close };
  }

  const succeeded = (execution: string) => (s: DeviceState) => s.jobs?.some((j) => j.execution === execution && j.state === 'succeeded');

  it('reports each execution in its state report, sends its events and its log lines, and removes its container once the job leaves the desired state', async () => {
    const url = await broker();
    const double = await hubDouble(url);
    const { states: statesOf, publish } = double;
    const { logs } = await agentOn(url, scratchDir('flotilla-it-jobs-agent-'));

    const job: DesiredJob = {
      name: 'report-it',
      execution: `report-it.${randomBytes(4).toString('hex')}`,
      containers: [{ name: 'main', image, command: ['/bin/sh', '-c', 'echo one; echo two'] }],
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
    };
    await publish({ revision: 1, apps: [], jobs: [job] });

    const done = await waitFor('a state report with the execution succeeded', () => statesOf().find(succeeded(job.execution)), {
      timeoutMs: 60_000,
    });
    const states = statesOf();
    expect(done.observedRevision).toBe(1);
    // What the hub checks every report against.
    for (const state of states) expect(validate(DeviceStateSchema, state).ok).toBe(true);
    expect(done.jobs).toEqual([
      expect.objectContaining({
        name: 'report-it',
        execution: job.execution,
        state: 'succeeded',
        attempt: 1,
        exitCode: 0,
        output: ['one', 'two'],
      }),
    ]);
    await waitFor('the job events', () => double.events().filter((e) => e.app === 'report-it').length >= 2);
    expect(
      double
        .events()
        .filter((e) => e.app === 'report-it')
        .map((e) => e.type),
    ).toEqual(['job-started', 'job-succeeded']);
    const jobLines = await waitFor('the job log lines', () => {
      const mine = double.lines().filter((l) => l.app === 'report-it');
      return mine.length >= 2 ? mine : undefined;
    });
    expect(jobLines.map((l) => [l.line, l.job])).toEqual([
      ['one', true],
      ['two', true],
    ]);
    expect(await containerIds(`flotilla.job-execution=${job.execution}`)).toHaveLength(1);

    // The hub has its final state: the next document no longer names it.
    const reports = statesOf().length;
    await publish({ revision: 2, apps: [] });
    await waitFor('its container removed', async () => (await containerIds(`flotilla.job-execution=${job.execution}`)).length === 0, {
      timeoutMs: 30_000,
    });
    const after = await waitFor('a state report of revision 2', () =>
      statesOf()
        .slice(reports)
        .find((s) => s.observedRevision === 2),
    );
    expect(after.jobs).toBeUndefined();
    expect(logs.records.filter((r) => r.level >= 50)).toEqual([]);
  });
  it("publishes a job's lines before the state report that says it ended, however long the log batch window", async () => {
    const url = await broker();
    const double = await hubDouble(url);
    // Metric samples take waiting lines along: rare here, so only the job's end can send them.
    await agentOn(url, scratchDir('flotilla-it-jobs-agent-'), { logBatchMs: 30_000, metricsIntervalMs: 600_000 });
    const job: DesiredJob = {
      name: 'flushed',
      execution: `flushed.${randomBytes(4).toString('hex')}`,
      containers: [{ name: 'main', image, command: ['/bin/sh', '-c', 'i=1; while [ $i -le 20 ]; do echo "line $i"; i=$((i+1)); done'] }],
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
    };
    await double.publish({ revision: 1, apps: [], jobs: [job] });
    await waitFor('a state report with the execution succeeded', () => double.states().find(succeeded(job.execution)), {
      timeoutMs: 60_000,
    });
    const final = double.wire.findIndex((m) => m.channel === 'state' && succeeded(job.execution)(m.body));
    const before = double.wire
      .slice(0, final)
      .flatMap((m) => (m.channel === 'logs' ? m.body.lines : []))
      .filter((l) => l.app === 'flushed');
    expect(before.map((l) => l.line)).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 1}`));
  });

  it("stamps the events of a job that ended while no agent ran with the engine's time it ended, not the next agent's start", async () => {
    const url = await broker();
    const double = await hubDouble(url);
    const dataDir = scratchDir('flotilla-it-jobs-agent-');
    const first = await agentOn(url, dataDir);
    const job: DesiredJob = {
      name: 'ended-alone',
      execution: `ended-alone.${randomBytes(4).toString('hex')}`,
      containers: [{ name: 'main', image, command: ['/bin/sh', '-c', 'sleep 2; echo done'] }],
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
    };
    await double.publish({ revision: 1, apps: [], jobs: [job] });
    const started = await waitFor('job-started', () => double.events().find((e) => e.type === 'job-started' && e.app === job.name), {
      timeoutMs: 60_000,
    });
    await first.close();
    // The job's container runs on without an agent, and ends.
    const [id] = await containerIds(`flotilla.job-execution=${job.execution}`);
    const exited = await waitFor('the container to exit', async () => {
      const { State } = await new Dockerode().getContainer(id as string).inspect();
      return State.Status === 'exited' && State;
    });
    const finishedAt = new Date(exited.FinishedAt).toISOString();

    await agentOn(url, dataDir);
    const ended = await waitFor('job-succeeded', () => double.events().find((e) => e.type === 'job-succeeded' && e.app === job.name), {
      timeoutMs: 60_000,
    });
    expect(ended.ts).toBe(finishedAt);
    expect(ended.seq).toBeGreaterThan(started.seq);
    const report = await waitFor('the execution reported succeeded', () => double.states().find(succeeded(job.execution)));
    expect(report.jobs?.[0]?.finishedAt).toBe(finishedAt);
    expect(validate(DeviceEventSchema, ended).ok).toBe(true);
  });
});
