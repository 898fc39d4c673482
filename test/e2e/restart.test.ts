/**
 * An agent killed with SIGKILL while its container runs must, when started
 * again, adopt that container (no duplicate) and report its state again:
 * seen by `mosquitto_sub` on the retained state topic, as any dashboard would.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { DeviceState } from '../../shared/index.js';
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

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-restart-${suffix}`;
const deviceId = `e2e-restart-${suffix}`;

/** The retained state, read the way a dashboard or an operator's shell would. */
async function retainedState(hub: HubProcess): Promise<DeviceState> {
  const { stdout } = await run(
    'mosquitto_sub',
    ['-h', '127.0.0.1', '-p', `${hub.mqttPort}`, '-t', `flotilla/v1/devices/${deviceId}/state`, '-C', '1', '-W', '10'],
    {
      timeout: 15_000,
    },
  );
  return JSON.parse(stdout) as DeviceState;
}

describeDocker('agent restart', () => {
  let hub: HubProcess;
  let agent: AgentProcess;

  beforeAll(async () => {
    const images = await ensureTestImages();
    hub = await startHubProcess();
    agent = startAgentProcess(hub, deviceId);
    const file = join(scratchDir('flotilla-e2e-'), 'app.yaml');
    writeFileSync(
      file,
      stringify({ name: app, scheduling: { devices: [deviceId] }, spec: { containers: [{ name: 'web', image: images.v1 }] } }),
    );
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
    expect((await runCli(['--hub', hub.url, 'apply', '-f', file])).code).toBe(0);
    await waitFor('the app to run', async () => (await retainedState(hub)).apps.find((a) => a.name === app)?.phase === 'running', {
      timeoutMs: 60_000,
    });
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('adopts the running container after kill -9, without duplicating it, and reports again', async () => {
    const [before] = await containerIds(`flotilla.app=${app}`);
    const startedAt = (await inspect(before!)).State.StartedAt;

    await agent.proc.stop(true);
    expect(agent.proc.child.signalCode).toBe('SIGKILL');
    // The broker saw the connection die without DISCONNECT and published the will.
    await waitFor('the device to show offline', async () => {
      const out = await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json']);
      return (
        (JSON.parse(out.stdout) as { items: { id: string; online: boolean }[] }).items.find((d) => d.id === deviceId)?.online === false
      );
    });
    // The container does not depend on the agent.
    expect((await inspect(before!)).State.Running).toBe(true);

    const reportedBefore = (await retainedState(hub)).reportedAt;
    await agent.restart();
    const state = await waitFor('a fresh state report', async () => {
      const s = await retainedState(hub);
      return s.reportedAt !== reportedBefore && s.apps.find((a) => a.name === app)?.phase === 'running' ? s : undefined;
    });
    expect(state.apps.find((a) => a.name === app)?.containers.map((c) => c.id)).toEqual([before]);

    // Give the restarted agent a few reconcile ticks to do anything wrong.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await containerIds(`flotilla.app=${app}`)).toEqual([before]);
    expect((await inspect(before!)).State.StartedAt).toBe(startedAt);
  });
});
