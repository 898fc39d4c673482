/**
 * The agent's own http and tcp health probes. A spec writes them as seen
 * from inside the container (`http://localhost:80/healthz`); the agent runs
 * on the host, so "localhost" means the container's own address unless the
 * container shares the host's network.
 */
import { connect } from 'node:net';
import type { ContainerSpec } from '../../shared/index.js';
import { httpGet } from '../http-get.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import type { ProbeResult } from './verdict.js';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '0.0.0.0']);

/** Where a probe written from inside the container reaches it from the host. */
export function probeHost(host: string, container: ManagedContainer): string | undefined {
  if (!LOCAL_HOSTS.has(host)) return host;
  if (container.networkMode === 'host') return '127.0.0.1';
  return container.ipAddress;
}

export async function probe(spec: ContainerSpec, container: ManagedContainer, timeoutMs: number): Promise<ProbeResult | undefined> {
  const check = spec.healthcheck;
  if (check?.http !== undefined) return probeHttp(check.http, container, timeoutMs);
  if (check?.tcp !== undefined) return probeTcp(check.tcp, container, timeoutMs);
  return undefined;
}

async function probeHttp(target: string, container: ManagedContainer, timeoutMs: number): Promise<ProbeResult> {
  const url = new URL(target);
  const host = probeHost(url.hostname, container);
  if (host === undefined) return { ok: false, detail: 'container has no network address to probe' };
  url.hostname = host;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await httpGet(url, { signal, redirect: 'manual' });
    res.discard();
    const ok = res.status >= 200 && res.status < 400;
    return { ok, detail: `GET ${target} answered ${res.status}` };
  } catch (err) {
    // "TimeoutError" when the probe's time ran out, else the socket's code (ECONNREFUSED…).
    const cause = signal.aborted ? (signal.reason as Error).name : ((err as { code?: string }).code ?? (err as Error).name);
    return { ok: false, detail: `GET ${target} failed (${cause})` };
  }
}

function probeTcp(target: string, container: ManagedContainer, timeoutMs: number): Promise<ProbeResult> {
  const separator = target.lastIndexOf(':');
  const host = probeHost(target.slice(0, separator), container);
  const port = Number(target.slice(separator + 1));
  if (host === undefined) return Promise.resolve({ ok: false, detail: 'container has no network address to probe' });
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (result: ProbeResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done({ ok: true, detail: `tcp ${target} accepted a connection` }));
    socket.once('timeout', () => done({ ok: false, detail: `tcp ${target} timed out` }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: `tcp ${target} failed (${err.code ?? err.message})` }));
  });
}
