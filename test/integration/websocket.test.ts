/**
 * A dashboard in a browser speaks MQTT over WebSocket: it must see what
 * devices publish over TCP, live and retained, through the same broker.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceState } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { mosquittoPub } from '../support/mosquitto.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';

describe('MQTT over WebSocket for dashboards', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
  });

  afterEach(() => cleanup.run());

  it('delivers device state published over TCP to a WebSocket subscriber, live and retained', async () => {
    // A device that reported before the dashboard opened: its state is retained.
    const early = deviceState('dev-early', { observedRevision: 3 });
    await mosquittoPub(hub.hub.ports.mqtt, 'flotilla/v1/devices/dev-early/state', JSON.stringify(early), { retain: true });

    const dashboard = await connectClient(hub.wsUrl, { clientId: 'dashboard-1' });
    cleanup.add('dashboard', () => closeClient(dashboard));
    const inbox = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/state', { qos: 1 });
    expect(await inbox.waitFor<DeviceState>('flotilla/v1/devices/dev-early/state')).toEqual(early);
    expect(inbox.on('flotilla/v1/devices/dev-early/state')[0]!.retain).toBe(true);

    const device = await connectClient(hub.mqttUrl, { clientId: 'dev-live' });
    cleanup.add('device', () => closeClient(device));
    const live = deviceState('dev-live', {
      observedRevision: 7,
      apps: [{ name: 'thermo', revision: 2, phase: 'pulling', message: 'pulling registry.local/thermo:2.0', containers: [] }],
    });
    await device.publishAsync('flotilla/v1/devices/dev-live/state', JSON.stringify(live), { qos: 1, retain: true });

    const received = await inbox.waitFor<DeviceState>('flotilla/v1/devices/dev-live/state');
    expect(received).toEqual(live);
    // Exactly once per publish, and only what the filter matches.
    expect(inbox.on('flotilla/v1/devices/dev-live/state')).toHaveLength(1);
    expect(new Set(inbox.messages.map((m) => m.topic))).toEqual(
      new Set(['flotilla/v1/devices/dev-early/state', 'flotilla/v1/devices/dev-live/state']),
    );
  });

  it('lets a WebSocket client call the request/response API like any MQTT client', async () => {
    const dashboard = await connectClient(hub.wsUrl, { clientId: 'dashboard-2' });
    cleanup.add('dashboard', () => closeClient(dashboard));
    const inbox = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/api/dashboard-2/response', { qos: 1 });
    await dashboard.publishAsync('flotilla/v1/api/dashboard-2/request', JSON.stringify({ correlationId: 'ws-1', method: 'devices.list' }), {
      qos: 1,
    });
    expect(await inbox.waitFor('flotilla/v1/api/dashboard-2/response')).toEqual({ correlationId: 'ws-1', ok: true, result: { items: [] } });
  });

  it('answers plain HTTP on the WebSocket port with 426 Upgrade Required', async () => {
    const res = await fetch(`http://127.0.0.1:${hub.hub.ports.ws}/`);
    expect(res.status).toBe(426);
    expect(await res.text()).toMatch(/WebSocket/);
  });
});
