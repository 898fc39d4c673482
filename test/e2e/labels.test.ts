/**
 * Scheduling by label with real agents: two devices with different labels,
 * an app selecting one of them, then a relabel that moves the app.
 * (Both agents share this machine's Docker Engine; each sees only its own
 * containers and prefixes their names, as the fleet simulator does.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  type AgentProcess,
  type HubProcess,
  runCli,
  scratchDir,
  startAgentProcess,
  startHubProcess,
  stopAll,
} from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { containerIds, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-labels-${suffix}`;
const north = `e2e-north-${suffix}`;
const south = `e2e-south-${suffix}`;

/** The device ids whose containers of the app run, according to Docker. */
async function runningOn(): Promise<string[]> {
  const ids = await containerIds(`flotilla.app=${app}`);
  const containers = await Promise.all(ids.map(inspect));
  return containers
    .filter((c) => c.State.Running)
    .map((c) => c.Config.Labels['flotilla.device']!)
    .sort();
}

describeDocker('label scheduling across two agents', () => {
  let hub: HubProcess;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    const images = await ensureTestImages();
    hub = await startHubProcess();
    agents.push(startAgentProcess(hub, north, { zone: 'north' }, { namePrefix: `${north}.` }));
    agents.push(startAgentProcess(hub, south, { zone: 'south' }, { namePrefix: `${south}.` }));
    await waitFor('both agents to register', async () => {
      const out = await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json']);
      const ids = (JSON.parse(out.stdout) as { items: { id: string }[] }).items.map((d) => d.id);
      return ids.includes(north) && ids.includes(south);
    });
    const file = join(scratchDir('flotilla-e2e-'), 'app.yaml');
    writeFileSync(
      file,
      stringify({ name: app, scheduling: { selectors: { zone: 'north' } }, spec: { containers: [{ name: 'web', image: images.v1 }] } }),
    );
    expect((await runCli(['--hub', hub.url, 'apply', '-f', file])).code).toBe(0);
  });

  afterAll(async () => {
    if (process.env.DEBUG_E2E) for (const a of agents) console.log(a.proc.output);
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('runs the app only on the device whose labels match', async () => {
    await waitFor('the app to run on north', async () => (await runningOn()).join() === north, { timeoutMs: 60_000 });
    // South got its desired state too (without the app) and stays empty.
    await waitFor('south to have converged', async () => {
      const out = await runCli(['--hub', hub.url, 'describe', 'device', south, '-o', 'json']);
      const device = JSON.parse(out.stdout) as { observedRevision: number; desiredRevision: number };
      return device.observedRevision === device.desiredRevision;
    });
    expect(await runningOn()).toEqual([north]);
  });

  it('moves the app when the devices are relabelled', async () => {
    expect((await runCli(['--hub', hub.url, 'label', 'device', north, 'zone=east'])).code).toBe(0);
    expect((await runCli(['--hub', hub.url, 'label', 'device', south, 'zone=north'])).code).toBe(0);
    await waitFor('the app to move to south', async () => (await runningOn()).join() === south, { timeoutMs: 60_000 });
    // The operator's view agrees once south reports the app running.
    const row = new RegExp(`${app}\\s+1\\s+zone=north\\s+1\\s+1/1`);
    await waitFor('get apps to show 1/1', async () => row.test((await runCli(['--hub', hub.url, 'get', 'apps'])).stdout));
  });
});
