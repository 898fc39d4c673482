/**
 * For agent-target tests: a releases dir of small real tarballs made by `tar`, named as
 * docker/release-bundle.sh names them, and devices played by plain MQTT clients. Each publishes
 * its retained state (arch, agent version, labels) and answers every desired document the way
 * its agent would, as far as the hub can see: an "upgrading" device reports the new version once
 * it holds a bundle for its arch (and `agentUpgrade failed` when there is none), a "rolling back"
 * one reports `agentUpgrade {phase: rolled-back}` at the revision it was sent. Told no release, or
 * the one it runs, a device reports no upgrade, as the agent does.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { DesiredAgent, DesiredState, DeviceState } from '../../shared/index.js';
import type { Cleanup } from './cleanup.js';
import { deviceState } from './fixtures.js';
import { closeClient, connectClient, Inbox } from './mqtt-client.js';
import { scratchDir } from './scratch.js';

export type Behaviour = 'upgrades' | 'rolls-back';

export interface AgentDevice {
  id: string;
  client: MqttClient;
  inbox: Inbox;
  state: DeviceState;
  behaviour: Behaviour;
  /** Every desired document it was sent, in order. */
  sent(): DesiredState[];
}

export const desiredTopic = (id: string) => `flotilla/v1/devices/${id}/desired`;

/** Releases 0.2.0 (amd64) and 0.3.0 (amd64, arm64), each a bin/flotilla and a package.json under flotilla/. */
export function releasesDir(): string {
  const dir = scratchDir('flotilla-it-releases-');
  for (const [version, arch] of [
    ['0.2.0', 'amd64'],
    ['0.3.0', 'amd64'],
    ['0.3.0', 'arm64'],
  ] as const) {
    const tree = join(dir, `tree-${version}-${arch}`, 'flotilla');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    writeFileSync(join(tree, 'bin', 'flotilla'), releaseScript(version, arch));
    writeFileSync(join(tree, 'package.json'), JSON.stringify({ version }));
    execFileSync('tar', ['-czf', join(dir, `flotilla-${version}-linux-${arch}.tar.gz`), '-C', join(tree, '..'), 'flotilla']);
  }
  return dir;
}

export const releaseScript = (version: string, arch: string) => `#!/bin/sh\necho ${version} ${arch}\n`;

/** A device on `mqttUrl` running agent 0.1.0; resolves once it holds its first desired document. */
export async function agentDevice(
  cleanup: Cleanup,
  mqttUrl: string,
  id: string,
  arch: string,
  labels: Record<string, string>,
  behaviour: Behaviour = 'upgrades',
): Promise<AgentDevice> {
  const client = await connectClient(mqttUrl, { clientId: id });
  cleanup.add(`device ${id}`, () => closeClient(client));
  const base = deviceState(id, { labels });
  const inbox = new Inbox(client);
  const device: AgentDevice = {
    id,
    client,
    inbox,
    state: { ...base, host: { ...base.host, arch, agentVersion: '0.1.0' } },
    behaviour,
    sent: () => inbox.on(desiredTopic(id)).map((m) => m.json as DesiredState),
  };
  const report = () =>
    client.publish(`flotilla/v1/devices/${id}/state`, JSON.stringify({ ...device.state, reportedAt: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
  client.on('message', (topic, payload) => {
    if (topic !== desiredTopic(id)) return;
    const desired = JSON.parse(payload.toString()) as DesiredState;
    device.state.observedRevision = desired.revision;
    actOn(device, desired.agent);
    report();
  });
  await client.subscribeAsync(desiredTopic(id), { qos: 1 });
  report();
  await inbox.waitFor<DesiredState>(desiredTopic(id), (d) => d.revision >= 1, 30_000);
  return device;
}

function actOn(device: AgentDevice, agent: DesiredAgent | undefined): void {
  // As the agent does: told no release, or the one it runs, it has no upgrade to report (a rollback is forgotten once sent back).
  if (!agent || agent.version === device.state.host.agentVersion) {
    delete device.state.agentUpgrade;
    return;
  }
  const upgrade = { version: agent.version, revision: agent.revision, since: new Date().toISOString() };
  if (device.behaviour === 'rolls-back') {
    device.state.agentUpgrade = { ...upgrade, phase: 'rolled-back', message: 'crashed 3 times in a row' };
  } else if (!agent.bundle) {
    device.state.agentUpgrade = { ...upgrade, phase: 'failed', message: `no release tarball for ${device.state.host.arch}` };
  } else {
    device.state.host.agentVersion = agent.version;
    delete device.state.agentUpgrade;
  }
}
