/**
 * What the API returns for apps and devices: the same shapes over HTTP and
 * MQTT, built from store rows by pure functions.
 */
import type { AppPhase, Scheduling } from '../../shared/index.js';
import type { StoredApp } from '../store/apps.js';
import type { StoredDevice } from '../store/devices.js';
import { matches } from './scheduling.js';

export interface AppSummary {
  name: string;
  revision: number;
  scheduling: Scheduling;
  containers: number;
  devices: { matched: number; running: number };
  createdAt: string;
  updatedAt: string;
}

export interface AppOnDevice {
  id: string;
  online: boolean;
  phase: AppPhase | null;
  message?: string;
  revision: number | null;
}

export function appOnDevices(app: StoredApp, devices: readonly StoredDevice[]): AppOnDevice[] {
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

export function appSummary(app: StoredApp, devices: readonly StoredDevice[]): AppSummary {
  const onDevices = appOnDevices(app, devices);
  return {
    name: app.name,
    revision: app.revision,
    scheduling: app.spec.scheduling,
    containers: app.spec.spec.containers.length,
    devices: {
      matched: onDevices.length,
      running: onDevices.filter((d) => d.phase === 'running' && d.revision === app.revision).length,
    },
    createdAt: app.createdAt,
    updatedAt: app.updatedAt,
  };
}

export function appDetail(app: StoredApp, devices: readonly StoredDevice[]) {
  return {
    name: app.name,
    revision: app.revision,
    spec: app.spec,
    createdAt: app.createdAt,
    updatedAt: app.updatedAt,
    devices: appOnDevices(app, devices),
  };
}

export function deviceView(device: StoredDevice) {
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
  };
}
export type DeviceView = ReturnType<typeof deviceView>;
