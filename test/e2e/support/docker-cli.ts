/**
 * What a user would type to check on Flotilla: the docker CLI. Tests assert
 * on `docker ps` / `docker inspect` output, not on Flotilla's own view.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

export interface Inspected {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; StartedAt: string };
  RestartCount: number;
  Config: { Env: string[]; Labels: Record<string, string>; Image: string };
  HostConfig: {
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]> | null;
    Tmpfs: Record<string, string> | null;
    Memory: number;
    RestartPolicy: { Name: string };
  };
  Mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[];
}

/** Ids of all containers (running or not) carrying a label, e.g. `flotilla.app=shop`. */
export async function containerIds(label: string): Promise<string[]> {
  const out = await docker('ps', '-aq', '--no-trunc', '--filter', `label=${label}`);
  return out === '' ? [] : out.split('\n');
}

export async function inspect(id: string): Promise<Inspected> {
  return (JSON.parse(await docker('inspect', id)) as Inspected[])[0]!;
}

/** Force-removes every container with the label, and the named volumes given: test cleanup. */
export async function removeContainersAndVolumes(label: string, volumes: string[] = []): Promise<void> {
  const ids = await containerIds(label);
  if (ids.length > 0) await docker('rm', '-f', '-v', ...ids).catch(() => undefined);
  for (const volume of volumes) await docker('volume', 'rm', '-f', volume).catch(() => undefined);
}
