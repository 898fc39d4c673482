/**
 * What the README tells people to run stops on SIGTERM, every process of it.
 * `npx flotilla server &` then `kill %1` from a script signals npm alone; npm
 * and its shell exit without passing the signal on, so node must notice that
 * its launcher is gone and close, rather than live on holding the ports.
 */
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { killStartedGroups, spawnInGroup } from '../support/process-groups.js';
import { hubServerArgs, scratchDir, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** `npx flotilla ARGS` from the repository, as the README runs it (in a process group of its own, for cleanup only). */
function npx(args: string[]): NpxProcess {
  const { child, output } = spawnInGroup('npx', ['flotilla', ...args]);
  return { npm: child, output };
}

interface NpxProcess {
  npm: ChildProcess;
  output: () => string;
}

/** The pid of the node process that logged `message` (pino writes its pid on every line). */
async function loggedPid(proc: NpxProcess, message: string): Promise<number> {
  let pid: number | undefined;
  await waitFor(
    `"${message}" (output so far: ${proc.output().slice(-600)})`,
    () => {
      const line = proc
        .output()
        .split('\n')
        .find((l) => l.includes(`"msg":"${message}"`));
      pid = line ? (JSON.parse(line) as { pid: number }).pid : undefined;
      return pid !== undefined;
    },
    { timeoutMs: 30_000 },
  );
  return pid!;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

afterEach(async () => {
  killStartedGroups();
  await stopAll();
});

describe('npx flotilla … & then SIGTERM to npm', () => {
  it('closes the hub and the agent node processes npm started, and frees the ports', async () => {
    const { args, mqttPort, httpPort } = await hubServerArgs(scratchDir('flotilla-npx-hub-'));
    const hub = npx(args);
    const hubPid = await loggedPid(hub, 'hub ready');
    const agent = npx([
      'agent',
      '--hub-url',
      `mqtt://127.0.0.1:${mqttPort}`,
      '--data-dir',
      scratchDir('flotilla-npx-agent-'),
      '--device-id',
      'npx-signals',
      '--container-name-prefix',
      'npx-signals-',
    ]);
    const agentPid = await loggedPid(agent, 'connected to hub');
    // npm's own pid is not node's: the signal below reaches npm alone.
    expect([hubPid, agentPid]).not.toContain(hub.npm.pid);
    expect([hubPid, agentPid]).not.toContain(agent.npm.pid);

    agent.npm.kill('SIGTERM');
    hub.npm.kill('SIGTERM');

    await waitFor('both node processes gone', () => !running(hubPid) && !running(agentPid), { timeoutMs: 20_000 });
    // Closed, not killed: each said why and shut down in order.
    expect(hub.output()).toContain('npm, which started this hub, has exited: closing the hub');
    expect(hub.output()).toContain('"msg":"hub stopped"');
    expect(agent.output()).toContain('npm, which started this agent, has exited: closing the agent');
    expect(await portOpen(httpPort)).toBe(false);
    expect(await portOpen(mqttPort)).toBe(false);
  });
});
