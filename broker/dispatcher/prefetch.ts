/**
 * Prefetch: the images of a rollout's new revision, put on the desired app of every device
 * still waiting for its turn in that rollout, so its agent downloads them before its stage
 * comes and the swap itself downloads nothing (docs/image-downloads.md).
 *
 * Rules:
 * - Only while the rollout goes on: `progressing`, or `paused` (a pause is resumed, and what was
 *   fetched meanwhile is ready then). A complete or aborted rollout prefetches nothing.
 * - Only for a device `pending` in it. An updating, healthy or failed device is told to run the
 *   new revision itself; a reverted one was sent back and this rollout does not take it again.
 * - Only the images the device is not told to run already: those of the new revision that no
 *   container of its desired app names. None left, no prefetch.
 * - Registry credentials are resolved as for the containers themselves. A revision whose
 *   credentials cannot be resolved prefetches nothing: its devices meet the error at their turn.
 * - The agent fetches a prefetch the way the desired app it runs says (`update.pull`): where the
 *   new revision says otherwise (`agent` against `engine`), there is no prefetch, so the images
 *   never come by a path the operator did not ask for; they come at the device's turn.
 * - Whether a device gets one at all is the caller's: only agents that report `downloads` know
 *   the field, and an older agent refuses a desired app with a field it does not know.
 *
 * Pure, and cheap per device: each app's prefetch is worked out once per fleet pass (a set of
 * pending device ids, the revision's images), then a device costs a lookup and a set difference.
 */
import type { DesiredApp, Prefetch } from '../../shared/index.js';
import type { StoredApp } from '../store/apps.js';
import type { RolloutSnapshot } from './rollouts.js';
import { resolveAuth, type SecretLookup, SecretRefError } from './scheduling.js';

/** Prefetch.images holds at most this many (shared/schemas/images.ts). */
const MAX_PREFETCH_IMAGES = 64;

/** What one app's rollout offers its pending devices, worked out once per pass. */
interface AppPrefetch {
  revision: number;
  pending: ReadonlySet<string>;
  images: Prefetch['images'];
  /** How the new revision's images come (`spec.update.pull`). */
  pull: 'agent' | 'engine';
}

export class PrefetchPass {
  private readonly byApp = new Map<string, AppPrefetch | null>();
  private readonly apps: ReadonlyMap<string, StoredApp>;

  /**
   * `unresolvable` hears of a revision whose registry credentials cannot be resolved, once per
   * app and pass; its devices get no prefetch.
   */
  constructor(
    apps: readonly StoredApp[],
    private readonly rollouts: RolloutSnapshot,
    private readonly secret: SecretLookup,
    private readonly unresolvable: (app: string, revision: number, err: SecretRefError) => void = () => {},
  ) {
    this.apps = new Map(apps.map((app) => [app.name, app]));
  }

  /** `apps` as desiredAppsFor made them for `deviceId`, each with the prefetch it gets (the same objects where none). */
  apply(deviceId: string, apps: readonly DesiredApp[]): DesiredApp[] {
    return apps.map((app) => {
      const prefetch = this.prefetchFor(deviceId, app);
      return prefetch ? { ...app, prefetch } : app;
    });
  }

  /** The prefetch of `app` on `deviceId`, or undefined when it gets none. */
  prefetchFor(deviceId: string, app: DesiredApp): Prefetch | undefined {
    const offer = this.offer(app.name);
    if (!offer || app.revision === offer.revision || !offer.pending.has(deviceId)) return undefined;
    if ((app.update?.pull ?? 'agent') !== offer.pull) return undefined;
    const told = new Set(app.containers.map((container) => container.image));
    const images = offer.images.filter(({ image }) => !told.has(image));
    return images.length > 0 ? { revision: offer.revision, images } : undefined;
  }

  private offer(name: string): AppPrefetch | null {
    let offer = this.byApp.get(name);
    if (offer === undefined) {
      offer = this.workOut(name);
      this.byApp.set(name, offer);
    }
    return offer;
  }

  private workOut(name: string): AppPrefetch | null {
    const rollout = this.rollouts.get(name)?.rollout;
    const app = this.apps.get(name);
    if (!rollout || !app || app.revision !== rollout.revision) return null;
    if (rollout.phase !== 'progressing' && rollout.phase !== 'paused') return null;
    const pending = new Set(rollout.devices.filter((d) => d.state === 'pending').map((d) => d.id));
    if (pending.size === 0) return null;
    const images: Prefetch['images'] = [];
    const seen = new Set<string>();
    try {
      app.spec.spec.containers.forEach((container, i) => {
        if (seen.has(container.image) || images.length >= MAX_PREFETCH_IMAGES) return;
        seen.add(container.image);
        const auth = container.auth ? resolveAuth(container.auth, `spec.containers[${i}].auth`, this.secret) : undefined;
        images.push({ image: container.image, ...(auth ? { auth } : {}) });
      });
    } catch (err) {
      if (!(err instanceof SecretRefError)) throw err;
      this.unresolvable(name, rollout.revision, err);
      return null;
    }
    return { revision: rollout.revision, pending, images, pull: app.spec.spec.update?.pull ?? 'agent' };
  }
}
