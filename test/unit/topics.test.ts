import { describe, expect, it } from 'vitest';
import { Topics } from '../../shared/index.js';

describe('Topics', () => {
  const topics = new Topics();

  it('builds device and API topics under the root', () => {
    expect(topics.device('dev-1', 'desired')).toBe('flotilla/v1/devices/dev-1/desired');
    expect(topics.allDevices('state')).toBe('flotilla/v1/devices/+/state');
    expect(topics.api('svc.1', 'response')).toBe('flotilla/v1/api/svc.1/response');
    expect(new Topics('acme/fleet').device('d', 'status')).toBe('acme/fleet/devices/d/status');
  });

  it('refuses device ids that would escape their topic', () => {
    for (const bad of ['+', '#', 'a/b', '', 'UPPER', '-lead']) expect(() => topics.device(bad, 'state')).toThrow(/invalid device id/);
    expect(() => topics.api('a/b', 'request')).toThrow(/invalid API client id/);
  });

  it('refuses a root with wildcards or stray slashes', () => {
    for (const bad of ['a/+', '#', '/a', 'a/', '']) expect(() => new Topics(bad)).toThrow(/invalid topic root/);
  });

  it('parses its own topics and nothing else', () => {
    expect(topics.parse('flotilla/v1/devices/dev-1/state')).toEqual({ kind: 'device', deviceId: 'dev-1', channel: 'state' });
    expect(topics.parse('flotilla/v1/api/svc-1/request')).toEqual({ kind: 'api', clientId: 'svc-1', channel: 'request' });
    for (const other of [
      'flotilla/v1/devices/dev-1/unknown',
      'flotilla/v1/devices/dev-1/state/extra',
      'flotilla/v2/devices/dev-1/state',
      'flotilla/v1/devices/BAD/state',
      'flotilla/v1/api/svc/other',
      'flotilla/v1',
    ]) {
      expect(topics.parse(other)).toBeUndefined();
    }
  });
});
