/**
 * Two agents with one device id (a copied SD card) against a real hub: the
 * broker hands the connection from one to the other at every reconnect. The
 * hub reports the clash (a log line, a device event, the device's view), and
 * each agent, seeing its connection closed again and again soon after it was
 * made, says why and backs off instead of flapping a few times a second.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../../agent/link.js';
import type { TakeoverPolicy } from '../../agent/takeover-watch.js';
import { Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';
import { LogCapture, type LogRecord } from '../support/logs.js';
import { runCli } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();
const DEVICE = 'copied-sd-card';
const TAKEN_OVER = 'the hub keeps closing this connection soon after it is made';
// Short windows so the test sees the backoff within seconds; the defaults are 30 s doubling to 10 min.
const TAKEOVER: TakeoverPolicy = { streak: 3, baseMs: 2_000, maxMs: 4_000, minShortLivedMs: 60_000 };

describe('two agents with one device id', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function agentLink(hubUrl: string): LogCapture {
    const logs = new LogCapture('info');
    const link = new Link({
      hubUrl,
      deviceId: DEVICE,
      topics,
      logger: logs.logger,
      onDesired: () => undefined,
      stateIntervalMs: 0,
      reconnect: { baseMs: 100, maxMs: 400 },
      takeover: TAKEOVER,
    });
    cleanup.add('link', () => link.close());
    return logs;
  }

  it('are reported by the hub, and each backs off and says why', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const agents = [agentLink(hub.mqttUrl), agentLink(hub.mqttUrl)];

    const clash = await waitFor('the hub to report the clash', () => hub.logs.matching('two connections use one device id')[0], {
      timeoutMs: 20_000,
    });
    expect(clash).toMatchObject({ deviceId: DEVICE, addresses: ['127.0.0.1'] });
    expect(clash.takeovers).toBeGreaterThanOrEqual(3);

    const events = await waitFor('a device-id-clash event', async () => {
      const res = await http(hub.httpUrl, 'GET', `/api/v1/events?device=${DEVICE}`);
      const found = (res.body.events as { type: string; message: string }[]).filter((e) => e.type === 'device-id-clash');
      return found.length > 0 ? found : undefined;
    });
    expect(events).toHaveLength(1);
    expect(events[0]!.message).toContain(`took device id ${DEVICE} from each other`);
    expect(events[0]!.message).toContain('flotilla agent register');

    const device = await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}`);
    expect(device.body.idClash).toMatchObject({ takeovers: expect.any(Number), addresses: ['127.0.0.1'] });
    // What an operator sees.
    const table = await runCli(['--hub', hub.httpUrl, 'get', 'devices']);
    expect(table.stdout).toMatch(new RegExp(`^${DEVICE} +id clash `, 'm'));
    const described = await runCli(['--hub', hub.httpUrl, 'describe', 'device', DEVICE]);
    expect(described.stdout).toMatch(/^ID Clash: +since .*connections took this id from each other.*from 127\.0\.0\.1/m);

    // Both agents end up in the takeover streak: each says so, with the wait it takes.
    const warned = await Promise.all(
      agents.map((logs) => waitFor('the takeover error', () => takeoverErrors(logs)[0], { timeoutMs: 20_000 })),
    );
    for (const record of warned) {
      expect(record).toMatchObject({ deviceId: DEVICE, takenOver: expect.any(Number) });
      expect(record.retryInMs).toBeGreaterThanOrEqual(TAKEOVER.baseMs / 2);
    }
    // …and waits it out: no connection of that agent before the wait it announced has passed.
    for (const logs of agents) {
      const error = takeoverErrors(logs)[0]!;
      const next = await waitFor(
        'the next connection',
        () => logs.records.find((r) => r.msg === 'connected to hub' && time(r) > time(error)),
        {
          timeoutMs: 20_000,
        },
      );
      expect(time(next) - time(error)).toBeGreaterThanOrEqual((error.retryInMs as number) - 50);
    }
  });
});

function takeoverErrors(logs: LogCapture): LogRecord[] {
  return logs.records.filter((r) => r.msg.startsWith(TAKEN_OVER));
}

function time(record: LogRecord): number {
  return record.time as number;
}
