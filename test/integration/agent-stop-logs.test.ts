/**
 * What an agent's clean stop (SIGTERM: `close()`) says: that it disconnected from the hub, then
 * that it stopped, and never that it is reconnecting (it is not).
 */
import Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

describe('an agent stopped cleanly', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('says disconnected, then stopped, and nothing about reconnecting', { timeout: 60_000 }, async () => {
    const hub = await startTestHub({ logLevel: 'info' });
    cleanup.add('hub', () => hub.close());
    const logs = new LogCapture('info');
    const agent = await startAgent(
      { deviceId: 'stop-agent', hubUrl: hub.mqttUrl, dataDir: scratchDir('flotilla-stop-agent-'), logLevel: 'info' },
      { runtime: new DockerRuntime(new Dockerode({ socketPath: '/nonexistent/docker.sock' })), logger: logs.logger },
    );
    await waitFor('the agent to connect', () => agent.link.connected || undefined);
    await agent.close();

    const messages = logs.records.map((r) => r.msg);
    expect(messages.filter((msg) => /reconnect/.test(msg))).toEqual([]);
    expect(messages.slice(-2)).toEqual(['disconnected from hub', 'agent stopped']);
    expect(logs.matching('agent stopped')).toEqual([expect.objectContaining({ level: 30 })]);
  });
});
