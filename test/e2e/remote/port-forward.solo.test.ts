/**
 * `flotilla port-forward` end to end: a real hub, a registered agent, servers
 * in an app's container on the real Docker Engine, and the `flotilla` command
 * listening on a local port. Checked as a user would: an HTTP answer through
 * the tunnel, 20 downloads at once each matching the file's sha256 in the
 * container, and memory that stays flat while a peer refuses to read.
 *
 * Solo: 200 MB through one hub and the RSS readings want the machine quiet.
 */
import { createHash } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../support/ports.js';
import { type AgentProcess, type ManagedProcess, spawnCli, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker, removeContainersAndVolumes } from '../support/docker-cli.js';
import { BIG_FILE_BYTES, connectNeverReading, FORWARD_TARGET_COMMAND, httpGetRaw, rssMiB } from '../support/forward-target.js';
import { ensureTestImages } from '../support/images.js';
import { deployApp, type RemoteHub, startRegisteredAgent, startRemoteHub } from '../support/remote-fleet.js';
import { describeRemote } from '../support/remote-gate.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-fwd-${suffix}`;
const deviceId = `e2e-fwd-${suffix}`;

/** What a never-reading peer may add to the hub's, the agent's or the CLI's resident memory: a few windows, not the stream. */
const RSS_BOUND_MIB = 32;
/** How long a stuck connection is given to do damage before memory is read. */
const STUCK_MS = 8_000;

describeRemote('flotilla port-forward to servers in an app container', () => {
  let remote: RemoteHub;
  let agent: AgentProcess;
  let containerId: string;
  let bigSha: string;
  const forwards: Record<number, { local: number; proc: ManagedProcess }> = {};

  /** `flotilla port-forward DEVICE LOCAL:APP/web:PORT`, waiting until the local port answers through the tunnel. */
  async function forward(targetPort: number): Promise<{ local: number; proc: ManagedProcess }> {
    const local = await freePort();
    const proc = spawnCli(`port-forward :${targetPort}`, [
      ...remote.globals(),
      'port-forward',
      deviceId,
      `127.0.0.1:${local}:${app}/web:${targetPort}`,
    ]);
    await waitFor(`port-forward to :${targetPort} listening (output: ${proc.output.slice(-500)})`, async () => {
      if (!proc.running) throw new Error(`port-forward exited: ${proc.output}`);
      return accepts(local);
    });
    return { local, proc };
  }

  beforeAll(async () => {
    const images = await ensureTestImages();
    remote = await startRemoteHub();
    agent = await startRegisteredAgent(remote, deviceId);
    containerId = await deployApp(remote, deviceId, app, { image: images.v1, command: FORWARD_TARGET_COMMAND });
    bigSha = await waitFor('/www/big written', async () => {
      const out = await docker('exec', containerId, 'sh', '-c', `[ "$(wc -c < /www/big)" = ${BIG_FILE_BYTES} ] && sha256sum /www/big`);
      return out.split(/\s+/)[0];
    });
    forwards[80] = await forward(80);
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('reaches busybox httpd in the container through the tunnel', async () => {
    const res = await fetch(`http://127.0.0.1:${forwards[80]!.local}/index.html`);
    expect(res.status).toBe(200);
    expect((await res.text()).trim()).toBe('v1');
    // The container's port is published nowhere: the tunnel is the only way in.
    expect(await docker('port', containerId)).toBe('');
  });

  it('carries 20 concurrent connections of 10 MiB each, every one matching sha256 in the container', async () => {
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const hash = createHash('sha256');
        const { status, bytes } = await httpGetRaw(forwards[80]!.local, '/big', (chunk) => hash.update(chunk));
        return { status, bytes, sha: hash.digest('hex') };
      }),
    );
    const ms = performance.now() - started;
    for (const result of results) expect(result).toEqual({ status: 200, bytes: BIG_FILE_BYTES, sha: bigSha });
    console.log(`[port-forward] 20 × 10 MiB in ${Math.round(ms)} ms (${((20 * BIG_FILE_BYTES) / 1e6 / (ms / 1000)).toFixed(1)} MB/s)`);
  });

  it(`a source nobody reads adds less than ${RSS_BOUND_MIB} MiB to hub, agent and CLI, and other connections still flow`, async () => {
    forwards[9002] = await forward(9002);
    const { local, proc } = forwards[9002]!;
    const pids = { hub: remote.hub.proc.child.pid!, agent: agent.proc.child.pid!, cli: proc.child.pid! };
    // Warm up: one connection read to 20 MiB, so buffers and code paths exist before the baseline.
    await readBytes(local, 20 * 1024 * 1024);
    const before = rssOf(pids);

    const stuck: Socket = await connectNeverReading(local);
    try {
      await new Promise((resolve) => setTimeout(resolve, STUCK_MS / 2));
      // A second connection on the same session is not held up by the stuck one (credit is per channel).
      expect(await readBytes(local, 20 * 1024 * 1024)).toBe(20 * 1024 * 1024);
      await new Promise((resolve) => setTimeout(resolve, STUCK_MS / 2));
      const after = rssOf(pids);
      console.log(`[port-forward] unread source: RSS MiB before ${fmt(before)}, after ${fmt(after)}`);
      for (const name of Object.keys(pids) as (keyof typeof pids)[]) expect(after[name] - before[name], name).toBeLessThan(RSS_BOUND_MIB);
      expect(proc.running).toBe(true);
    } finally {
      stuck.destroy();
    }
  });

  it(`a sink that never reads stops the sender within a few windows and adds less than ${RSS_BOUND_MIB} MiB`, async () => {
    forwards[9001] = await forward(9001);
    const { local, proc } = forwards[9001]!;
    const pids = { hub: remote.hub.proc.child.pid!, agent: agent.proc.child.pid!, cli: proc.child.pid! };
    const before = rssOf(pids);

    const socket = await connectNeverReading(local);
    const offered = 512 * 1024 * 1024;
    let accepted = 0;
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let stop = false;
    const pump = (async () => {
      for (let sent = 0; sent < offered && !stop; sent += chunk.length) {
        const flushed = socket.write(chunk, (err) => {
          if (!err) accepted += chunk.length;
        });
        if (!flushed) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      }
    })();
    try {
      await new Promise((resolve) => setTimeout(resolve, STUCK_MS));
      const after = rssOf(pids);
      console.log(
        `[port-forward] unread sink: ${(accepted / 1048576).toFixed(1)} MiB accepted of ${offered / 1048576}; RSS MiB before ${fmt(before)}, after ${fmt(after)}`,
      );
      expect(accepted).toBeGreaterThan(0);
      // Kernel buffers on three sockets plus a window or two; without backpressure it would be all 512 MiB.
      expect(accepted).toBeLessThan(64 * 1024 * 1024);
      for (const name of Object.keys(pids) as (keyof typeof pids)[]) expect(after[name] - before[name], name).toBeLessThan(RSS_BOUND_MIB);
    } finally {
      stop = true;
      socket.destroy();
      await pump;
    }
  });
});

function rssOf(pids: Record<'hub' | 'agent' | 'cli', number>): Record<'hub' | 'agent' | 'cli', number> {
  return { hub: rssMiB(pids.hub), agent: rssMiB(pids.agent), cli: rssMiB(pids.cli) };
}

function fmt(rss: Record<string, number>): string {
  return Object.entries(rss)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
}

/** Reads `limit` bytes from a fresh connection to `port`, then closes it; resolves with the count. */
function readBytes(port: number, limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes >= limit) {
        socket.destroy();
        resolve(Math.min(bytes, limit));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Math.min(bytes, limit)));
  });
}

/** Whether something listens on 127.0.0.1:`port` (the CLI's local end). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
