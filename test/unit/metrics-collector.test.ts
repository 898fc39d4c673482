/**
 * The collector's schedule and failure handling, over this machine's real
 * /proc and a MemoryRuntime (no engine needed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ContainerRuntime } from '../../agent/runtime/runtime.js';
import { MetricsCollector } from '../../agent/telemetry/metrics/collector.js';
import { Metrics, validate } from '../../shared/index.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';
import { waitFor } from '../support/wait.js';

const quiet = { warn() {}, info() {}, debug() {} };

describe('MetricsCollector', () => {
  let collector: MetricsCollector | undefined;
  afterEach(async () => {
    await collector?.stop();
    collector = undefined;
  });

  async function runningApp(runtime: MemoryRuntime): Promise<string> {
    const id = await runtime.create({
      deviceId: 'dev-1',
      app: 'shop',
      appRevision: 1,
      specHash: 'h',
      spec: { name: 'web', image: 'web:v1' },
    });
    await runtime.start(id);
    return id;
  }

  it('publishes schema-valid samples with growing seqs every interval, including the agent and its dropped-lines count', async () => {
    const runtime = new MemoryRuntime({ images: ['web:v1'], dataRoot: '/' });
    const id = await runningApp(runtime);
    const published: Metrics[] = [];
    let seq = 100;
    collector = new MetricsCollector({
      runtime,
      intervalMs: 20,
      publish: (sample) => published.push(sample) > 0,
      nextSeq: () => ++seq,
      logger: quiet,
      logLinesDropped: () => 7,
    });
    collector.start();
    await waitFor('three samples', () => published.length >= 3, { intervalMs: 10 });
    for (const sample of published) {
      const checked = validate(Metrics, sample);
      expect(checked.ok ? [] : checked.issues).toEqual([]);
    }
    expect(published.map((s) => s.seq).slice(0, 3)).toEqual([101, 102, 103]);
    const [first] = published;
    expect(first?.containers).toEqual([expect.objectContaining({ id, app: 'shop', container: 'web', memBytes: 8 * 1024 * 1024, pids: 1 })]);
    expect(first?.host.disks.map((d) => d.name)).toEqual(['root', 'docker']);
    expect(first?.agent?.logLinesDropped).toBe(7);
  });

  it('skips samples while the link is down and goes on', async () => {
    let connected = false;
    const published: Metrics[] = [];
    collector = new MetricsCollector({
      runtime: new MemoryRuntime(),
      intervalMs: 20,
      publish: (sample) => connected && published.push(sample) > 0,
      nextSeq: (() => {
        let n = 0;
        return () => ++n;
      })(),
      logger: quiet,
    });
    collector.start();
    await waitFor('two skipped samples', () => collector!.counts.sampled >= 2, { intervalMs: 10 });
    connected = true;
    await waitFor('a published sample', () => published.length >= 1, { intervalMs: 10 });
    // The skipped samples used their seqs: the gap shows the hub what was lost.
    expect(published[0]!.seq).toBeGreaterThan(2);
  });

  it('publishes host figures with no containers while the runtime is unreachable, and says so once', async () => {
    const warnings: string[] = [];
    const down: Pick<ContainerRuntime, 'info' | 'listManaged' | 'stats'> = {
      info: () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock')),
      listManaged: () => Promise.reject(new Error('connect ENOENT /var/run/docker.sock')),
      stats: () => Promise.resolve(undefined),
    };
    const published: Metrics[] = [];
    collector = new MetricsCollector({
      runtime: down,
      intervalMs: 20,
      publish: (sample) => published.push(sample) > 0,
      nextSeq: () => published.length + 1,
      logger: { ...quiet, warn: (_obj, msg) => warnings.push(msg ?? '') },
    });
    collector.start();
    await waitFor('three samples', () => published.length >= 3, { intervalMs: 10 });
    expect(published[2]?.containers).toEqual([]);
    expect(published[2]?.host.memTotalBytes).toBeGreaterThan(0);
    expect(warnings).toEqual(['container runtime unreachable; metrics carry host figures only']);
  });

  it('stops: no sample after stop() resolves', async () => {
    let published = 0;
    collector = new MetricsCollector({
      runtime: new MemoryRuntime(),
      intervalMs: 20,
      publish: () => ++published > 0,
      nextSeq: () => 1,
      logger: quiet,
    });
    collector.start();
    await waitFor('a sample', () => published >= 1, { intervalMs: 10 });
    await collector.stop();
    const after = published;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(published).toBe(after);
  });
});
