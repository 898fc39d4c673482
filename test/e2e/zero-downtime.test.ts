/**
 * start-then-kill through a swap, as a client sees it. A probe container on
 * the app's network requests the app by its network alias every 50 ms,
 * looking the alias up again for each request. If a connection is refused,
 * it retries once at once, as HTTP clients do for a connection that never
 * carried a request. The old version leaves the network before it stops, so a
 * client that looked up its address a moment earlier is refused, and the
 * retry then finds the new version.
 *
 * Through a start-then-kill swap, no request fails. As a control, the same
 * probe does see failed requests while the app is off its network for 3 s, so
 * its silence through the swap means something. A download-then-kill swap
 * leaves ~1 s with no version running; how many requests fail through it is
 * printed, not asserted: on a loaded machine that gap can fall between two
 * slow probe requests (it did, in fresh-clone CI runs).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { DeviceView } from '../../shared/index.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-zero-${suffix}`;
const app = `e2e-zero-${suffix}`;
const network = `flotilla-e2e-${suffix}`;
const alias = `web-${suffix}`;
const probe = `flotilla-e2e-probe-${suffix}`;

/**
 * One request: resolve the alias (Docker's DNS), send HTTP/1.0 with nc, and
 * print the body's last line. Static busybox's wget crashes in a scratch image
 * (no NSS), hence nc.
 */
const request = `ask() { ip=$(nslookup ${alias} 2>/dev/null | awk '/^Address/ { a = $NF } END { print a }'); printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 "$ip" 80 | tail -n 1; }`;
const loop = [
  request,
  'while true; do',
  '  body=$(ask)',
  '  case "$body" in v1|v2|v3) echo "ok $body" ;; *) body=$(ask); case "$body" in v1|v2|v3) echo "retried $body" ;; *) echo fail ;; esac ;; esac',
  '  sleep 0.05',
  'done',
].join('\n');

describeDocker('start-then-kill without a failed request', () => {
  let images: TestImages;
  let hub: HubProcess;
  const dir = scratchDir('flotilla-e2e-');

  async function apply(image: string, strategy: string) {
    const file = join(dir, `${Date.now()}.yaml`);
    const container = { name: 'web', image, networkMode: network, networkAliases: [alias] };
    const spec = { containers: [container], update: { strategy, minReadySeconds: 2 } };
    writeFileSync(file, stringify({ name: app, scheduling: { devices: [deviceId] }, spec }));
    expect((await runCli(['--hub', hub.url, 'apply', '-f', file])).stderr).toBe('');
  }

  const running = async (revision: number) => {
    const out = await runCli(['--hub', hub.url, 'describe', 'device', deviceId, '-o', 'json']);
    const state = (JSON.parse(out.stdout) as DeviceView).apps.find((a) => a.name === app);
    return state?.phase === 'running' && state.revision === revision && state.containers.length === 1;
  };

  /** The probe's log, one line per request: "ok v1", "retried v2", "fail"… */
  const probeLines = async () => (await docker('logs', probe)).split('\n').filter(Boolean);

  /** Applies `image` with `strategy` and returns the probe's lines from the swap until the new version alone answers. */
  async function swap(image: string, strategy: string, revision: number, expected: string): Promise<string[]> {
    const before = (await probeLines()).length;
    await apply(image, strategy);
    await waitFor(`revision ${revision} committed alone`, () => running(revision), { timeoutMs: 60_000 });
    // Under a loaded CI machine the probe's requests slow down: give it time to
    // show five in a row, and say what it saw last if it does not.
    await waitFor(
      `the probe to see only ${expected}`,
      async () => {
        const last = (await probeLines()).slice(-5);
        if (!last.every((line) => line.endsWith(expected))) throw new Error(`the probe's last lines: ${JSON.stringify(last)}`);
        return true;
      },
      { timeoutMs: 120_000 },
    );
    return (await probeLines()).slice(before);
  }

  beforeAll(async () => {
    images = await ensureTestImages();
    await docker('network', 'create', network);
    hub = await startHubProcess();
    startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.` });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
  });

  afterAll(async () => {
    await stopAll();
    await docker('rm', '-f', probe).catch(() => undefined);
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    await docker('network', 'rm', network).catch(() => undefined);
  });

  it('answers every request through a start-then-kill swap (and sees the app gone when it is)', { timeout: 420_000 }, async () => {
    await apply(await retagInRegistry(images.v1, `v1-${app}`), 'start-then-kill');
    await waitFor('v1 running', () => running(1), { timeoutMs: 60_000 });
    await docker('run', '-d', '--name', probe, '--network', network, '--entrypoint', '/bin/sh', images.v1, '-c', loop);
    await waitFor('the probe to get answers', async () => (await probeLines()).filter((l) => l === 'ok v1').length >= 10, {
      timeoutMs: 60_000,
    });

    const beside = await swap(await retagInRegistry(images.v2, `v2-${app}`), 'start-then-kill', 2, 'v2');
    expect(beside.filter((line) => line === 'fail')).toEqual([]);
    expect(beside.length).toBeGreaterThan(20);

    // Control: the probe notices the app gone (off its network, the alias resolves to nothing). It stays
    // gone until the probe has said so: a request stuck in a DNS or connect timeout may outlast a fixed outage.
    const name = `${deviceId}.${app}_web`;
    const beforeOutage = (await probeLines()).length;
    await docker('network', 'disconnect', network, name);
    await waitFor('the probe to see the app gone', async () => (await probeLines()).slice(beforeOutage).includes('fail'), {
      timeoutMs: 60_000,
    });
    await docker('network', 'connect', '--alias', alias, network, name);
    await waitFor(
      'the probe to see v2 again',
      async () => {
        const after = (await probeLines()).slice(beforeOutage);
        const lastFail = after.lastIndexOf('fail');
        return after.slice(lastFail + 1).filter((line) => line.endsWith('v2')).length >= 3;
      },
      { timeoutMs: 60_000 },
    );

    // For the record: a swap that leaves ~1 s with no version running.
    const killFirst = await swap(await retagInRegistry(images.v1, `v3-${app}`), 'download-then-kill', 3, 'v1');
    console.info(
      `download-then-kill swap: ${killFirst.filter((line) => line === 'fail').length} of ${killFirst.length} probe requests failed`,
    );
  });
});
