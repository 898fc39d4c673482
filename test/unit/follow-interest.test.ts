/**
 * Who follows what across replicas (broker/telemetry/follow-interest.ts): which replica gets which
 * committed records, a set replaced whole and dropped when its lease runs out, and the count of a
 * replica's own streams per key.
 */
import { describe, expect, it } from 'vitest';
import { followKey, isFollowKey, LocalInterests, RemoteInterests } from '../../broker/telemetry/follow-interest.js';
import type { EventRecord } from '../../shared/index.js';
import { logRecord } from '../support/fixtures.js';

const event = (id: number, device: string): EventRecord => ({
  id,
  device,
  seq: id,
  ts: '2026-01-01T00:00:00.000Z',
  type: 't',
  message: 'm',
});

describe('follow interests', () => {
  it('routes each record only to the replicas following its device or every device, in order', () => {
    const remote = new RemoteInterests(30_000);
    remote.set('b', 1, [followKey('logs', 'd1'), followKey('events', 'd2')], 0);
    remote.set('c', 1, [followKey('logs', 'd2'), followKey('events', undefined)], 0);
    const logs = [logRecord(1, 'd1'), logRecord(2, 'd2'), logRecord(3, 'd1'), logRecord(4, 'd3')];
    expect(remote.routes('logs', logs)).toEqual(
      new Map([
        ['b', [logs[0], logs[2]]],
        ['c', [logs[1]]],
      ]),
    );
    const events = [event(5, 'd3'), event(6, 'd2')];
    expect(remote.routes('events', events)).toEqual(
      new Map([
        ['b', [events[1]]],
        ['c', events],
      ]),
    );
    expect(remote.logsDevices()).toEqual(new Set(['d1', 'd2']));
  });

  it('takes a set whole, ignores an older one, and drops one not renewed within its lease', () => {
    const remote = new RemoteInterests(30_000);
    expect(remote.anyOn('logs')).toBe(false);
    expect(remote.set('b', 2, [followKey('logs', 'd1')], 0)).toBe(true);
    expect(remote.set('b', 2, [followKey('logs', 'd1')], 1_000)).toBe(false);
    expect(remote.set('b', 1, [], 2_000)).toBe(false);
    expect(remote.anyOn('logs')).toBe(true);
    expect(remote.anyOn('events')).toBe(false);
    expect(remote.set('b', 3, [followKey('events', 'd1')], 10_000)).toBe(true);
    expect(remote.anyOn('logs')).toBe(false);
    expect(remote.expire(40_000)).toBe(false);
    expect(remote.expire(40_001)).toBe(true);
    expect(remote.routes('events', [event(1, 'd1')])).toEqual(new Map());
    remote.set('c', 1, [followKey('logs', 'd1')], 0);
    expect(remote.set('c', 2, [], 1)).toBe(true);
    expect(remote.routes('logs', [logRecord(1, 'd1')])).toEqual(new Map());
  });

  it('counts its own streams per key, and says when the set changes', () => {
    const local = new LocalInterests();
    const key = followKey('logs', 'd1');
    expect(local.add(key)).toBe(true);
    expect(local.add(key)).toBe(false);
    expect(local.remove(key)).toBe(false);
    expect(local.keys()).toEqual([key]);
    expect(local.remove(key)).toBe(true);
    expect(local.remove(key)).toBe(false);
    expect(local.size).toBe(0);
  });

  it('accepts only keys it makes', () => {
    expect(isFollowKey('logs/d1')).toBe(true);
    expect(isFollowKey('events/*')).toBe(true);
    expect(isFollowKey('logs/*')).toBe(false);
    expect(isFollowKey('metrics/d1')).toBe(false);
    expect(isFollowKey('logs/a/b')).toBe(false);
    expect(isFollowKey(7)).toBe(false);
  });
});
