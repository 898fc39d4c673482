/**
 * What the API returns for apps and devices: the same shapes over HTTP and
 * MQTT (types in shared/api/results.ts), built from store rows by pure functions.
 */
import {
  type AppDetail,
  type AppHistory,
  type AppOnDevice,
  type AppRevision,
  type AppSummary,
  type DeviceAgentRollout,
  type DeviceState,
  type DeviceView,
  type IdClash,
  type Labels,
  type OperatorLabels,
  type RevisionSummary,
  summarizeApp,
} from '../../shared/index.js';
import type { StoredApp, StoredRevision } from '../store/apps.js';
import { effectiveLabels, type FleetDeviceRow, type StoredDevice } from '../store/devices.js';
import { matches } from './scheduling.js';

/** What an app's view reads of a device: no desired document, whose opening is a decryption per device. */
export type AppViewDevice = Pick<StoredDevice, 'id' | 'labels' | 'online' | 'state'>;

export function appViewDevice(row: FleetDeviceRow): AppViewDevice {
  return {
    id: row.id,
    labels: effectiveLabels(JSON.parse(row.reported_labels) as Labels, JSON.parse(row.operator_labels) as OperatorLabels),
    online: row.online === 1,
    state: row.state === null ? null : (JSON.parse(row.state) as DeviceState),
  };
}

export function appOnDevices(app: StoredApp, devices: readonly AppViewDevice[]): AppOnDevice[] {
  return devices
    .filter((device) => matches(app.spec.scheduling, device.id, device.labels))
    .map((device) => {
      const reported = device.state?.apps.find((a) => a.name === app.name);
      return {
        id: device.id,
        online: device.online,
        phase: reported?.phase ?? null,
        ...(reported?.message ? { message: reported.message } : {}),
        revision: reported?.revision ?? null,
      };
    });
}

export function appDetail(app: StoredApp, devices: readonly AppViewDevice[]): AppDetail {
  return {
    name: app.name,
    revision: app.revision,
    spec: app.spec,
    createdAt: app.createdAt,
    updatedAt: app.updatedAt,
    devices: appOnDevices(app, devices),
    ...(app.scope !== null ? { scope: app.scope } : {}),
  };
}

export function appSummary(app: StoredApp, devices: readonly AppViewDevice[]): AppSummary {
  return summarizeApp(appDetail(app, devices));
}

/** What the hub knows of a device beyond its row: when its credentials were revoked, a clash over its id. */
export interface DeviceNotes {
  revokedAt?: string | undefined;
  idClash?: IdClash | undefined;
  /** What its agent target's rollout says of it (agent-rollouts.ts deviceRollouts). */
  agentRollout?: DeviceAgentRollout | undefined;
}

export function deviceView(device: StoredDevice, { revokedAt, idClash, agentRollout }: DeviceNotes = {}): DeviceView {
  return {
    id: device.id,
    online: device.online,
    lastSeen: device.lastSeen,
    labels: device.labels,
    operatorLabels: device.operatorLabels,
    reportedLabels: device.reportedLabels,
    desiredRevision: device.desiredRevision,
    observedRevision: device.observedRevision,
    host: device.state?.host ?? null,
    apps: device.state?.apps ?? [],
    ...(device.state?.runtimeError ? { runtimeError: device.state.runtimeError } : {}),
    ...(revokedAt !== undefined ? { revokedAt } : {}),
    ...(idClash !== undefined ? { idClash } : {}),
    ...(device.state?.agentUpgrade ? { agentUpgrade: device.state.agentUpgrade } : {}),
    ...(device.desired?.agent ? { desiredAgentVersion: device.desired.agent.version } : {}),
    ...(agentRollout !== undefined ? { agentRollout } : {}),
    // Without their output, so a fleet's list stays small; jobs.get has it.
    ...(device.state?.jobs?.length ? { jobs: device.state.jobs.map(({ output: _, ...execution }) => execution) } : {}),
    ...(device.state?.images?.length ? { images: device.state.images } : {}),
    ...(device.state?.downloads ? { downloads: device.state.downloads } : {}),
  };
}

/** `apps.history`: the revisions as stored (newest first), each marked current or not. */
export function appHistory(name: string, current: number, revisions: readonly StoredRevision[]): AppHistory {
  return {
    name,
    current,
    items: revisions.map(
      (r): RevisionSummary => ({
        revision: r.revision,
        createdAt: r.createdAt,
        specHash: r.specHash,
        images: r.spec.spec.containers.map((c) => c.image),
        current: r.revision === current,
        ...(r.cause !== null ? { cause: r.cause } : {}),
        ...(r.source !== null ? { source: r.source } : {}),
      }),
    ),
  };
}

/** `apps.revision`: one stored revision, its spec whole. */
export function appRevision(name: string, current: number, stored: StoredRevision): AppRevision {
  return {
    name,
    revision: stored.revision,
    spec: stored.spec,
    createdAt: stored.createdAt,
    current: stored.revision === current,
    ...(stored.cause !== null ? { cause: stored.cause } : {}),
    ...(stored.source !== null ? { source: stored.source } : {}),
  };
}
