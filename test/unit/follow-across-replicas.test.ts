/**
 * The relay between replicas (broker/telemetry/follow-across-replicas.ts) over an in-memory bus
 * and a real TelemetryIngest's listeners, with fake timers for its lease, renewals and waits:
 * what it sends whom, when a stream may read its backlog, and what a replica that stopped
 * renewing leaves behind (nothing, once its lease is over). The real emitter between real replica
 * processes is test/integration/replica-follow.test.ts.
 */
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HubBus, MessageOrigin } from '../../broker/mqtt/hub-bus.js';
import {
  ACK_TIMEOUT_MS,
  CONTROL_TOPIC,
  FollowAcrossReplicas,
  LEASE_MS,
  RELAY_DELAY_MS,
  RENEW_MS,
} from '../../broker/telemetry/follow-across-replicas.js';
import type { EventRecord, LogRecord, MetricsSample } from '../../shared/index.js';
import { logRecord } from '../support/fixtures.js';

const HERE = 'replica-a';

/** What the relay needs of the ingest: listeners per channel, and a way to play commits into them. */
class Commits {
  private readonly emitter = new EventEmitter();
  onLogs = (listener: (records: LogRecord[]) => void) => this.on('logs', listener);
  onEvents = (listener: (records: EventRecord[]) => void) => this.on('events', listener);
  onMetrics = (listener: (samples: MetricsSample[]) => void) => this.on('metrics', listener);
  commit(channel: 'logs' | 'events', records: unknown[]): void {
    this.emitter.emit(channel, records);
  }
  listeners(channel: string): number {
    return this.emitter.listenerCount(channel);
  }
  private on(channel: string, listener: (records: never[]) => void): () => void {
    this.emitter.on(channel, listener);
    return () => this.emitter.off(channel, listener);
  }
}

/** An in-memory bus: what the relay publishes, and a way to deliver other replicas' messages to it. */
class Bus implements HubBus {
  readonly sent: { topic: string; message: Record<string, unknown> }[] = [];
  private onMessage: ((topic: string, payload: Buffer, origin: MessageOrigin) => void) | undefined;
  async publish(topic: string, payload: string | Buffer): Promise<void> {
    this.sent.push({ topic, message: JSON.parse(payload.toString()) });
  }
  async subscribe(_filters: readonly string[], onMessage: (topic: string, payload: Buffer, origin: MessageOrigin) => void): Promise<void> {
    this.onMessage = onMessage;
  }
  subscribeHere(): void {}
  deliver(topic: string, message: unknown): void {
    this.onMessage?.(topic, Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), { publishedHere: false });
  }
  heartbeat(replica: string): void {
    this.onMessage?.(`$SYS/${replica}/heartbeat`, Buffer.from(replica), { publishedHere: false });
  }
  to(replica: string) {
    return this.sent.filter((s) => s.topic === `${CONTROL_TOPIC}/${replica}`).map((s) => s.message);
  }
}

describe('follow across replicas', () => {
  let bus: Bus;
  let commits: Commits;
  let relay: FollowAcrossReplicas;
  const liveWindows: string[] = [];

  beforeEach(async () => {
    vi.useFakeTimers();
    bus = new Bus();
    commits = new Commits();
    liveWindows.length = 0;
    relay = new FollowAcrossReplicas({
      bus,
      replica: HERE,
      ingest: commits,
      following: (device) => {
        liveWindows.push(`+${device}`);
        return () => liveWindows.push(`-${device}`);
      },
      logger: pino({ level: 'silent' }),
      nowMs: () => Date.now(),
    });
    await relay.attach();
  });
  afterEach(() => {
    relay.close();
    vi.useRealTimers();
  });

  it('acknowledges what another replica follows, and relays only that, gathered, in commit order', async () => {
    expect(commits.listeners('logs')).toBe(0);
    bus.deliver(CONTROL_TOPIC, { kind: 'interest', replica: 'replica-b', seq: 1, keys: ['logs/d1'] });
    expect(bus.to('replica-b')).toEqual([{ kind: 'ack', replica: HERE, seq: 1 }]);
    expect(liveWindows).toEqual(['+d1']);
    commits.commit('logs', [logRecord(1, 'd1'), logRecord(2, 'd2')]);
    commits.commit('logs', [logRecord(3, 'd1')]);
    commits.commit('events', [{ id: 4, device: 'd1' }]);
    expect(bus.to('replica-b')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(RELAY_DELAY_MS);
    expect(bus.to('replica-b').slice(1)).toEqual([{ kind: 'logs', replica: HERE, records: [logRecord(1, 'd1'), logRecord(3, 'd1')] }]);
  });

  it('stops relaying, and ends the live window, when the other replica stops renewing', async () => {
    bus.deliver(CONTROL_TOPIC, { kind: 'interest', replica: 'replica-b', seq: 1, keys: ['logs/d1'] });
    await vi.advanceTimersByTimeAsync(LEASE_MS + RENEW_MS);
    expect(liveWindows).toEqual(['+d1', '-d1']);
    expect(commits.listeners('logs')).toBe(0);
    commits.commit('logs', [logRecord(1, 'd1')]);
    await vi.advanceTimersByTimeAsync(RELAY_DELAY_MS);
    expect(bus.to('replica-b').filter((m) => m.kind === 'logs')).toEqual([]);
  });

  it('opens a stream once every replica heard has acknowledged it, or after the timeout', async () => {
    bus.heartbeat('replica-b');
    bus.heartbeat('replica-c');
    let opened = false;
    const following = relay
      .followLogs('d9', () => undefined)
      .then((stop) => {
        opened = true;
        return stop;
      });
    const announced = bus.sent.filter((s) => s.topic === CONTROL_TOPIC && s.message.kind === 'interest').at(-1)!.message;
    expect(announced).toMatchObject({ replica: HERE, keys: ['logs/d9'] });
    bus.deliver(`${CONTROL_TOPIC}/${HERE}`, { kind: 'ack', replica: 'replica-b', seq: announced.seq });
    await vi.advanceTimersByTimeAsync(0);
    expect(opened).toBe(false);
    bus.deliver(`${CONTROL_TOPIC}/${HERE}`, { kind: 'ack', replica: 'replica-c', seq: announced.seq });
    await vi.advanceTimersByTimeAsync(0);
    expect(opened).toBe(true);
    (await following)();
    // The last stream gone, the set is announced empty.
    expect(bus.sent.at(-1)!.message).toMatchObject({ kind: 'interest', keys: [] });

    // replica-c stops answering: the next stream waits for it ACK_TIMEOUT_MS, no longer.
    let late = false;
    void relay
      .followEvents(undefined, () => undefined)
      .then(() => {
        late = true;
      });
    const next = bus.sent.filter((s) => s.topic === CONTROL_TOPIC && s.message.kind === 'interest').at(-1)!.message;
    bus.deliver(`${CONTROL_TOPIC}/${HERE}`, { kind: 'ack', replica: 'replica-b', seq: next.seq });
    await vi.advanceTimersByTimeAsync(ACK_TIMEOUT_MS - 1);
    expect(late).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(late).toBe(true);
  });

  it("answers a starting replica's hello even while it follows nothing, so the newcomer waits for it", async () => {
    bus.deliver(CONTROL_TOPIC, { kind: 'hello', replica: 'replica-n' });
    expect(bus.sent.at(-1)).toEqual({ topic: CONTROL_TOPIC, message: { kind: 'interest', replica: HERE, seq: 1, keys: [] } });
  });

  it('hands relayed records to its streams, and ignores what it cannot read', async () => {
    const heard: unknown[][] = [];
    const stop = await relay.followLogs('d1', (records) => heard.push(records));
    bus.deliver(`${CONTROL_TOPIC}/${HERE}`, 'not json');
    bus.deliver(`${CONTROL_TOPIC}/${HERE}`, { kind: 'logs', replica: 'replica-b', records: [{ id: 'x' }, logRecord(5, 'd1')] });
    bus.deliver(CONTROL_TOPIC, { kind: 'interest', replica: 'replica-b', seq: 'one', keys: ['logs/d1'] });
    bus.deliver(CONTROL_TOPIC, { kind: 'interest', replica: 'replica-c', seq: 1, keys: ['logs/*', 'metrics/d1', 'logs/a/b'] });
    expect(heard).toEqual([[logRecord(5, 'd1')]]);
    expect(commits.listeners('logs')).toBe(1);
    stop();
    expect(commits.listeners('logs')).toBe(0);
  });
});
