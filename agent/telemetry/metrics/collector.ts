/**
 * Samples host, containers and the agent itself every `intervalMs` and
 * publishes each sample on `…/devices/{id}/metrics`.
 *
 * Invariants:
 * - One sample at a time: the next is scheduled when the previous has been
 *   published, so a slow engine (its stats API answers once a second) can
 *   stretch the interval but never pile samples up.
 * - A sample that cannot be published (link down) is dropped, not buffered:
 *   metrics are QoS 0 and the next sample supersedes it. The seq is still
 *   taken, so a gap in seqs shows the hub that samples were lost.
 * - Host metrics do not depend on Docker: with the engine unreachable the
 *   sample goes out with no containers, and the failure is logged once per
 *   outage rather than every interval.
 *
 * Cost per sample (measured in bench/agent-metrics-cost.ts, BENCHMARKS.md):
 * ~6 reads under /proc, one statfs per disk, the thermal zones, and per
 * container one list+inspect (listManaged) plus ~7 cgroup/proc reads.
 */
import type { AgentMetrics, Metrics } from '../../../shared/index.js';
import type { ContainerRuntime, ManagedContainer } from '../../runtime/runtime.js';
import { AgentSampler } from './agent-self.js';
import { CgroupReader } from './cgroup.js';
import { compactSample } from './compact.js';
import { ContainerSampler } from './containers.js';
import type { DiskPath } from './disks.js';
import { HostSampler } from './host.js';

export interface MetricsLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface MetricsCollectorOptions {
  runtime: Pick<ContainerRuntime, 'info' | 'listManaged' | 'stats'>;
  intervalMs: number;
  /** Sends a sample; false when it could not be sent (then it is skipped). */
  publish: (sample: Metrics) => boolean;
  nextSeq: () => number;
  logger: MetricsLogger;
  /** Log lines dropped since the agent started (the log pipeline's counter). */
  logLinesDropped?: () => number;
  /** The outbox's size and drops. */
  outbox?: () => NonNullable<AgentMetrics['outbox']>;
  /** Tests point these at fixtures. */
  host?: HostSampler;
  cgroups?: CgroupReader;
}

export class MetricsCollector {
  private readonly host: HostSampler;
  private readonly containers: ContainerSampler;
  private readonly agent: AgentSampler;
  private dataRoot: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private runtimeDown = false;
  private engineFallbackLogged = false;
  /** Samples taken and published since start, for tests and the benchmark. */
  readonly counts = { sampled: 0, published: 0 };

  constructor(private readonly options: MetricsCollectorOptions) {
    this.host = options.host ?? new HostSampler();
    this.containers = new ContainerSampler({
      cgroups: options.cgroups ?? new CgroupReader(),
      runtime: options.runtime,
      onEngineFallback: (c) => {
        // A runtime without pids (the simulator's) has only this way; on Docker it means the files are out of reach.
        if (this.engineFallbackLogged || c.pid === undefined) return;
        this.engineFallbackLogged = true;
        options.logger.info(
          { containerId: c.id.slice(0, 12), pid: c.pid },
          "container cgroup files not readable from here; asking the engine's stats API (slower)",
        );
      },
      onError: (c, err) => options.logger.debug({ containerId: c.id.slice(0, 12), err: err.message }, 'no counters for container'),
    });
    this.agent = new AgentSampler(options.logLinesDropped, options.outbox);
  }

  /** Takes the baseline readings, then samples every interval until `stop`. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.prime().finally(() => this.schedule(this.options.intervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One sample, as published (exported for tests): compact (compact.ts). */
  async sample(): Promise<Metrics> {
    const seq = this.options.nextSeq();
    const ts = new Date().toISOString();
    const managed = await this.listContainers();
    const host = await this.host.sample(this.disks());
    const containers = await this.containers.sample(managed, host);
    const agent = this.agent.sample(host.cpuCount);
    this.counts.sampled++;
    return compactSample({ seq, ts, host, containers, agent });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const began = Date.now();
      this.running = this.tick().finally(() => this.schedule(Math.max(0, this.options.intervalMs - (Date.now() - began))));
    }, delayMs);
  }

  private async tick(): Promise<void> {
    try {
      const sample = await this.sample();
      if (this.stopped) return;
      if (this.options.publish(sample)) this.counts.published++;
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'metrics sample failed');
    }
  }

  private async prime(): Promise<void> {
    try {
      this.host.prime();
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'no CPU baseline; the first sample averages since boot');
    }
    await this.containers.prime(await this.listContainers());
  }

  private async listContainers(): Promise<ManagedContainer[]> {
    try {
      if (this.dataRoot === undefined) await this.learnDataRoot();
      const managed = await this.options.runtime.listManaged();
      if (this.runtimeDown) this.options.logger.info({}, 'container runtime reachable again; metrics include containers');
      this.runtimeDown = false;
      return managed;
    } catch (err) {
      if (!this.runtimeDown) {
        this.options.logger.warn({ err: (err as Error).message }, 'container runtime unreachable; metrics carry host figures only');
      }
      this.runtimeDown = true;
      return [];
    }
  }

  private async learnDataRoot(): Promise<void> {
    this.dataRoot = (await this.options.runtime.info()).dataRoot ?? '';
  }

  private disks(): DiskPath[] {
    const disks: DiskPath[] = [{ name: 'root', path: '/' }];
    if (this.dataRoot) disks.push({ name: 'docker', path: this.dataRoot });
    return disks;
  }
}
