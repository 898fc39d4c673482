/**
 * A job's output as an operator reads it: a real hub (Aedes, dispatcher, HTTP API, SQLite) and a
 * real agent on the real Docker Engine, the job made through the API. The agent's log batch
 * window is long (30 s) and its metric samples, which take waiting lines along, rare: what an
 * operator reads right after the hub shows the execution final is what the agent sent before it
 * reported it so.
 */
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { FINAL_JOB_EXECUTION_STATES, type JobDetail, type JobSpec, type LogRecord } from '../../shared/index.js';
import { removeContainersAndVolumes } from '../e2e/support/docker-cli.js';
import { describeDocker } from '../e2e/support/engine.js';
import { ensureTestImages } from '../e2e/support/images.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const DEVICE = `it-jobs-hub-${randomBytes(3).toString('hex')}`;

describeDocker("a job's output on a real hub, read right after the job is final", () => {
  const cleanup = new Cleanup();
  let image: string;
  let hub: TestHub;
  let agent: Agent;

  beforeAll(async () => {
    image = (await ensureTestImages()).v1;
    hub = await startTestHub();
    const logs = new LogCapture('warn');
    agent = await startAgent(
      {
        deviceId: DEVICE,
        hubUrl: hub.mqttUrl,
        dataDir: scratchDir('flotilla-it-jobs-hub-'),
        outboxPath: 'memory',
        containerNamePrefix: `${DEVICE}-`,
        stateIntervalMs: 0,
        logBatchMs: 30_000,
        metricsIntervalMs: 600_000,
        logLevel: 'silent',
      },
      { runtime: new DockerRuntime(new Dockerode(), undefined, { deviceId: DEVICE }), logger: logs.logger },
    );
    await waitFor('the hub to know the device', async () => (await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}`)).status === 200);
  }, 120_000);
  afterEach(() => cleanup.run());
  afterAll(async () => {
    await agent?.close();
    await hub?.close();
    await removeContainersAndVolumes(`flotilla.device=${DEVICE}`);
  });

  async function create(spec: JobSpec): Promise<void> {
    const res = await http(hub.httpUrl, 'POST', '/api/v1/jobs', spec);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    cleanup.add(`job ${spec.name}`, async () => {
      await http(hub.httpUrl, 'DELETE', `/api/v1/jobs/${spec.name}`);
    });
  }

  /** The device's execution, polled as `flotilla run -w` does, the moment the hub shows it final. */
  function final(name: string): Promise<JobDetail['executions'][number]> {
    return waitFor(
      `job ${name} final on ${DEVICE}`,
      async () => {
        const job = (await http<JobDetail>(hub.httpUrl, 'GET', `/api/v1/jobs/${name}`)).body;
        const execution = job.executions?.find((e) => e.device === DEVICE);
        return execution && FINAL_JOB_EXECUTION_STATES.has(execution.state) ? execution : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  }

  async function jobLines(name: string): Promise<LogRecord[]> {
    const res = await http<{ lines: LogRecord[] }>(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/logs?job=${name}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.lines;
  }

  it('logs.query answers every line of a job as soon as the hub shows it succeeded', { timeout: 90_000 }, async () => {
    const name = `all-lines-${randomBytes(2).toString('hex')}`;
    await create({
      name,
      scheduling: { devices: [DEVICE] },
      spec: {
        containers: [{ name: 'task', image, command: ['/bin/sh', '-c', 'i=1; while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); done'] }],
      },
    });
    expect(await final(name)).toMatchObject({ state: 'succeeded' });
    // Read at once: no waiting for a batch window.
    const lines = await jobLines(name);
    expect(lines.map((l) => l.line)).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i + 1}`));
    expect(lines.every((l) => l.job === true && l.container === 'task')).toBe(true);
  });
  it('logs.query of a job shows where each attempt of a retried job begins, with every line there once the job failed', {
    timeout: 90_000,
  }, async () => {
    const name = `retried-${randomBytes(2).toString('hex')}`;
    await create({
      name,
      scheduling: { devices: [DEVICE] },
      spec: {
        containers: [{ name: 'task', image, command: ['/bin/sh', '-c', 'echo "trying"; exit 1'] }],
        retries: { limit: 2, backoff: '200ms' },
      },
    });
    expect(await final(name)).toMatchObject({ state: 'failed', attempt: 3 });
    const lines = await jobLines(name);
    expect(lines.map((l) => [l.stream, l.line])).toEqual([
      ['system', '--- attempt 1 of 3 (container task) ---'],
      ['stdout', 'trying'],
      ['system', '--- attempt 2 of 3 (container task) ---'],
      ['stdout', 'trying'],
      ['system', '--- attempt 3 of 3 (container task) ---'],
      ['stdout', 'trying'],
    ]);
    expect(lines.every((l) => l.job === true && l.container === 'task')).toBe(true);
  });
});
