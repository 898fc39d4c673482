/**
 * `flotilla_device_link_bytes_total{device, direction}`: each device's MQTT
 * bytes since the hub started (broker/mqtt/link-bytes.ts), `in` from the
 * device and `out` to it. One call registers it on the exporter's registry
 * (prometheus.ts); it reads its source at scrape time, like every series
 * there, and lists the values without prom-client's per-value label hashing
 * (thousands of devices, two series each).
 */
import type { Registry } from 'prom-client';
import type { DeviceLinkBytes } from '../mqtt/link-bytes.js';

type Labels = Record<string, string>;

export const LINK_BYTES_METRIC = 'flotilla_device_link_bytes_total';

class LinkBytesCounter {
  readonly name = LINK_BYTES_METRIC;
  readonly help =
    "MQTT bytes on the device's connections since the hub started (whole packets with their MQTT framing; not TCP/IP or TLS overhead): in from the device, out to it.";
  readonly type = 'counter';

  constructor(private readonly read: () => Iterable<DeviceLinkBytes>) {}

  async get() {
    const values: { labels: Labels; value: number }[] = [];
    for (const { device, bytesIn, bytesOut } of this.read()) {
      values.push({ labels: { device, direction: 'in' }, value: bytesIn });
      values.push({ labels: { device, direction: 'out' }, value: bytesOut });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum' as const, values };
  }

  reset(): void {}
}

/** Adds the per-device link bytes to `registry`; without a source (a hub that does not count), nothing. */
export function registerLinkBytesMetrics(registry: Registry, read: (() => Iterable<DeviceLinkBytes>) | undefined): void {
  if (read) registry.registerMetric(new LinkBytesCounter(read) as unknown as Parameters<Registry['registerMetric']>[0]);
}
