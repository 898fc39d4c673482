/** Read-only MQTT accounts: the CONNECT, SUBSCRIBE and PUBLISH decisions, and how they are configured. */
import { describe, expect, it } from 'vitest';
import { parseDashboardUsers } from '../../broker/cli/commands/server.js';
import { resolveHubConfig } from '../../broker/config.js';
import { checkCredentials, mayReadOnlySubscribe } from '../../broker/mqtt/access.js';
import { Topics } from '../../shared/index.js';

const users = [
  { username: 'wall', password: 's3cret' },
  { username: 'grafana', password: 'pa:ss' },
];

describe('checkCredentials', () => {
  it('lets a client without a username in with full access (until per-device credentials exist)', () => {
    expect(checkCredentials(users, undefined, undefined)).toEqual({ access: 'anonymous' });
    expect(checkCredentials([], undefined, Buffer.from('ignored'))).toEqual({ access: 'anonymous' });
  });

  it('makes a configured user with the right password read-only', () => {
    expect(checkCredentials(users, 'wall', Buffer.from('s3cret'))).toEqual({ access: 'read-only', username: 'wall' });
    expect(checkCredentials(users, 'grafana', Buffer.from('pa:ss'))).toEqual({ access: 'read-only', username: 'grafana' });
  });

  it.each([
    ['a wrong password', 'wall', 's3cre', 'wrong password'],
    ['a longer password', 'wall', 's3cret!', 'wrong password'],
    ['another user’s password', 'wall', 'pa:ss', 'wrong password'],
    ['no password', 'wall', undefined, 'wrong password'],
    ['an unknown username', 'mallory', 's3cret', 'unknown username'],
    ['a username with no users configured', 'wall', 's3cret', 'unknown username', []],
  ])('refuses %s', (_what, username, password, reason, configured: { username: string; password: string }[] = users) => {
    expect(checkCredentials(configured, username, password === undefined ? undefined : Buffer.from(password))).toEqual({
      access: 'refused',
      reason,
    });
  });
});

describe('mayReadOnlySubscribe', () => {
  const topics = new Topics('flotilla/v1');

  it.each([
    'flotilla/v1/devices/+/metrics',
    'flotilla/v1/devices/+/state',
    'flotilla/v1/devices/+/status',
    'flotilla/v1/devices/+/events',
    'flotilla/v1/devices/+/logs',
    'flotilla/v1/devices/dev-1/metrics',
    'flotilla/v1/devices/pi.roof_2/state',
  ])('allows %s', (filter) => {
    expect(mayReadOnlySubscribe(topics, filter)).toBe(true);
  });

  it.each([
    '#',
    '+/+/+/+/+',
    'flotilla/#',
    'flotilla/v1/#',
    'flotilla/v1/devices/#',
    'flotilla/v1/devices/+/#',
    'flotilla/v1/devices/dev-1/+',
    'flotilla/v1/devices/+/+',
    'flotilla/v1/devices/+/desired',
    'flotilla/v1/devices/dev-1/commands',
    'flotilla/v1/devices/dev-1/replies',
    'flotilla/v1/api/+/response',
    'flotilla/v1/api/svc/request',
    '$SYS/#',
    'flotilla/v1/devices/+/metrics/extra',
    'flotilla/v1/devices/Dev-1/metrics',
    'flotilla/v1/devices//metrics',
    'other/v1/devices/+/metrics',
    'flotilla/v2/devices/+/metrics',
  ])('refuses %s', (filter) => {
    expect(mayReadOnlySubscribe(topics, filter)).toBe(false);
  });

  it('follows the configured topic root', () => {
    const custom = new Topics('acme/fleet');
    expect(mayReadOnlySubscribe(custom, 'acme/fleet/devices/+/metrics')).toBe(true);
    expect(mayReadOnlySubscribe(custom, 'flotilla/v1/devices/+/metrics')).toBe(false);
  });
});

describe('read-only users in the hub configuration', () => {
  it('defaults to none', () => {
    expect(resolveHubConfig({}).readOnlyUsers).toEqual([]);
  });

  it('names the bad key', () => {
    expect(() => resolveHubConfig({ readOnlyUsers: [{ username: '', password: 'x' }] })).toThrow(/readOnlyUsers/);
    expect(() =>
      resolveHubConfig({
        readOnlyUsers: [
          { username: 'a', password: 'x' },
          { username: 'a', password: 'y' },
        ],
      }),
    ).toThrow(/readOnlyUsers: username "a" appears twice/);
  });

  it('parses --dashboard-user and FLOTILLA_DASHBOARD_USERS values: name:password, repeatable, comma-separated', () => {
    expect(parseDashboardUsers('wall:s3cret')).toEqual([{ username: 'wall', password: 's3cret' }]);
    expect(parseDashboardUsers('grafana:a:b', [{ username: 'wall', password: 'x' }])).toEqual([
      { username: 'wall', password: 'x' },
      { username: 'grafana', password: 'a:b' },
    ]);
    expect(parseDashboardUsers('a:1,b:2,')).toEqual([
      { username: 'a', password: '1' },
      { username: 'b', password: '2' },
    ]);
    for (const bad of ['wall', 'wall:', ':pw', 'a:1,b']) expect(() => parseDashboardUsers(bad)).toThrow(/name:password/);
  });
});
