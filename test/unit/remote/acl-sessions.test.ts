/**
 * The ACL's rules for remote-access session topics (broker/auth/acl.ts): only
 * the session's device and the hub use them, whatever the role or filter.
 */
import { describe, expect, it } from 'vitest';
import { decidePublish, mayReceive, maySubscribe, type OpenSessionLookup, sessionReach } from '../../../broker/auth/acl.js';
import type { Identity } from '../../../broker/auth/identity.js';
import { Topics } from '../../../shared/index.js';
import { newSessionId } from '../../../shared/remote/requests.js';

const topics = new Topics('flotilla/v1');
const device = (deviceId: string): Identity => ({ kind: 'device', deviceId });
const account = (name: string, role: 'viewer' | 'operator' | 'admin'): Identity => ({ kind: 'account', name, role });
const ANON: Identity = { kind: 'anonymous' };

const S = newSessionId();
const other = newSessionId();
const open: OpenSessionLookup = (deviceId, sessionId) => deviceId === 'gw-1' && sessionId === S;
const up = topics.session('gw-1', S, 'up');
const down = topics.session('gw-1', S, 'down');

describe('publishing on session topics', () => {
  it('lets a device publish only on the up topic of its own open session', () => {
    expect(decidePublish(device('gw-1'), 'gw-1', up, topics, open)).toEqual({ allow: true });
    for (const topic of [down, topics.session('gw-1', other, 'up'), 'flotilla/v1/devices/gw-1/sessions/not-an-id/up']) {
      expect(decidePublish(device('gw-1'), 'gw-1', topic, topics, open)).toMatchObject({ allow: false, session: true });
    }
    // Another device, on the first one's open session.
    expect(decidePublish(device('gw-2'), 'gw-2', up, topics, open)).toMatchObject({ allow: false, session: true });
    expect(decidePublish(device('gw-2'), 'gw-2', topics.session('gw-2', S, 'up'), topics, open)).toMatchObject({ allow: false });
  });

  it('refuses every account, admin included, and anonymous clients but the one using the device id', () => {
    for (const identity of [account('root', 'admin'), account('ci', 'operator'), account('wall', 'viewer')]) {
      for (const topic of [up, down]) expect(decidePublish(identity, 'root', topic, topics, open).allow).toBe(false);
    }
    expect(decidePublish(ANON, 'someone', down, topics, open)).toMatchObject({ allow: false, session: true });
    expect(decidePublish(ANON, 'someone', up, topics, open)).toMatchObject({ allow: false, session: true });
    expect(decidePublish(ANON, 'gw-1', up, topics, open)).toEqual({ allow: true });
    expect(decidePublish(ANON, 'gw-1', down, topics, open).allow).toBe(false);
  });

  it('refuses a session nobody opened when no registry is given', () => {
    expect(decidePublish(device('gw-1'), 'gw-1', up, topics).allow).toBe(false);
  });
});

describe('subscribing to session topics', () => {
  it('lets a device subscribe to the down topics of its own sessions only', () => {
    expect(maySubscribe(device('gw-1'), 'gw-1', topics.deviceSessions('gw-1', 'down'), topics)).toBe(true);
    expect(maySubscribe(device('gw-1'), 'gw-1', down, topics)).toBe(true);
    for (const filter of [
      topics.deviceSessions('gw-1', 'up'),
      'flotilla/v1/devices/gw-1/sessions/#',
      'flotilla/v1/devices/gw-1/sessions/+/+',
      topics.deviceSessions('gw-2', 'down'),
      topics.allSessions('down'),
      '#',
      'flotilla/v1/devices/gw-1/#',
    ]) {
      expect(maySubscribe(device('gw-1'), 'gw-1', filter, topics), filter).toBe(false);
    }
  });

  it('refuses any filter naming sessions or a session id to admins, operators, viewers and other anonymous clients', () => {
    const filters = [
      up,
      down,
      topics.allSessions('up'),
      topics.deviceSessions('gw-1', 'up'),
      'flotilla/v1/devices/+/sessions/#',
      `flotilla/v1/devices/+/+/${S}/up`,
      `flotilla/v1/devices/gw-1/+/${S}/#`,
    ];
    for (const identity of [account('root', 'admin'), account('ci', 'operator'), account('wall', 'viewer'), ANON]) {
      for (const filter of filters) {
        expect(sessionReach(filter, topics), filter).toBe('only');
        expect(maySubscribe(identity, 'someone', filter, topics), `${JSON.stringify(identity)} ${filter}`).toBe(false);
      }
    }
  });

  it('grants broad filters as before, and delivers no session message through them', () => {
    for (const filter of ['#', 'flotilla/v1/#', 'flotilla/v1/devices/+/#', 'flotilla/v1/devices/gw-1/#']) {
      expect(sessionReach(filter, topics), filter).toBe('broad');
      expect(maySubscribe(account('root', 'admin'), 'root', filter, topics)).toBe(true);
      expect(maySubscribe(ANON, 'someone', filter, topics)).toBe(true);
    }
    expect(sessionReach(topics.allDevices('state'), topics)).toBeUndefined();
    for (const identity of [account('root', 'admin'), ANON, device('gw-2')]) {
      expect(mayReceive(identity, 'someone', up, topics)).toBe(false);
      expect(mayReceive(identity, 'someone', down, topics)).toBe(false);
    }
    // Ordinary topics that end the same way are not session topics.
    expect(mayReceive(account('root', 'admin'), 'root', 'flotilla/v1/x/up', topics)).toBe(true);
  });

  it('delivers down only to the device, and up to no client at all (the hub reads it in process)', () => {
    expect(mayReceive(device('gw-1'), 'gw-1', down, topics)).toBe(true);
    expect(mayReceive(ANON, 'gw-1', down, topics)).toBe(true);
    expect(mayReceive(device('gw-1'), 'gw-1', up, topics)).toBe(false);
    expect(mayReceive(device('gw-2'), 'gw-2', down, topics)).toBe(false);
  });
});
