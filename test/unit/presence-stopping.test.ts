/**
 * Device presence while the hub stops: the connections the broker closes then are recorded as
 * closed, but not announced (the broker's emitter is closing, and each client's will speaks for
 * it), and the hub says so in one line, not one per device.
 */
import { EventEmitter } from 'node:events';
import type { Aedes, Client } from 'aedes';
import { describe, expect, it } from 'vitest';
import { DevicePresence } from '../../broker/mqtt/presence.js';
import { LogCapture } from '../support/logs.js';

describe('device presence while the hub stops', () => {
  it('records the closed connections, announces none, and says so once', async () => {
    const recorded: string[] = [];
    const announced: string[] = [];
    const logs = new LogCapture('info');
    const presence = new DevicePresence({
      devices: {
        recordLastSeen: async () => undefined,
        recordDisconnected: async (deviceId: string) => {
          recorded.push(deviceId);
          return true;
        },
      },
      logger: logs.logger,
      onDisconnected: (deviceId) => announced.push(deviceId),
    });
    const broker = new EventEmitter();
    presence.attach(broker as unknown as Aedes);
    const close = (id: string) => broker.emit('clientDisconnect', { id } as Client);

    // While the hub runs, a lost connection is announced.
    close('dev-0');
    await new Promise((resolve) => setImmediate(resolve));
    expect(announced).toEqual(['dev-0']);

    await presence.stop();
    for (const id of ['dev-1', 'dev-2', 'dev-3']) close(id);
    await new Promise((resolve) => setImmediate(resolve));
    expect(recorded).toEqual(['dev-0', 'dev-1', 'dev-2', 'dev-3']);
    expect(announced).toEqual(['dev-0']);
    expect(logs.records.filter((r) => r.level >= 40)).toEqual([]);
    expect(
      logs.matching('the hub is stopping: the offline status of devices whose connections it closes is left to their wills'),
    ).toHaveLength(1);
  });
});
