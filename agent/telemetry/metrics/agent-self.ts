/**
 * The agent's own footprint, so what it costs the device is in every sample:
 * RSS, and CPU % between two samples from process.cpuUsage (user + system,
 * all threads, in µs) over the wall time (of the whole machine, like every
 * percentage in a sample).
 */
import type { AgentMetrics } from '../../../shared/index.js';
import { cpuPercentOfMachine } from './cpu.js';

export class AgentSampler {
  private previousCpu = process.cpuUsage();
  private previousAt = process.hrtime.bigint();

  constructor(
    private readonly logLinesDropped: () => number = () => 0,
    private readonly outbox?: () => NonNullable<AgentMetrics['outbox']>,
  ) {}

  sample(cpuCount: number): AgentMetrics {
    const cpu = process.cpuUsage(this.previousCpu);
    const at = process.hrtime.bigint();
    const cpuPercent = cpuPercentOfMachine((cpu.user + cpu.system) * 1000, Number(at - this.previousAt), cpuCount);
    this.previousCpu = process.cpuUsage();
    this.previousAt = at;
    // memoryUsage.rss() reads one number; memoryUsage() would also walk the V8 heap spaces.
    const sample: AgentMetrics = { rssBytes: process.memoryUsage.rss(), cpuPercent, logLinesDropped: this.logLinesDropped() };
    if (this.outbox) sample.outbox = this.outbox();
    return sample;
  }
}
