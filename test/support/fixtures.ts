/** Valid protocol documents that tests start from and then bend. */
import type { AppliedApp, DesiredApp, DesiredState, DeviceState, LogLine, LogRecord, Metrics } from '../../shared/index.js';

export function deviceState(deviceId: string, overrides: Partial<DeviceState> = {}): DeviceState {
  return {
    deviceId,
    observedRevision: 0,
    reportedAt: new Date().toISOString(),
    host: { hostname: `${deviceId}.local`, os: 'linux', arch: 'arm64', kernel: '6.1.0-rpi7', agentVersion: '0.1.0' },
    labels: { site: 'roof' },
    apps: [],
    ...overrides,
  };
}

/** A small valid app spec selecting devices by label. */
export function appSpec(name: string, selectors: Record<string, string> = { site: 'roof' }, image = 'registry.local/sensor-gateway:1.4.2') {
  return {
    name,
    scheduling: { selectors },
    spec: {
      containers: [{ name: 'gateway', image, ports: ['8080:80'], env: [{ name: 'LOG_LEVEL', value: 'info' }] }],
    },
  };
}

/** A valid metrics sample of a small ARM board running one container. */
export function metricsSample(seq: number, overrides: Partial<Metrics> = {}): Metrics {
  const gib = 1024 ** 3;
  return {
    seq,
    ts: new Date().toISOString(),
    host: {
      cpuPercent: 12.5,
      cpuCount: 4,
      load1: 0.4,
      load5: 0.3,
      load15: 0.2,
      memTotalBytes: 4 * gib,
      memAvailableBytes: 3 * gib,
      memUsedBytes: 1 * gib,
      disks: [{ name: 'root', path: '/', usedBytes: 10 * gib, freeBytes: 20 * gib, totalBytes: 30 * gib }],
      temperatureC: 48.5,
      netRxBytes: 1000,
      netTxBytes: 2000,
      uptimeSeconds: 3600,
    },
    containers: [
      {
        app: 'thermo',
        container: 'probe',
        id: 'c0ffee',
        cpuPercent: 3.5,
        memBytes: 64 * 1024 ** 2,
        netRxBytes: 10,
        netTxBytes: 20,
        blkReadBytes: 0,
        blkWriteBytes: 4096,
        pids: 3,
        restartCount: 0,
      },
    ],
    ...overrides,
  };
}

/** A log line of app `thermo`, container `probe`. */
export function logLine(line: string, overrides: Partial<LogLine> = {}): LogLine {
  return { app: 'thermo', container: 'probe', stream: 'stdout', ts: new Date().toISOString(), line, ...overrides };
}

/** Device dev-1's desired state: app `web`, one container `server` of `image`, no wait once ready unless `update` says otherwise. */
export function webAppDesired(revision: number, image: string, update: DesiredApp['update'] = {}): DesiredState {
  return {
    deviceId: 'dev-1',
    revision,
    issuedAt: new Date().toISOString(),
    apps: [{ name: 'web', revision, containers: [{ name: 'server', image }], update: { minReadySeconds: 0, ...update } }],
  };
}

/** A stored log line as the hub answers it (`logs.query`, a follower's batch): `line <id>` of app web. */
export function logRecord(id: number, device: string): LogRecord {
  return { id, device, app: 'web', container: 'main', stream: 'stdout', ts: '2026-01-01T00:00:00.000Z', line: `line ${id}` };
}

/** One app of an `apps.applyAll` answer, at revision 1 with no devices, secrets or scope unless `fields` say otherwise. */
export function appliedApp(name: string, action: AppliedApp['action'], fields: Partial<AppliedApp> = {}): AppliedApp {
  return {
    name,
    action,
    revision: 1,
    previousRevision: null,
    devices: { count: 0, ids: [] },
    secrets: [],
    scope: null,
    previousScope: null,
    ...fields,
  };
}
