/**
 * Device presence while the database is out of reach: the touches a flush could not write are
 * written by the next one (a newer touch of the same device wins), and the failure is a debug
 * line, since the database itself warns of the outage once.
 */
import { EventEmitter } from 'node:events';
import type { Aedes, Client } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { DevicePresence } from '../../broker/mqtt/presence.js';
import { DatabaseUnavailable } from '../../broker/store/pg/errors.js';
import { LogCapture } from '../support/logs.js';

describe('device presence while the database is away', () => {
  let presence: DevicePresence | undefined;
  afterEach(() => presence?.stop());

  it('writes the touches of a failed flush with the next one, and logs the failure at debug', async () => {
    const written: Map<string, string>[] = [];
    let reachable = false;
    const devices = {
      recordLastSeen: async (touches: Map<string, string>) => {
        if (!reachable) throw new DatabaseUnavailable('postgres://flotilla@127.0.0.1:1/flotilla', { cause: new Error('ECONNREFUSED') });
        written.push(new Map(touches));
      },
      recordDisconnected: async () => false,
    };
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const logs = new LogCapture('debug');
    presence = new DevicePresence({ devices, logger: logs.logger, now: () => new Date(clock), flushIntervalMs: 3_600_000 });
    const broker = new EventEmitter();
    presence.attach(broker as unknown as Aedes);
    const client = (id: string) => ({ id }) as Client;

    broker.emit('ping', {}, client('dev-a'));
    broker.emit('ping', {}, client('dev-b'));
    await presence.flush();
    clock += 1_000;
    broker.emit('ping', {}, client('dev-b'));
    reachable = true;
    await presence.flush();

    expect(written).toEqual([
      new Map([
        ['dev-b', '2026-01-01T00:00:01.000Z'],
        ['dev-a', '2026-01-01T00:00:00.000Z'],
      ]),
    ]);
    expect(logs.records.filter((r) => r.level >= 40)).toEqual([]);
    expect(logs.matching('recording when devices were last seen failed')).toEqual([expect.objectContaining({ level: 20, devices: 2 })]);
  });
});
