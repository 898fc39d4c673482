import { describe, expect, it } from 'vitest';
import type { AppDetail, AppSummary, Device } from '../../cli/client.js';
import { describeApp, describeDevice } from '../../cli/commands/describe.js';
import { appsTable, devicesTable, formatScheduling } from '../../cli/commands/get.js';
import {
  cell,
  formatAge,
  formatFields,
  formatLabels,
  formatStructured,
  formatTable,
  humanDuration,
  roundedDuration,
} from '../../cli/output.js';
import { summarizeApp as summarize } from '../../shared/index.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

describe('formatTable', () => {
  it('upper-cases headers, pads every column but the last, separates columns by three spaces', () => {
    expect(
      formatTable(
        ['name', 'online', 'labels'],
        [
          ['pi-1', 'yes', 'site=roof'],
          ['kitchen-pi-22', 'no', '<none>'],
        ],
      ),
    ).toBe(['NAME            ONLINE   LABELS', 'pi-1            yes      site=roof', 'kitchen-pi-22   no       <none>', ''].join('\n'));
  });

  it('leaves no trailing spaces when the last cells are empty', () => {
    const out = formatTable(['NAME', 'MESSAGE'], [['a', '']]);
    expect(out).toBe('NAME   MESSAGE\na\n');
  });

  it('prints only the header for no rows', () => {
    expect(formatTable(['NAME', 'AGE'], [])).toBe('NAME   AGE\n');
  });

  it('counts code points, not UTF-16 units, when padding', () => {
    expect(formatTable(['A', 'B'], [['é→', 'x']])).toBe('A    B\né→   x\n');
  });

  it('keeps text from devices on one line and strips terminal escapes', () => {
    expect(formatTable(['MESSAGE', 'X'], [['line one\nline two\x1b[2J', 'y']])).toBe(
      'MESSAGE                 X\nline one line two?[2J   y\n',
    );
    expect(cell('a\tb\r\nc')).toBe('a b c');
  });
});

describe('humanDuration', () => {
  it('writes a duration as kubectl writes ages', () => {
    const s = 1000;
    const cases: [number, string][] = [
      [-5 * s, '0s'],
      [400, '0s'],
      [45 * s, '45s'],
      [119 * s, '119s'],
      [120 * s, '2m'],
      [200 * s, '3m20s'],
      [42 * 60 * s, '42m'],
      [179 * 60 * s, '179m'],
      [(5 * 3600 + 7 * 60) * s, '5h7m'],
      [20 * 3600 * s, '20h'],
      [47 * 3600 * s, '47h'],
      [(3 * 86400 + 4 * 3600) * s, '3d4h'],
      [12 * 86400 * s, '12d'],
      [(2 * 365 + 30) * 86400 * s, '2y30d'],
      [9 * 365 * 86400 * s, '9y'],
    ];
    for (const [ms, text] of cases) expect([ms, humanDuration(ms)]).toEqual([ms, text]);
  });
});

describe('roundedDuration', () => {
  it('rounds to the nearest unit, and to the next unit up when it reaches it', () => {
    const s = 1000;
    const cases: [number, string][] = [
      [0, '0s'],
      [29_400, '29s'],
      [59_600, '1m'],
      [90 * s, '2m'],
      [(59 * 60 + 40) * s, '1h'],
      [(2 * 3600 + 29 * 60) * s, '2h'],
      [(23 * 3600 + 50 * 60) * s, '1d'],
      [(6 * 86400 + 23 * 3600 + 59 * 60) * s, '7d'],
      [(6 * 86400 + 11 * 3600) * s, '6d'],
      [400 * 86400 * s, '1y'],
    ];
    for (const [ms, text] of cases) expect([ms, roundedDuration(ms)]).toEqual([ms, text]);
  });
});

describe('formatAge', () => {
  it('uses the largest whole unit', () => {
    expect(formatAge(ago(0), NOW)).toBe('0s');
    expect(formatAge(ago(5), NOW)).toBe('5s');
    expect(formatAge(ago(59), NOW)).toBe('59s');
    expect(formatAge(ago(60), NOW)).toBe('1m');
    expect(formatAge(ago(3 * 60 + 59), NOW)).toBe('3m');
    expect(formatAge(ago(2 * 3600 + 1), NOW)).toBe('2h');
    expect(formatAge(ago(23 * 3600 + 3599), NOW)).toBe('23h');
    expect(formatAge(ago(4 * 86400), NOW)).toBe('4d');
    expect(formatAge(ago(400 * 86400), NOW)).toBe('1y');
  });

  it('reads a timestamp in the future (clock skew) as 0s and nonsense as <unknown>', () => {
    expect(formatAge(ago(-30), NOW)).toBe('0s');
    expect(formatAge('yesterday-ish', NOW)).toBe('<unknown>');
    expect(formatAge(null, NOW)).toBe('<unknown>');
    expect(formatAge(new Date(NOW - 90_000), NOW)).toBe('1m');
  });
});

describe('formatLabels', () => {
  it('sorts by key and joins k=v with commas', () => {
    expect(formatLabels({ site: 'roof', arch: 'arm64', 'example.com/tier': 'edge' })).toBe('arch=arm64,example.com/tier=edge,site=roof');
    expect(formatLabels({})).toBe('<none>');
    expect(formatLabels({ empty: '' })).toBe('empty=');
  });
});

describe('formatScheduling', () => {
  it('shows selectors, a device list, or <all> for an empty selector', () => {
    expect(formatScheduling({ selectors: { site: 'roof', arch: 'arm64' } })).toBe('arch=arm64,site=roof');
    expect(formatScheduling({ devices: ['dev-1', 'dev-2'] })).toBe('devices: dev-1,dev-2');
    expect(formatScheduling({ selectors: {} })).toBe('<all>');
    expect(formatScheduling({ devices: ['dev-1'], selectors: { site: 'roof' } })).toBe('devices: dev-1; site=roof');
  });
});

describe('formatStructured', () => {
  it('prints pretty JSON or YAML, each ending in a newline', () => {
    expect(formatStructured({ name: 'a', revision: 1 }, 'json')).toBe('{\n  "name": "a",\n  "revision": 1\n}\n');
    expect(formatStructured({ name: 'a', items: [1] }, 'yaml')).toBe('name: a\nitems:\n  - 1\n');
  });
});

describe('formatFields', () => {
  it('aligns values and continues a list under its first line', () => {
    expect(
      formatFields([
        ['Name', 'pi-1'],
        ['Labels', ['a=1', 'b=2']],
        ['Apps', []],
      ]),
    ).toBe('Name:    pi-1\nLabels:  a=1\n         b=2\nApps:    <none>\n');
  });
});

const device: Device = {
  id: 'pi-1',
  online: true,
  lastSeen: ago(5),
  labels: { site: 'roof', arch: 'arm64' },
  operatorLabels: { site: 'roof' },
  reportedLabels: { arch: 'arm64' },
  desiredRevision: 4,
  observedRevision: 3,
  host: {
    hostname: 'pi-1',
    os: 'linux',
    arch: 'arm64',
    kernel: '6.1.0',
    dockerVersion: '24.0.7',
    agentVersion: '0.1.0',
    nodeVersion: '20.11.1',
  },
  apps: [
    {
      name: 'gateway',
      revision: 2,
      phase: 'running',
      containers: [
        { name: 'main', id: '0123456789abcdef0123', image: 'reg/gw:1', state: 'running', status: 'Up 5 minutes', restartCount: 1 },
      ],
    },
    { name: 'uploader', revision: 1, phase: 'failed', message: 'pull failed', containers: [] },
  ],
};

describe('devicesTable', () => {
  it("shows apps running, observed/desired revision, the agent's version and arch, labels and last seen", () => {
    const offline: Device = {
      ...device,
      id: 'pi-2',
      online: false,
      lastSeen: null,
      labels: {},
      observedRevision: null,
      host: null,
      apps: [],
    };
    expect(devicesTable([device, offline], NOW)).toBe(
      [
        'NAME   ONLINE   APPS          REVISION   VERSION   ARCH    LABELS                 LAST SEEN',
        'pi-1   yes      1/2 running   3/4        0.1.0     arm64   arch=arm64,site=roof   5s',
        'pi-2   no       0/0 running   -/4        -         -       <none>                 <never>',
        '',
      ].join('\n'),
    );
  });

  it('shows a revoked device as revoked, not merely offline', () => {
    const revoked: Device = { ...device, online: false, revokedAt: ago(60) };
    expect(devicesTable([revoked], NOW).split('\n')[1]).toMatch(/^pi-1 {3}revoked {3}1\/2 running/);
  });
});

const summary: AppSummary = {
  name: 'sensor-gateway',
  revision: 3,
  scheduling: { selectors: { site: 'roof' } },
  containers: 2,
  devices: { matched: 4, running: 3 },
  createdAt: ago(3 * 86400),
  updatedAt: ago(60),
};

describe('appsTable', () => {
  it('shows revision, selector, containers, devices running/matched and age', () => {
    expect(appsTable([summary, { ...summary, name: 'all', scheduling: { selectors: {} }, containers: 1, createdAt: ago(120) }], NOW)).toBe(
      [
        'NAME             REVISION   SELECTOR    CONTAINERS   DEVICES   AGE',
        'sensor-gateway   3          site=roof   2            3/4       3d',
        'all              3          <all>       1            3/4       2m',
        '',
      ].join('\n'),
    );
  });

  it('adds a SCOPE column when some app was applied with a prune scope', () => {
    expect(
      appsTable(
        [
          { ...summary, scope: 'shop' },
          { ...summary, name: 'by-hand' },
        ],
        NOW,
      ),
    ).toBe(
      [
        'NAME             REVISION   SELECTOR    SCOPE    CONTAINERS   DEVICES   AGE',
        'sensor-gateway   3          site=roof   shop     2            3/4       3d',
        'by-hand          3          site=roof   <none>   2            3/4       3d',
        '',
      ].join('\n'),
    );
  });
});

const detail: AppDetail = {
  name: 'sensor-gateway',
  revision: 3,
  spec: {
    name: 'sensor-gateway',
    scheduling: { selectors: { site: 'roof' } },
    spec: {
      containers: [
        {
          name: 'gateway',
          image: 'reg/gw:1',
          env: [
            { name: 'LOG_LEVEL', value: 'info' },
            { name: 'TOKEN', fromSecret: 'gw-token' },
          ],
          ports: ['8080:80'],
          auth: { username: 'ci', password: 'hunter2' },
        },
      ],
    },
  },
  createdAt: ago(86400),
  updatedAt: ago(60),
  devices: [
    { id: 'pi-2', online: false, phase: null, revision: null },
    { id: 'pi-1', online: true, phase: 'running', revision: 3 },
    { id: 'pi-3', online: true, phase: 'running', revision: 2 },
  ],
};

describe('summarize', () => {
  it('counts a device as running only at the current revision, as the hub does', () => {
    expect(summarize(detail).devices).toEqual({ matched: 3, running: 1 });
    expect(summarize(detail).containers).toBe(1);
  });
});

describe('describeDevice', () => {
  it('has labels (marking the operator’s), host facts, apps and containers with short ids', () => {
    const text = describeDevice(device, NOW);
    expect(text).toContain('Revision:   desired 4, observed 3\n');
    expect(text).toContain('Labels:     arch=arm64\n            site=roof (operator)\n');
    expect(text).toContain('  OS/Arch:   linux/arm64\n');
    expect(text).toContain('  Agent:     0.1.0\n  Node:      20.11.1\n');
    expect(text).toMatch(/ {2}uploader +1 +failed +pull failed\n/);
    expect(text).toMatch(/ {2}gateway +main +0123456789ab +reg\/gw:1 +running \(Up 5 minutes\) +1\n/);
    expect(text).not.toContain('0123456789abc');
  });

  it('says when a device was revoked and what that does and does not stop', () => {
    const at = ago(60);
    const text = describeDevice({ ...device, online: false, revokedAt: at }, NOW);
    expect(text).toContain(
      `Online:     no\nRevoked:    ${at} (its credentials are refused; its containers keep running until the device is wiped)\n`,
    );
    expect(describeDevice(device, NOW)).not.toContain('Revoked');
  });

  it('lists the job executions the device reported, by job, and leaves the section out when it reported none', () => {
    const text = describeDevice(
      {
        ...device,
        jobs: [
          { name: 'rotate-certs', execution: 'rotate-certs.1', state: 'running', attempt: 1, startedAt: ago(30) },
          {
            name: 'diag',
            execution: 'diag.1',
            state: 'failed',
            attempt: 2,
            exitCode: 3,
            container: 'collect',
            message: 'collect exited 3',
          },
          { name: 'noimg', execution: 'noimg.1', state: 'failed', attempt: 1, message: 'pull access denied for nosuch\u001b[2J' },
        ],
      },
      NOW,
    );
    expect(text).toMatch(
      new RegExp(
        [
          'Jobs:',
          '  JOB +STATE +ATTEMPT +EXIT +MESSAGE',
          '  diag +failed +2 +3 \\(collect\\) +collect exited 3',
          '  noimg +failed +1 +- +pull access denied for nosuch\\?\\[2J',
          '  rotate-certs +running +1 +-',
          '$',
        ].join('\n'),
      ),
    );
    expect(describeDevice(device, NOW)).not.toContain('Jobs');
  });

  it('lists reported labels the operator removed (tombstones) apart from the labels in effect', () => {
    const text = describeDevice(
      { ...device, labels: { site: 'roof' }, operatorLabels: { site: 'roof', arch: null }, reportedLabels: { arch: 'arm64' } },
      NOW,
    );
    expect(text).toContain(
      'Labels:          site=roof (operator)\nRemoved Labels:  arch=arm64 (reported by the agent, removed by the operator)\n',
    );
  });
});

describe('describeApp', () => {
  it('summarizes the spec without printing secrets, and lists every matched device', () => {
    const text = describeApp(detail, NOW);
    expect(text).toContain('Scheduling:  site=roof\n');
    expect(text).toContain('Env:            LOG_LEVEL=info\n                    TOKEN (from secret gw-token)\n');
    expect(text).toContain('Registry Auth:  ci (password in spec)\n');
    expect(text).not.toContain('hunter2');
    expect(text).toMatch(/ {2}pi-1 +yes +running +3\n {2}pi-2 +no +- +-\n {2}pi-3 +yes +running +2\n/);
    expect(text).toContain('Update:      <defaults>\n');
    expect(text).not.toContain('Scope:');
  });

  it('shows the prune scope the app was applied under', () => {
    expect(describeApp({ ...detail, scope: 'shop' }, NOW)).toContain('(1m ago)\nScope:       shop\nScheduling:  site=roof\n');
  });

  it('shows the update window with the other update settings', () => {
    const withSettings = (update: NonNullable<AppDetail['spec']['spec']['update']>): AppDetail => ({
      ...detail,
      spec: { ...detail.spec, spec: { ...detail.spec.spec, update } },
    });
    const windowed = describeApp(
      withSettings({
        strategy: 'download-then-kill',
        minReadySeconds: 30,
        window: { days: ['mon-fri'], from: '02:00', to: '04:00', timezone: 'Europe/Berlin' },
      }),
      NOW,
    );
    expect(windowed).toContain('Update:      strategy download-then-kill, min ready 30s, window mon-fri 02:00–04:00 Europe/Berlin\n');
    expect(describeApp(withSettings({ window: { from: '22:00', to: '04:00' } }), NOW)).toContain(
      "Update:      window 22:00–04:00 (each device's own time zone)\n",
    );
  });
});
