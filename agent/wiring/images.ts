/**
 * Image downloads (agent/images/): the puller every part gets its images
 * from (the reconcile loop, the job runner, the agent's own upgrade), paced
 * by `--downlink-rate` and `--download-budget`, with its content store under
 * `--image-store` and its sums in the data dir. With the Docker Engine the
 * agent downloads images itself (fetch-image.ts); with a runtime given to
 * it, that runtime's pull brings every image.
 *
 * It follows each accepted desired document: the apps' `prefetch` images are
 * fetched ahead, and the store is swept of what the document no longer wants
 * (store-sweep.ts), once at the start and after each new document.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { DesiredState, RegistryAuth } from '../../shared/index.js';
import type { AgentConfig } from '../config.js';
import { BlobStore } from '../images/blob-store.js';
import { DownloadTotalsFile } from '../images/download-totals.js';
import { fetchImage } from '../images/fetch-image.js';
import { ImagePuller } from '../images/image-puller.js';
import type { FetchImage, PrefetchRequest } from '../images/image-source.js';
import { TokenBucket } from '../images/rate-limit.js';
import type { RegistryAuthInput } from '../images/registry-session.js';
import { resolveImage } from '../images/resolve-image.js';
import { sweepStore, type WantedImage } from '../images/store-sweep.js';
import { FetchError } from '../images/types.js';
import type { Device } from './device.js';
import type { Uplink } from './uplink.js';

/** How long after a new desired document the store is swept: a burst of documents sweeps once. */
const SWEEP_DELAY_MS = 10_000;

export interface ImagesWiring {
  device: Device;
  uplink: Uplink;
  logger: Logger;
  /** An image the puller brought into the engine for an app or a job: the reconciler's records, so its image collection may remove it once unused. */
  onDownloaded?: (image: string) => void;
}

export interface ImageDownloads {
  puller: ImagePuller;
  /** The content store, when the agent downloads images itself. */
  storeDir: string | undefined;
  /** A desired document was accepted (restored or received). */
  accepted(desired: DesiredState): void;
  /** Another part's images count as wanted too (the job runner's). */
  alsoWanted(images: () => Iterable<string>): void;
}

export function openImages(config: AgentConfig, { device, uplink, logger, onDownloaded }: ImagesWiring, closer: Closer): ImageDownloads {
  const log = logger.child({ component: 'images' });
  const storeDir = config.imageStoreDir ?? join(config.dataDir, 'images');
  const store = lazyStore(storeDir);
  const others: (() => Iterable<string>)[] = [];
  let desired: DesiredState | undefined;
  /** What the desired document and the other parts want; the puller adds what it has in hand. */
  const wanted = (): WantedImage[] => [
    ...(desired ? desiredImages(desired) : []),
    ...others.flatMap((source) => [...source()].map((image) => ({ image }))),
  ];

  const engineImages = device.engineImages;
  const fetch: FetchImage | undefined = engineImages
    ? async (image, auth, { signal, pace, onEvent }) => {
        await fetchImage(
          image,
          registryAuth(auth),
          { engine: engineImages.engine, aliases: engineImages.aliases, store: await store(image) },
          { signal, pace, onEvent, stallTimeoutMs: config.downloadStallTimeoutMs, logger: log },
        );
      }
    : undefined;
  const puller = new ImagePuller({
    ...(fetch ? { fetch } : {}),
    engine: device.runtime,
    event: (event) => uplink.event(event),
    logger,
    ...(config.downlinkBytesPerSecond > 0
      ? { rate: new TokenBucket(config.downlinkBytesPerSecond), rateLimit: config.downlinkBytesPerSecond }
      : {}),
    budgetBytesPerDay: config.downloadBudgetBytesPerDay,
    totals: new DownloadTotalsFile({ dataDir: config.dataDir, logger }),
    wanted: () => new Set(wanted().map((w) => w.image)),
    onDownloaded: (image, owner) => {
      if (owner.app !== undefined || owner.job !== undefined) onDownloaded?.(image);
    },
  });
  closer.add('image downloads', () => puller.close());

  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping = false;
  closer.add('image store sweep', () => clearTimeout(sweepTimer));
  const sweep = async () => {
    if (!engineImages || sweeping) return;
    sweeping = true;
    try {
      const outcome = await sweepStore([...wanted(), ...puller.inHand()], {
        store: await store('the image store'),
        engine: device.runtime,
        resolve: (image, auth) => resolveImage(image, registryAuth(auth)),
      });
      if ('swept' in outcome && outcome.swept.files > 0) {
        log.info({ files: outcome.swept.files, bytes: outcome.swept.bytes }, 'removed image blobs nothing wants any more');
      } else if ('skipped' in outcome) {
        log.debug({ why: outcome.skipped }, 'image store not swept');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot sweep the image store');
    } finally {
      sweeping = false;
    }
  };

  return {
    puller,
    storeDir: engineImages ? storeDir : undefined,
    accepted(next) {
      const first = desired === undefined;
      desired = next;
      puller.prefetch(prefetchRequests(next));
      clearTimeout(sweepTimer);
      sweepTimer = setTimeout(() => void sweep(), first ? 0 : SWEEP_DELAY_MS);
      sweepTimer.unref();
    },
    alsoWanted(images) {
      others.push(images);
    },
  };
}

/** The apps' images, and those they are to fetch ahead. */
function desiredImages(desired: DesiredState): WantedImage[] {
  return desired.apps.flatMap((app) => [
    ...app.containers.map(({ image, auth }) => ({ image, ...(auth ? { auth } : {}) })),
    ...(app.prefetch?.images ?? []),
  ]);
}

function prefetchRequests(desired: DesiredState): PrefetchRequest[] {
  return desired.apps.flatMap((app) =>
    (app.prefetch?.images ?? []).map(({ image, auth }) => ({
      image,
      ...(auth ? { auth } : {}),
      owner: { app: app.name, revision: app.prefetch!.revision, prefetch: true },
      ...(app.update?.pull === 'engine' ? { via: 'engine' as const } : {}),
    })),
  );
}

/** A spec's credentials as the registry session takes them (the hub resolved any secret into `password`). */
function registryAuth(auth: RegistryAuth | undefined): RegistryAuthInput | undefined {
  if (!auth) return undefined;
  return auth.password !== undefined ? { username: auth.username, password: auth.password } : { username: auth.username };
}

/** The content store, opened on first use and again after a failure (a data dir that was full may have room now). */
function lazyStore(dir: string): (image: string) => Promise<BlobStore> {
  let opened: Promise<BlobStore> | undefined;
  return async (image) => {
    opened ??= BlobStore.open(dir);
    try {
      return await opened;
    } catch (err) {
      opened = undefined;
      throw new FetchError('store_failed', image, `cannot open the image store ${dir}: ${(err as Error).message}`, { cause: err });
    }
  };
}
