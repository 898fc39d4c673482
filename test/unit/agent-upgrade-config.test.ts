/**
 * Where the agent fetches its own releases: `--hub-http-url` (or
 * FLOTILLA_HUB_HTTP_URL), else the `hubHttpUrl` that `agent register` wrote,
 * else the MQTT URL's host on port 7070; a bad one is refused naming the key.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../agent/config.js';
import { hubHttpUrl } from '../../agent/upgrade/hub-http-url.js';
import { writeAgentConfigFile } from '../../cli/agent-config-file.js';
import { type AgentFlagValues, type AgentIdentitySettings, agentIdentitySettings } from '../../cli/agent-file-settings.js';
import type { CliIO } from '../../cli/context.js';
import { buildProgram, loadAllCommands } from '../../cli/main.js';
import { scratchDir } from '../support/scratch.js';

async function settingsFor(args: string[], env: Record<string, string> = {}): Promise<AgentIdentitySettings | undefined> {
  const io: CliIO = {
    stdout: () => {},
    stderr: () => {},
    readStdin: async () => '',
    readFile: async () => '',
    fetch: async () => {
      throw new Error('must not be called');
    },
  };
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const program = buildProgram(io, await loadAllCommands());
    const agent = program.commands.find((c) => c.name() === 'agent');
    let settings: AgentIdentitySettings | undefined;
    agent?.action((options: AgentFlagValues & { label: string[] }, command: Command) => {
      settings = agentIdentitySettings({ ...options, labels: {} }, command, io);
    });
    await program.parseAsync(['node', 'flotilla', ...args]);
    return settings;
  } finally {
    process.env = saved;
  }
}

describe("the hub's HTTP URL for agent releases", () => {
  it('is the configured one, else the MQTT host on port 7070', () => {
    expect(hubHttpUrl({ hubUrl: 'mqtts://hub.example:8883', hubHttpUrl: 'https://hub.example:7443/' })).toBe('https://hub.example:7443');
    expect(hubHttpUrl({ hubUrl: 'mqtts://hub.example:8883' })).toBe('http://hub.example:7070');
    expect(hubHttpUrl({ hubUrl: 'mqtt://[::1]:1883' })).toBe('http://[::1]:7070');
  });

  it('comes from the config file that register wrote, unless the flag or its environment variable says otherwise', async () => {
    const dir = scratchDir('flotilla-agent-http-');
    writeAgentConfigFile(join(dir, 'agent.json'), {
      deviceId: 'pi-1',
      hubUrl: 'mqtt://hub.example:1883',
      hubHttpUrl: 'https://hub.example:7443',
    });
    expect((await settingsFor(['agent', '--data-dir', dir]))?.hubHttpUrl).toBe('https://hub.example:7443');
    expect((await settingsFor(['agent', '--data-dir', dir, '--hub-http-url', 'http://10.0.0.2:7070']))?.hubHttpUrl).toBe(
      'http://10.0.0.2:7070',
    );
    expect((await settingsFor(['agent', '--data-dir', dir], { FLOTILLA_HUB_HTTP_URL: 'http://10.0.0.3:7070' }))?.hubHttpUrl).toBe(
      'http://10.0.0.3:7070',
    );
    expect((await settingsFor(['agent', '--data-dir', scratchDir('flotilla-agent-none-')]))?.hubHttpUrl).toBeUndefined();
  });

  it('is refused in the agent configuration when it is not http(s), naming the key', () => {
    expect(() => resolveAgentConfig({ deviceId: 'pi-1', hubHttpUrl: 'ftp://hub' })).toThrow(/hubHttpUrl/);
    expect(resolveAgentConfig({ deviceId: 'pi-1', hubHttpUrl: 'https://hub:7443' }).hubHttpUrl).toBe('https://hub:7443');
  });
});
