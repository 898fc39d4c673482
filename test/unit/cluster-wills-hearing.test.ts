/**
 * The will sweep of a clustered broker (broker/mqtt/cluster-wills.ts) after this replica was deaf
 * (Redis away: no heartbeat heard, its own included): it takes nobody for dead until it has heard
 * its own heartbeat steadily for two intervals, never publishes the will of a client connected to
 * itself or of a replica it hears, and publishes a silent replica's will once it hears steadily.
 */
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { Aedes } from 'aedes';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sweepWillsAsThisBroker, type WillStore } from '../../broker/mqtt/cluster-wills.js';
import { LogCapture } from '../support/logs.js';

const HEARTBEAT_MS = 1_000;
const OWN = 'host:1:own';

/** A will as aedes-persistence-redis streams it. */
const willOf = (clientId: string, brokerId: string) => ({
  clientId,
  brokerId,
  topic: `flotilla/v1/devices/${clientId}/status`,
  payload: Buffer.from('{"online":false}'),
  qos: 1 as const,
  retain: true,
});

describe('the will sweep after this replica was deaf', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(0);
  });
  afterEach(() => vi.useRealTimers());

  function sweeper(stored: ReturnType<typeof willOf>[], connected: string[] = []) {
    const published: string[] = [];
    const deleted: string[] = [];
    const mq = new EventEmitter();
    const aedes = {
      id: OWN,
      opts: { heartbeatInterval: HEARTBEAT_MS },
      mq: { on: (topic: string, listener: (packet: unknown, done: () => void) => void) => mq.on(topic, listener) },
      clients: Object.fromEntries(connected.map((id) => [id, { id }])),
      publish: (packet: { topic: string }, done: (err?: Error) => void) => {
        published.push(packet.topic);
        done();
      },
    } as unknown as Aedes;
    const persistence: WillStore = {
      setup: async () => undefined,
      streamWill: () => Readable.from(stored),
      delWill: async (client) => deleted.push(`${client.brokerId}/${client.id}`),
    };
    sweepWillsAsThisBroker({
      persistence,
      db: { exists: async () => 0 } as unknown as Redis,
      broker: () => aedes,
      allow: () => true,
      log: new LogCapture().logger,
    });
    const heartbeat = () => mq.emit(`$SYS/${OWN}/heartbeat`, { payload: OWN }, () => undefined);
    const sweep = async (brokers: Record<string, number>) => {
      for await (const _ of persistence.streamWill(brokers)) void _;
    };
    return { persistence, aedes, heartbeat, sweep, published, deleted };
  }

  it('judges nobody until it has heard its own heartbeat for two intervals without a gap', async () => {
    const s = sweeper([willOf('dev-far', 'host:2:other')]);
    await s.persistence.setup(s.aedes);
    // Before any heartbeat, and after one alone: not yet.
    await s.sweep({});
    s.heartbeat();
    vi.setSystemTime(HEARTBEAT_MS);
    s.heartbeat();
    await s.sweep({});
    expect(s.published).toEqual([]);
    expect(s.deleted).toEqual([]);
    // Two intervals of steady beats: a silent replica is dead.
    vi.setSystemTime(2 * HEARTBEAT_MS);
    s.heartbeat();
    await s.sweep({});
    expect(s.published).toEqual(['flotilla/v1/devices/dev-far/status']);
    expect(s.deleted).toEqual(['host:2:other/dev-far']);
  });

  it('after a gap in its own heartbeats (deaf), waits two more intervals before judging again', async () => {
    const s = sweeper([willOf('dev-far', 'host:2:other')]);
    await s.persistence.setup(s.aedes);
    for (let beat = 0; beat <= 3; beat++) {
      vi.setSystemTime(beat * HEARTBEAT_MS);
      s.heartbeat();
    }
    // Redis away for 17 intervals: no heartbeat heard, then the first one again.
    vi.setSystemTime(20 * HEARTBEAT_MS);
    await s.sweep({});
    s.heartbeat();
    await s.sweep({});
    vi.setSystemTime(21 * HEARTBEAT_MS);
    s.heartbeat();
    await s.sweep({});
    expect(s.published).toEqual([]);
    vi.setSystemTime(22 * HEARTBEAT_MS);
    s.heartbeat();
    await s.sweep({});
    expect(s.published).toEqual(['flotilla/v1/devices/dev-far/status']);
  });

  it('never publishes the will of a client connected here, or of a replica it hears (a name with colons)', async () => {
    const s = sweeper([willOf('dev-here', OWN), willOf('dev-there', 'host:3:live')], ['dev-here']);
    await s.persistence.setup(s.aedes);
    for (let beat = 0; beat <= 3; beat++) {
      vi.setSystemTime(beat * HEARTBEAT_MS);
      s.heartbeat();
    }
    await s.sweep({ [OWN]: Date.now(), 'host:3:live': Date.now() });
    expect(s.published).toEqual([]);
    expect(s.deleted).toEqual([]);
  });
});
