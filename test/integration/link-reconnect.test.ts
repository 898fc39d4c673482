/**
 * The agent's link owns its reconnect loop: against a port where nothing
 * answers MQTT, attempts come at a window that doubles per failure (here
 * pinned to the window's end, so the schedule is exact), and events
 * published while the hub is away wait in the outbox and are delivered, in
 * order and once each, once it is there.
 */
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../../agent/link.js';
import { type DeviceEvent, Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();
const logger = pino({ level: 'silent' });

describe('agent link reconnect', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function link(hubUrl: string, random: () => number) {
    const l = new Link({
      hubUrl,
      deviceId: 'dev-r',
      topics,
      logger,
      onDesired: () => undefined,
      stateIntervalMs: 0,
      reconnect: { baseMs: 100, maxMs: 800, random },
    });
    cleanup.add('link', () => l.close());
    return l;
  }

  it('retries with a window that doubles per failure up to its cap', async () => {
    // A "hub" that accepts TCP and hangs up at once: every MQTT connect fails.
    const attempts: number[] = [];
    const server = createServer((socket) => {
      attempts.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add('server', () => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as { port: number }).port;

    link(`mqtt://127.0.0.1:${port}`, () => 0.999);
    await waitFor('seven attempts', () => attempts.length >= 7, { timeoutMs: 10_000 });

    const gaps = attempts.slice(1, 7).map((t, i) => t - attempts[i]!);
    const expected = [100, 200, 400, 800, 800, 800];
    gaps.forEach((gap, i) => {
      expect(gap, `gap ${i + 1} of ${gaps.join(', ')} ms`).toBeGreaterThanOrEqual(expected[i]! - 5);
      expect(gap, `gap ${i + 1} of ${gaps.join(', ')} ms`).toBeLessThan(expected[i]! + 400);
    });
  });

  it('delivers the events published while the hub was away, in order, once each, once it comes', async () => {
    const port = await freePort();
    const l = link(`mqtt://127.0.0.1:${port}`, () => 0.5);
    const total = 1005;
    for (let seq = 1; seq <= total; seq++) l.publishEvent({ seq, ts: new Date().toISOString(), type: 'started', message: `event ${seq}` });
    expect(l.connected).toBe(false);

    const hub = await startTestHub({ mqttPort: port });
    cleanup.add('hub', () => hub.close());
    const watcher = await connectClient(hub.mqttUrl);
    cleanup.add('watcher', () => closeClient(watcher));
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(topics.device('dev-r', 'events'), { qos: 1 });

    const topic = topics.device('dev-r', 'events');
    await waitFor('the kept events', () => inbox.on(topic).length >= total, { timeoutMs: 10_000 });
    const seqs = inbox.on(topic).map((m) => (m.json as DeviceEvent).seq);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});
