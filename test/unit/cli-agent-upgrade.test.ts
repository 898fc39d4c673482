/**
 * The operator's agent-upgrade commands in-process: flags refused before the hub is
 * contacted (exit 2, with the fix named), the request the flags make, and what
 * people read (the upgrade line, the targets table, the VERSION marker of `get
 * devices`, the Agent Upgrade section of `describe device`, `rollout status
 * agent/NAME`). A real hub and the real CLI are test/integration/cli-agent-upgrade.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AGENT_SUBCOMMANDS } from '../../cli/agent-subcommands.js';
import { targetsTable, upgradeText } from '../../cli/agent-upgrade-text.js';
import { agentVersionCell } from '../../cli/agent-version-text.js';
import type { Device, RolloutStatus } from '../../cli/client.js';
import { describeDevice } from '../../cli/commands/describe.js';
import { devicesTable } from '../../cli/commands/get.js';
import { rolloutText } from '../../cli/commands/rollout.js';
import { pausedOnFailures } from '../../cli/commands/rollout-watch.js';
import type { CliIO } from '../../cli/context.js';
import { buildProgram, COMMANDS, EXIT_INVALID_INPUT, EXIT_OK } from '../../cli/main.js';
import type { AgentTargetView, AgentUpgradeReport } from '../../shared/index.js';
import { jsonResponse, runCliInProcess } from '../support/cli-in-process.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  requests: { method: string; path: string; body?: unknown }[];
}

/** Runs `flotilla ARGS…` in-process; the hub answers with `respond` (a body, or a whole Response), or must not be called. */
async function cli(args: string[], respond?: (path: string, method: string) => unknown): Promise<Captured> {
  const requests: Captured['requests'] = [];
  const fetch: CliIO['fetch'] = async (input, init) => {
    const url = new URL(String(input));
    requests.push({
      method: init?.method ?? 'GET',
      path: url.pathname,
      ...(typeof init?.body === 'string' ? { body: JSON.parse(init.body) } : {}),
    });
    if (!respond) throw new Error('the hub must not be contacted');
    const answer = respond(url.pathname, init?.method ?? 'GET');
    return answer instanceof Response ? answer : jsonResponse(200, answer);
  };
  return { ...(await runCliInProcess(args, { fetch })), requests };
}

describe('flotilla agent upgrade: flags', () => {
  it.each([
    [['--version', '0.3.0'], 'agent upgrade needs the devices to upgrade: --selector KEY=VALUE, --device ID or --all'],
    [['--all'], 'agent upgrade needs the release to run: --version V (e.g. --version 0.3.0)'],
    [['--all', '--selector', 'site=lab', '--version', '0.3.0'], '--all selects every device: leave out --selector and --device'],
    [['--all', '--version', '0.3.0/../x'], 'invalid --version "0.3.0/../x"'],
    [['--selector', 'site', '--version', '0.3.0'], 'invalid label "site": expected key=value'],
    [['--device', 'GW 1', '--version', '0.3.0'], 'invalid device id "GW 1" in --device'],
    [['--all', '--version', '0.3.0', '--name', 'Site_Lab'], 'invalid --name "Site_Lab": a target name is a DNS label'],
    [['--all', '--version', '0.3.0', '--image', 'reg/flotilla:0.3.0'], 'name the image by digest, REPOSITORY@sha256:<64 hex digits>'],
    [['--all', '--version', '0.3.0', '--pause-after-canary'], '--pause-after-canary needs a canary to pause after: --canary N'],
    [['--all', '--version', '0.3.0', '--batch-size', '2', '--max-unavailable', '2'], 'give one'],
    [['--all', '--version', '0.3.0', '--canary', 'ten'], 'expected a number of devices (3) or a share of them from 0% to 100% (10%)'],
    [['--all', '--version', '0.3.0', '--canary', '120%'], "option '--canary <n|n%>' argument '120%' is invalid"],
    [['--all', '--version', '0.3.0', '--batch-size', '0'], 'expected a whole number, 1 or more'],
    [['--all', '--version', '0.3.0', '--health-timeout', '5 minutes'], 'expected a duration more than zero, such as 90s, 5m or 1h'],
    [['--all', '--version', '0.3.0', '--device-timeout', '0s'], 'expected a duration more than zero'],
  ])('refuses %j before calling the hub, exit 2', async (args, message) => {
    const result = await cli(['agent', 'upgrade', ...args]);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
  });

  it('sends the selection, version and rollout the flags ask for, and says where to follow it', async () => {
    const result = await cli(
      [
        'agent',
        'upgrade',
        '--selector',
        'site=lab,tier=edge',
        '-l',
        'zone=b',
        '--device',
        'gw-1',
        '--device',
        'gw-1',
        '--version',
        '0.3.0',
        '--health-timeout',
        '90s',
        '--canary',
        '10%',
        '--pause-after-canary',
        '--batch-size',
        '3',
        '--failure-threshold',
        '2',
        '--device-timeout',
        '10m',
        '--retry',
      ],
      () => ({ name: 'site-lab', revision: 7, version: '0.3.0', changed: true, rollout: 'agent/site-lab' }),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests).toEqual([
      {
        method: 'POST',
        path: '/api/v1/agent/targets',
        body: {
          version: '0.3.0',
          selectors: { site: 'lab', tier: 'edge', zone: 'b' },
          devices: ['gw-1'],
          rollout: { canary: '10%', pauseAfterCanary: true, batchSize: 3, failureThreshold: 2, deviceTimeout: '10m' },
          healthTimeout: '90s',
          retry: true,
        },
      },
      // Whether the hub knows the device named (it does: no warning).
      { method: 'GET', path: '/api/v1/devices/gw-1' },
    ]);
    expect(result.stdout).toBe('agent target site-lab: version 0.3.0 (revision 7); rolling out: flotilla rollout status agent/site-lab\n');
  });

  it('takes --all as every device, and a bare count as a canary of that many devices', async () => {
    const result = await cli(['agent', 'upgrade', '--all', '--version', '0.3.0', '--canary', '2', '--name', 'fleet'], () => ({
      name: 'fleet',
      revision: 8,
      version: '0.3.0',
      changed: false,
    }));
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests[0]?.body).toEqual({ version: '0.3.0', name: 'fleet', selectors: {}, rollout: { canary: 2 } });
    expect(result.stdout).toBe('agent target fleet: version 0.3.0 (revision 8) unchanged\n');
  });

  it('keeps the CLI’s own --version for the line without a command', async () => {
    const own = await cli(['--version']);
    expect(own.code).toBe(EXIT_OK);
    expect(own.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('flotilla agent: subcommands that do not run the agent', () => {
  it('lists every subcommand of `agent` (and its aliases) for bin.ts, so none gets the agent’s V8 flags', async () => {
    const registerAgent = await COMMANDS.find((command) => command.name === 'agent')!.load();
    const program = buildProgram({} as CliIO, [registerAgent]);
    const agent = program.commands.find((command) => command.name() === 'agent')!;
    const names = agent.commands.flatMap((command) => [command.name(), ...command.aliases()]);
    expect(names).toEqual(expect.arrayContaining(['register', 'upgrade', 'targets', 'delete-target']));
    expect([...AGENT_SUBCOMMANDS].sort()).toEqual([...names].sort());
  });
});

describe('upgradeText', () => {
  it('names the target, version and revision; says where to watch it, or that nothing changed', () => {
    expect(upgradeText({ name: 'all', revision: 3, version: '0.3.0', changed: true })).toBe(
      'agent target all: version 0.3.0 (revision 3); the devices it selects upgrade now: flotilla get devices\n',
    );
  });
});

const target: AgentTargetView = {
  name: 'site-lab',
  revision: 7,
  version: '0.3.0',
  scheduling: { selectors: { site: 'lab' } },
  arches: ['amd64', 'arm64'],
  devices: { matched: 5, running: 2, upgrading: 1, failed: 1, rolledBack: 1 },
  createdAt: ago(3 * 3600),
  updatedAt: ago(60),
};

describe('targetsTable', () => {
  it('has one row per target with its selection and device counts', () => {
    expect(targetsTable([target, { ...target, name: 'all', revision: 9, scheduling: { selectors: {} }, createdAt: ago(30) }], NOW)).toBe(
      [
        'NAME       VERSION   REVISION   SELECTION   DEVICES   RUNNING   UPGRADING   FAILED   ROLLED-BACK   AGE',
        'site-lab   0.3.0     7          site=lab    5         2         1           1        1             3h',
        'all        0.3.0     9          <all>       5         2         1           1        1             30s',
        '',
      ].join('\n'),
    );
  });
});

const report = (phase: AgentUpgradeReport['phase'], extra: Partial<AgentUpgradeReport> = {}): AgentUpgradeReport => ({
  version: '0.3.0',
  revision: 7,
  phase,
  since: ago(90),
  ...extra,
});

const device: Device = {
  id: 'gw-lab-01',
  online: true,
  lastSeen: ago(5),
  labels: { site: 'lab' },
  operatorLabels: {},
  reportedLabels: { site: 'lab' },
  desiredRevision: 12,
  observedRevision: 12,
  host: { hostname: 'gw', os: 'linux', arch: 'arm64', agentVersion: '0.2.0' },
  apps: [{ name: 'gateway', revision: 2, phase: 'running', containers: [] }],
};

describe('the agent version marker', () => {
  it('shows the running version alone when no upgrade is reported', () => {
    expect(agentVersionCell(device)).toBe('0.2.0');
    expect(agentVersionCell({ ...device, host: null })).toBe('-');
  });

  it.each(['downloading', 'verifying', 'switching', 'restarting'] as const)('marks %s as UPGRADING with the target version', (phase) => {
    expect(agentVersionCell({ ...device, agentUpgrade: report(phase) })).toBe('0.2.0 → 0.3.0 UPGRADING');
  });

  it('marks the new version on trial (confirming) as UPGRADING without an arrow to itself', () => {
    expect(agentVersionCell({ ...device, host: { ...device.host!, agentVersion: '0.3.0' }, agentUpgrade: report('confirming') })).toBe(
      '0.3.0 UPGRADING',
    );
  });

  it('marks a rolled-back and a failed upgrade with the version that did not make it', () => {
    expect(agentVersionCell({ ...device, agentUpgrade: report('rolled-back') })).toBe('0.2.0 ROLLED-BACK 0.3.0');
    expect(agentVersionCell({ ...device, agentUpgrade: report('failed') })).toBe('0.2.0 FAILED 0.3.0');
  });

  it('keeps a fleet’s `get devices` table within 100 columns with the widest marker', () => {
    const table = devicesTable(
      [
        { ...device, agentUpgrade: report('rolled-back') },
        { ...device, id: 'gw-lab-02', agentUpgrade: report('downloading', { bytes: 1, total: 2 }) },
      ],
      NOW,
    );
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toMatch(/ {3}VERSION {3}/);
    expect(lines[1]).toContain('   0.2.0 ROLLED-BACK 0.3.0   arm64   ');
    expect(lines[2]).toContain('   0.2.0 → 0.3.0 UPGRADING   arm64   ');
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(100);
  });
});

describe('describeDevice: Agent Upgrade', () => {
  it('shows running and desired versions, the phase with its marker, the download progress and the message', () => {
    const text = describeDevice(
      {
        ...device,
        desiredAgentVersion: '0.3.0',
        agentUpgrade: report('downloading', { bytes: 12 * 1024 * 1024, total: 41 * 1024 * 1024, message: 'resuming at 12 MiB' }),
      },
      NOW,
    );
    expect(text).toContain(
      [
        'Agent Upgrade:',
        '  Running:   0.2.0',
        '  Desired:   0.3.0',
        '  Phase:     downloading 0.3.0 (revision 7): UPGRADING',
        `  Since:     ${ago(90)} (1m ago)`,
        '  Progress:  12.0 MiB of 41.0 MiB (29%)',
        '  Message:   resuming at 12 MiB',
        '',
      ].join('\n'),
    );
  });

  it('gives a rollback’s reason without repeating the phase as a marker, says when the device has not reported yet, and has no section without any desired version', () => {
    const rolledBack = describeDevice(
      { ...device, desiredAgentVersion: '0.3.0', agentUpgrade: report('rolled-back', { message: 'crashed 3 times in a row' }) },
      NOW,
    );
    expect(rolledBack).toContain('  Phase:    rolled-back 0.3.0 (revision 7)\n');
    const failed = describeDevice({ ...device, desiredAgentVersion: '0.3.0', agentUpgrade: report('failed') }, NOW);
    expect(failed).toContain('  Phase:    failed 0.3.0 (revision 7)\n');
    expect(failed).not.toContain('FAILED');
    expect(rolledBack).toContain('  Message:  crashed 3 times in a row\n');
    expect(describeDevice({ ...device, desiredAgentVersion: '0.3.0' }, NOW)).toContain(
      '  Phase:    <not reported yet> (the device has not said it started)\n',
    );
    expect(describeDevice(device, NOW)).not.toContain('Agent Upgrade');
  });
});

const agentRollout: RolloutStatus = {
  app: 'agent/site-lab',
  revision: 7,
  previousRevision: 5,
  phase: 'paused',
  reason: 'canary healthy: waiting for resume',
  canary: 1,
  devices: [
    { id: 'gw-lab-01', revision: 7, state: 'healthy', since: ago(60), canary: true },
    { id: 'gw-lab-02', revision: 5, state: 'pending', since: ago(120), canary: false },
  ],
  counts: { pending: 1, updating: 0, healthy: 1, failed: 0, reverted: 0, total: 2 },
  startedAt: ago(300),
  updatedAt: ago(60),
};

describe('rollout status agent/NAME', () => {
  it('asks the agent target’s rollout and shows it as an app’s is shown, named agent/NAME', async () => {
    const result = await cli(['rollout', 'status', 'agent/site-lab'], () => agentRollout);
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests).toEqual([{ method: 'GET', path: '/api/v1/agent/targets/site-lab/rollout' }]);
    expect(result.stdout).toBe(rolloutText(agentRollout));
    expect(rolloutText(agentRollout, NOW).split('\n').slice(0, 4)).toEqual([
      'agent/site-lab revision 7 (from 5): paused',
      'reason: canary healthy: waiting for resume',
      'canary  [##########] 1/1',
      'fleet   [----------] 0/1',
    ]);
  });

  it('pauses, resumes and aborts through agent.rollout.*, and still takes app/NAME and NAME for apps', async () => {
    const abort = await cli(['rollout', 'abort', 'agent/site-lab'], () => ({ ...agentRollout, phase: 'aborted' }));
    expect(abort.requests).toEqual([{ method: 'POST', path: '/api/v1/agent/targets/site-lab/rollout/abort', body: {} }]);
    expect(abort.stdout).toBe('agent/site-lab rollout of revision 7: aborted\n');
    const app = await cli(['rollout', 'pause', 'app/web'], () => ({ ...agentRollout, app: 'web' }));
    expect(app.requests).toEqual([{ method: 'POST', path: '/api/v1/apps/web/rollout/pause', body: {} }]);
    expect(app.stdout).toBe('app/web rollout of revision 7: paused\n');
  });

  it('refuses an unknown kind and the app-only subcommands for agent targets, naming what to use', async () => {
    const kind = await cli(['rollout', 'status', 'deployment/web']);
    expect(kind.code).toBe(EXIT_INVALID_INPUT);
    expect(kind.stderr).toContain('expected an app name (web or app/web) or an agent target (agent/NAME)');
    const retry = await cli(['rollout', 'retry', 'agent/site-lab']);
    expect(retry.code).toBe(EXIT_INVALID_INPUT);
    expect(retry.stderr).toContain('flotilla agent upgrade --name site-lab --version V --retry');
    expect(retry.requests).toEqual([]);
  });
});

/** The hub's answer for something it does not have. */
const notFound = (message: string) =>
  new Response(JSON.stringify({ error: { code: 'not_found', message } }), { status: 404, headers: { 'content-type': 'application/json' } });

describe('agent upgrade --device for a device the hub does not know', () => {
  it('sets the target, warns on stderr that the device gets the version when it registers, and exits 0', async () => {
    const result = await cli(['agent', 'upgrade', '--device', 'nosuch', '--device', 'gw-lab-01', '--version', '0.3.0'], (path) => {
      if (path === '/api/v1/agent/targets') return { name: 'device-nosuch', revision: 4, version: '0.3.0', changed: true };
      if (path === '/api/v1/devices/nosuch') return notFound('device "nosuch" not found');
      return device;
    });
    expect(result.code).toBe(EXIT_OK);
    expect(result.stdout).toBe(
      'agent target device-nosuch: version 0.3.0 (revision 4); the devices it selects upgrade now: flotilla get devices\n',
    );
    expect(result.stderr).toBe('warning: device nosuch is not known to the hub yet: it gets agent 0.3.0 when it registers\n');
    expect(result.requests.map((r) => r.path).sort()).toEqual([
      '/api/v1/agent/targets',
      '/api/v1/devices/gw-lab-01',
      '/api/v1/devices/nosuch',
    ]);
  });
});

describe('agent upgrade -w: the exit code tells whether every device runs the version', () => {
  const rolledBackTarget: AgentTargetView = {
    ...target,
    name: 'ring',
    devices: { matched: 2, running: 1, upgrading: 0, failed: 0, rolledBack: 1 },
  };

  it('exits 1 when the devices settled with one rolled back, naming it and where to see why', async () => {
    const result = await cli(['agent', 'upgrade', '-l', 'ring=a', '--name', 'ring', '--version', '0.3.0', '-w'], (path, method) => {
      if (path === '/api/v1/agent/targets' && method === 'POST') return { name: 'ring', revision: 7, version: '0.3.0', changed: true };
      if (path === '/api/v1/agent/targets') return { items: [rolledBackTarget] };
      if (path === '/api/v1/devices') {
        return {
          items: [
            { ...device, agentUpgrade: report('rolled-back') },
            { ...device, id: 'gw-lab-02', agentUpgrade: report('rolled-back', { revision: 3 }) },
          ],
        };
      }
      throw new Error(`unexpected ${method} ${path}`);
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('agent target ring: 1/2 devices run 0.3.0, 0 upgrading, 0 failed, 1 rolled back\n');
    expect(result.stderr).toBe(
      [
        'error: agent target ring: 1 of 2 devices did not upgrade to 0.3.0: 0 failed, 1 rolled back',
        '  see why: flotilla events gw-lab-01',
        '',
      ].join('\n'),
    );
  });

  it('exits 1 when the rollout completes with devices that failed or were sent back, and when it was aborted', async () => {
    const rolloutOf = (status: RolloutStatus) => (path: string, method: string) =>
      path === '/api/v1/agent/targets' && method === 'POST'
        ? { name: 'site-lab', revision: 7, version: '0.3.0', changed: true, rollout: 'agent/site-lab' }
        : status;
    const args = ['agent', 'upgrade', '-l', 'site=lab', '--version', '0.3.0', '--canary', '1', '-w'];
    const complete: RolloutStatus = {
      ...agentRollout,
      phase: 'complete',
      devices: [
        { id: 'gw-lab-01', revision: 7, state: 'healthy', since: ago(60), canary: true },
        { id: 'gw-lab-02', revision: 7, state: 'failed', since: ago(10), canary: false, message: 'reported failed at revision 7' },
      ],
      counts: { pending: 0, updating: 0, healthy: 1, failed: 1, reverted: 0, total: 2 },
    };
    const partly = await cli(args, rolloutOf(complete));
    expect(partly.code).toBe(1);
    expect(partly.stderr).toBe(
      'error: agent/site-lab revision 7 is complete, but 1 of 2 devices do not run it: 1 failed, 0 sent back\n  see why: flotilla events gw-lab-02\n',
    );
    const whole = await cli(
      args,
      rolloutOf({ ...complete, devices: [complete.devices[0]!], counts: { ...complete.counts, failed: 0, total: 1 } }),
    );
    expect(whole.stderr).toBe('');
    expect(whole.code).toBe(EXIT_OK);
    const aborted = await cli(
      args,
      rolloutOf({ ...agentRollout, phase: 'aborted', reason: 'aborted by the operator: devices run their previous revision' }),
    );
    expect(aborted.code).toBe(1);
    expect(aborted.stderr).toBe(
      'error: agent/site-lab revision 7 was aborted: aborted by the operator: devices run their previous revision\n',
    );
  });
});

const failurePause: RolloutStatus = {
  ...agentRollout,
  reason: '1 device(s) failed at revision 7 (failureThreshold 1): gw-lab-01; they were sent back to their previous revision',
  devices: [
    { id: 'gw-lab-01', revision: 5, state: 'reverted', since: ago(5), canary: true, message: 'reported rolled-back at revision 7' },
    { id: 'gw-lab-02', revision: 5, state: 'pending', since: ago(120), canary: false },
  ],
  counts: { pending: 1, updating: 0, healthy: 0, failed: 0, reverted: 1, total: 2 },
};

describe('rollout status -w', () => {
  it('ends with exit 1 on a pause of the failure threshold, with the reason and the commands that go on', async () => {
    for (const [args, post] of [
      [['rollout', 'status', 'agent/site-lab', '-w'], undefined],
      [
        ['agent', 'upgrade', '-l', 'site=lab', '--version', '0.3.0', '--canary', '1', '-w'],
        { name: 'site-lab', revision: 7, version: '0.3.0', changed: true, rollout: 'agent/site-lab' },
      ],
    ] as const) {
      const result = await cli([...args], (_path, method) => (method === 'POST' ? post : failurePause));
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('agent/site-lab revision 7 (from 5): paused\n');
      expect(result.stderr).toBe(
        [
          `error: agent/site-lab revision 7 paused: ${failurePause.reason}`,
          '  see why: flotilla events gw-lab-01',
          '  go on with the next devices: flotilla rollout resume agent/site-lab',
          '  or send every device back: flotilla rollout abort agent/site-lab',
          '',
        ].join('\n'),
      );
    }
  });

  it('watches on through a pause after the canary and ends at complete with exit 0 (apps as agent targets)', async () => {
    const answers: RolloutStatus[] = [
      { ...agentRollout, app: 'web' },
      { ...agentRollout, app: 'web', phase: 'complete', counts: { ...agentRollout.counts, pending: 0, healthy: 2 } },
    ];
    const result = await cli(['rollout', 'status', 'web', '-w', '-o', 'json'], () => answers.shift() ?? answers[0]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    expect(
      result.stdout
        .trimEnd()
        .split('\n')
        .map((line) => (JSON.parse(line) as RolloutStatus).phase),
    ).toEqual(['paused', 'complete']);
  });

  it('says plainly that a newer revision replaced the one watched, with or without a rollout of its own', async () => {
    const withRollout: RolloutStatus[] = [agentRollout, { ...agentRollout, revision: 9, previousRevision: 7, phase: 'progressing' }];
    const newer = await cli(['rollout', 'status', 'agent/site-lab', '-w'], () => withRollout.shift());
    expect(newer.code).toBe(1);
    expect(newer.stderr).toBe(
      'error: agent/site-lab has a newer revision 9 than the revision 7 this watched\n  follow its rollout: flotilla rollout status agent/site-lab -w\n',
    );

    let polls = 0;
    const without = await cli(['rollout', 'status', 'agent/site-lab', '-w'], (path) => {
      if (path === '/api/v1/agent/targets') return { items: [{ ...target, revision: 9 }] };
      polls += 1;
      return polls === 1
        ? agentRollout
        : notFound('agent target "site-lab" has no rollout (it was set without one: agent upgrade --canary, --batch-size …)');
    });
    expect(without.code).toBe(1);
    expect(without.stderr).toBe(
      'error: agent/site-lab has a newer revision 9 than the revision 7 this watched\n' +
        '  it was set without a rollout, so its devices upgrade at once: flotilla agent targets site-lab\n',
    );
    expect(without.stderr).not.toContain('has no rollout');
  });

  it('tells a pause of the failure threshold from a later pause of the operator’s', () => {
    const pausedAgain = { phase: 'paused' as const, counts: failurePause.counts };
    expect(pausedOnFailures(pausedAgain, 0)).toBe(true);
    // Resumed after the threshold sent one device back, then paused by the operator: nothing new was sent back.
    expect(pausedOnFailures(pausedAgain, 1)).toBe(false);
    expect(pausedOnFailures({ phase: 'paused', counts: agentRollout.counts }, 0)).toBe(false);
  });
});
