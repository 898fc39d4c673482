/** devices.list, devices.get, devices.label: the fleet as the hub knows it, and the labels operators set. */
import type { DeviceAgentRollout, IdClash, Labels } from '../../shared/index.js';
import type { DeviceStore } from '../store/devices.js';
import { ApiError } from './errors.js';
import type { ApiHandlersFor } from './method.js';
import { type DeviceNotes, deviceView } from './views.js';

export type DeviceMethodName = 'devices.list' | 'devices.get' | 'devices.label';

export interface Revocations {
  revokedAt(deviceId: string): Promise<string | undefined>;
  /** Every revoked device → when: one query for a whole device list. */
  revoked(): Promise<ReadonlyMap<string, string>>;
}

export interface DeviceMethodDeps {
  devices: DeviceStore;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
  /** Which devices are revoked (broker/auth/device-credentials.ts); without it, none is. */
  revocations?: Revocations | undefined;
  /** Devices whose id two connections keep taking from each other (broker/mqtt/id-clash.ts); without it, none. */
  idClashes?: { get(deviceId: string): IdClash | undefined } | undefined;
  /** What agent rollouts say of devices (agent-rollouts.ts deviceRollouts); without it, nothing. */
  agentRollouts?: { deviceRollouts(): Promise<(device: { id: string; labels: Labels }) => DeviceAgentRollout | undefined> } | undefined;
}

export function deviceMethods(deps: DeviceMethodDeps): ApiHandlersFor<DeviceMethodName> {
  const { devices } = deps;
  const revokedAt = (id: string) => deps.revocations?.revokedAt(id);
  const noRollouts = () => undefined;
  const rolloutsOf = async () => (await deps.agentRollouts?.deviceRollouts()) ?? noRollouts;
  const notes = (
    device: { id: string; labels: Labels },
    revoked: string | undefined,
    rollouts: Awaited<ReturnType<typeof rolloutsOf>>,
  ): DeviceNotes => ({ revokedAt: revoked, idClash: deps.idClashes?.get(device.id), agentRollout: rollouts(device) });

  return {
    'devices.list': async () => {
      const revoked = (await deps.revocations?.revoked()) ?? new Map<string, string>();
      const rollouts = await rolloutsOf();
      return { items: (await devices.list()).map((device) => deviceView(device, notes(device, revoked.get(device.id), rollouts))) };
    },

    'devices.get': async ({ id }) => {
      const device = await devices.get(id);
      if (!device) throw ApiError.notFound('device', id);
      return deviceView(device, notes(device, await revokedAt(id), await rolloutsOf()));
    },

    'devices.label': async ({ id, set, remove }) => {
      const device = await devices.get(id);
      if (!device) throw ApiError.notFound('device', id);
      const labels = { ...device.operatorLabels, ...set };
      // Removing a label the agent reports needs a tombstone, or it would come straight back.
      for (const key of remove ?? []) {
        if (key in device.reportedLabels) labels[key] = null;
        else delete labels[key];
      }
      await devices.setOperatorLabels(id, labels);
      deps.desiredMayHaveChanged();
      const labelled = await devices.get(id);
      if (!labelled) throw ApiError.notFound('device', id);
      return deviceView(labelled, notes(labelled, await revokedAt(id), await rolloutsOf()));
    },
  };
}
