/**
 * Start order and init containers on a real Docker Engine, through a hub and an agent
 * process: a three-container app whose "database" becomes healthy only after a few
 * seconds (its Docker health check), whose migration runs as an init container and leaves
 * a marker in a named volume, and whose "web" depends on the database being healthy and
 * refuses to start without the marker. Docker's own events and each container's StartedAt
 * say in which order things happened; the device's state reports say what it waited for.
 * A revision whose migration exits 3 rolls back, its event naming the code and the output.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AppState, DeviceEvent } from '../../shared/index.js';
import { freePort } from '../support/ports.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { answer } from './support/device-apps.js';
import { containerIds, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry } from './support/images.js';

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-order-${suffix}`;
const app = `e2e-order-${suffix}`;
const volume = `e2e-order-data-${suffix}`;

interface EngineEvent {
  Action: string;
  timeNano: number;
  Actor: { ID: string; Attributes: Record<string, string> };
}

describeDocker('start order and init containers', () => {
  let hub: HubProcess;
  let image: string;
  let port: number;
  let watcher: mqtt.MqttClient;
  const dir = scratchDir('flotilla-e2e-order-');
  const messages: string[] = [];
  const events: DeviceEvent[] = [];

  beforeAll(async () => {
    const images = await ensureTestImages();
    image = await retagInRegistry(images.v1, `order-${suffix}`);
    port = await freePort();
    hub = await startHubProcess();
    startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.` });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
    // Every state report and event the device sends, as a dashboard sees them.
    watcher = await mqtt.connectAsync(hub.mqttUrl, { protocolVersion: 4 });
    watcher.on('message', (topic, payload) => {
      const body = JSON.parse(payload.toString()) as { apps?: AppState[] } & DeviceEvent;
      if (topic.endsWith('/events')) events.push(body);
      for (const state of body.apps ?? []) if (state.name === app && state.message) messages.push(state.message);
    });
    await watcher.subscribeAsync([`flotilla/v1/devices/${deviceId}/state`, `flotilla/v1/devices/${deviceId}/events`], { qos: 1 });
  });

  afterAll(async () => {
    await watcher?.endAsync();
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`, [volume]);
  });

  /** The app at `revision`: web written first, so only dependsOn puts the database before it. */
  async function apply(revision: number, migration: string): Promise<void> {
    const env = [{ name: 'REVISION', value: String(revision) }];
    const spec = {
      name: app,
      scheduling: { devices: [deviceId] },
      spec: {
        initContainers: [{ name: 'migrate', image, command: ['/bin/sh', '-c', migration], volumes: [`${volume}:/data`] }],
        containers: [
          {
            name: 'web',
            image,
            env,
            dependsOn: { db: 'healthy' },
            volumes: [`${volume}:/data`],
            ports: [`127.0.0.1:${port}:80`],
            command: ['/bin/sh', '-c', '[ -f /data/migrated ] || { echo "no migration marker" >&2; exit 7; }; exec httpd -f -p 80 -h /www'],
          },
          {
            name: 'db',
            image,
            env,
            command: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 4; touch /tmp/ready; while true; do sleep 1; done"],
            // The test image is FROM scratch: without this there is no /tmp, and the check never passes.
            tmpfs: ['/tmp'],
            // Failures in the start period do not count: Docker says "starting" until the file is there.
            healthcheck: { exec: ['test', '-f', '/tmp/ready'], interval: '1s', startPeriod: '20s', retries: 3 },
          },
        ],
        update: { healthTimeout: '30s', minReadySeconds: 2 },
      },
    };
    const file = join(dir, `${app}-${revision}.yaml`);
    writeFileSync(file, stringify(spec));
    const result = await runCli(['--hub', hub.url, 'apply', '-f', file]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }

  async function state(): Promise<AppState | undefined> {
    const out = await runCli(['--hub', hub.url, 'describe', 'device', deviceId, '-o', 'json']);
    return (JSON.parse(out.stdout) as { apps: AppState[] }).apps.find((a) => a.name === app);
  }

  async function engineEvents(since: number): Promise<EngineEvent[]> {
    const until = Math.ceil(Date.now() / 1000) + 1;
    const { stdout } = await run(
      'docker',
      ['events', '--since', `${since}`, '--until', `${until}`, '--filter', `label=flotilla.app=${app}`, '--format', '{{json .}}'],
      { timeout: 30_000 },
    );
    return stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as EngineEvent);
  }

  it('runs the migration to completion, then the database, then web once the database is healthy', { timeout: 120_000 }, async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await apply(1, 'echo migrating; echo done > /data/migrated; echo migrated');
    await waitFor('the app to run', async () => (await state())?.phase === 'running' && (await answer(port)) === 'v1', {
      timeoutMs: 60_000,
    });
    expect(messages).toContain('waiting for db: healthy');

    const seen = await engineEvents(since);
    /** When the engine says `container` did `action` first, as a Date (events carry nanoseconds; a Date keeps milliseconds). */
    const at = (container: string, action: string): Date => {
      const event = seen.find((e) => e.Actor.Attributes['flotilla.container'] === container && e.Action === action);
      expect(event, `a "${action}" event of ${container}`).toBeDefined();
      return new Date(Math.floor(event!.timeNano / 1e6));
    };
    const initStarted = at('migrate', 'start');
    const initDied = at('migrate', 'die');
    const dbHealthy = at('db', 'health_status: healthy');
    // The init container exited 0, was labelled apart, and is gone.
    const initExit = seen.find((e) => e.Actor.Attributes['flotilla.container'] === 'migrate' && e.Action === 'die');
    expect(initExit?.Actor.Attributes.exitCode).toBe('0');
    expect(initExit?.Actor.Attributes['flotilla.init']).toBe('true');
    await waitFor(
      'the finished init container to be removed',
      async () =>
        (await containerIds(`flotilla.app=${app}`).then((ids) => Promise.all(ids.map(inspect)))).every(
          (c) => c.Config.Labels['flotilla.init'] === undefined,
        ) || undefined,
    );
    // The engine's own StartedAt of what runs now: the database after the migration's exit, web after the database was healthy.
    const running = await Promise.all((await containerIds(`flotilla.app=${app}`)).map(inspect));
    const started = (name: string) => {
      const found = running.find((c) => c.Config.Labels['flotilla.container'] === name);
      expect(found?.State.Running, `${name} running`).toBe(true);
      return new Date(found!.State.StartedAt);
    };
    expect(initStarted.getTime()).toBeLessThanOrEqual(initDied.getTime());
    expect(started('db').getTime()).toBeGreaterThanOrEqual(initDied.getTime());
    expect(started('web').getTime()).toBeGreaterThanOrEqual(initDied.getTime());
    expect(dbHealthy.getTime()).toBeGreaterThan(started('db').getTime());
    expect(started('web').getTime()).toBeGreaterThanOrEqual(dbHealthy.getTime());
    const removed = await waitFor('the removal of the finished init container', () =>
      events.find((e) => e.type === 'removed' && e.app === app && e.container === 'migrate'),
    );
    expect(removed.message).toMatch(/init container finished \(exit code 0\); its last lines: migrating \| migrated$/);
  });

  it('rolls back a revision whose migration exits 3, naming the code and its last lines; revision 1 runs on', {
    timeout: 120_000,
  }, async () => {
    const before = (await containerIds(`flotilla.app=${app}`)).sort();
    await apply(2, 'echo checking schema; echo "schema v7 is newer than this build"; exit 3');
    const rolledBack = await waitFor(
      'the rollback',
      async () => {
        const s = await state();
        return s?.phase === 'rolled-back' && s.revision === 2 ? s : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(rolledBack.message).toBe(
      'revision 2 failed its health gate (init container migrate exited with code 3; its last lines: checking schema | schema v7 is newer than this build); revision 1 runs again',
    );
    const event = await waitFor('the rolled-back event', () => events.find((e) => e.type === 'rolled-back' && e.app === app));
    expect(event.message).toContain('init container migrate exited with code 3');
    expect(event.message).toContain('checking schema | schema v7 is newer than this build');
    // Revision 1's containers never stopped; the failed init container is removed.
    await waitFor(
      'only revision 1 containers',
      async () => (await containerIds(`flotilla.app=${app}`)).sort().join() === before.join() || undefined,
    );
    for (const id of before) expect((await inspect(id)).State.Running).toBe(true);
    expect(await answer(port)).toBe('v1');
  });
});
