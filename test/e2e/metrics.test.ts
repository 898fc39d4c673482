/**
 * Metrics as a dashboard sees them: `flotilla server` and `flotilla agent
 * --metrics-interval 1s` as real processes on a real Docker Engine, an app
 * whose container burns CPU and holds memory, and a plain mqtt.js subscriber
 * on the device's metrics topic.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { DEFAULT_TOPIC_ROOT, type Metrics, Metrics as MetricsSchema, Topics, validate } from '../../shared/index.js';
import { connectClient, Inbox } from '../support/mqtt-client.js';
import { type AgentProcess, type HubProcess, runCli, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { containerIds, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-metrics-${suffix}`;
const deviceId = `e2e-metrics-${suffix}`;
const MiB = 1024 * 1024;

/** What the container holds: 32 MiB written to a tmpfs (counted in its memory cgroup), then a busy loop. */
const HELD_MIB = 32;
const BURN = `dd if=/dev/zero of=/scratch/fill bs=1M count=${HELD_MIB} 2>/dev/null; while :; do :; done`;

describeDocker('metrics from a real agent on a real Docker Engine', () => {
  let images: TestImages;
  let hub: HubProcess;
  let agent: AgentProcess;
  let watcher: MqttClient | undefined;
  const dir = scratchDir('flotilla-e2e-metrics-');
  const topic = new Topics(DEFAULT_TOPIC_ROOT).device(deviceId, 'metrics');

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    agent = startAgentProcess(hub, deviceId, {}, { extraArgs: ['--metrics-interval', '1s'] });
    const specFile = join(dir, 'burn.yaml');
    writeFileSync(
      specFile,
      stringify({
        name: app,
        scheduling: { devices: [deviceId] },
        spec: {
          containers: [
            {
              name: 'burn',
              image: images.v1,
              command: ['/bin/sh', '-c', BURN],
              tmpfs: ['/scratch:size=64m'],
              resources: { memory: '128m' },
            },
          ],
          update: { minReadySeconds: 0 },
        },
      }),
    );
    const applied = await runCli(['--hub', hub.url, 'apply', '-f', specFile]);
    expect(applied.code, applied.stderr).toBe(0);
  });

  afterAll(async () => {
    await watcher?.endAsync();
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it("publishes samples in which the busy container's CPU and memory show, and the host figures are sane", async () => {
    watcher = await connectClient(hub.mqttUrl);
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(topic, { qos: 0 });

    const burning = (m: Metrics) => {
      const c = m.containers.find((x) => x.app === app);
      // Floors: the tmpfs file alone is 32 MiB; a busy loop gets at least a tenth of one core even on a loaded CI box.
      return c !== undefined && c.memBytes > (HELD_MIB - 2) * MiB && c.cpuPercent * m.host.cpuCount > 10;
    };
    const sample = await inbox.waitFor<Metrics>(topic, burning, 90_000);

    expect(validate(MetricsSchema, sample).ok).toBe(true);
    const [id] = await containerIds(`flotilla.app=${app}`);
    const burn = sample.containers.find((c) => c.app === app)!;
    expect(burn).toMatchObject({ container: 'burn', id, memLimitBytes: 128 * MiB, restartCount: 0 });
    expect(burn.pids).toBeGreaterThanOrEqual(1);
    expect(burn.cpuPercent).toBeLessThanOrEqual(100);

    const { host } = sample;
    expect(host.memTotalBytes).toBeGreaterThan(0);
    expect(host.memUsedBytes + host.memAvailableBytes).toBe(host.memTotalBytes);
    expect(host.cpuCount).toBeGreaterThanOrEqual(1);
    expect(host.uptimeSeconds).toBeGreaterThan(0);
    const root = host.disks.find((d) => d.name === 'root');
    expect(root).toMatchObject({ path: '/' });
    expect(root!.totalBytes).toBeGreaterThan(0);
    expect(root!.usedBytes + root!.freeBytes).toBeLessThanOrEqual(root!.totalBytes);
    expect(host.disks.map((d) => d.name)).toContain('docker');
    expect(sample.agent?.rssBytes).toBeGreaterThan(0);

    // On a host agent the counters come from the cgroup files, not the slower engine fallback.
    expect(agent.proc.output).not.toContain('cgroup files not readable');

    // Samples keep coming about once a second, with growing seqs.
    const later = await inbox.waitFor<Metrics>(topic, (m) => m.seq > sample.seq + 1, 10_000);
    expect(Date.parse(later.ts)).toBeGreaterThan(Date.parse(sample.ts));
  });

  it("reads the same counters through the engine's stats API, the fallback when cgroup files are unreadable", async () => {
    const [id] = await containerIds(`flotilla.app=${app}`);
    const runtime = new DockerRuntime(new Dockerode(), undefined, { deviceId });
    const [managed] = await runtime.listManaged();
    expect(managed?.pid).toBeGreaterThan(0);
    const first = await runtime.stats(id!);
    const second = await waitFor('a later engine reading', async () => {
      const next = await runtime.stats(id!);
      return next && first && next.readAtMs > first.readAtMs ? next : undefined;
    });
    expect(first!.memBytes).toBeGreaterThan((HELD_MIB - 2) * MiB);
    expect(second.cpuNs).toBeGreaterThan(first!.cpuNs);
    expect(second.memLimitBytes).toBe(128 * MiB);
  });
});
