/**
 * A hub and its devices as remote access meets them: a `flotilla server` that
 * requires credentials (anonymous clients denied, so the roles and the session
 * ACL are the ones a real fleet has), devices registered with a token as an
 * operator would (`flotilla agent register`), on the host or behind NAT in a
 * network namespace, and the operator's `flotilla` commands run with a key.
 *
 * A hub that namespaces must reach listens on 0.0.0.0 (the host end of every
 * veth); the test still talks to it on 127.0.0.1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { NetnsProcess, NetworkNamespace } from '../../support/netns.js';
import {
  type AgentProcess,
  CLI,
  type HubProcess,
  type RunResult,
  runCli,
  scratchDir,
  startAgentProcess,
  startHubProcess,
} from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { containerIds } from './docker-cli.js';

export type Role = 'admin' | 'operator' | 'viewer';

export interface RemoteHub {
  hub: HubProcess;
  adminKey: string;
  /** `flotilla --hub URL --token KEY ARGS…` (the admin key unless `token` says otherwise). */
  cli(args: string[], options?: { token?: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  /** The global options of a command run by a holder of `token`, for commands a test spawns itself. */
  globals(token?: string): string[];
  /** A service account's key with `role`. */
  account(name: string, role: Role): Promise<string>;
  /** A single-use registration token. */
  registrationToken(): Promise<string>;
}

/** `reachableFromNamespaces`: listen on 0.0.0.0 so agents in network namespaces reach it over their veth. */
export async function startRemoteHub({ reachableFromNamespaces = false, extraArgs = [] as string[] } = {}): Promise<RemoteHub> {
  const host = reachableFromNamespaces ? ['--host', '0.0.0.0'] : [];
  const hub = await startHubProcess(undefined, [...host, '--anonymous', 'deny', ...extraArgs]);
  const adminKey = readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
  const globals = (token = adminKey) => ['--hub', hub.url, '--token', token];
  const cli: RemoteHub['cli'] = (args, { token, ...options } = {}) => runCli([...globals(token), ...args], options);
  return {
    hub,
    adminKey,
    cli,
    globals,
    async account(name, role) {
      const created = await cli(['serviceaccount', 'create', name, '--role', role]);
      if (created.code !== 0) throw new Error(`serviceaccount create ${name}: ${created.stderr}`);
      return created.stdout.trim();
    },
    async registrationToken() {
      const created = await cli(['token', 'create', '-o', 'json']);
      if (created.code !== 0) throw new Error(`token create: ${created.stderr}`);
      return (JSON.parse(created.stdout) as { token: string }).token;
    },
  };
}

/** Registers `deviceId` from the host (writes DATA_DIR/agent.json) and starts its agent with `extraArgs`. */
export async function startRegisteredAgent(
  remote: RemoteHub,
  deviceId: string,
  { labels = {} as Record<string, string>, extraArgs = [] as string[] } = {},
): Promise<AgentProcess> {
  const dataDir = scratchDir(`flotilla-agent-${deviceId}-`);
  const token = await remote.registrationToken();
  const registered = await runCli(registerArgs(remote.hub.url, token, deviceId, dataDir));
  if (registered.code !== 0) throw new Error(`agent register ${deviceId}: ${registered.stderr}`);
  const agent = startAgentProcess(remote.hub, deviceId, labels, { extraArgs }, dataDir);
  await waitOnline(remote, deviceId, () => agent.proc.output);
  return agent;
}

/** `flotilla agent register` of `deviceId` with a registration token, its agent.json written into `dataDir`. */
function registerArgs(hubUrl: string, token: string, deviceId: string, dataDir: string): string[] {
  return ['--hub', hubUrl, '--token', token, 'agent', 'register', '--device-id', deviceId, '--data-dir', dataDir];
}

/**
 * Registers `deviceId` from inside `ns` (so its agent.json names the hub at the
 * host end of the veth) and starts its agent there.
 */
export async function startNamespacedAgent(
  remote: RemoteHub,
  ns: NetworkNamespace,
  deviceId: string,
  { labels = {} as Record<string, string>, extraArgs = [] as string[] } = {},
): Promise<{ proc: NetnsProcess; dataDir: string }> {
  const dataDir = scratchDir(`flotilla-agent-${deviceId}-`);
  const hubUrl = `http://${ns.hostAddress}:${remote.hub.httpPort}`;
  const token = await remote.registrationToken();
  const labelArgs = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
  const registered = await ns.run(process.execPath, [CLI, ...registerArgs(hubUrl, token, deviceId, dataDir), ...labelArgs]);
  if (registered.code !== 0) throw new Error(`agent register ${deviceId} in ${ns.name}: ${registered.stderr}`);
  const proc = ns.spawn(`agent ${deviceId}`, process.execPath, [
    CLI,
    'agent',
    '--data-dir',
    dataDir,
    '--resync-interval',
    '2s',
    ...extraArgs,
  ]);
  await waitOnline(remote, deviceId, () => proc.output);
  return { proc, dataDir };
}

async function waitOnline(remote: RemoteHub, deviceId: string, output: () => string): Promise<void> {
  await waitFor(
    `${deviceId} online`,
    async () => {
      const got = await remote.cli(['get', 'devices', '-o', 'json']);
      const devices = (JSON.parse(got.stdout) as { items: { id: string; online: boolean }[] }).items;
      return devices.some((d) => d.id === deviceId && d.online);
    },
    { timeoutMs: 30_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; agent output:\n${output().slice(-3000)}`);
  });
}

/**
 * Applies a one-container app (`web`) on `deviceId` with the admin key and
 * waits until its container runs; returns the container's id.
 */
export async function deployApp(remote: RemoteHub, deviceId: string, app: string, container: Record<string, unknown>): Promise<string> {
  const file = join(scratchDir('flotilla-e2e-spec-'), `${app}.yaml`);
  writeFileSync(
    file,
    stringify({
      name: app,
      scheduling: { devices: [deviceId] },
      spec: { containers: [{ name: 'web', ...container }], update: { minReadySeconds: 0 } },
    }),
  );
  const applied = await remote.cli(['apply', '-f', file]);
  if (applied.code !== 0) throw new Error(`apply ${app}: ${applied.stderr}`);
  return waitFor(
    `${app} running on ${deviceId}`,
    async () => {
      const got = await remote.cli(['describe', 'device', deviceId, '-o', 'json']);
      const state = (JSON.parse(got.stdout) as { apps: { name: string; phase: string }[] }).apps.find((a) => a.name === app);
      if (state?.phase !== 'running') return undefined;
      return (await containerIds(`flotilla.app=${app}`))[0];
    },
    { timeoutMs: 60_000 },
  );
}
