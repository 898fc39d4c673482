/**
 * The exporter's registry over fake fleet and broker sources, read back
 * through a real Prometheus text-format parser; and docs/telemetry.md's
 * series table against what is exported, so the two cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageDownloadCounts, PENDING_IMAGE_STATES } from '../../broker/telemetry/image-download-counts.js';
import {
  APP_PHASE_LABELS,
  type BrokerSources,
  createPrometheusRegistry,
  type FleetSources,
  type IngestStats,
  withEveryPhase,
} from '../../broker/telemetry/prometheus.js';
import { AGENT_UPGRADE_PHASES, type DeviceState, JOB_EXECUTION_STATES, JOB_PHASES, type MetricsSample } from '../../shared/index.js';
import { deviceState } from '../support/fixtures.js';
import { family, labelSets, parseMetrics, sampleValue } from '../support/prometheus.js';

function sample(device: string, overrides: Partial<MetricsSample['host']> = {}): MetricsSample {
  return {
    device,
    seq: 7,
    ts: '2025-01-02T03:04:05.000Z',
    host: {
      cpuPercent: 37.5,
      cpuCount: 4,
      load1: 1.25,
      load5: 1,
      load15: 0.5,
      memTotalBytes: 512 * 2 ** 20,
      memAvailableBytes: 300 * 2 ** 20,
      memUsedBytes: 200 * 2 ** 20,
      disks: [
        { name: 'root', path: '/', usedBytes: 3e9, freeBytes: 1e9, totalBytes: 4e9 },
        { name: 'docker', path: '/var/lib/docker', usedBytes: 2e9, freeBytes: 1e9, totalBytes: 3e9 },
      ],
      temperatureC: 51.5,
      netRxBytes: 1,
      netTxBytes: 2,
      uptimeSeconds: 3600,
      ...overrides,
    },
    containers: [
      {
        app: 'thermo',
        container: 'main',
        id: 'c1',
        cpuPercent: 1,
        memBytes: 1,
        netRxBytes: 0,
        netTxBytes: 0,
        blkReadBytes: 0,
        blkWriteBytes: 0,
        pids: 1,
        restartCount: 0,
      },
    ],
    agent: { rssBytes: 40e6, cpuPercent: 0.5, logLinesDropped: 0, outbox: { messages: 12, bytes: 3400, dropped: 1 } },
  };
}

class FakeSources implements FleetSources, BrokerSources {
  deviceList = [
    { id: 'dev-a', online: true },
    { id: 'dev-b', online: false },
  ];
  samples: MetricsSample[] = [sample('dev-a'), sample('dev-b', { temperatureC: undefined as never, cpuPercent: 5 })];
  phases = [
    { app: 'thermo', phase: 'running', devices: 1 },
    { app: 'thermo', phase: 'failed', devices: 2 },
  ];
  stats: IngestStats = { lagSeconds: 0.25, stored: { logs: 120, metrics: 30, events: 4 }, dropped: 3 };
  in: Record<string, number> = { metrics: 10, state: 2 };
  out: Record<string, number> = { metrics: 20 };
  reads = 0;

  async devices() {
    this.reads += 1;
    return this.deviceList;
  }
  latestMetrics() {
    return this.samples;
  }
  async appPhaseCounts() {
    return this.phases;
  }
  ingest() {
    return this.stats;
  }
  /** Two agents that download images themselves (one busy with two images), and one that does not. */
  reports: (DeviceState | null)[] = imageReports();
  reportReads = 0;
  async deviceReports() {
    this.reportReads += 1;
    return {
      agents: {
        versions: [
          { version: '0.2.0', devices: 3 },
          { version: '0.3.0', devices: 1 },
        ],
        upgrades: AGENT_UPGRADE_PHASES.map((phase) => ({ phase, devices: phase === 'rolled-back' ? 2 : 0 })),
      },
      imageDownloads: imageDownloadCounts(this.reports),
    };
  }
  async jobCounts() {
    return {
      executions: { queued: 4, running: 2, succeeded: 7, failed: 1, 'timed-out': 0, canceled: 0, expired: 3 },
      jobs: { active: 2, complete: 1, canceled: 0, aborted: 1 },
    };
  }
  received() {
    return this.in;
  }
  sent() {
    return this.out;
  }
  connectedClients() {
    return 5;
  }
  admission() {
    return { admitted: 40, delayed: 15, refused: 7, refusedPerAddress: 4, waiting: 2 };
  }
  dropped() {
    return [
      { channel: 'state', reason: 'payload_too_large', count: 2 },
      { channel: 'other', reason: 'topic_too_long', count: 1 },
    ];
  }
  sessions() {
    return { open: 2, bytesUp: 1000, bytesDown: 40, devices: [{ device: 'pi-1', bytesUp: 1000, bytesDown: 40 }] };
  }
  linkBytes() {
    return [
      { device: 'dev-a', bytesIn: 52_000, bytesOut: 4_100 },
      { device: 'dev-b', bytesIn: 7, bytesOut: 0 },
    ];
  }
}

function imageReports(): (DeviceState | null)[] {
  const since = '2025-01-02T03:04:05.000Z';
  const totals = (bytes: number) => ({ bytes, reusedBytes: bytes / 4, resentBytes: 1000, images: 2, since });
  const image = (name: string, state: 'downloading' | 'waiting' | 'present') =>
    ({ image: name, app: 'thermo', revision: 2, state, via: 'agent', bytes: 10, since }) as const;
  return [
    deviceState('dev-a', {
      downloads: totals(4_000_000),
      images: [image('reg/a:1', 'downloading'), image('reg/b:1', 'waiting'), image('reg/c:1', 'downloading')],
    }),
    deviceState('dev-b', { downloads: totals(8_000_000), images: [image('reg/a:1', 'present')] }),
    deviceState('dev-c'),
    null,
  ];
}

async function scrapeOnce(sources: FakeSources, processMetrics = false) {
  const registry = createPrometheusRegistry(sources, sources, { processMetrics });
  return parseMetrics(await registry.metrics());
}

describe('Prometheus exporter', () => {
  it('exports the fleet, per-device resources, app phases, broker traffic and ingest on the first scrape', async () => {
    const metrics = await scrapeOnce(new FakeSources());

    expect(sampleValue(metrics, 'flotilla_devices_known')).toBe(2);
    expect(sampleValue(metrics, 'flotilla_devices_online')).toBe(1);
    expect(sampleValue(metrics, 'flotilla_device_online', { device: 'dev-a' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_device_online', { device: 'dev-b' })).toBe(0);

    expect(sampleValue(metrics, 'flotilla_device_metrics_timestamp_seconds', { device: 'dev-a' })).toBe(
      Date.parse('2025-01-02T03:04:05Z') / 1000,
    );
    expect(sampleValue(metrics, 'flotilla_device_cpu_percent', { device: 'dev-a' })).toBe(37.5);
    expect(sampleValue(metrics, 'flotilla_device_cpu_percent', { device: 'dev-b' })).toBe(5);
    expect(sampleValue(metrics, 'flotilla_device_load1', { device: 'dev-a' })).toBe(1.25);
    expect(sampleValue(metrics, 'flotilla_device_memory_used_bytes', { device: 'dev-a' })).toBe(200 * 2 ** 20);
    expect(sampleValue(metrics, 'flotilla_device_memory_available_bytes', { device: 'dev-a' })).toBe(300 * 2 ** 20);
    expect(sampleValue(metrics, 'flotilla_device_memory_total_bytes', { device: 'dev-a' })).toBe(512 * 2 ** 20);
    expect(sampleValue(metrics, 'flotilla_device_disk_used_bytes', { device: 'dev-a', disk: 'root' })).toBe(3e9);
    expect(sampleValue(metrics, 'flotilla_device_disk_free_bytes', { device: 'dev-a', disk: 'docker' })).toBe(1e9);
    expect(sampleValue(metrics, 'flotilla_device_disk_total_bytes', { device: 'dev-b', disk: 'root' })).toBe(4e9);
    expect(sampleValue(metrics, 'flotilla_device_uptime_seconds', { device: 'dev-a' })).toBe(3600);
    expect(sampleValue(metrics, 'flotilla_device_containers', { device: 'dev-a' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_device_outbox_messages', { device: 'dev-a' })).toBe(12);
    expect(sampleValue(metrics, 'flotilla_device_outbox_bytes', { device: 'dev-a' })).toBe(3400);
    expect(sampleValue(metrics, 'flotilla_device_outbox_dropped', { device: 'dev-a' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_mqtt_connections_total', { outcome: 'admitted' })).toBe(25);
    expect(sampleValue(metrics, 'flotilla_mqtt_connections_total', { outcome: 'delayed' })).toBe(15);
    expect(sampleValue(metrics, 'flotilla_mqtt_connections_total', { outcome: 'refused' })).toBe(7);
    expect(sampleValue(metrics, 'flotilla_mqtt_connections_total', { outcome: 'refused_per_address' })).toBe(4);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_dropped_total', { channel: 'state', reason: 'payload_too_large' })).toBe(2);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_dropped_total', { channel: 'other', reason: 'topic_too_long' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_mqtt_connections_waiting')).toBe(2);
    // Only where the device has a thermal zone.
    expect(labelSets(metrics, 'flotilla_device_temperature_celsius')).toEqual([{ device: 'dev-a' }]);
    expect(sampleValue(metrics, 'flotilla_device_temperature_celsius', { device: 'dev-a' })).toBe(51.5);

    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'running' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'failed' })).toBe(2);
    // Phases no device reports are there as 0.
    expect(labelSets(metrics, 'flotilla_app_devices')).toHaveLength(APP_PHASE_LABELS.length);
    expect(sampleValue(metrics, 'flotilla_agent_version_devices', { version: '0.2.0' })).toBe(3);
    expect(sampleValue(metrics, 'flotilla_agent_version_devices', { version: '0.3.0' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_agent_upgrades', { phase: 'rolled-back' })).toBe(2);
    expect(labelSets(metrics, 'flotilla_agent_upgrades')).toHaveLength(AGENT_UPGRADE_PHASES.length);
    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'rolled-back' })).toBe(0);
    expect(sampleValue(metrics, 'flotilla_job_executions', { state: 'succeeded' })).toBe(7);
    expect(sampleValue(metrics, 'flotilla_job_executions', { state: 'expired' })).toBe(3);
    // States and phases with nothing in them are there as 0.
    expect(sampleValue(metrics, 'flotilla_job_executions', { state: 'timed-out' })).toBe(0);
    expect(labelSets(metrics, 'flotilla_job_executions')).toHaveLength(JOB_EXECUTION_STATES.length);
    expect(sampleValue(metrics, 'flotilla_jobs', { phase: 'aborted' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_jobs', { phase: 'canceled' })).toBe(0);
    expect(labelSets(metrics, 'flotilla_jobs')).toHaveLength(JOB_PHASES.length);

    expect(family(metrics, 'flotilla_mqtt_messages_received_total')?.type).toBe('COUNTER');
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_received_total', { channel: 'metrics' })).toBe(10);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_received_total', { channel: 'state' })).toBe(2);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_sent_total', { channel: 'metrics' })).toBe(20);
    expect(sampleValue(metrics, 'flotilla_mqtt_clients_connected')).toBe(5);

    expect(sampleValue(metrics, 'flotilla_telemetry_ingest_lag_seconds')).toBe(0.25);
    expect(sampleValue(metrics, 'flotilla_telemetry_stored_total', { kind: 'logs' })).toBe(120);
    expect(sampleValue(metrics, 'flotilla_telemetry_stored_total', { kind: 'metrics' })).toBe(30);
    expect(sampleValue(metrics, 'flotilla_telemetry_stored_total', { kind: 'events' })).toBe(4);
    expect(sampleValue(metrics, 'flotilla_telemetry_dropped_total')).toBe(3);

    expect(family(metrics, 'flotilla_device_link_bytes_total')?.type).toBe('COUNTER');
    expect(sampleValue(metrics, 'flotilla_device_link_bytes_total', { device: 'dev-a', direction: 'in' })).toBe(52_000);
    expect(sampleValue(metrics, 'flotilla_device_link_bytes_total', { device: 'dev-a', direction: 'out' })).toBe(4_100);
    expect(sampleValue(metrics, 'flotilla_device_link_bytes_total', { device: 'dev-b', direction: 'in' })).toBe(7);
  });

  it('reads the sources at every scrape: values follow, vanished devices and apps leave no series behind', async () => {
    const sources = new FakeSources();
    const registry = createPrometheusRegistry(sources, sources, { processMetrics: false });
    await registry.metrics();

    sources.deviceList = [{ id: 'dev-a', online: false }];
    sources.samples = [sample('dev-a', { cpuPercent: 99 })];
    sources.phases = [];
    sources.in = { metrics: 11, state: 2 };
    const metrics = parseMetrics(await registry.metrics());

    expect(sampleValue(metrics, 'flotilla_devices_online')).toBe(0);
    expect(labelSets(metrics, 'flotilla_device_online')).toEqual([{ device: 'dev-a' }]);
    expect(labelSets(metrics, 'flotilla_device_cpu_percent')).toEqual([{ device: 'dev-a' }]);
    expect(sampleValue(metrics, 'flotilla_device_cpu_percent', { device: 'dev-a' })).toBe(99);
    expect(labelSets(metrics, 'flotilla_app_devices')).toEqual([]);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_received_total', { channel: 'metrics' })).toBe(11);
    // One read of the device list per scrape fills all three device series.
    expect(sources.reads).toBe(2);
    // One read of the devices' reports per scrape fills the agent and image download series.
    expect(sources.reportReads).toBe(2);
  });

  it("sums the devices' image downloads over the fleet, and counts devices per download state, none per device", async () => {
    const sources = new FakeSources();
    const metrics = await scrapeOnce(sources);
    expect(sampleValue(metrics, 'flotilla_image_download_bytes')).toBe(12_000_000);
    expect(sampleValue(metrics, 'flotilla_image_download_reused_bytes')).toBe(3_000_000);
    expect(sampleValue(metrics, 'flotilla_image_download_resent_bytes')).toBe(2000);
    expect(sampleValue(metrics, 'flotilla_image_downloads_completed')).toBe(4);
    expect(sampleValue(metrics, 'flotilla_image_download_agents')).toBe(2);
    // A device counts once per state, however many of its images are in it; every state has a series.
    expect(labelSets(metrics, 'flotilla_image_download_devices').map((l) => l.state)).toEqual([...PENDING_IMAGE_STATES]);
    expect(sampleValue(metrics, 'flotilla_image_download_devices', { state: 'downloading' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_image_download_devices', { state: 'waiting' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_image_download_devices', { state: 'failed' })).toBe(0);

    // Read again at the next scrape: a device that finished leaves the count.
    sources.reports = sources.reports.map((state) => (state?.deviceId === 'dev-a' ? { ...state, images: [] } : state));
    const next = await scrapeOnce(sources);
    expect(sampleValue(next, 'flotilla_image_download_devices', { state: 'downloading' })).toBe(0);
  });

  it('includes the Node process metrics under flotilla_hub_', async () => {
    const metrics = await scrapeOnce(new FakeSources(), true);
    expect(sampleValue(metrics, 'flotilla_hub_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(family(metrics, 'flotilla_hub_nodejs_eventloop_lag_seconds')?.type).toBe('GAUGE');
  });

  it('exports exactly the series docs/telemetry.md documents, with the documented types and labels', async () => {
    const doc = readFileSync(join(import.meta.dirname, '../../docs/telemetry.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `(flotilla_[a-z0-9_]+)` *\| (gauge|counter) *\|([^|]*)\|/gm)].map((m) => ({
      name: m[1]!,
      type: m[2]!.toUpperCase(),
      labels: [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!).sort(),
    }));
    expect(rows.length).toBeGreaterThan(15);

    const metrics = await scrapeOnce(new FakeSources());
    const exported = metrics.map((f) => ({
      name: f.name,
      type: f.type,
      labels: [...new Set(f.metrics.flatMap((m) => Object.keys(m.labels ?? {})))].sort(),
    }));
    expect(exported.sort((a, b) => a.name.localeCompare(b.name))).toEqual(rows.sort((a, b) => a.name.localeCompare(b.name)));
  });
});

describe('withEveryPhase', () => {
  it('adds every phase no device reports as 0, per app, and sums repeated pairs', () => {
    const filled = withEveryPhase([
      { app: 'thermo', phase: 'running', devices: 2 },
      { app: 'thermo', phase: 'offline', devices: 1 },
      { app: 'cam', phase: 'failed', devices: 2 },
      { app: 'cam', phase: 'failed', devices: 1 },
    ]);
    const of = (app: string) => Object.fromEntries(filled.filter((c) => c.app === app).map((c) => [c.phase, c.devices]));
    expect(of('thermo')).toEqual({
      pending: 0,
      pulling: 0,
      starting: 0,
      running: 2,
      stopping: 0,
      failed: 0,
      'rolled-back': 0,
      unknown: 0,
      offline: 1,
    });
    expect(of('cam')).toMatchObject({ failed: 3, running: 0, offline: 0 });
    expect(filled).toHaveLength(2 * APP_PHASE_LABELS.length);
  });

  it('is empty when no device reports an app', () => {
    expect(withEveryPhase([])).toEqual([]);
  });
});
