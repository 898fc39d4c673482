/**
 * The image puller's scheduling (agent/images/image-puller.ts) over a fake
 * fetch and a fake engine, on fake timers: one download at a time, what is
 * wanted now before what is pulled ahead before the hub's prefetches (a
 * download paused for a more urgent one and resumed after), callers sharing
 * a download, when the engine pulls instead, the report's lines and how
 * often they are sent, the events, and the totals.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DownloadTotalsFile, TOTALS_FILE } from '../../agent/images/download-totals.js';
import { fallbackReason } from '../../agent/images/engine-fallback.js';
import { ImagePuller, type ImagePullerOptions } from '../../agent/images/image-puller.js';
import type { FetchOptions } from '../../agent/images/image-source.js';
import { FetchError, type FetchEvent } from '../../agent/images/types.js';
import { isPermanentPullError } from '../../agent/runtime/errors.js';
import type { NewEvent } from '../../agent/wiring/uplink.js';
import type { RegistryAuth } from '../../shared/index.js';
import { LogCapture } from '../support/logs.js';
import { scratchDir } from '../support/scratch.js';

const MiB = 1024 * 1024;

interface FetchCall {
  image: string;
  options: FetchOptions;
  event(event: FetchEvent): void;
  resolve(): void;
  reject(err: unknown): void;
  aborted: boolean;
}

/** The agent's download, driven by the test: each call waits until the test settles it; an abort rejects it with the reason. */
class FakeFetch {
  readonly calls: FetchCall[] = [];

  readonly fetch = (image: string, _auth: RegistryAuth | undefined, options: FetchOptions): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const call: FetchCall = {
        image,
        options,
        event: (event) => options.onEvent(event),
        resolve: () => {
          engine.present.add(image);
          resolve();
        },
        reject,
        aborted: false,
      };
      options.signal.addEventListener('abort', () => {
        call.aborted = true;
        reject(options.signal.reason);
      });
      this.calls.push(call);
    });

  last(image?: string): FetchCall {
    const calls = image === undefined ? this.calls : this.calls.filter((c) => c.image === image);
    const call = calls[calls.length - 1];
    if (!call) throw new Error(`no fetch of ${image ?? 'anything'} yet`);
    return call;
  }
}

const engine = {
  present: new Set<string>(),
  pulls: [] as string[],
  pullFails: undefined as Error | undefined,
  async hasImage(image: string) {
    return engine.present.has(image);
  },
  async pull(image: string) {
    engine.pulls.push(image);
    if (engine.pullFails) throw engine.pullFails;
    engine.present.add(image);
  },
};

let fetcher: FakeFetch;
let events: NewEvent[];
let changes: number;
let log: LogCapture;

/** What the desired state (and the jobs) want, unless a test says otherwise: a present or failed line of these stays. */
const DESIRED = new Set(['reg/a:1', 'reg/b:1', 'reg/web:2', 'reg/api:1']);

function puller(options: Partial<ImagePullerOptions> = {}): ImagePuller {
  const p = new ImagePuller({
    fetch: fetcher.fetch,
    engine,
    wanted: () => DESIRED,
    event: (event) => events.push(event),
    logger: log.logger,
    now: () => Date.now(),
    ...options,
  });
  p.changed.on(() => changes++);
  return p;
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

function planned(total: number, extra: Partial<Extract<FetchEvent, { type: 'planned' }>> = {}): FetchEvent {
  return { type: 'planned', total, reusedBytes: 0, blobs: 2, storedBytes: 0, ...extra };
}

const types = () => events.map((e) => e.type);

beforeEach(() => {
  vi.useFakeTimers({ now: Date.parse('2026-12-06T10:00:00Z') });
  fetcher = new FakeFetch();
  engine.present.clear();
  engine.pulls = [];
  engine.pullFails = undefined;
  events = [];
  changes = 0;
  log = new LogCapture('warn');
});

afterEach(() => {
  vi.useRealTimers();
});

describe('scheduling', () => {
  it('downloads one image at a time, in the order they were asked for', async () => {
    const p = puller();
    const a = p.pull({ image: 'reg/a:1', owner: { app: 'a', revision: 1 }, signal: signal() });
    const b = p.pull({ image: 'reg/b:1', owner: { app: 'b', revision: 1 }, signal: signal() });
    await settle();
    expect(fetcher.calls.map((c) => c.image)).toEqual(['reg/a:1']);
    expect(p.progress('reg/b:1')).toBe('queued behind another download');
    expect(p.reports().map((r) => [r.image, r.state])).toEqual([
      ['reg/a:1', 'downloading'],
      ['reg/b:1', 'queued'],
    ]);
    fetcher.last('reg/a:1').resolve();
    await a;
    await settle();
    expect(fetcher.calls.map((c) => c.image)).toEqual(['reg/a:1', 'reg/b:1']);
    fetcher.last('reg/b:1').resolve();
    await b;
    p.close();
  });

  it('two callers wanting one image share one download', async () => {
    const p = puller();
    const first = p.pull({ image: 'reg/a:1', owner: { app: 'a', revision: 1 }, signal: signal() });
    const second = p.pull({ image: 'reg/a:1', owner: { job: 'backup' }, signal: signal() });
    await settle();
    fetcher.last().resolve();
    await Promise.all([first, second]);
    expect(fetcher.calls).toHaveLength(1);
    p.close();
  });

  it('a caller that gives up does not stop the download another still waits for; when the last gives up it stops after a grace period', async () => {
    const p = puller({ orphanGraceMs: 5_000 });
    const one = new AbortController();
    const two = new AbortController();
    const first = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: one.signal });
    const second = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: two.signal });
    await settle();
    one.abort(new Error('superseded'));
    await expect(first).rejects.toThrow('superseded');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetcher.last().aborted).toBe(false);

    two.abort(new Error('superseded'));
    await expect(second).rejects.toThrow('superseded');
    // A newer desired state usually asks for the same image again at once: it picks the download up.
    await vi.advanceTimersByTimeAsync(1_000);
    const again = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetcher.calls).toHaveLength(1);
    expect(fetcher.last().aborted).toBe(false);
    fetcher.last().resolve();
    await again;

    const three = new AbortController();
    const third = p.pull({ image: 'reg/b:1', owner: { app: 'b' }, signal: three.signal });
    await settle();
    three.abort(new Error('app removed'));
    await expect(third).rejects.toThrow('app removed');
    await vi.advanceTimersByTimeAsync(4_000);
    expect(fetcher.last('reg/b:1').aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(fetcher.last('reg/b:1').aborted).toBe(true);
    expect(p.reports().map((r) => r.image)).not.toContain('reg/b:1');
    p.close();
  });

  it('an image the engine already holds is not downloaded', async () => {
    engine.present.add('reg/a:1');
    const p = puller();
    await p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    expect(fetcher.calls).toHaveLength(0);
    expect(types()).toEqual([]);
    p.close();
  });
});

describe('priorities', () => {
  it('what is wanted now pauses a prefetch; the prefetch resumes once it is in', async () => {
    const p = puller();
    p.prefetch([{ image: 'reg/web:2', owner: { app: 'web', revision: 2, prefetch: true } }]);
    await settle();
    const prefetch = fetcher.last('reg/web:2');
    prefetch.event(planned(40 * MiB));
    prefetch.event({ type: 'received', bytes: 10 * MiB });

    const now = p.pull({ image: 'reg/api:1', owner: { app: 'api', revision: 1 }, signal: signal() });
    await settle();
    expect(prefetch.aborted).toBe(true);
    expect(fetcher.last().image).toBe('reg/api:1');
    const paused = p.reports().find((r) => r.image === 'reg/web:2');
    expect(paused).toMatchObject({ state: 'queued', prefetch: true, app: 'web', revision: 2, bytes: 10 * MiB, total: 40 * MiB });
    expect(paused?.message).toMatch(/^paused: reg\/api:1 is wanted first/);

    fetcher.last('reg/api:1').event(planned(MiB));
    fetcher.last('reg/api:1').resolve();
    await now;
    await settle();
    const resumed = fetcher.last('reg/web:2');
    expect(resumed).not.toBe(prefetch);
    resumed.event(planned(40 * MiB, { storedBytes: 10 * MiB }));
    resumed.event({ type: 'resumed', digest: `sha256:${'1'.repeat(64)}`, offset: 10 * MiB });
    resumed.resolve();
    await settle();
    expect(p.reports().find((r) => r.image === 'reg/web:2')?.state).toBe('present');
    // One started event for the prefetch, though it ran twice; the resume is said with its offset.
    expect(events.filter((e) => e.type === 'image-download-started').map((e) => e.message.split(':')[0])).toEqual([
      'downloading reg/web',
      'downloading reg/api',
    ]);
    expect(events.find((e) => e.type === 'image-download-resumed')?.message).toContain(`resumed at byte ${10 * MiB}`);
    p.close();
  });

  it('the engine loading an image is never paused', async () => {
    const p = puller();
    p.prefetch([{ image: 'reg/web:2', owner: { app: 'web', revision: 2, prefetch: true } }]);
    await settle();
    const prefetch = fetcher.last('reg/web:2');
    prefetch.event(planned(MiB));
    prefetch.event({ type: 'loading' });
    const now = p.pull({ image: 'reg/api:1', owner: { app: 'api' }, signal: signal() });
    await settle();
    expect(prefetch.aborted).toBe(false);
    expect(fetcher.calls).toHaveLength(1);
    prefetch.resolve();
    await settle();
    fetcher.last('reg/api:1').resolve();
    await now;
    p.close();
  });

  it('queued images go now, then ahead of a held update, then the hub prefetches, each in the order asked', async () => {
    const p = puller();
    const blocker = p.pull({ image: 'reg/first:1', owner: { app: 'first' }, signal: signal() });
    await settle();
    p.prefetch([{ image: 'reg/pre:2', owner: { app: 'pre', revision: 2, prefetch: true } }]);
    const ahead = p.pull({ image: 'reg/held:2', owner: { app: 'held', revision: 2, prefetch: true }, signal: signal() });
    const job = p.pull({ image: 'reg/job:1', owner: { job: 'backup' }, signal: signal() });
    const app = p.pull({ image: 'reg/app:1', owner: { app: 'app' }, signal: signal() });
    await settle();
    for (const next of ['reg/job:1', 'reg/app:1', 'reg/held:2', 'reg/pre:2']) {
      fetcher.last().resolve();
      await settle();
      expect(fetcher.last().image).toBe(next);
    }
    fetcher.last().resolve();
    await Promise.all([blocker, ahead, job, app]);
    p.close();
  });
});

describe('the engine pulls instead', () => {
  it('when the app asks for it: no fetch, the report says via engine', async () => {
    const p = puller();
    await p.pull({ image: 'reg/a:1', owner: { app: 'a', revision: 3 }, via: 'engine', signal: signal() });
    expect(fetcher.calls).toHaveLength(0);
    expect(engine.pulls).toEqual(['reg/a:1']);
    expect(p.reports()).toMatchObject([{ image: 'reg/a:1', state: 'present', via: 'engine', app: 'a', revision: 3 }]);
    expect(types()).toEqual(['image-download-started', 'image-download-completed']);
    expect(events[0]?.message).toContain('spec.update.pull: engine');
    p.close();
  });

  it('when the caller says why, the report and the event say that', async () => {
    const p = puller();
    const why = "the agent's new image is created by its digest, which the engine knows only from its own pull";
    await p.pull({ image: 'reg/a:1', owner: {}, via: 'engine', why, signal: signal() });
    expect(p.reports()[0]).toMatchObject({ via: 'engine', message: why });
    expect(events[0]?.message).toBe(`the engine pulls reg/a:1: ${why}`);
    p.close();
  });

  it('when the registry cannot serve the image resumably, saying why, and for the rest of the process', async () => {
    const p = puller();
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    await settle();
    fetcher.last().event(planned(MiB));
    fetcher
      .last()
      .reject(new FetchError('not_resumable', 'reg/a:1', 'the registry ignores Range and the whole-blob download broke 3 times'));
    await pulled;
    expect(engine.pulls).toEqual(['reg/a:1']);
    expect(types()).toEqual(['image-download-started', 'image-download-fallback', 'image-download-completed']);
    expect(events[1]).toMatchObject({ app: 'a' });
    expect(events[1]?.message).toContain('cannot serve it resumably');
    const [line] = p.reports();
    expect(line).toMatchObject({ state: 'present', via: 'engine' });

    // Removed from the engine and wanted again: the engine pulls it straight away.
    engine.present.delete('reg/a:1');
    await p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    expect(fetcher.calls).toHaveLength(1);
    expect(engine.pulls).toEqual(['reg/a:1', 'reg/a:1']);
    p.close();
  });

  it.each([
    [
      'a registry out of reach',
      new FetchError('unreachable', 'i', 'connect ECONNREFUSED', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }),
      false,
    ],
    [
      'a TLS certificate the agent does not trust',
      new FetchError('unreachable', 'i', 'self-signed certificate in certificate chain', {
        cause: Object.assign(new Error('x'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
      }),
      true,
    ],
    [
      'a plain-HTTP registry the engine knows as insecure',
      new FetchError('unreachable', 'i', 'wrong version number', { cause: { cause: Object.assign(new Error('x'), { code: 'EPROTO' }) } }),
      true,
    ],
    ['refused credentials', new FetchError('unauthorized', 'i', '401'), false],
    ['an image the registry lacks', new FetchError('not_found', 'i', 'manifest unknown'), false],
    ['a full store', new FetchError('store_failed', 'i', 'ENOSPC'), true],
    ['an archive the engine refused', new FetchError('load_failed', 'i', 'invalid diffID'), true],
    ['a manifest the agent cannot read', new FetchError('bad_response', 'i', 'schema 1'), true],
    ['some other error', new Error('boom'), false],
  ])('%s: fallback %s', (_what, err, expected) => {
    expect(fallbackReason(err, false) !== undefined).toBe(expected);
  });

  it('not for a blob whose digest never matched once the download was planned (the engine would fetch it all again)', () => {
    expect(fallbackReason(new FetchError('bad_response', 'i', 'digest mismatch twice'), true)).toBeUndefined();
  });

  it('a failure that would fail the engine alike rejects the caller, and the report says failed', async () => {
    const p = puller();
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    await settle();
    fetcher.last().reject(new FetchError('unreachable', 'reg/a:1', 'reg: connect ECONNREFUSED'));
    await expect(pulled).rejects.toThrow('ECONNREFUSED');
    expect(engine.pulls).toEqual([]);
    expect(p.reports()).toMatchObject([{ image: 'reg/a:1', state: 'failed', message: 'reg: connect ECONNREFUSED' }]);
    expect(types()).toEqual(['image-download-failed']);
    p.close();
  });

  it("fails a caller as the engine's pull would, so a job tells an image that cannot be had from a link that is down", async () => {
    const p = puller();
    const missing = p.pull({ image: 'reg/a:1', owner: { job: 'backup' }, signal: signal() });
    await settle();
    fetcher.last().reject(new FetchError('not_found', 'reg/a:1', 'manifest unknown: reg/a:1'));
    const err = await missing.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'pull_failed', statusCode: 404, message: 'pull reg/a:1: manifest unknown: reg/a:1' });
    expect(isPermanentPullError(err)).toBe(true);

    const down = p.pull({ image: 'reg/b:1', owner: { job: 'backup' }, signal: signal() });
    await settle();
    fetcher.last().reject(new FetchError('unreachable', 'reg/b:1', 'connect ECONNREFUSED'));
    expect(isPermanentPullError(await down.catch((e: unknown) => e))).toBe(false);
    p.close();
  });

  it('a runtime that loads no archives has the engine pull every image', async () => {
    const p = puller({ fetch: undefined });
    await p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    expect(engine.pulls).toEqual(['reg/a:1']);
    expect(p.reports()[0]).toMatchObject({ via: 'engine' });
    p.close();
  });
});

describe('prefetch', () => {
  it('a failed prefetch waits and is tried again; one the desired state drops goes', async () => {
    const p = puller({ prefetchRetry: { firstMs: 30_000, maxMs: 60_000 } });
    p.prefetch([{ image: 'reg/web:2', owner: { app: 'web', revision: 2, prefetch: true } }]);
    await settle();
    fetcher.last().reject(new FetchError('unreachable', 'reg/web:2', 'timed out'));
    await settle();
    const [line] = p.reports();
    expect(line).toMatchObject({ state: 'waiting', resumesAt: '2026-12-06T10:00:30.000Z' });
    await vi.advanceTimersByTimeAsync(29_000);
    expect(fetcher.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fetcher.calls).toHaveLength(2);
    p.prefetch([]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetcher.last().aborted).toBe(true);
    expect(p.reports()).toEqual([]);
    p.close();
  });

  it('a caller wanting a prefetched image whose retry waits gets it at once', async () => {
    const p = puller();
    p.prefetch([{ image: 'reg/web:2', owner: { app: 'web', revision: 2, prefetch: true } }]);
    await settle();
    fetcher.last().reject(new FetchError('unreachable', 'reg/web:2', 'timed out'));
    await settle();
    const now = p.pull({ image: 'reg/web:2', owner: { app: 'web', revision: 2 }, signal: signal() });
    await settle();
    expect(fetcher.calls).toHaveLength(2);
    fetcher.last().resolve();
    await now;
    p.close();
  });
});

describe('the report', () => {
  it('progress, rate over the last seconds, and the phase text', async () => {
    const p = puller();
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a', revision: 1 }, signal: signal() });
    await settle();
    const call = fetcher.last();
    call.event(planned(48 * MiB, { reusedBytes: 12 * MiB }));
    for (let i = 0; i < 10; i++) {
      call.event({ type: 'received', bytes: 256 * 1024 });
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(p.reports()[0]).toMatchObject({
      state: 'downloading',
      via: 'agent',
      bytes: 10 * 256 * 1024,
      total: 48 * MiB,
      reusedBytes: 12 * MiB,
    });
    expect(p.reports()[0]?.rate).toBe(256 * 1024);
    expect(p.progress('reg/a:1')).toBe('2.5 MiB of 48.0 MiB at 256.0 KiB/s');
    call.event({ type: 'resent', digest: 'sha256:x', bytes: MiB, reason: 'digest mismatch' });
    expect(p.reports()[0]).toMatchObject({ bytes: 1.5 * MiB, resentBytes: MiB });
    call.event({ type: 'loading' });
    expect(p.reports()[0]).toMatchObject({ state: 'loading' });
    expect(p.reports()[0]?.rate).toBeUndefined();
    call.resolve();
    await pulled;
    expect(p.reports()[0]).toMatchObject({ state: 'present', bytes: 48 * MiB });
    p.close();
  });

  it('a change of state goes out at once; progress at most every 5 s', async () => {
    const p = puller({ progressReportMs: 5_000 });
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    await settle();
    const call = fetcher.last();
    call.event(planned(100 * MiB));
    const afterPlan = changes;
    for (let i = 0; i < 100; i++) {
      call.event({ type: 'received', bytes: 64 * 1024 });
      await vi.advanceTimersByTimeAsync(100);
    }
    // 10 s of chunks: two progress reports, not a hundred.
    expect(changes - afterPlan).toBe(2);
    call.event({ type: 'loading' });
    expect(changes - afterPlan).toBe(3);
    call.resolve();
    await pulled;
    expect(changes - afterPlan).toBe(4);
    p.close();
  });

  it('a present image stays while something wants it, at most 64 lines, the oldest present left out first', async () => {
    const wanted = new Set<string>();
    const p = puller({ fetch: undefined, wanted: () => wanted });
    for (let i = 0; i < 70; i++) {
      wanted.add(`reg/i:${i}`);
      await p.pull({ image: `reg/i:${i}`, owner: { app: 'a' }, signal: signal() });
      await vi.advanceTimersByTimeAsync(1_000);
    }
    const lines = p.reports();
    expect(lines).toHaveLength(64);
    expect(lines[0]?.image).toBe('reg/i:6');
    wanted.clear();
    expect(p.reports()).toEqual([]);
    p.close();
  });
});

describe('events', () => {
  it('started, resumed at most once a minute per blob with a count, completed with what it cost and saved', async () => {
    const p = puller();
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a', revision: 2 }, signal: signal() });
    await settle();
    const call = fetcher.last();
    call.event(planned(4 * MiB, { reusedBytes: 20 * MiB, storedBytes: MiB }));
    const digest = `sha256:${'a'.repeat(64)}`;
    for (let i = 1; i <= 5; i++) {
      call.event({ type: 'resumed', digest, offset: i * 256 * 1024 });
      await vi.advanceTimersByTimeAsync(20_000);
    }
    call.event({ type: 'received', bytes: 3 * MiB });
    call.event({ type: 'resent', digest, bytes: 64 * 1024, reason: 'the registry ignored Range' });
    call.event({ type: 'received', bytes: 64 * 1024 });
    await vi.advanceTimersByTimeAsync(20_000);
    call.resolve();
    await pulled;
    expect(types()).toEqual(['image-download-started', 'image-download-resumed', 'image-download-resumed', 'image-download-completed']);
    expect(events.every((e) => e.app === 'a')).toBe(true);
    expect(events[0]?.message).toBe(
      'downloading reg/a:1 for app a revision 2: 4.0 MiB in 2 blobs; 20.0 MiB of layers already present; 1.0 MiB stored earlier, continued from there',
    );
    expect(events[1]?.message).toContain(`blob ${digest} resumed at byte 262144`);
    // The 1st at 0 s, the 4th at 60 s (3 since the last one said), the 5th at 80 s is not said.
    expect(events[2]?.message).toContain('resumed at byte 1048576 (1.0 MiB stored) (resumed 4 times, 3 since the last event)');
    expect(events[3]?.message).toBe(
      'reg/a:1 for app a revision 2 is in the engine: 3.1 MiB downloaded in 120 s (26.1 KiB/s on average), 20.0 MiB reused from layers present, 64.0 KiB resent',
    );
    p.close();
  });

  it('a spent daily budget: the download waits, reported with when it goes on, and one event', async () => {
    const totals = new DownloadTotalsFile({ dataDir: scratchDir('flotilla-totals-'), logger: log.logger, now: () => Date.now() });
    const p = puller({ budgetBytesPerDay: 10 * MiB, budgetZone: 'UTC', totals });
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    await settle();
    const call = fetcher.last();
    call.event(planned(30 * MiB));
    for (let i = 0; i < 3; i++) {
      call.event({ type: 'received', bytes: 4 * MiB });
      void call.options.pace.take(4 * MiB, call.options.signal);
      await settle();
    }
    expect(p.reports()[0]).toMatchObject({ state: 'waiting', resumesAt: '2026-12-07T00:00:00.000Z' });
    expect(p.reports()[0]?.message).toBe("today's download budget is spent; downloads go on at 2026-12-07T00:00:00Z");
    expect(types()).toEqual(['image-download-started', 'image-download-waiting']);
    expect(p.totals()?.budget).toMatchObject({ limit: 10 * MiB, used: 12 * MiB, day: '2026-12-06', resetsAt: '2026-12-07T00:00:00.000Z' });
    await vi.advanceTimersByTimeAsync(14 * 3_600_000);
    call.event({ type: 'received', bytes: MiB });
    expect(p.reports()[0]).toMatchObject({ state: 'downloading' });
    expect(p.totals()?.budget).toMatchObject({ day: '2026-12-07', used: 0 });
    call.resolve();
    await pulled;
    p.close();
  });
});

describe('totals', () => {
  it('are kept in the data dir and read back by the next process, with the budget day', async () => {
    const dir = scratchDir('flotilla-totals-');
    const totals = new DownloadTotalsFile({ dataDir: dir, logger: log.logger, now: () => Date.now(), persistIntervalMs: 10_000 });
    const p = puller({ totals, budgetBytesPerDay: 100 * MiB, budgetZone: 'UTC', rateLimit: 256 * 1024 });
    const pulled = p.pull({ image: 'reg/a:1', owner: { app: 'a' }, signal: signal() });
    await settle();
    const call = fetcher.last();
    call.event(planned(5 * MiB, { reusedBytes: 7 * MiB }));
    call.event({ type: 'received', bytes: 5 * MiB });
    await call.options.pace.take(5 * MiB, call.options.signal);
    call.event({ type: 'resent', digest: 'sha256:x', bytes: MiB, reason: 'digest mismatch' });
    call.event({ type: 'received', bytes: MiB });
    await call.options.pace.take(MiB, call.options.signal);
    call.resolve();
    await pulled;
    expect(p.totals()).toEqual({
      bytes: 6 * MiB,
      reusedBytes: 7 * MiB,
      resentBytes: MiB,
      images: 1,
      since: '2026-12-06T10:00:00.000Z',
      rateLimit: 256 * 1024,
      budget: { limit: 100 * MiB, used: 6 * MiB, day: '2026-12-06', resetsAt: '2026-12-07T00:00:00.000Z' },
    });
    // Written at the completion, not only at close.
    const file = JSON.parse(readFileSync(join(dir, TOTALS_FILE), 'utf8'));
    expect(file).toMatchObject({ bytes: 6 * MiB, images: 1, budget: { day: '2026-12-06', used: 6 * MiB } });
    p.close();

    const again = new DownloadTotalsFile({ dataDir: dir, logger: log.logger, now: () => Date.now() });
    const next = puller({ totals: again, budgetBytesPerDay: 100 * MiB, budgetZone: 'UTC' });
    expect(next.totals()).toMatchObject({ bytes: 6 * MiB, images: 1, since: '2026-12-06T10:00:00.000Z', budget: { used: 6 * MiB } });
    next.close();
  });

  it('a file that is not what the agent writes starts from zero, saying so', async () => {
    const dir = scratchDir('flotilla-totals-');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, TOTALS_FILE), '{"bytes": -1}');
    const totals = new DownloadTotalsFile({ dataDir: dir, logger: log.logger, now: () => Date.now() });
    expect(totals.report(0, undefined)).toMatchObject({ bytes: 0, images: 0 });
    expect(log.matching('the download totals file is not what this agent writes; counting from zero')).toHaveLength(1);
  });
});
