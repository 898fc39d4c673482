/**
 * What `flotilla agent` takes from its config file (agent-config-file.ts) and
 * what from its flags. The rule: a flag or environment variable the operator
 * set wins over the file; the file wins over a flag's default. Labels merge,
 * the flags' value winning per key. The secret comes only from the file: on a
 * command line it would be visible to every user through `ps`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type AgentConfigFile, defaultAgentConfigPath, modeWarning, readAgentConfigFile } from './agent-config-file.js';
import type { CliIO } from './context.js';
import { UsageError } from './errors.js';
import { readCaFile } from './pinned-fetch.js';

export interface AgentFlagValues {
  deviceId?: string;
  hubUrl: string;
  hubHttpUrl?: string;
  dataDir: string;
  labels: Record<string, string>;
  config?: string;
  cert?: string;
  key?: string;
}

/** The connection and identity settings for startAgent, flags and file merged. */
export interface AgentIdentitySettings {
  deviceId?: string;
  hubUrl: string;
  /** Where the agent fetches its own releases: the flag, else the `--hub` it registered through. */
  hubHttpUrl?: string;
  labels: Record<string, string>;
  secret?: string;
  hubKey?: string;
  ca?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** The file read, if any (for the log line that says where the identity came from). */
  configPath?: string;
}

export function agentIdentitySettings(flags: AgentFlagValues, command: Command, io: CliIO): AgentIdentitySettings {
  const explicitPath = flags.config !== undefined;
  const path = flags.config ?? defaultAgentConfigPath(flags.dataDir);
  const loaded = readAgentConfigFile(path, { required: explicitPath });
  const file: Partial<AgentConfigFile> = loaded?.config ?? {};
  if (loaded) {
    const warning = modeWarning(path, loaded.mode);
    if (warning) io.stderr(warning);
  }
  const set = (option: string) => isSet(command, option);

  const deviceId = set('deviceId') ? flags.deviceId : (file.deviceId ?? flags.deviceId);
  if (file.secret !== undefined && file.deviceId !== undefined && deviceId !== file.deviceId) {
    io.stderr(`warning: --device-id ${deviceId} overrides ${path}, whose secret belongs to device ${file.deviceId}\n`);
  }
  const caFile = globalCaFile(command);
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new UsageError('--cert and --key go together: a client certificate and its private key');
  }
  const settings: AgentIdentitySettings = {
    hubUrl: set('hubUrl') || file.hubUrl === undefined ? flags.hubUrl : file.hubUrl,
    labels: { ...file.labels, ...flags.labels },
  };
  const fill = <K extends keyof AgentIdentitySettings>(key: K, value: AgentIdentitySettings[K] | undefined) => {
    if (value !== undefined) settings[key] = value;
  };
  fill('deviceId', deviceId);
  fill('hubHttpUrl', set('hubHttpUrl') ? flags.hubHttpUrl : (file.hubHttpUrl ?? flags.hubHttpUrl));
  fill('secret', file.secret);
  fill('hubKey', file.hubKey);
  fill('ca', caFile !== undefined ? readCaFile(caFile) : file.ca);
  fill('tlsCert', flags.cert !== undefined ? readPem(flags.cert, 'client certificate') : file.tlsCert);
  fill('tlsKey', flags.key !== undefined ? readPem(flags.key, 'client key') : file.tlsKey);
  fill('configPath', loaded ? path : undefined);
  return settings;
}

/** Given on the command line or through its environment variable, as opposed to left at its default. */
function isSet(command: Command, option: string): boolean {
  const source = command.getOptionValueSource(option);
  return source === 'cli' || source === 'env';
}

/**
 * `--ca` is the CLI's global option (commander gives it to the program even
 * when written after `agent`): for the agent it is the CA to pin for mqtts/wss.
 */
function globalCaFile(command: Command): string | undefined {
  for (let c: Command | null = command; c; c = c.parent) {
    const value = c.getOptionValue('ca') as string | undefined;
    if (value) return value;
  }
  return undefined;
}

function readPem(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
  if (!text.includes('-----BEGIN ')) throw new UsageError(`the ${what} file ${path} is not PEM`);
  return text;
}
