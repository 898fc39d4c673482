/**
 * `GET /metrics` on a real hub, parsed by a real Prometheus text-format
 * parser, while real mqtt.js clients act as devices and dashboards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, metricsSample } from '../support/fixtures.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { family, labelSets, type ParsedFamily, sampleValue, scrape } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';

const ROOT = 'flotilla/v1/devices';

describe('GET /metrics', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function hub(options: Parameters<typeof startTestHub>[0] = {}): Promise<TestHub> {
    const started = await startTestHub(options);
    return cleanup.add('hub', () => started.close(), started);
  }

  /** Scrapes until `ready` holds, since the dispatcher stores what devices send asynchronously. */
  async function scrapeUntil(h: TestHub, what: string, ready: (m: ParsedFamily[]) => boolean): Promise<ParsedFamily[]> {
    return waitFor(what, async () => {
      const { families } = await scrape(h.httpUrl);
      return ready(families) ? families : undefined;
    });
  }

  it('serves the Prometheus text format with the fleet, app and broker series and the hub’s process metrics', async () => {
    const h = await hub();
    const { contentType, families } = await scrape(h.httpUrl);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(families, 'flotilla_devices_known')).toBe(0);
    expect(sampleValue(families, 'flotilla_devices_online')).toBe(0);
    // The hub publishes in process: it is no client of its own broker.
    expect(sampleValue(families, 'flotilla_mqtt_clients_connected')).toBe(0);
    expect(sampleValue(families, 'flotilla_telemetry_ingest_lag_seconds')).toBe(0);
    expect(family(families, 'flotilla_hub_process_resident_memory_bytes')?.type).toBe('GAUGE');
    expect(sampleValue(families, 'flotilla_hub_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts devices online and apps by phase from what devices publish, and follows a device going offline', async () => {
    const h = await hub();
    const devices = ['dev-1', 'dev-2'];
    const clients = new Map<string, Awaited<ReturnType<typeof connectClient>>>();
    for (const id of devices) {
      const client = await connectClient(h.mqttUrl, {
        clientId: id,
        will: {
          topic: `${ROOT}/${id}/status`,
          payload: Buffer.from(JSON.stringify({ online: false, at: new Date().toISOString() })),
          qos: 1,
          retain: true,
        },
      });
      cleanup.add(id, () => closeClient(client));
      clients.set(id, client);
      await client.publishAsync(`${ROOT}/${id}/status`, JSON.stringify({ online: true, at: new Date().toISOString() }), {
        qos: 1,
        retain: true,
      });
    }
    const app = (phase: 'running' | 'failed') => ({ name: 'thermo', revision: 3, phase, containers: [] });
    await clients
      .get('dev-1')!
      .publishAsync(`${ROOT}/dev-1/state`, JSON.stringify(deviceState('dev-1', { apps: [app('running')] })), { qos: 1 });
    await clients
      .get('dev-2')!
      .publishAsync(`${ROOT}/dev-2/state`, JSON.stringify(deviceState('dev-2', { apps: [app('failed')] })), { qos: 1 });

    let metrics = await scrapeUntil(
      h,
      'both devices online with their apps',
      (m) => sampleValue(m, 'flotilla_app_devices', { app: 'thermo', phase: 'failed' }) === 1,
    );
    expect(sampleValue(metrics, 'flotilla_devices_known')).toBe(2);
    expect(sampleValue(metrics, 'flotilla_devices_online')).toBe(2);
    expect(labelSets(metrics, 'flotilla_device_online')).toEqual([{ device: 'dev-1' }, { device: 'dev-2' }]);
    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'running' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'pulling' })).toBe(0);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_received_total', { channel: 'status' })).toBe(2);
    expect(sampleValue(metrics, 'flotilla_mqtt_messages_received_total', { channel: 'state' })).toBe(2);
    expect(sampleValue(metrics, 'flotilla_mqtt_clients_connected')).toBe(2);

    // dev-2's link drops: its will says offline, and its app's phase is no longer known.
    clients.get('dev-2')!.stream.destroy();
    metrics = await scrapeUntil(h, 'dev-2 offline', (m) => sampleValue(m, 'flotilla_device_online', { device: 'dev-2' }) === 0);
    expect(sampleValue(metrics, 'flotilla_devices_online')).toBe(1);
    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'failed' })).toBe(0);
    expect(sampleValue(metrics, 'flotilla_app_devices', { app: 'thermo', phase: 'offline' })).toBe(1);
  });

  it('counts messages in once per publish and out once per subscriber that receives them', async () => {
    const h = await hub();
    const subscribers = [await connectClient(h.mqttUrl), await connectClient(h.wsUrl)];
    const inboxes = subscribers.map((s) => new Inbox(s));
    for (const s of subscribers) {
      cleanup.add('subscriber', () => closeClient(s));
      // Not a Flotilla topic: nobody else (the dispatcher) subscribes to it.
      await s.subscribeAsync('lab/probe', { qos: 1 });
    }
    const publisher = await connectClient(h.mqttUrl);
    cleanup.add('publisher', () => closeClient(publisher));
    for (let i = 0; i < 3; i++) await publisher.publishAsync('lab/probe', JSON.stringify({ i }), { qos: 1 });
    for (const inbox of inboxes) await inbox.waitFor('lab/probe', (p: { i: number }) => p.i === 2);

    const { families } = await scrape(h.httpUrl);
    expect(sampleValue(families, 'flotilla_mqtt_messages_received_total', { channel: 'other' })).toBe(3);
    expect(sampleValue(families, 'flotilla_mqtt_messages_sent_total', { channel: 'other' })).toBe(6);
    expect(sampleValue(families, 'flotilla_mqtt_messages_received_total', { channel: 'metrics' })).toBe(0);
  });

  it("counts agent versions and sums image downloads from the devices' state reports, read in the same scrape", async () => {
    const h = await hub();
    const since = new Date().toISOString();
    const image = (name: string, state: 'downloading' | 'failed' | 'present') =>
      ({ image: name, app: 'thermo', revision: 1, state, via: 'agent', bytes: 10, since }) as const;
    const reports = [
      deviceState('dev-d1', {
        host: { hostname: 'd1', os: 'linux', arch: 'arm64', kernel: '6.1', agentVersion: '0.4.0' },
        downloads: { bytes: 5_000, reusedBytes: 1_000, resentBytes: 200, images: 3, since },
        images: [image('reg/a:1', 'downloading'), image('reg/b:1', 'failed'), image('reg/c:1', 'downloading')],
      }),
      deviceState('dev-d2', {
        host: { hostname: 'd2', os: 'linux', arch: 'arm64', kernel: '6.1', agentVersion: '0.4.0' },
        downloads: { bytes: 7_000, reusedBytes: 0, resentBytes: 0, images: 1, since },
        images: [image('reg/a:1', 'present')],
      }),
      // An agent that leaves downloads to the engine: no totals, no image lines.
      deviceState('dev-d3'),
    ];
    for (const report of reports) {
      const client = await connectClient(h.mqttUrl, { clientId: report.deviceId });
      cleanup.add(report.deviceId, () => closeClient(client));
      await client.publishAsync(`${ROOT}/${report.deviceId}/state`, JSON.stringify(report), { qos: 1 });
    }

    const metrics = await scrapeUntil(
      h,
      'the three reports',
      (m) => sampleValue(m, 'flotilla_agent_version_devices', { version: '0.1.0' }) === 1,
    );
    expect(sampleValue(metrics, 'flotilla_agent_version_devices', { version: '0.4.0' })).toBe(2);
    expect(sampleValue(metrics, 'flotilla_image_download_agents')).toBe(2);
    expect(sampleValue(metrics, 'flotilla_image_download_bytes')).toBe(12_000);
    expect(sampleValue(metrics, 'flotilla_image_download_reused_bytes')).toBe(1_000);
    expect(sampleValue(metrics, 'flotilla_image_download_resent_bytes')).toBe(200);
    expect(sampleValue(metrics, 'flotilla_image_downloads_completed')).toBe(4);
    expect(sampleValue(metrics, 'flotilla_image_download_devices', { state: 'downloading' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_image_download_devices', { state: 'failed' })).toBe(1);
    expect(sampleValue(metrics, 'flotilla_image_download_devices', { state: 'queued' })).toBe(0);
  });

  it('exports per-device resources from the newest metrics sample a device published, and the ingest counters', async () => {
    const h = await hub();
    const device = await connectClient(h.mqttUrl, { clientId: 'dev-m' });
    cleanup.add('device', () => closeClient(device));
    const topic = `${ROOT}/dev-m/metrics`;
    await device.publishAsync(topic, JSON.stringify(metricsSample(1, { ts: '2025-06-01T12:00:00.000Z' })), { qos: 1 });
    const newest = metricsSample(2, { ts: '2025-06-01T12:00:10.000Z' });
    newest.host.cpuPercent = 42;
    await device.publishAsync(topic, JSON.stringify(newest), { qos: 1 });

    const families = await scrapeUntil(
      h,
      'the newest sample',
      (m) => sampleValue(m, 'flotilla_device_cpu_percent', { device: 'dev-m' }) === 42,
    );
    expect(sampleValue(families, 'flotilla_device_metrics_timestamp_seconds', { device: 'dev-m' })).toBe(Date.parse(newest.ts) / 1000);
    expect(sampleValue(families, 'flotilla_device_memory_used_bytes', { device: 'dev-m' })).toBe(newest.host.memUsedBytes);
    expect(sampleValue(families, 'flotilla_device_memory_total_bytes', { device: 'dev-m' })).toBe(newest.host.memTotalBytes);
    expect(sampleValue(families, 'flotilla_device_disk_used_bytes', { device: 'dev-m', disk: 'root' })).toBe(
      newest.host.disks[0]!.usedBytes,
    );
    expect(sampleValue(families, 'flotilla_device_temperature_celsius', { device: 'dev-m' })).toBe(48.5);
    expect(sampleValue(families, 'flotilla_device_containers', { device: 'dev-m' })).toBe(1);
    expect(sampleValue(families, 'flotilla_telemetry_stored_total', { kind: 'metrics' })).toBe(2);
    expect(sampleValue(families, 'flotilla_telemetry_stored_total', { kind: 'logs' })).toBe(0);
    expect(sampleValue(families, 'flotilla_mqtt_messages_received_total', { channel: 'metrics' })).toBe(2);
    expect(sampleValue(families, 'flotilla_telemetry_ingest_lag_seconds')).toBeGreaterThanOrEqual(0);
  });
});
