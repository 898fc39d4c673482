/**
 * The agent's config file, `<data-dir>/agent.json` by default: what
 * `flotilla agent register` got from the hub (device id, MQTT URL, the
 * device's secret, the hub's signing key, the CA to pin), read by
 * `flotilla agent` so that the secret never has to be on a command line.
 *
 * The file is never readable by anyone but its owner, not even for a moment,
 * and a reader sees the old file or the whole new one (shared/private-file.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { DeviceId, formatIssues, Labels, validate } from '../shared/index.js';
import { writePrivateFile } from '../shared/private-file.js';
import { UsageError } from './errors.js';

export const AGENT_CONFIG_FILE_NAME = 'agent.json';

const Pem = Type.String({ minLength: 1 });

export const AgentConfigFile = Type.Object(
  {
    deviceId: DeviceId,
    /** The MQTT URL the agent connects to (the agent's `--hub-url`). */
    hubUrl: Type.String({ pattern: '^(mqtts?|wss?|tcp|tls)://' }),
    /** The hub's HTTP API the device registered through: where the agent fetches its own releases. */
    hubHttpUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
    /** The device's MQTT password; the hub keeps only its hash. */
    secret: Type.Optional(Type.String({ minLength: 1 })),
    /** The hub's Ed25519 public key (PEM), pinned at registration. */
    hubKey: Type.Optional(Pem),
    /** The CA (PEM text) trusted for mqtts/wss instead of the system's. */
    ca: Type.Optional(Pem),
    labels: Type.Optional(Labels),
    /** A client certificate and key (PEM text) for mutual TLS. */
    tlsCert: Type.Optional(Pem),
    tlsKey: Type.Optional(Pem),
  },
  { additionalProperties: false },
);
export type AgentConfigFile = Static<typeof AgentConfigFile>;

export function defaultAgentConfigPath(dataDir: string): string {
  return join(dataDir, AGENT_CONFIG_FILE_NAME);
}

/** Refused before the hub is asked, so a registration token is not spent on a device that is already registered. */
export function refuseExisting(path: string): void {
  if (existsSync(path)) {
    throw new UsageError(`${path} already exists: this device is registered already`, [
      'pass --force to register again and replace it (the old identity stays on the hub until revoked)',
    ]);
  }
}

/**
 * Makes the config's directory (0700) and checks that a file can be created
 * in it, before a registration token is spent on a config that then cannot
 * be written (a data dir owned by root, say).
 */
export function checkWritable(path: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const probe = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.probe`);
    closeSync(openSync(probe, 'wx', 0o600));
    unlinkSync(probe);
  } catch (err) {
    throw new UsageError(`cannot write the agent config in ${dir}: ${(err as Error).message}`);
  }
}

/**
 * Writes `config` to `path` with mode 0600 (shared/private-file.ts). Without
 * `force`, an existing file is never replaced, even one that appeared since
 * `refuseExisting`.
 */
export function writeAgentConfigFile(path: string, config: AgentConfigFile, { force = false }: { force?: boolean } = {}): void {
  if (!writePrivateFile(path, `${JSON.stringify(config, null, 2)}\n`, { replace: force })) refuseExisting(path);
}

export interface LoadedAgentConfigFile {
  config: AgentConfigFile;
  /** Permission bits, e.g. 0o600. */
  mode: number;
}

/**
 * The file at `path`, or undefined when there is none and `required` is
 * false (an agent started without registering: today's behaviour). A file
 * that is there but unreadable or invalid is an error naming the bad key.
 */
export function readAgentConfigFile(path: string, { required = false }: { required?: boolean } = {}): LoadedAgentConfigFile | undefined {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined;
    throw new UsageError(`cannot read the agent config ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the agent config ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const result = validate(AgentConfigFile, parsed);
  if (!result.ok) throw new UsageError(`invalid agent config ${path}`, formatIssues(result.issues).split('\n'));
  return { config: result.value, mode };
}

/** A warning (not a refusal: the operator may have reasons) when group or others can read the secret. */
export function modeWarning(path: string, mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  return `warning: ${path} is readable by others (mode 0${mode.toString(8)}) and holds this device's secret: chmod 600 ${path}\n`;
}
