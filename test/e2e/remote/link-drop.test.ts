/**
 * The device's link drops in the middle of a session: a real agent reaches the
 * hub through the fault proxy (test/support/fault-proxy.ts), a `flotilla exec
 * … -- sleep 600` runs in its app's container, and the link is cut (reset) or
 * stalled (half-open, like a dead NAT mapping, found only by keepalive). The
 * CLI must say so and exit non-zero within the keepalive window, and the
 * device must leave nothing running: `docker top` no longer shows the sleep.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditRecord } from '../../../shared/api/results.js';
import { type FaultProxy, startFaultProxy } from '../../support/fault-proxy.js';
import { spawnCli, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { deployApp, type RemoteHub, startRegisteredAgent, startRemoteHub } from '../support/remote-fleet.js';
import { describeRemote } from '../support/remote-gate.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-drop-${suffix}`;
const deviceId = `e2e-drop-${suffix}`;
/** The agent's MQTT keepalive: the hub gives up on a silent link after 1.5 times this. */
const KEEPALIVE_S = 2;
/** A stalled link is noticed after 1.5 × keepalive; the rest is slack for a loaded machine. */
const WITHIN_MS = 1.5 * KEEPALIVE_S * 1000 + 5_000;

describeRemote('a session whose device link drops', () => {
  let remote: RemoteHub;
  let proxy: FaultProxy;
  let containerId: string;

  beforeAll(async () => {
    const images = await ensureTestImages();
    remote = await startRemoteHub();
    proxy = await startFaultProxy({ targetPort: remote.hub.mqttPort });
    await startRegisteredAgent(remote, deviceId, { extraArgs: ['--hub-url', proxy.url, '--keepalive', `${KEEPALIVE_S}s`] });
    containerId = await deployApp(remote, deviceId, app, { image: images.v1 });
  });

  afterAll(async () => {
    await stopAll();
    await proxy?.close();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  async function sleepsInContainer(tag: string): Promise<boolean> {
    return (await docker('top', containerId, '-o', 'pid,args')).includes(`sleep ${tag}`);
  }

  /** Starts `flotilla exec DEVICE APP -- sleep TAG`, waits until the sleep runs, breaks the link with `fault`, and checks the aftermath. */
  async function dropMidSession(tag: string, fault: () => void): Promise<void> {
    await waitFor(
      `${deviceId} online`,
      async () => {
        const listed = JSON.parse((await remote.cli(['get', 'devices', '-o', 'json'])).stdout) as {
          items: { id: string; online: boolean }[];
        };
        return listed.items.some((d) => d.id === deviceId && d.online);
        // The agent's reconnect backoff grew while the link was down (up to a minute, with jitter).
      },
      { timeoutMs: 70_000 },
    );
    const exec = spawnCli(`exec sleep ${tag}`, [...remote.globals(), 'exec', deviceId, app, '--', 'sleep', tag]);
    await waitFor('the sleep to run in the container', () => sleepsInContainer(tag));

    const cutAt = performance.now();
    fault();
    const code = await Promise.race([exec.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), WITHIN_MS))]);
    const tookMs = performance.now() - cutAt;
    console.log(`[link-drop] ${tag}: CLI exited ${code} after ${Math.round(tookMs)} ms: ${exec.output.trim()}`);
    expect(code).not.toBe('still running');
    expect(code).toBe(1);
    expect(exec.output).toMatch(/^error: .*(link|lost|offline|dropped|disconnect)/im);
    // The agent ends every session when its link drops: nothing stays running in the container.
    await waitFor('the sleep to be gone from the container', async () => !(await sleepsInContainer(tag)), { timeoutMs: WITHIN_MS });
    const audited = JSON.parse((await remote.cli(['audit', '--device', deviceId, '-o', 'json'])).stdout) as { items: AuditRecord[] };
    expect(audited.items.find((r) => r.what.includes(`sleep ${tag}`))).toMatchObject({ kind: 'exec', outcome: 'link_lost' });
  }

  it('a stalled (half-open) link: found by keepalive, the CLI says so and exits non-zero, and the sleep is gone', async () => {
    await dropMidSession('602', () => proxy.stall());
    proxy.resume();
  });

  it('a cut (reset) link, the hub unreachable after: same outcome at once', async () => {
    await dropMidSession('601', () => {
      proxy.refuse(true);
      proxy.cut();
    });
    proxy.refuse(false);
  });
});
