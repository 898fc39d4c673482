/**
 * An image a real agent downloads ahead of its rollout stage, pinned by digest, against
 * `docker image prune` on the real engine: the engine deletes every untagged image no container
 * uses, and an image the agent loads for a digest reference cannot carry the digest, so it is kept
 * by its keep tag (agent/images/keep-tag.ts). Here:
 * - the prefetched image survives the prune while an untagged image of the same test, pulled by
 *   digest, is deleted by it (so the prune really ran over this test's images);
 * - the resumed rollout swaps to it without downloading it again;
 * - once no app needs it, the agent's own image cleanup removes it, keep tag and all.
 *
 * The prune is narrowed to this test's images by a label, so it cannot touch another test's
 * images on the shared engine: the dangling rule it applies is the same.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImageDownload, RolloutStatus } from '../../shared/index.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { gzipLayer, type PushedImage, pushImage } from '../support/registry-push.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';
import { docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker, TEST_REGISTRY } from './support/engine.js';
import { FleetApp } from './support/fleet-app.js';
import { ensureTestImages, retagInRegistry } from './support/images.js';
import { describeDevice, storedEvents } from './support/observe.js';

const RUN = randomBytes(4).toString('hex');
const REPOSITORY = `flotilla-test/prune-${RUN}`;
const PRUNE_LABEL = 'org.flotilla-test.prune';
const DEVICE = `e2e-prune-${RUN}-b`;
const APP = `e2e-prune-${RUN}`;

describeDocker('a prefetched image pinned by digest and docker image prune', () => {
  let hub: HubProcess;
  let fleet: Fleet | undefined;
  let first: string;
  let prefetched: PushedImage;
  let untagged: PushedImage;
  const cli = (...args: string[]) => runCli(['--hub', hub.url, ...args]);
  const byDigest = (image: PushedImage) => `${TEST_REGISTRY}/${image.repository}@${image.digest}`;
  const imageId = (reference: string) => docker('image', 'inspect', '--format', '{{.Id}}', reference).catch(() => undefined);
  const tagsOf = async (id: string) => JSON.parse(await docker('image', 'inspect', '--format', '{{json .RepoTags}}', id)) as string[];
  const line = async (image: string): Promise<ImageDownload | undefined> =>
    (await describeDevice(hub, DEVICE)).images?.find((entry) => entry.image === image);

  /** The test web image v2 under this test's repository, labelled, with a layer of its own so no other image shares its ID. */
  const pushLabelled = async (tag: string, v2: string) =>
    pushImage({
      repository: REPOSITORY,
      tag,
      base: v2,
      layers: [gzipLayer([{ path: `prune-${tag}`, data: `${RUN} ${tag}\n` }])],
      config: { Labels: { [PRUNE_LABEL]: RUN } },
    });

  beforeAll(async () => {
    const { v1, v2 } = await ensureTestImages();
    // Revision 1 under a tag of this test's own: the agent's cleanup removes what it pulled, and
    // must not untag the web image other test files run.
    first = await retagInRegistry(v1, `prune-${RUN}`);
    prefetched = await pushLabelled('prefetched', v2);
    untagged = await pushLabelled('untagged', v2);
    hub = await startHubProcess();
    startAgentProcess(hub, DEVICE, { fleet: RUN }, { namePrefix: `${DEVICE}.` });
    await waitFor('the agent to register', async () => (await cli('describe', 'device', DEVICE)).code === 0, { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    await fleet?.close();
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${APP}`);
    for (const image of [prefetched, untagged]) {
      if (!image) continue;
      const keep = `${TEST_REGISTRY}/${image.repository}:flotilla-${image.digest.replace(':', '-')}`;
      for (const name of [keep, byDigest(image), image.config.digest]) await docker('rmi', '-f', name).catch(() => undefined);
    }
    if (first) await docker('rmi', first).catch(() => undefined);
  });

  it('keeps the prefetched image through a prune, swaps to it without a second download, and removes it once no app needs it', async () => {
    const reference = byDigest(prefetched);
    // The canary sorts first (…-a-0 before …-b): a simulated device, healthy at once.
    fleet = await startFleet({ hubUrl: hub.mqttUrl, count: 1, idPrefix: `e2e-prune-${RUN}-a`, labels: () => ({ fleet: RUN }) });
    const devices = [...fleet.ids, DEVICE];
    const app = new FleetApp(APP, { fleet: RUN }, scratchDir('flotilla-e2e-'), { minReadySeconds: 0 });
    const phases = () => app.onDevices(cli, devices);

    await app.apply(cli, first);
    await waitFor('revision 1 everywhere', async () => Object.values(await phases()).every((p) => p === '1 running'), {
      timeoutMs: 60_000,
    });
    await app.apply(cli, reference, { canary: 1, pauseAfterCanary: true });
    await waitFor(
      'the rollout paused after its canary',
      async () => (JSON.parse((await cli('rollout', 'status', APP, '-o', 'json')).stdout) as RolloutStatus).phase === 'paused',
      { timeoutMs: 60_000 },
    );
    await waitFor('the prefetched image present', async () => (await line(reference))?.state === 'present', { timeoutMs: 60_000 });
    expect(await line(reference)).toMatchObject({ app: APP, revision: 2, prefetch: true, via: 'agent' });
    expect((await phases())[DEVICE]).toBe('1 running');

    // Loaded under its keep tag: the repository and the digest the spec names.
    const keep = `${TEST_REGISTRY}/${REPOSITORY}:flotilla-${prefetched.digest.replace(':', '-')}`;
    expect(await tagsOf(prefetched.config.digest)).toEqual([keep]);
    // An untagged image of this test, as the engine's own pull by digest leaves one: the prune's control.
    await docker('pull', '-q', byDigest(untagged));
    expect(await tagsOf(untagged.config.digest)).toEqual([]);

    const pruned = await docker('image', 'prune', '-f', '--filter', `label=${PRUNE_LABEL}=${RUN}`);
    expect(pruned).toContain(`deleted: ${untagged.config.digest}`);
    expect(await imageId(untagged.config.digest)).toBeUndefined();
    expect(await imageId(prefetched.config.digest)).toBe(prefetched.config.digest);

    expect((await cli('rollout', 'resume', APP)).code).toBe(0);
    await waitFor('revision 2 running on the real device', async () => (await phases())[DEVICE] === '2 running', { timeoutMs: 60_000 });
    // The one download of the image was the prefetch: the swap found it in the engine.
    const started = (await storedEvents(hub, DEVICE)).filter((e) => e.type === 'image-download-started' && e.message.includes(reference));
    expect(started).toHaveLength(1);

    // No app needs it any more: the agent's cleanup removes the image, and its keep tag with it.
    expect((await cli('delete', 'app', APP)).code).toBe(0);
    await waitFor('the agent to remove the image', async () => (await imageId(prefetched.config.digest)) === undefined, {
      timeoutMs: 60_000,
    });
    expect(await imageId(keep)).toBeUndefined();
    expect(await docker('images', '-q', `${TEST_REGISTRY}/${REPOSITORY}`)).toBe('');
  });
});
