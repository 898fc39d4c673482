/**
 * An Ansible dynamic inventory of the fleet (the JSON of `--list`, with
 * `_meta.hostvars` so Ansible never calls `--host` once per device).
 *
 * Groups: one per label, `key_value` with every character Ansible does not
 * accept in a group name made `_` (`site=lab` → `site_lab`), and `online` /
 * `offline`. Offline devices stay in their label groups, marked by
 * `flotilla_online: false` and the `offline` group, so a play can skip them
 * (`hosts: site_lab:&online`). Every host reaches sshd through the hub:
 * `ansible_host` is the device id, which ssh hands the ProxyCommand as %h.
 */
import type { DeviceView } from '../../shared/api/results.js';

export interface Inventory {
  _meta: { hostvars: Record<string, HostVars> };
  all: { children: string[] };
  [group: string]: { hosts: string[] } | { children: string[] } | { hostvars: Record<string, HostVars> };
}

export interface HostVars {
  ansible_host: string;
  ansible_ssh_common_args: string;
  flotilla_labels: Record<string, string>;
  flotilla_arch: string | null;
  flotilla_agent_version: string | null;
  flotilla_online: boolean;
  flotilla_last_seen: string | null;
}

/** A name Ansible takes for a group: letters, digits and `_`. */
export function groupName(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, '_');
}

/** `-o ProxyCommand="…"` for ssh, as Ansible splits ansible_ssh_common_args (shlex, POSIX): `"` and `\` escaped inside. */
export function proxyCommandArgs(flotilla: string, port = 22): string {
  const command = `${flotilla} ssh-proxy %h ${port}`;
  return `-o ProxyCommand="${command.replace(/["\\]/g, '\\$&')}"`;
}

export function hostVars(device: DeviceView, sshCommonArgs: string): HostVars {
  return {
    ansible_host: device.id,
    ansible_ssh_common_args: sshCommonArgs,
    flotilla_labels: { ...device.labels },
    flotilla_arch: device.host?.arch ?? null,
    flotilla_agent_version: device.host?.agentVersion ?? null,
    flotilla_online: device.online,
    flotilla_last_seen: device.lastSeen,
  };
}

export function buildInventory(devices: readonly DeviceView[], sshCommonArgs: string): Inventory {
  const groups = new Map<string, Set<string>>([
    ['online', new Set()],
    ['offline', new Set()],
  ]);
  const join = (group: string, host: string) => {
    const hosts = groups.get(group) ?? new Set<string>();
    groups.set(group, hosts);
    hosts.add(host);
  };
  const hostvars: Record<string, HostVars> = {};
  for (const device of [...devices].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    hostvars[device.id] = hostVars(device, sshCommonArgs);
    join(device.online ? 'online' : 'offline', device.id);
    for (const [key, value] of Object.entries(device.labels)) join(groupName(`${key}_${value}`), device.id);
  }
  const names = [...groups.keys()].filter((name) => name !== 'all' && name !== 'ungrouped' && name !== '_meta').sort();
  const inventory: Inventory = { _meta: { hostvars }, all: { children: [...names, 'ungrouped'] } };
  for (const name of names) inventory[name] = { hosts: [...(groups.get(name) ?? [])].sort() };
  return inventory;
}
