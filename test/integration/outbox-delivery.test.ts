/**
 * The outbox end to end over a real hub: telemetry produced while the hub is
 * unreachable, across an agent restart (the outbox file is all that carries
 * it), is stored by the hub exactly once when it comes; a backlog is paced;
 * an outbox over its cap drops metrics first and the hub hears about it as
 * an `outbox-dropped` event.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Link, type LinkOptions } from '../../agent/link.js';
import { Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { logLine, metricsSample } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';
import { freePort } from '../support/ports.js';
import { scratchDir } from '../support/scratch.js';
import { duplicates, storedEventSeqs, storedEvents, storedLogLines } from '../support/stored-telemetry.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();
const logger = pino({ level: 'silent' });
const DEVICE = 'dev-outbox';

describe('agent outbox delivery', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const tempDir = () => scratchDir('flotilla-outbox-it-');

  function link(hubUrl: string, outboxPath: string, extra: Partial<LinkOptions> = {}): Link {
    const l = new Link({
      hubUrl,
      deviceId: DEVICE,
      topics,
      logger,
      onDesired: () => undefined,
      stateIntervalMs: 0,
      reconnect: { baseMs: 50, maxMs: 200 },
      outbox: { path: outboxPath, maxBytes: 16 * 1024 * 1024 },
      ...extra,
    });
    cleanup.add('link', () => l.close());
    return l;
  }

  const event = (seq: number) => ({ seq, ts: new Date().toISOString(), type: 'started', message: `event ${seq}` });
  const batch = (seq: number) => ({ seq, lines: [logLine(`line ${seq}a`), logLine(`line ${seq}b`)] });

  it('stores what was produced while the hub was away, across an agent restart, exactly once', async () => {
    const port = await freePort();
    const hubUrl = `mqtt://127.0.0.1:${port}`;
    const outboxPath = join(tempDir(), 'outbox.db');

    // First life: the hub is unreachable the whole time.
    const first = link(hubUrl, outboxPath);
    for (let seq = 1; seq <= 40; seq++) {
      first.publishEvent(event(seq));
      first.publishLogs(batch(seq));
    }
    first.publishMetrics(metricsSample(1_000));
    await first.close();

    // Second life, still offline, then the hub comes.
    const second = link(hubUrl, outboxPath);
    expect(second.outboxStats.messages).toBe(81);
    for (let seq = 41; seq <= 60; seq++) {
      second.publishEvent(event(seq));
      second.publishLogs(batch(seq));
    }
    const hub = await startTestHub({ mqttPort: port });
    cleanup.add('hub', () => hub.close());

    await waitFor('the outbox to empty', () => second.outboxStats.messages === 0, { timeoutMs: 15_000 });
    await waitFor('every event stored', async () => (await storedEventSeqs(hub.httpUrl, DEVICE)).length >= 60, { timeoutMs: 10_000 });
    const seqs = await storedEventSeqs(hub.httpUrl, DEVICE);
    expect(duplicates(seqs)).toEqual([]);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    await waitFor('every log line stored', async () => (await storedLogLines(hub.httpUrl, DEVICE)).length >= 120, { timeoutMs: 10_000 });
    const lines = await storedLogLines(hub.httpUrl, DEVICE);
    expect(duplicates(lines)).toEqual([]);
    expect(lines).toHaveLength(120);
    const metrics = await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/metrics?since=1h`);
    expect(metrics.body.samples.map((s: { seq: number }) => s.seq)).toEqual([1_000]);
  });

  it('paces a backlog to the uplink rate', async () => {
    const port = await freePort();
    const hubUrl = `mqtt://127.0.0.1:${port}`;
    const l = link(hubUrl, join(tempDir(), 'outbox.db'), { uplinkBytesPerSecond: 20 * 1024 });
    // 60 KiB of log batches: with a 20 KiB burst, at least two seconds at 20 KiB/s.
    const filler = 'x'.repeat(1000);
    for (let seq = 1; seq <= 60; seq++) l.publishLogs({ seq, lines: [logLine(`${seq} ${filler}`)] });
    const hub = await startTestHub({ mqttPort: port });
    cleanup.add('hub', () => hub.close());
    await waitFor('connected', () => l.connected, { timeoutMs: 10_000 });
    const started = Date.now();
    await waitFor('the outbox to empty', () => l.outboxStats.messages === 0, { timeoutMs: 15_000 });
    const seconds = (Date.now() - started) / 1000;
    expect(seconds).toBeGreaterThan(1.5);
    await waitFor('every line stored', async () => (await storedLogLines(hub.httpUrl, DEVICE)).length >= 60, { timeoutMs: 10_000 });
  });

  it('over its cap drops metrics before logs before events, and tells the hub', async () => {
    const port = await freePort();
    const hubUrl = `mqtt://127.0.0.1:${port}`;
    // The agent turns a drop report into an event with its next event seq; so does this test.
    const l: Link = link(hubUrl, join(tempDir(), 'outbox.db'), {
      outbox: { path: join(tempDir(), 'outbox.db'), maxBytes: 64 * 1024 },
      onOutboxDrops: (summary) => l.publishEvent({ seq: 1_000, ts: new Date().toISOString(), type: 'outbox-dropped', message: summary }),
    });
    // About 1 KiB each: 40 events, 40 log batches and 40 metric samples do not fit in 64 KiB.
    const filler = 'y'.repeat(900);
    for (let seq = 1; seq <= 40; seq++) {
      l.publishEvent({ ...event(seq), message: `event ${seq} ${filler}` });
      l.publishLogs({ seq, lines: [logLine(`${seq} ${filler}`)] });
      l.publishMetrics(metricsSample(10_000 + seq));
    }
    const hub = await startTestHub({ mqttPort: port });
    cleanup.add('hub', () => hub.close());
    await waitFor('the outbox to empty', () => l.outboxStats.messages === 0, { timeoutMs: 15_000 });

    const report = await waitFor('the drop report', async () =>
      (await storedEvents(hub.httpUrl, DEVICE)).find((e) => e.type === 'outbox-dropped'),
    );
    const seqs = await storedEventSeqs(hub.httpUrl, DEVICE);
    expect(seqs.filter((s) => s <= 40)).toHaveLength(40);
    const lines = await storedLogLines(hub.httpUrl, DEVICE);
    const metrics = await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/metrics?since=1h`);
    const samples = metrics.body.samples as { seq: number }[];
    // Every event kept; metrics gave way first, so fewer of them survived than log batches.
    expect(lines.length).toBeGreaterThan(samples.length);
    expect(report.message).toMatch(/outbox full: .*metrics/);
    expect(l.outboxStats.dropped).toBe(40 - samples.length + (40 - lines.length));
  });
});
