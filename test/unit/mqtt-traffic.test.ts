/** The broker's message counters: which channel a topic counts under, and what is counted at all. */
import { describe, expect, it } from 'vitest';
import { BrokerTraffic } from '../../broker/mqtt/traffic.js';
import { Topics } from '../../shared/index.js';

const client = {} as never;

function countIn(topic: string, root = 'flotilla/v1') {
  const traffic = new BrokerTraffic(new Topics(root));
  traffic.onPublish({ topic } as never, client);
  return Object.entries(traffic.received())
    .filter(([, n]) => n > 0)
    .map(([channel]) => channel);
}

describe('BrokerTraffic', () => {
  it.each([
    ['flotilla/v1/devices/dev-1/metrics', 'metrics'],
    ['flotilla/v1/devices/dev-1/state', 'state'],
    ['flotilla/v1/devices/dev-1/desired', 'desired'],
    ['flotilla/v1/api/svc-1/request', 'request'],
    ['flotilla/v1/api/svc-1/response', 'response'],
    ['$SYS/broker-id/heartbeat', 'sys'],
    ['flotilla/v1/devices/dev-1/metrics/extra', 'other'],
    ['flotilla/v1/devices//metrics', 'other'],
    ['flotilla/v1/devices/metrics', 'other'],
    ['flotilla/v1/api/svc-1/metrics', 'other'],
    ['flotilla/v1/devices/dev-1/request', 'other'],
    ['flotilla/v1/devices/dev-1/bogus', 'other'],
    ['flotilla/v2/devices/dev-1/metrics', 'other'],
    ['lab/probe', 'other'],
  ])('counts %s under %s', (topic, channel) => {
    expect(countIn(topic)).toEqual([channel]);
  });

  it('follows the topic root', () => {
    expect(countIn('acme/fleet/devices/d/logs', 'acme/fleet')).toEqual(['logs']);
    expect(countIn('flotilla/v1/devices/d/logs', 'acme/fleet')).toEqual(['other']);
  });

  it('counts a message in only when a client published it, and every delivery out', () => {
    const traffic = new BrokerTraffic(new Topics());
    const packet = { topic: 'flotilla/v1/devices/d/metrics' } as never;
    traffic.onPublish(packet, null); // the broker's own, such as $SYS heartbeats
    traffic.onPublish(packet, client);
    expect(traffic.onForward(client, packet)).toBe(packet);
    traffic.onForward(client, packet);
    expect(traffic.received().metrics).toBe(1);
    expect(traffic.sent().metrics).toBe(2);
  });
});
