/**
 * The hub's Prometheus exporter: a prom-client registry whose fleet series are
 * read from narrow sources at scrape time. Nothing here runs per message: the
 * `collect()` callbacks reset each metric and fill it from the sources, so a
 * device that disappears from the sources disappears from the next scrape.
 *
 * Every series is documented in docs/telemetry.md; change both together.
 */
import { Counter, collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import {
  APP_PHASES,
  JOB_EXECUTION_STATES,
  JOB_PHASES,
  type JobExecutionState,
  type JobPhase,
  type MetricsSample,
} from '../../shared/index.js';
import type { DeviceLinkBytes } from '../mqtt/link-bytes.js';
import type { DeviceReportCounts } from './device-report-counts.js';
import { type ImageDownloadCounts, PENDING_IMAGE_STATES } from './image-download-counts.js';
import { registerLinkBytesMetrics } from './link-bytes-metrics.js';
import { labels, SeriesGauge, SeriesRegistry } from './series-gauge.js';

/** The values of the `phase` label: what devices report, and `offline`. */
export const APP_PHASE_LABELS = [...APP_PHASES, 'offline'] as const;

export interface AppPhaseCount {
  app: string;
  /** One of APP_PHASES, or `offline` for a device that is offline now. */
  phase: string;
  devices: number;
}

export const INGEST_KINDS = ['logs', 'metrics', 'events'] as const;
export type IngestKind = (typeof INGEST_KINDS)[number];

export interface IngestStats {
  /** How long the oldest message of the newest stored batch waited to be stored, in seconds. */
  lagSeconds: number;
  /** Messages stored since the hub started (a log batch counts once; duplicates do not count). */
  stored: Record<IngestKind, number>;
  /** Messages dropped before storage (invalid) since the hub started. */
  dropped: number;
}

/** What the exporter reads about the fleet; the hub builds it from its stores. */
export interface FleetSources {
  devices(): Promise<{ id: string; online: boolean }[]>;
  /** The newest metrics sample of each device that sent one. */
  latestMetrics(): Iterable<MetricsSample>;
  /** Devices per app and phase (APP_PHASE_LABELS); pairs with no device may be left out. */
  appPhaseCounts(): Promise<AppPhaseCount[]>;
  ingest(): IngestStats;
  /**
   * What the devices' state reports add up to: agent versions and upgrade phases, image downloads
   * (device-report-counts.ts). Read once per scrape for all of their series.
   */
  deviceReports?(): Promise<DeviceReportCounts>;
  /** Executions of every stored job by state, and jobs by phase (broker/jobs/). */
  jobCounts?(): Promise<JobFleetCounts>;
}

export interface JobFleetCounts {
  executions: Record<JobExecutionState, number>;
  jobs: Record<JobPhase, number>;
}

/** What the exporter reads about the embedded broker (broker/mqtt/traffic.ts). */
/** One device's remote-access session bytes since the hub started. */
export interface SessionDeviceBytes {
  device: string;
  bytesUp: number;
  bytesDown: number;
}

export interface BrokerSources {
  /** Messages clients published to the broker since start, per channel. */
  received(): Readonly<Record<string, number>>;
  /** Messages the broker delivered to subscribers since start, per channel. */
  sent(): Readonly<Record<string, number>>;
  connectedClients(): number;
  /** Connection admission (broker/mqtt/admission.ts), when the hub paces connections. */
  admission?(): { admitted: number; delayed: number; refused: number; refusedPerAddress?: number; waiting: number };
  /** Messages acknowledged and dropped over a per-topic cap (broker/mqtt/payload-limits.ts), by channel and reason. */
  dropped?(): { channel: string; reason: string; count: number }[];
  /** Remote-access sessions the hub relays (broker/remote/session-registry.ts): open now, and DATA payload bytes since start. */
  sessions?(): { open: number; bytesUp: number; bytesDown: number; devices: SessionDeviceBytes[] };
  /** Each device's MQTT bytes in and out since start (broker/mqtt/link-bytes.ts). */
  linkBytes?(): Iterable<DeviceLinkBytes>;
}

export interface ExporterOptions {
  /** prom-client's default Node process metrics, prefixed `flotilla_hub_` (default true). */
  processMetrics?: boolean;
}

export const PROCESS_METRICS_PREFIX = 'flotilla_hub_';

export function createPrometheusRegistry(fleet: FleetSources, broker: BrokerSources, options: ExporterOptions = {}): Registry {
  const registry = new SeriesRegistry();
  const registers = [registry];
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });

  // Where one source read fills several metrics, the collect()/fill sits on the
  // one registered first: the registry calls get() in registration order, so
  // the others are filled before they are read, all in the same scrape (the
  // unit test checks values on the first scrape).

  // ---- devices ------------------------------------------------------------------------
  new Gauge({
    name: 'flotilla_devices_known',
    help: 'Devices the hub has ever heard from.',
    registers,
    async collect() {
      const list = await fleet.devices();
      this.set(list.length);
      devicesOnline.set(list.filter((d) => d.online).length);
      online.reset();
      for (const d of list) online.add(labels({ device: d.id }), d.online ? 1 : 0);
    },
  });
  const devicesOnline = new Gauge({ name: 'flotilla_devices_online', help: 'Devices online now.', registers });
  const online = registry.register(new SeriesGauge('flotilla_device_online', '1 while the device is online, 0 otherwise.'));

  // ---- per-device resources from the newest metrics sample ----------------------------
  // Thousands of series per scrape: SeriesGauges (series-gauge.ts) take their values
  // as a list and are written out in one pass, each device's labels rendered once.
  const device = (name: string, help: string, fill?: () => void) => registry.register(new SeriesGauge(name, help, fill));
  // One fill sets every per-device gauge, so one scrape reads the sources once.
  const sampleTime = device('flotilla_device_metrics_timestamp_seconds', 'When the newest metrics sample was taken (Unix time).', () => {
    const all = [
      sampleTime,
      cpu,
      load1,
      memUsed,
      memAvailable,
      memTotal,
      diskUsed,
      diskFree,
      diskTotal,
      temperature,
      uptime,
      containers,
      outboxMessages,
      outboxBytes,
      outboxDropped,
    ];
    for (const gauge of all) gauge.reset();
    for (const sample of fleet.latestMetrics()) {
      const of = labels({ device: sample.device });
      const { host } = sample;
      sampleTime.add(of, Date.parse(sample.ts) / 1000);
      cpu.add(of, host.cpuPercent);
      load1.add(of, host.load1);
      memUsed.add(of, host.memUsedBytes);
      memAvailable.add(of, host.memAvailableBytes);
      memTotal.add(of, host.memTotalBytes);
      for (const disk of host.disks) {
        const diskLabels = labels({ device: sample.device, disk: disk.name });
        diskUsed.add(diskLabels, disk.usedBytes);
        diskFree.add(diskLabels, disk.freeBytes);
        diskTotal.add(diskLabels, disk.totalBytes);
      }
      if (host.temperatureC !== undefined) temperature.add(of, host.temperatureC);
      uptime.add(of, host.uptimeSeconds);
      containers.add(of, sample.containers.length);
      const outbox = sample.agent?.outbox;
      if (outbox) {
        outboxMessages.add(of, outbox.messages);
        outboxBytes.add(of, outbox.bytes);
        outboxDropped.add(of, outbox.dropped);
      }
    }
  });
  const cpu = device('flotilla_device_cpu_percent', 'Host CPU busy, percent of all cores together (0-100).');
  const load1 = device('flotilla_device_load1', 'Host load average over 1 minute.');
  const memUsed = device('flotilla_device_memory_used_bytes', 'Host memory in use.');
  const memAvailable = device('flotilla_device_memory_available_bytes', 'Host memory available to new processes (MemAvailable).');
  const memTotal = device('flotilla_device_memory_total_bytes', 'Host memory installed.');
  const diskUsed = device('flotilla_device_disk_used_bytes', 'Disk space used.');
  const diskFree = device('flotilla_device_disk_free_bytes', 'Disk space free.');
  const diskTotal = device('flotilla_device_disk_total_bytes', 'Disk size.');
  const temperature = device('flotilla_device_temperature_celsius', 'Hottest thermal zone, where the device has one.');
  const uptime = device('flotilla_device_uptime_seconds', 'Host uptime.');
  const containers = device('flotilla_device_containers', 'Managed containers in the newest sample.');
  const outboxMessages = device('flotilla_device_outbox_messages', "Messages waiting in the agent's outbox for the hub.");
  const outboxBytes = device('flotilla_device_outbox_bytes', "Bytes waiting in the agent's outbox for the hub.");
  const outboxDropped = device(
    'flotilla_device_outbox_dropped',
    "Messages the agent's outbox dropped (full or expired) since the agent started.",
  );

  // ---- apps -------------------------------------------------------------------------------
  new Gauge({
    name: 'flotilla_app_devices',
    help: 'Devices reporting the app, by the phase they report (offline: last reported by a device that is offline now).',
    labelNames: ['app', 'phase'],
    registers,
    async collect() {
      const counts = await fleet.appPhaseCounts();
      this.reset();
      for (const { app, phase, devices } of withEveryPhase(counts)) this.set({ app, phase }, devices);
    },
  });

  // ---- what devices report of themselves: their agent (flotilla agent upgrade) and image downloads
  // (docs/image-downloads.md), from one read of their reports per scrape.
  const deviceReports = fleet.deviceReports?.bind(fleet);
  if (deviceReports) {
    new Gauge({
      name: 'flotilla_agent_version_devices',
      help: 'Devices by the agent version they last reported.',
      labelNames: ['version'],
      registers,
      async collect() {
        const { agents, imageDownloads } = await deviceReports();
        this.reset();
        for (const { version, devices } of agents.versions) this.set({ version }, devices);
        agentUpgrades.reset();
        for (const { phase, devices } of agents.upgrades) agentUpgrades.set({ phase }, devices);
        fillImageDownloads(imageDownloads);
      },
    });
    const agentUpgrades = new Gauge({
      name: 'flotilla_agent_upgrades',
      help: 'Devices whose agent reports an upgrade of itself, by phase (downloading … confirming under way; failed; rolled-back).',
      labelNames: ['phase'],
      registers,
    });
    const fillImageDownloads = imageDownloadGauges(registers);
  }

  // ---- jobs (flotilla run) ------------------------------------------------------------------
  const jobCounts = fleet.jobCounts;
  if (jobCounts) {
    // Every state and phase has a series, 0 included, so `failed > 0` has one to alert on before the first failure.
    new Gauge({
      name: 'flotilla_job_executions',
      help: 'Executions of the jobs stored on the hub, by state (queued, running, succeeded, failed, timed-out, canceled, expired).',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await jobCounts();
        this.reset();
        for (const state of JOB_EXECUTION_STATES) this.set({ state }, counts.executions[state] ?? 0);
        jobs.reset();
        for (const phase of JOB_PHASES) jobs.set({ phase }, counts.jobs[phase] ?? 0);
      },
    });
    const jobs = new Gauge({
      name: 'flotilla_jobs',
      help: 'Jobs stored on the hub, by phase (active, complete, canceled, aborted).',
      labelNames: ['phase'],
      registers,
    });
  }

  // ---- MQTT broker --------------------------------------------------------------------
  const counterFrom = (name: string, help: string, read: () => Readonly<Record<string, number>>) =>
    new Counter({
      name,
      help,
      labelNames: ['channel'],
      registers,
      collect() {
        this.reset();
        for (const [channel, count] of Object.entries(read())) this.inc({ channel }, count);
      },
    });
  counterFrom('flotilla_mqtt_messages_received_total', 'Messages clients published to the broker, by channel.', () => broker.received());
  counterFrom('flotilla_mqtt_messages_sent_total', 'Messages the broker delivered to subscribers, by channel.', () => broker.sent());
  new Gauge({
    name: 'flotilla_mqtt_clients_connected',
    help: 'MQTT clients connected now (TCP and WebSocket).',
    registers,
    collect() {
      this.set(broker.connectedClients());
    },
  });

  const admission = broker.admission;
  if (admission) {
    new Counter({
      name: 'flotilla_mqtt_connections_total',
      help: 'MQTT connections through admission: admitted at once, admitted after waiting for a slot (delayed), or refused.',
      labelNames: ['outcome'],
      registers,
      collect() {
        const counts = admission();
        this.reset();
        this.inc({ outcome: 'admitted' }, counts.admitted - counts.delayed);
        this.inc({ outcome: 'delayed' }, counts.delayed);
        this.inc({ outcome: 'refused' }, counts.refused);
        if (counts.refusedPerAddress !== undefined) this.inc({ outcome: 'refused_per_address' }, counts.refusedPerAddress);
        waiting.set(counts.waiting);
      },
    });
    const waiting = new Gauge({
      name: 'flotilla_mqtt_connections_waiting',
      help: 'MQTT connections held now, waiting for an admission slot.',
      registers,
    });
  }

  const brokerDropped = broker.dropped;
  if (brokerDropped) {
    new Counter({
      name: 'flotilla_mqtt_messages_dropped_total',
      help: 'Messages acknowledged and dropped by the broker over a per-topic limit, by channel and reason.',
      labelNames: ['channel', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const { channel, reason, count } of brokerDropped()) this.inc({ channel, reason }, count);
      },
    });
  }

  const sessions = broker.sessions;
  if (sessions) {
    new Gauge({
      name: 'flotilla_sessions_open',
      help: 'Remote-access sessions (exec, shell, port-forward) the hub relays now.',
      registers,
      collect() {
        const counts = sessions();
        this.set(counts.open);
        sessionBytes.reset();
        sessionBytes.inc({ direction: 'up' }, counts.bytesUp);
        sessionBytes.inc({ direction: 'down' }, counts.bytesDown);
        deviceSessionBytes.reset();
        for (const { device, bytesUp, bytesDown } of counts.devices) {
          deviceSessionBytes.inc({ device, direction: 'up' }, bytesUp);
          deviceSessionBytes.inc({ device, direction: 'down' }, bytesDown);
        }
      },
    });
    const sessionBytes = new Counter({
      name: 'flotilla_session_bytes_total',
      help: 'Session data bytes the hub relayed: up (device to opener) and down.',
      labelNames: ['direction'],
      registers,
    });
    const deviceSessionBytes = new Counter({
      name: 'flotilla_device_session_bytes_total',
      help: "Session data bytes the hub relayed for one device since it started: up (from the device) and down; part of the device's link traffic.",
      labelNames: ['device', 'direction'],
      registers,
    });
  }

  registerLinkBytesMetrics(registry, broker.linkBytes);

  // ---- telemetry ingest ---------------------------------------------------------------
  new Gauge({
    name: 'flotilla_telemetry_ingest_lag_seconds',
    help: 'How long the oldest message of the newest stored batch waited to be stored.',
    registers,
    collect() {
      const stats = fleet.ingest();
      this.set(stats.lagSeconds);
      stored.reset();
      for (const kind of INGEST_KINDS) stored.inc({ kind }, stats.stored[kind]);
      dropped.reset();
      dropped.inc(stats.dropped);
    },
  });
  const stored = new Counter({
    name: 'flotilla_telemetry_stored_total',
    help: 'Telemetry messages stored (a log batch counts once).',
    labelNames: ['kind'],
    registers,
  });
  const dropped = new Counter({
    name: 'flotilla_telemetry_dropped_total',
    help: 'Telemetry messages dropped before storage (invalid).',
    registers,
  });

  return registry;
}

/**
 * Adds the phases no device reports, as 0, for every app in `counts`, so a
 * "failed > 0" alert has a series to evaluate before the first failure.
 */
export function withEveryPhase(counts: readonly AppPhaseCount[]): AppPhaseCount[] {
  const byApp = new Map<string, Map<string, number>>();
  for (const { app, phase, devices } of counts) {
    const phases = byApp.get(app) ?? new Map<string, number>(APP_PHASE_LABELS.map((p) => [p, 0]));
    byApp.set(app, phases);
    phases.set(phase, (phases.get(phase) ?? 0) + devices);
  }
  return [...byApp].flatMap(([app, phases]) => [...phases].map(([phase, devices]) => ({ app, phase, devices })));
}

/**
 * The fleet's image downloads: sums of what devices report, no series per device or image. Returns
 * the fill, which the caller runs in the collect() of a metric registered before these.
 */
function imageDownloadGauges(registers: Registry[]): (counts: ImageDownloadCounts) => void {
  const bytes = new Gauge({
    name: 'flotilla_image_download_bytes',
    help: "Image bytes the devices' agents received from registries, resent ones included (sum of their reported totals).",
    registers,
  });
  const reused = new Gauge({
    name: 'flotilla_image_download_reused_bytes',
    help: 'Layer bytes devices did not download because their engine already had the layers (sum of their reported totals).',
    registers,
  });
  const resent = new Gauge({
    name: 'flotilla_image_download_resent_bytes',
    help: 'Image bytes devices received more than once: breaks that could not resume, corrupted blobs (sum of their reported totals).',
    registers,
  });
  const completed = new Gauge({
    name: 'flotilla_image_downloads_completed',
    help: "Images the devices' agents downloaded to the end (sum of their reported totals).",
    registers,
  });
  const agents = new Gauge({
    name: 'flotilla_image_download_agents',
    help: 'Devices whose agent downloads images itself (it reports download totals), and so can prefetch.',
    registers,
  });
  const devices = new Gauge({
    name: 'flotilla_image_download_devices',
    help: 'Devices with an image in that state on its way: queued, downloading, loading, waiting (budget or backoff), failed.',
    labelNames: ['state'],
    registers,
  });
  return (counts) => {
    bytes.set(counts.bytes);
    reused.set(counts.reusedBytes);
    resent.set(counts.resentBytes);
    completed.set(counts.images);
    agents.set(counts.agents);
    devices.reset();
    for (const state of PENDING_IMAGE_STATES) devices.set({ state }, counts.devices[state]);
  };
}
