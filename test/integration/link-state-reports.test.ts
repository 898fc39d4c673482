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
import { startTestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
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
});
