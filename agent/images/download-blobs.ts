/**
 * Downloads an image's blobs from its registry into the content store,
 * resuming with HTTP Range wherever a previous attempt (or a previous agent
 * process) stopped, paced by the downlink limit.
 *
 * Invariants:
 * - Blobs are fetched one after another, in the order given; one already
 *   complete in the store is skipped, a partial one continues from its size.
 * - Each chunk waits for the pacer before the next is read, so a slow pace
 *   holds the registry back through TCP instead of buffering here.
 * - A blob is complete only once its bytes, hashed from disk, match its
 *   digest (BlobStore.complete): a corrupted blob is never reported done.
 * - A break (socket error, an early end, no byte for `stallTimeoutMs`) is
 *   retried from the stored size after a backoff of 1 s doubling to 30 s;
 *   the backoff starts over whenever an attempt received bytes, and the
 *   download gives up (`unreachable`) after `maxAttempts` attempts in a row
 *   that received nothing.
 * - A registry that ignores Range (a 200 to a ranged request) costs the
 *   stored bytes once (`resent`); the blob is then fetched whole, and after
 *   `wholeBlobBreaks` breaks of a whole download the error is
 *   `not_resumable`, for the caller to fall back to the engine's pull.
 * - Too many bytes or a digest mismatch: the bytes are dropped (`resent`)
 *   and the blob fetched again from byte 0, once; a second time in a row is
 *   `bad_response` naming the digest.
 * - 401/403/404 fail at once (`unauthorized`, `not_found`); the store's
 *   disk failing (ENOSPC, EACCES…) is `store_failed`.
 * - An abort rejects with `signal.reason` and leaves the partial file, so
 *   the next call continues from it.
 */
import { abortableSleep } from '../abortable-sleep.js';
import type { BlobStore, PartialFile } from './blob-store.js';
import { DigestMismatch } from './blob-store.js';
import { BodyReader } from './body-reader.js';
import { unlimited } from './rate-limit.js';
import { isRegistryError, networkReason, type RegistrySession } from './registry-session.js';
import { asFetchError } from './resolve-image.js';
import { type BlobDescriptor, FetchError, type FetchEvent, type Pacer } from './types.js';

export interface RetryPolicy {
  /** The first backoff after a break; it doubles for each attempt in a row that received nothing. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Attempts in a row that receive nothing before the download gives up as `unreachable`. */
  maxAttempts: number;
  /** Breaks of a whole-blob download (the registry ignores Range) before giving up as `not_resumable`. */
  wholeBlobBreaks: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialDelayMs: 1_000, maxDelayMs: 30_000, maxAttempts: 8, wholeBlobBreaks: 3 };

export const DEFAULT_STALL_TIMEOUT_MS = 30_000;

export interface DownloadBlobsOptions {
  signal: AbortSignal;
  /** Paces received bytes (the downlink limit and the daily budget). Default: no limit. */
  pace?: Pacer;
  /** A request that receives no byte for this long is broken off and retried. Default 30 s. */
  stallTimeoutMs?: number;
  onEvent?: (event: FetchEvent) => void;
  retry?: Partial<RetryPolicy>;
}

export interface DownloadSummary {
  /** Bytes received from the registry, resent ones included. */
  received: number;
  /** Bytes received and then dropped: range ignored, too many bytes, digest mismatch. */
  resent: number;
  /** Blobs downloaded (some of them continued from the store). */
  fetched: number;
  /** Blobs already complete in the store. */
  skipped: number;
}

/** Why resent bytes were dropped, in the `resent` event. */
export const RESENT_REASONS = {
  rangeIgnored: 'the registry ignored Range',
  digestMismatch: 'digest mismatch',
  tooLong: 'more bytes than the manifest says',
  offsetRefused: 'the registry refused the stored offset',
} as const;

export async function downloadBlobs(
  session: RegistrySession,
  store: BlobStore,
  blobs: readonly BlobDescriptor[],
  options: DownloadBlobsOptions,
): Promise<DownloadSummary> {
  const run = new BlobRun(session, store, options);
  for (const blob of blobs) {
    options.signal.throwIfAborted();
    await run.download(blob);
  }
  return run.summary;
}

/** A break: the attempt ended early and may be retried. */
class Break extends Error {
  override readonly name = 'Break';
}

/** The stall timer's abort reason. */
class Stalled extends Error {
  override readonly name = 'Stalled';
}

/** Where one blob's download stands across its attempts. */
interface BlobProgress {
  /** The registry ignored Range for it: every attempt fetches it from byte 0. */
  whole: boolean;
  /** Breaks of whole downloads. */
  wholeBreaks: number;
  /** Refetches from byte 0 because its bytes were wrong. */
  refetches: number;
  /** Attempts in a row that received nothing: the download gives up at `maxAttempts`. */
  stuck: number;
  /** Breaks since bytes last arrived, this one included: the backoff doubles with each. */
  breaks: number;
}

/** How one attempt ended. */
type AttemptEnd =
  | { kind: 'stored' }
  | { kind: 'break'; error: string; received: number }
  | { kind: 'refetch'; reason: string; bytes: number; received: number };

class BlobRun {
  readonly summary: DownloadSummary = { received: 0, resent: 0, fetched: 0, skipped: 0 };
  private readonly signal: AbortSignal;
  private readonly pace: Pacer;
  private readonly stallTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly emit: (event: FetchEvent) => void;

  constructor(
    private readonly session: RegistrySession,
    private readonly store: BlobStore,
    options: DownloadBlobsOptions,
  ) {
    this.signal = options.signal;
    this.pace = options.pace ?? unlimited;
    this.stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.emit = options.onEvent ?? (() => {});
  }

  async download(blob: BlobDescriptor): Promise<void> {
    const release = await this.store.lock(blob.digest);
    try {
      if (await this.storeOp(() => this.store.has(blob.digest))) {
        this.summary.skipped += 1;
        return;
      }
      await this.fetch(blob);
      this.summary.fetched += 1;
    } finally {
      release();
    }
  }

  private async fetch(blob: BlobDescriptor): Promise<void> {
    const { digest } = blob;
    const progress: BlobProgress = { whole: false, wholeBreaks: 0, refetches: 0, stuck: 0, breaks: 0 };
    for (;;) {
      this.signal.throwIfAborted();
      let offset = await this.storeOp(() => this.store.partialSize(digest));
      if (offset > 0 && (progress.whole || offset > blob.size)) {
        const reason = progress.whole ? RESENT_REASONS.rangeIgnored : RESENT_REASONS.tooLong;
        this.resent(digest, await this.storeOp(() => this.store.discardPartial(digest)), reason);
        if (!progress.whole) this.refetched(blob, progress);
        offset = 0;
      }
      const end: AttemptEnd = offset === blob.size ? { kind: 'stored' } : await this.attempt(blob, offset, progress);
      if (end.kind === 'stored') {
        try {
          await this.storeOp(() => this.store.complete(digest), DigestMismatch);
          return;
        } catch (err) {
          if (!(err instanceof DigestMismatch)) throw err;
          this.resent(digest, err.bytes, RESENT_REASONS.digestMismatch);
          this.refetched(blob, progress, err.actual);
          continue;
        }
      }
      if (end.kind === 'refetch') {
        this.resent(digest, end.bytes, end.reason);
        if (end.reason === RESENT_REASONS.tooLong) {
          this.refetched(blob, progress);
          continue;
        }
      }
      // A break, or a refused offset: back off and go on from what is stored.
      const error = end.kind === 'break' ? end.error : end.reason;
      if (progress.whole) {
        progress.wholeBreaks += 1;
        if (progress.wholeBreaks >= this.retry.wholeBlobBreaks) {
          throw new FetchError(
            'not_resumable',
            this.session.image,
            `cannot download blob ${digest} of ${this.session.image}: the registry ignores Range and ${progress.wholeBreaks} whole downloads of it broke off (last: ${error})`,
          );
        }
      }
      progress.stuck = end.received > 0 ? 0 : progress.stuck + 1;
      progress.breaks = end.received > 0 ? 1 : progress.breaks + 1;
      if (progress.stuck >= this.retry.maxAttempts) {
        throw new FetchError(
          'unreachable',
          this.session.image,
          `cannot download blob ${digest} of ${this.session.image}: ${progress.stuck} attempts in a row received nothing (last: ${error})`,
        );
      }
      const delayMs = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (progress.breaks - 1));
      this.emit({ type: 'retry', digest, attempt: progress.breaks, delayMs, error });
      await abortableSleep(delayMs, this.signal);
    }
  }

  /** One request: stores what arrives from `offset` on, and says how it ended. */
  private async attempt(blob: BlobDescriptor, offset: number, progress: BlobProgress): Promise<AttemptEnd> {
    const { digest } = blob;
    const stall = new AbortController();
    const signal = AbortSignal.any([this.signal, stall.signal]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      timer = setTimeout(() => stall.abort(new Stalled(`no byte for ${formatMs(this.stallTimeoutMs)}`)), this.stallTimeoutMs);
    };
    const disarm = () => clearTimeout(timer);

    let received = 0;
    let file: PartialFile | undefined;
    let body: BodyReader | undefined;
    arm();
    try {
      const answer = await this.session.blob(digest, offset, signal);
      disarm();
      body = new BodyReader(answer.body);
      const from = answer.start;
      if (answer.rangeHonoured && offset > 0) this.emit({ type: 'resumed', digest, offset });
      if (!answer.rangeHonoured) {
        // The body starts at byte 0: what is stored is worth nothing now, and this body is used instead.
        this.resent(digest, await this.storeOp(() => this.store.discardPartial(digest)), RESENT_REASONS.rangeIgnored);
        progress.whole = true;
        this.emit({ type: 'whole-blob', digest });
      }
      if (answer.length !== undefined && from + answer.length > blob.size) {
        body.destroy();
        return {
          kind: 'refetch',
          reason: RESENT_REASONS.tooLong,
          bytes: await this.storeOp(() => this.store.discardPartial(digest)),
          received,
        };
      }
      const opened = await this.storeOp(() => this.store.openPartial(digest, from));
      file = opened;
      for (;;) {
        arm();
        const chunk = await body.next();
        disarm();
        if (chunk === undefined) break;
        if (opened.size + chunk.length > blob.size) {
          body.destroy();
          await this.storeOp(() => opened.close());
          file = undefined;
          const bytes = await this.storeOp(() => this.store.discardPartial(digest));
          return { kind: 'refetch', reason: RESENT_REASONS.tooLong, bytes, received };
        }
        await this.pace.take(chunk.length, this.signal);
        await this.storeOp(() => opened.write(chunk));
        received += chunk.length;
        this.summary.received += chunk.length;
        this.emit({ type: 'received', bytes: chunk.length });
      }
      const size = opened.size;
      await this.storeOp(() => opened.close());
      file = undefined;
      if (size < blob.size) throw new Break(`the connection closed after ${size} of ${blob.size} bytes`);
      return { kind: 'stored' };
    } catch (err) {
      disarm();
      if (this.signal.aborted) throw this.signal.reason;
      if (err instanceof FetchError) throw err;
      if (stall.signal.aborted) return { kind: 'break', error: (stall.signal.reason as Error).message, received };
      if (err instanceof Break) return { kind: 'break', error: err.message, received };
      if (isRegistryError(err)) {
        if (err.code === 'unreachable' || (err.statusCode !== undefined && transient(err.statusCode))) {
          return { kind: 'break', error: err.message, received };
        }
        if (err.statusCode === 416) {
          return {
            kind: 'refetch',
            reason: RESENT_REASONS.offsetRefused,
            bytes: await this.storeOp(() => this.store.discardPartial(digest)),
            received,
          };
        }
        throw asFetchError(err, this.session.image);
      }
      // The body stream broke: a reset, or the connection closed before the declared length.
      return { kind: 'break', error: networkReason(err), received };
    } finally {
      disarm();
      if (file) await file.close().catch(() => {});
      body?.destroy();
    }
  }

  /** Counts a refetch from byte 0 of a blob whose bytes were wrong; the second gives up. */
  private refetched(blob: BlobDescriptor, progress: BlobProgress, actual?: string): void {
    progress.refetches += 1;
    progress.stuck = 0;
    progress.breaks = 0;
    if (progress.refetches < 2) return;
    const detail = actual ? `its bytes hash to ${actual}` : `the registry sends more than its ${blob.size} bytes`;
    throw new FetchError(
      'bad_response',
      this.session.image,
      `cannot download blob ${blob.digest} of ${this.session.image}: fetched twice, and twice ${detail}`,
    );
  }

  private resent(digest: string, bytes: number, reason: string): void {
    if (bytes <= 0) return;
    this.summary.resent += bytes;
    this.emit({ type: 'resent', digest, bytes, reason });
  }

  /** Runs a content-store operation; its failure (disk full, unwritable) is `store_failed`, except `pass` errors. */
  private async storeOp<T>(op: () => Promise<T>, pass?: abstract new (...args: never[]) => Error): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (pass && err instanceof pass) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new FetchError(
        'store_failed',
        this.session.image,
        `cannot store the blobs of ${this.session.image} in ${this.store.dir}: ${code ? `${code}: ` : ''}${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

/** Statuses a registry answers when it is busy or briefly broken: worth another try. */
function transient(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
