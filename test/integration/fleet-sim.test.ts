/**
 * The fleet simulator against a real hub: ten real agents over in-memory
 * runtimes. An app selecting half of them by label runs on exactly that
 * half; an update to an image that crashes on start fails its health gate on
 * every device, which rolls back to the previous image and says so.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceView } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';
import { waitFor } from '../support/wait.js';

const GOOD = 'registry.local/sim-web:1.0';
const CRASHING = 'registry.local/sim-web:2.0-broken';

function webApp(image: string) {
  return {
    name: 'web',
    scheduling: { selectors: { zone: 'a' } },
    spec: {
      containers: [{ name: 'server', image }],
      // No healthcheck: the gate is "running without a restart for minReadySeconds".
      update: { minReadySeconds: 1, healthTimeout: '10s' },
    },
  };
}

function runningContainers(runtime: MemoryRuntime) {
  return runtime.containers().filter((c) => c.state === 'running');
}

describe('fleet simulator', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let fleet: Fleet;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
    fleet = cleanup.add(
      'fleet',
      () => fleet.close(),
      await startFleet({
        hubUrl: hub.mqttUrl,
        count: 10,
        idPrefix: 'sim',
        labels: (i) => ({ zone: i < 5 ? 'a' : 'b' }),
        behaviour: (image) => (image === CRASHING ? { crash: true } : undefined),
        pullDelayMs: 20,
      }),
    );
  });

  afterEach(() => cleanup.run());

  const listDevices = async (): Promise<DeviceView[]> => {
    const res = await http<{ items: DeviceView[] }>(hub.httpUrl, 'GET', '/api/v1/devices');
    expect(res.status).toBe(200);
    return res.body.items;
  };
  const zone = (z: string) => fleet.ids.filter((_, i) => (z === 'a' ? i < 5 : i >= 5));

  it('runs an app on exactly the selected devices and rolls a crashing update back', async () => {
    await waitFor('all 10 simulated devices online', async () => {
      const devices = await listDevices();
      return devices.filter((d) => d.online).length === 10;
    });

    const applied = await http(hub.httpUrl, 'POST', '/api/v1/apps', webApp(GOOD));
    expect(applied.status).toBeLessThan(300);

    const firstRevision = await waitFor('web running on the zone=a devices', async () => {
      const devices = await listDevices();
      const withWeb = devices.filter((d) => d.apps.some((a) => a.name === 'web'));
      const ok = withWeb.length === 5 && withWeb.every((d) => d.apps.find((a) => a.name === 'web')?.phase === 'running');
      return ok && withWeb;
    });
    expect(firstRevision.map((d) => d.id).sort()).toEqual(zone('a'));
    for (const id of zone('a')) {
      const running = runningContainers(fleet.device(id).runtime);
      expect(running).toHaveLength(1);
      expect(running[0]).toMatchObject({ name: 'web_server', image: GOOD });
    }
    for (const id of zone('b')) expect(fleet.device(id).runtime.containers()).toEqual([]);

    // "running" is reported only once the gate passed (minReadySeconds), in the same tick that commits
    // revision 1: the update below always has a committed version to roll back to.
    const updated = await http(hub.httpUrl, 'POST', '/api/v1/apps', webApp(CRASHING));
    expect(updated.status).toBeLessThan(300);

    const rolledBack = await waitFor(
      'the crashing update rolled back on zone=a',
      async () => {
        const devices = (await listDevices()).filter((d) => zone('a').includes(d.id));
        const ok = devices.every((d) => d.apps.find((a) => a.name === 'web')?.phase === 'rolled-back');
        return ok && devices;
      },
      { timeoutMs: 25_000 },
    );
    expect(rolledBack).toHaveLength(5);
    for (const device of rolledBack) {
      const web = device.apps.find((a) => a.name === 'web');
      expect(web?.message).toMatch(/exited with code 1/);
    }

    // The previous image runs again, under its own name, once the crashed container is gone.
    await waitFor('the previous image running again on zone=a', () =>
      zone('a').every((id) => {
        const containers = fleet.device(id).runtime.containers();
        return containers.length === 1 && containers[0]?.state === 'running' && containers[0].image === GOOD;
      }),
    );
    for (const id of zone('a')) {
      const [container] = fleet.device(id).runtime.containers();
      expect(container).toMatchObject({ name: 'web_server', image: GOOD, state: 'running' });
      // The crashing image was pulled (and tried) before the gate failed it.
      expect(fleet.device(id).runtime.images()).toContain(CRASHING);
    }
    for (const id of zone('b')) expect(fleet.device(id).runtime.containers()).toEqual([]);
  });
});

describe('MemoryRuntime', () => {
  const spec = (name: string, image = GOOD) => ({ name, image });
  const request = (deviceId: string, container: string, image = GOOD) => ({
    deviceId,
    app: 'web',
    appRevision: 1,
    specHash: `hash-${container}`,
    spec: spec(container, image),
  });
  const never = new AbortController().signal;

  it('behaves like the engine where the agent depends on it', async () => {
    const runtime = new MemoryRuntime({ deviceId: 'dev-1', behaviour: (image) => (image === CRASHING ? { crash: true } : undefined) });
    const events: number[] = [];
    const stop = runtime.watch(
      () => events.push(1),
      () => undefined,
    );

    await expect(runtime.create(request('dev-1', 'server'))).rejects.toMatchObject({ code: 'not_found', statusCode: 404 });
    await runtime.pull(GOOD, undefined, never);
    expect(await runtime.hasImage(GOOD)).toBe(true);

    const id = await runtime.create(request('dev-1', 'server'));
    await expect(runtime.create(request('dev-1', 'server'))).rejects.toMatchObject({ code: 'conflict', statusCode: 409 });
    // Another device's container on the same engine is not listed (flotilla.device label).
    await runtime.create({ ...request('dev-2', 'other') });
    expect((await runtime.listManaged()).map((c) => [c.dockerName, c.state])).toEqual([['web_server', 'created']]);

    await runtime.start(id);
    await runtime.start(id); // already running: not an error
    const [running] = await runtime.listManaged();
    expect(running).toMatchObject({ id, state: 'running', restartCount: 0, appRevision: 1, specHash: 'hash-server', image: GOOD });
    expect(running?.startedAt).toBeDefined();
    await expect(runtime.remove(id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(runtime.removeImage(GOOD)).rejects.toMatchObject({ code: 'conflict' });

    await runtime.stop(id, 10);
    await runtime.stop(id, 10); // already stopped: not an error
    await runtime.rename(id, 'web_server.prev');
    expect((await runtime.listManaged())[0]).toMatchObject({ dockerName: 'web_server.prev', state: 'exited', exitCode: 0 });
    await runtime.remove(id);
    await runtime.remove(id); // already gone: not an error
    await expect(runtime.start(id)).rejects.toMatchObject({ code: 'not_found' });

    await runtime.pull(CRASHING, undefined, never);
    const crashing = await runtime.create(request('dev-1', 'server', CRASHING));
    await runtime.start(crashing);
    expect((await runtime.listManaged())[0]).toMatchObject({ state: 'exited', exitCode: 1 });

    await waitFor('watch events', () => events.length >= 8);
    stop();
    runtime.close();
  });

  it('pulls after a delay, fails pulls on request, and cancels them on abort', async () => {
    const runtime = new MemoryRuntime({
      pullDelayMs: 5_000,
      behaviour: (image) => (image === 'bad:1' ? { pullFails: 'manifest unknown', pullDelayMs: 0 } : undefined),
    });
    await expect(runtime.pull('bad:1', undefined, never)).rejects.toMatchObject({
      code: 'pull_failed',
      message: 'pull bad:1: manifest unknown',
    });
    const controller = new AbortController();
    const pulling = runtime.pull('slow:1', undefined, controller.signal);
    controller.abort();
    await expect(pulling).rejects.toMatchObject({ code: 'aborted' });
    expect(await runtime.hasImage('slow:1')).toBe(false);
    // "busybox" and "docker.io/library/busybox:latest" are one image, as to Docker.
    await new MemoryRuntime({ images: ['busybox'] }).hasImage('docker.io/library/busybox:latest').then((has) => expect(has).toBe(true));
    runtime.close();
  });
});
