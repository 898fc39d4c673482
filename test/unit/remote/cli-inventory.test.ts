/**
 * The Ansible inventory the CLI builds (cli/remote/inventory.ts) and the
 * command line it writes into each host's ProxyCommand: group names Ansible
 * accepts, offline devices kept in their groups, and quoting that survives
 * Ansible's shlex split and then sh -c.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildInventory, groupName, proxyCommandArgs } from '../../../cli/remote/inventory.js';
import { selfCommand, shellQuote } from '../../../cli/remote/self-command.js';
import type { DeviceView } from '../../../shared/api/results.js';

function device(id: string, online: boolean, labels: Record<string, string>, arch?: string): DeviceView {
  return {
    id,
    online,
    lastSeen: '2026-01-01T00:00:00.000Z',
    labels,
    operatorLabels: {},
    reportedLabels: labels,
    desiredRevision: 1,
    observedRevision: 1,
    host: arch === undefined ? null : { hostname: id, os: 'linux', arch, agentVersion: '0.1.0' },
    apps: [],
  };
}

describe('buildInventory', () => {
  it('groups by label and presence, keeps offline devices in their label groups, and fills host vars', () => {
    const inventory = buildInventory(
      [
        device('b-2', false, { site: 'lab' }),
        device('a-1', true, { site: 'lab', 'k8s.io/zone': 'eu-1' }, 'arm64'),
        device('c-3', true, {}),
      ],
      'ARGS',
    );
    expect(inventory.all).toEqual({ children: ['k8s_io_zone_eu_1', 'offline', 'online', 'site_lab', 'ungrouped'] });
    expect(inventory.site_lab).toEqual({ hosts: ['a-1', 'b-2'] });
    expect(inventory.k8s_io_zone_eu_1).toEqual({ hosts: ['a-1'] });
    expect(inventory.online).toEqual({ hosts: ['a-1', 'c-3'] });
    expect(inventory.offline).toEqual({ hosts: ['b-2'] });
    expect(inventory._meta.hostvars['a-1']).toEqual({
      ansible_host: 'a-1',
      ansible_ssh_common_args: 'ARGS',
      flotilla_labels: { site: 'lab', 'k8s.io/zone': 'eu-1' },
      flotilla_arch: 'arm64',
      flotilla_agent_version: '0.1.0',
      flotilla_online: true,
      flotilla_last_seen: '2026-01-01T00:00:00.000Z',
    });
    // A device that never reported its host: unknown facts, not missing keys.
    expect(inventory._meta.hostvars['b-2']).toMatchObject({ flotilla_arch: null, flotilla_agent_version: null, flotilla_online: false });
  });

  it('makes group names of letters, digits and _ only', () => {
    expect(groupName('site_lab')).toBe('site_lab');
    expect(groupName('example.com/role_edge-gw')).toBe('example_com_role_edge_gw');
  });
});

describe('the ProxyCommand', () => {
  it('quotes words the shell would split or expand', () => {
    expect(shellQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(shellQuote('/opt/my dir/x')).toBe("'/opt/my dir/x'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });

  it('survives shlex (as Ansible splits ssh_common_args) and sh -c (as ssh runs it) with awkward paths', () => {
    const flotilla = selfCommand({
      execPath: '/opt/no de/"node"',
      script: "/srv/it's here/flotilla.js",
      hub: 'https://hub:7443',
      ca: '/etc/flotilla/ca $1.pem',
    });
    const args = proxyCommandArgs(flotilla);
    const split = JSON.parse(
      execFileSync('python3', ['-c', 'import json,shlex,sys; print(json.dumps(shlex.split(sys.argv[1])))', args], { encoding: 'utf8' }),
    ) as string[];
    expect(split[0]).toBe('-o');
    expect(split).toHaveLength(2);
    const command = split[1]!.replace(/^ProxyCommand=/, '').replace('%h', 'pi-1');
    // What sh -c makes of it, word by word.
    const words = execFileSync('sh', ['-c', `printf '%s\\n' ${command}`], { encoding: 'utf8' })
      .trimEnd()
      .split('\n');
    expect(words).toEqual([
      '/opt/no de/"node"',
      "/srv/it's here/flotilla.js",
      '--hub',
      'https://hub:7443',
      '--ca',
      '/etc/flotilla/ca $1.pem',
      'ssh-proxy',
      'pi-1',
      '22',
    ]);
  });
});
