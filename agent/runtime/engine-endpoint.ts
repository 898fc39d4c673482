/**
 * Where the agent finds the Docker Engine, read from `DOCKER_HOST` the way
 * dockerode's docker-modem reads it (`new Dockerode()` in wiring/device.ts),
 * so the start-up checks look at the socket the runtime will dial:
 *
 * - unset, or `unix://` without a path: ~/.docker/run/docker.sock when it
 *   exists (rootless and Docker Desktop installs), else /var/run/docker.sock;
 * - `unix:///path`: that socket;
 * - anything else (`tcp://`, `http(s)://`, `host:port`): an engine over the
 *   network, with no socket file to check.
 *
 * `ssh://` is refused: the release leaves out docker-modem's SSH transport
 * (build.mjs), and an agent runs on the device whose engine it drives.
 * docker-modem keeps its own reading private, hence this copy of the rule.
 */
import { accessSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface EngineEndpoint {
  /** The engine's unix socket; absent for an engine over TCP. */
  socketPath?: string;
  /** Host (and port) of an engine over TCP. */
  host?: string;
}

export const SSH_UNSUPPORTED = 'ssh:// Docker hosts are not supported by the Flotilla agent: use unix:// or tcp://';

function defaultSocket(): string {
  const user = join(homedir(), '.docker', 'run', 'docker.sock');
  try {
    accessSync(user);
    return user;
  } catch {
    return '/var/run/docker.sock';
  }
}

export function engineEndpoint(env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  const host = env.DOCKER_HOST;
  if (host === undefined || host === '') return { socketPath: defaultSocket() };
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) || defaultSocket() };
  if (host.startsWith('ssh://')) throw new Error(`DOCKER_HOST=${host}: ${SSH_UNSUPPORTED}`);
  return { host };
}
