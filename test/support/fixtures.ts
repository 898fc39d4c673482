/** Valid protocol documents that tests start from and then bend. */
import type { DeviceState } from '../../shared/index.js';

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
