/**
 * `flotilla describe app` for an app with a start order: its init containers, its init policy,
 * each container's dependencies and network aliases, and the order the agent starts them in.
 */
import { describe, expect, it } from 'vitest';
import type { AppDetail } from '../../cli/client.js';
import { describeApp } from '../../cli/commands/describe.js';
import type { AppSpec } from '../../shared/index.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

function detail(spec: AppSpec['spec']): AppDetail {
  return {
    name: 'shop',
    revision: 2,
    spec: { name: 'shop', scheduling: { selectors: { site: 'lab' } }, spec },
    createdAt: ago(3600),
    updatedAt: ago(60),
    devices: [],
  };
}

/** As a Compose file with an init step, a database, and two services after it becomes: written in an order that is not the start order. */
const shop: AppSpec['spec'] = {
  initContainers: [
    { name: 'migrate', image: 'reg/shop-migrate:1', command: ['migrate', 'up'], env: [{ name: 'DB', value: 'postgres://db/shop' }] },
    { name: 'seed', image: 'reg/shop-migrate:1', command: ['seed'] },
  ],
  initPolicy: 'start',
  containers: [
    { name: 'worker', image: 'reg/shop-web:1', command: ['work'], dependsOn: { db: 'healthy', web: 'started' } },
    { name: 'web', image: 'reg/shop-web:1', ports: ['8080:8080'], networkAliases: ['shop-web', 'www'], dependsOn: { db: 'healthy' } },
    { name: 'db', image: 'postgres:16-alpine', healthcheck: { exec: ['pg_isready'], interval: '5s' } },
  ],
};

describe('describeApp with a start order', () => {
  it('lists the init containers in order, the init policy, dependencies, aliases, and the start order the agent follows', () => {
    expect(describeApp(detail(shop), NOW)).toBe(
      [
        'Name:         shop',
        'Revision:     2',
        `Created:      ${ago(3600)} (1h ago)`,
        `Updated:      ${ago(60)} (1m ago)`,
        'Scheduling:   site=lab',
        'Update:       <defaults>',
        'Init Policy:  start (init containers run for each new revision, and each time the containers start from nothing)',
        'Start Order:  init migrate → init seed → db → web → worker',
        'Init Containers:',
        '  migrate:',
        '    Image:    reg/shop-migrate:1',
        '    Command:  migrate up',
        '    Env:      DB=postgres://db/shop',
        '  seed:',
        '    Image:    reg/shop-migrate:1',
        '    Command:  seed',
        'Containers:',
        '  worker:',
        '    Image:       reg/shop-web:1',
        '    Command:     work',
        '    Depends On:  db (healthy), web (started)',
        '  web:',
        '    Image:            reg/shop-web:1',
        '    Ports:            8080:8080',
        '    Network Aliases:  shop-web, www',
        '    Depends On:       db (healthy)',
        '  db:',
        '    Image:        postgres:16-alpine',
        '    Healthcheck:  exec pg_isready (every 5s)',
        'Devices:  <none>',
        '',
      ].join('\n'),
    );
  });

  it('says the init policy is revision when the spec leaves it out', () => {
    const text = describeApp(detail({ ...shop, initPolicy: undefined }), NOW);
    expect(text).toContain('Init Policy:  revision (init containers run once for each new revision)\n');
  });

  it('shows the start order of dependencies alone, without init lines', () => {
    const text = describeApp(detail({ containers: shop.containers }), NOW);
    expect(text).toContain('Update:       <defaults>\nStart Order:  db → web → worker\nContainers:\n');
    expect(text).not.toContain('Init');
  });

  it('prints an app without init containers or dependencies as it always has', () => {
    const text = describeApp(
      detail({
        containers: [
          { name: 'web', image: 'reg/web:1' },
          { name: 'cache', image: 'reg/cache:1' },
        ],
      }),
      NOW,
    );
    expect(text).toBe(
      [
        'Name:        shop',
        'Revision:    2',
        `Created:     ${ago(3600)} (1h ago)`,
        `Updated:     ${ago(60)} (1m ago)`,
        'Scheduling:  site=lab',
        'Update:      <defaults>',
        'Containers:',
        '  web:',
        '    Image:  reg/web:1',
        '  cache:',
        '    Image:  reg/cache:1',
        'Devices:  <none>',
        '',
      ].join('\n'),
    );
  });
});
