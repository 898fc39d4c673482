/**
 * A sample as it is sent: percentages, load averages and temperatures cut to
 * METRIC_DECIMALS decimals, uptime to whole seconds. A CPU share computed as
 * 0.0062825920108769 is 20 characters of which the last 16 are noise no
 * graph shows, and they are most of what a compressed sample cannot shrink:
 * every sample carried a few hundred of them.
 */
import { type AgentMetrics, type ContainerMetrics, type HostMetrics, METRIC_DECIMALS, type Metrics } from '../../../shared/index.js';

const SCALE = 10 ** METRIC_DECIMALS;

export function round(value: number): number {
  return Math.round(value * SCALE) / SCALE;
}

export function compactSample(sample: Metrics): Metrics {
  return {
    ...sample,
    host: compactHost(sample.host),
    containers: sample.containers.map(compactContainer),
    ...(sample.agent ? { agent: compactAgent(sample.agent) } : {}),
  };
}

function compactHost(host: HostMetrics): HostMetrics {
  return {
    ...host,
    cpuPercent: round(host.cpuPercent),
    load1: round(host.load1),
    load5: round(host.load5),
    load15: round(host.load15),
    ...(host.temperatureC !== undefined ? { temperatureC: round(host.temperatureC) } : {}),
    uptimeSeconds: Math.round(host.uptimeSeconds),
  };
}

function compactContainer(container: ContainerMetrics): ContainerMetrics {
  return { ...container, cpuPercent: round(container.cpuPercent) };
}

function compactAgent(agent: AgentMetrics): AgentMetrics {
  return { ...agent, cpuPercent: round(agent.cpuPercent) };
}
