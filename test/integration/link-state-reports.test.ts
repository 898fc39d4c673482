/**
 * A state report goes out when something in it changed, not when only
 * Docker's "Up N minutes" text did: that text alone made most of a quiet
 * device's reports (BENCHMARKS.md, "Agent on its link").
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../../agent/link.js';
import { type DeviceState, Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();

describe('state reports', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it("are not sent again for a change of Docker's status text alone", async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const watcher = await connectClient(hub.mqttUrl);
    cleanup.add('watcher', () => closeClient(watcher));
    const inbox = new Inbox(watcher);
    const topic = topics.device('dev-s', 'state');
    await watcher.subscribeAsync(topic, { qos: 1 });
    const link = new Link({
      hubUrl: hub.mqttUrl,
      deviceId: 'dev-s',
      topics,
      logger: pino({ level: 'silent' }),
      onDesired: () => undefined,
      stateIntervalMs: 0,
    });
    cleanup.add('link', () => link.close());

    const report = (status: string, restartCount: number): DeviceState =>
      deviceState('dev-s', {
        reportedAt: new Date().toISOString(),
        apps: [
          {
            name: 'web',
            revision: 1,
            phase: 'running',
            containers: [
              { name: 'main', id: 'c1', image: 'web:1', state: 'running', status, restartCount, startedAt: '2026-11-28T10:00:00Z' },
            ],
          },
        ],
      });
    link.publishState(report('Up 1 minute', 0));
    await waitFor('the first report', () => inbox.on(topic).length === 1, { timeoutMs: 10_000 });
    // One at a time, each given the time to go out (reports in the same tick coalesce).
    const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
    link.publishState(report('Up 2 minutes', 0));
    await settle();
    link.publishState(report('Up 3 minutes', 0));
    await settle();
    link.publishState(report('Up 3 minutes', 1));
    await waitFor('the report of the restart', () => inbox.on(topic).length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const restarts = inbox.on(topic).map((m) => (m.json as DeviceState).apps[0]?.containers[0]?.restartCount);
    expect(restarts).toEqual([0, 1]);
  });

  it('are not sent at all by a real agent while nothing changes, however often it observes', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const watcher = await connectClient(hub.mqttUrl);
    cleanup.add('watcher', () => closeClient(watcher));
    const inbox = new Inbox(watcher);
    const topic = topics.device('steady-0', 'state');
    await watcher.subscribeAsync(topic, { qos: 1 });
    // Observing five times a second, and free to report each time: only a change may make a report.
    const fleet = await startFleet({
      hubUrl: hub.mqttUrl,
      count: 1,
      idPrefix: 'steady',
      resyncIntervalMs: 200,
      agent: { stateIntervalMs: 0 },
    });
    cleanup.add('fleet', () => fleet.close());
    const applied = await http(hub.httpUrl, 'POST', '/api/v1/apps', {
      name: 'web',
      scheduling: { devices: ['steady-0'] },
      // The start gate reports its progress each second ("running for 4s of 10s"): keep it short.
      spec: { containers: [{ name: 'main', image: 'registry.local/web:1.0' }], update: { minReadySeconds: 1 } },
    });
    expect(applied.status).toBeLessThan(300);
    await inbox.waitFor<DeviceState>(topic, (state) => state.apps.some((a) => a.name === 'web' && a.phase === 'running'));
    // Let the last reports of the rollout settle, then watch a steady device for 3 s (about 15 observations).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = inbox.on(topic).length;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(inbox.on(topic).length - before).toBe(0);

    // And a change is still reported at once.
    const [container] = fleet.device('steady-0').runtime.containers();
    fleet.device('steady-0').runtime.kill(container!.id);
    await waitFor('a report of the dead container', () => inbox.on(topic).length > before, { timeoutMs: 10_000 });
  });
});
