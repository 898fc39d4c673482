/**
 * Image downloads on thin links (docs/image-downloads.md). The agent fetches
 * an image's blobs from its registry itself, with HTTP range requests into a
 * content store under its data dir, so a dropped link or an agent restart
 * continues from the byte where it stopped; it then hands the complete image
 * to the engine. What it reports:
 * - `ImageDownload`, one per image the device's apps, jobs or prefetches want
 *   and the engine lacked: progress while it downloads, and what it saved.
 * - `DownloadTotals`, the device's running sums since its data dir was made,
 *   and its daily budget.
 * The hub asks a device to fetch a revision's images ahead of its rollout
 * stage through `Prefetch` on the app in its desired state.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Name, RegistryAuth } from './spec.js';

const Timestamp = Type.String({ format: 'date-time' });
const Bytes = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Revision = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

/** Image references as specs write them (`registry:5000/team/web:v2`, `…@sha256:…`). */
const ImageReference = Type.String({ minLength: 1, maxLength: 512 });

/**
 * Where one image's download stands.
 * - `queued`: wanted, not begun (images download one at a time).
 * - `downloading`: blobs are being received (`bytes` of `total`).
 * - `loading`: every blob is here and verified; the engine is loading the image.
 * - `present`: the engine holds the image (kept in the report while something still wants it).
 * - `waiting`: paused until `resumesAt`: the daily download budget is spent, or a retry's backoff.
 * - `failed`: given up for now, `message` says why; the next attempt continues from what is stored.
 */
export const IMAGE_DOWNLOAD_STATES = ['queued', 'downloading', 'loading', 'present', 'waiting', 'failed'] as const;
export type ImageDownloadState = (typeof IMAGE_DOWNLOAD_STATES)[number];

/**
 * `agent`: the agent's own resumable download; `engine`: the engine's pull (the app asked for
 * it with `spec.update.pull: engine`, or the agent fell back to it, `message` says why).
 */
export const IMAGE_DOWNLOAD_VIAS = ['agent', 'engine'] as const;
export type ImageDownloadVia = (typeof IMAGE_DOWNLOAD_VIAS)[number];

export const ImageDownload = Type.Object(
  {
    image: ImageReference,
    /** The app that wants it, at `revision` (the first one, when several do). */
    app: Type.Optional(Name),
    revision: Type.Optional(Revision),
    /** The job that wants it, when no app does. */
    job: Type.Optional(Name),
    /** Wanted ahead of time: for a rollout stage or update window not reached yet. */
    prefetch: Type.Optional(Type.Boolean()),
    state: Type.Union(IMAGE_DOWNLOAD_STATES.map((state) => Type.Literal(state))),
    via: Type.Union(IMAGE_DOWNLOAD_VIAS.map((via) => Type.Literal(via))),
    /** Bytes received so far (of `total`), resumed ones included once. */
    bytes: Bytes,
    /** Bytes this image needs downloaded: the blobs the engine lacks. Unknown until its manifest and config are read. */
    total: Type.Optional(Bytes),
    /** The compressed size of the layers the engine already had, so were not downloaded. */
    reusedBytes: Type.Optional(Bytes),
    /** Bytes received more than once: after a break that could not resume, or a blob that failed its digest. */
    resentBytes: Type.Optional(Bytes),
    /** Bytes per second over the last few seconds, while downloading. */
    rate: Type.Optional(Bytes),
    message: Type.Optional(Type.String({ maxLength: 1024 })),
    /** With `waiting`: when it goes on. */
    resumesAt: Type.Optional(Timestamp),
    /** When it entered this state. */
    since: Timestamp,
  },
  { additionalProperties: false },
);
export type ImageDownload = Static<typeof ImageDownload>;

/** At most this many images are reported at once (the oldest `present` ones are left out first). */
export const MAX_REPORTED_IMAGES = 64;

export const DownloadBudget = Type.Object(
  {
    /** Bytes a device may download per day (`--download-budget`). */
    limit: Bytes,
    /** Bytes downloaded on `day`. */
    used: Bytes,
    /** The device's own day, `YYYY-MM-DD` in its zone. */
    day: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' }),
    /** When the next day begins, on the device's clock. */
    resetsAt: Timestamp,
  },
  { additionalProperties: false },
);
export type DownloadBudget = Static<typeof DownloadBudget>;

/** The device's sums since its data dir was made: what downloading images cost and what it saved. */
export const DownloadTotals = Type.Object(
  {
    /** Image bytes received from registries by the agent, resent ones included. */
    bytes: Bytes,
    /** Layer bytes not downloaded because the engine already had them. */
    reusedBytes: Bytes,
    /** Bytes received more than once (a break that could not resume, a corrupted blob). */
    resentBytes: Bytes,
    /** Images completed. */
    images: Bytes,
    /** `--downlink-rate` in bytes per second, when set. */
    rateLimit: Type.Optional(Bytes),
    budget: Type.Optional(DownloadBudget),
    since: Timestamp,
  },
  { additionalProperties: false },
);
export type DownloadTotals = Static<typeof DownloadTotals>;

/**
 * On a desired app: the images of a revision this device will be asked to run later (it is
 * pending in that revision's rollout). The agent downloads them now, behind anything it needs
 * at once, so the swap itself downloads nothing. The hub sends it only to agents that report
 * `downloads` (agents that know it).
 */
export const Prefetch = Type.Object(
  {
    revision: Revision,
    images: Type.Array(Type.Object({ image: ImageReference, auth: Type.Optional(RegistryAuth) }, { additionalProperties: false }), {
      minItems: 1,
      maxItems: 64,
    }),
  },
  { additionalProperties: false },
);
export type Prefetch = Static<typeof Prefetch>;
