/**
 * The example page itself (examples/dashboard/dashboard.js with the browser
 * build of mqtt.js, both as the hub serves them) in a minimal browser stand-in:
 * it connects over WebSocket with read-only credentials from the URL and
 * shows what a device publishes, live.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, metricsSample } from '../support/fixtures.js';
import { startTestHub } from '../support/hub.js';
import { type MiniElement, miniPage } from '../support/mini-dom.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

const PAGE_IDS = { connect: 'form', status: 'span', devices: 'tbody', ws: 'input', root: 'input', user: 'input', pass: 'input' };

describe('examples/dashboard page', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('logs in read-only from the URL fragment and shows a device’s status, state and metrics as they arrive', async () => {
    const hub = await startTestHub({ config: { readOnlyUsers: [{ username: 'wall', password: 's3cret' }] } });
    cleanup.add('hub', () => hub.close());

    const page = miniPage(`${hub.httpUrl}/dashboard/#user=wall&pass=s3cret`, PAGE_IDS);
    for (const file of ['mqtt.min.js', 'dashboard.js']) page.run(await (await fetch(`${hub.httpUrl}/dashboard/${file}`)).text(), file);
    cleanup.add('page', () => page.close());

    await waitFor('the page to connect', () => page.byId('status').className === 'connected', { timeoutMs: 10_000, intervalMs: 50 });
    expect(page.byId('status').textContent).toBe('connected as wall');
    expect(page.byId('ws').value).toBe(`ws://127.0.0.1:${hub.hub.ports.ws}`);

    const device = await connectClient(hub.mqttUrl, { clientId: 'dev-roof' });
    cleanup.add('device', () => closeClient(device));
    await device.publishAsync('flotilla/v1/devices/dev-roof/status', JSON.stringify({ online: true, at: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
    const state = deviceState('dev-roof', { apps: [{ name: 'thermo', revision: 2, phase: 'running', containers: [] }] });
    await device.publishAsync('flotilla/v1/devices/dev-roof/state', JSON.stringify(state), { qos: 1, retain: true });
    await device.publishAsync('flotilla/v1/devices/dev-roof/metrics', JSON.stringify(metricsSample(1)), { qos: 0 });

    const cells = () => {
      const row = page.byId('devices').elements('tr')[0];
      return row ? row.elements('td').map((td: MiniElement) => td.textContent) : [];
    };
    await waitFor('a row with the metrics', () => cells()[2] === '12.5 %', { timeoutMs: 10_000, intervalMs: 50 });
    expect(cells().slice(0, 6)).toEqual(['dev-roof', 'online', '12.5 %', '1.0 GiB / 4.0 GiB', '10.0 GiB / 30.0 GiB', 'thermo r2 running']);

    // Live: the next sample replaces the numbers; the link dropping turns the device offline.
    const next = metricsSample(2);
    next.host.cpuPercent = 87;
    await device.publishAsync('flotilla/v1/devices/dev-roof/metrics', JSON.stringify(next), { qos: 0 });
    await waitFor('the next sample', () => cells()[2] === '87.0 %', { timeoutMs: 10_000, intervalMs: 50 });
    await device.publishAsync('flotilla/v1/devices/dev-roof/status', JSON.stringify({ online: false, at: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
    await waitFor('the device offline', () => cells()[1] === 'offline', { timeoutMs: 10_000, intervalMs: 50 });
  });

  it('says so when the password is wrong', async () => {
    const hub = await startTestHub({ config: { readOnlyUsers: [{ username: 'wall', password: 's3cret' }] } });
    cleanup.add('hub', () => hub.close());
    const page = miniPage(`${hub.httpUrl}/dashboard/#user=wall&pass=nope`, PAGE_IDS);
    cleanup.add('page', () => page.close());
    for (const file of ['mqtt.min.js', 'dashboard.js']) page.run(await (await fetch(`${hub.httpUrl}/dashboard/${file}`)).text(), file);
    await waitFor('the refusal', () => page.byId('status').className === 'error', { timeoutMs: 10_000, intervalMs: 50 });
    expect(page.byId('status').textContent).toMatch(/Bad username or password/i);
    // It does not keep retrying a refused login.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(page.byId('status').textContent).toMatch(/Bad username or password/i);
  });
});
