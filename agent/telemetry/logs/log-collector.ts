/**
 * Follows the stdout and stderr of every managed container, an app's or a
 * job's, and publishes the lines in batches on `…/logs`, through the pure
 * `LogPipeline`. A job's lines carry `job: true` and the job's name as `app`.
 *
 * Invariants:
 * - Each run of each container (a container id and its StartedAt) is followed
 *   to its end, and read once more after it stopped: a new container or a
 *   restart starts a follow, a removed container stops it. `refresh` re-observes and is cheap to call
 *   on every engine event; calls coalesce.
 * - Nothing is sent twice within one agent's life: a follow resumes from the
 *   last timestamp seen for that container, skipping the lines it replays
 *   (the engine's `since` is inclusive; lines may share a timestamp).
 * - Nor across agent lives, and nothing a container printed while no agent
 *   ran is missed: with a ledger file (log-cursor.ts), every batch is
 *   recorded before it is published, a new agent sends the batches not known
 *   to be settled again under their own seqs (read again from the engine),
 *   and follows each container from just after the last line recorded.
 * - `flush` of stopped containers resolves only once their logs were read to
 *   the end and every line waiting was published, and, while the link is up,
 *   the hub acknowledged those batches (it stores a batch before it
 *   acknowledges it): the job runner waits for it before it reports an
 *   execution final, so whoever sees it final can read its whole output.
 * - Memory does not grow with what containers write: per stream the engine's
 *   reader holds at most one partial line (capped), and everything else
 *   waits in the pipeline's buffer, bounded in bytes. When the link is down
 *   or slow (`canSendLogs` false) nothing is taken from the buffer, so the
 *   lines wait there and, once it is full, are dropped and counted.
 */
import type { Logger } from 'pino';
import type { LogBatch } from '../../../shared/index.js';
import { formatNanos, timestampNanos } from '../../runtime/log-time.js';
import type { ContainerRuntime, LogEntry } from '../../runtime/runtime.js';
import type { LedgerStore } from './cursor-file.js';
import { ownerOf } from './log-buffer.js';
import { batchSeqOf, type LinePosition, type Replay, rangesOf, ShipLedger } from './log-cursor.js';
import { type LineOrigin, LogPipeline, type LogPipelineOptions } from './log-pipeline.js';
import { type LogSource, readRecordedBatch } from './log-replay.js';
import { estimateLostToRotation, rotationMarkerText } from './rotation.js';

/** Where batches go: the agent's MQTT link. */
export interface LogSink {
  readonly canSendLogs: boolean;
  publishLogs(batch: LogBatch): boolean;
  /** Whether a batch published now goes straight to the hub (`flush` then waits for its acknowledgement). */
  readonly connected?: boolean;
}

export interface LogCollectorOptions extends Omit<LogPipelineOptions, 'now'> {
  runtime: ContainerRuntime;
  sink: LogSink;
  /** The device's telemetry seq (shared with metric samples), one per batch. */
  nextSeq: () => number;
  logger: Logger;
  now?: () => number;
  /** Where the ledger of shipped lines lives (ledger-files.ts); without one, each agent follows from its own start. */
  ledgerFile?: LedgerStore;
}

/**
 * A process can write its first line a moment before the engine records
 * StartedAt; following a new run from a second earlier keeps that line.
 */
const START_MARGIN_NS = 1_000_000_000n;

/** Looks `flush` takes at most to see its containers' logs read to the end (a first follow, then its drain). */
const FLUSH_LOOKS = 4;

/** Settlements are saved this long after the first unsaved one (see log-cursor.ts: they may wait). */
const SETTLED_SAVE_DELAY_MS = 1_000;

/**
 * After a rotation past the cursor, the held lines that date from before the
 * follow (at most this many, or for this long) are read first to estimate
 * the lines lost, so the marker goes before them.
 */
const ROTATION_SAMPLE_LINES = 1_000;
const ROTATION_SAMPLE_MS = 1_000;

/** A container whose log is followed, as listed: an app's, or a job's (`job`, its name in `app`). */
interface Followed extends LogSource {
  id: string;
  state: string;
  startedAt?: string;
}

interface Follow {
  app: string;
  container: string;
  origin: LineOrigin;
  /** StartedAt of the run followed last. */
  run?: string;
  /** StartedAt of the stopped run whose tail was read once more (see `sync`). */
  drained?: string;
  /** Set while a follow is open. */
  stop?: () => void;
  /** While a follow is open: resolves when it ends (or is stopped). */
  ended?: Promise<void>;
  /** The latest line's timestamp: where the next follow resumes. */
  lastNanos?: bigint;
  /** How many lines carried exactly `lastNanos` (several lines can share a timestamp). */
  atLast: number;
  /** The engine cannot read this container's logs (e.g. logging driver "none"); never ask again. */
  unreadable?: boolean;
}

export class LogCollector {
  private readonly pipeline: LogPipeline;
  private readonly follows = new Map<string, Follow>();
  private readonly now: () => number;
  private readonly log: Logger;
  /**
   * Without a ledger (none configured, or the first start of an agent that
   * keeps one) containers already running are followed from the agent's
   * start, not from their beginning: an earlier agent may have sent what
   * they wrote before, and the hub has no way to tell a resent line from a
   * new one, so a gap of the agent's downtime is preferred to duplicating
   * every running app's log.
   */
  private readonly startNanos: bigint;
  private readonly ledger: ShipLedger;
  /** A ledger was read at start: every container it does not name is followed from its first line. */
  private readonly resumed: boolean;
  /** Per container id: where the previous agent's record ends, for the container's first follow. */
  private readonly resumeAfter: Map<string, LinePosition>;
  private readonly replays: Replay[];
  private saveTimer: NodeJS.Timeout | undefined;
  private saveFailed = false;
  private saved = false;
  private refreshing = false;
  private refreshAgain = false;
  /** Told when a look that began after they asked is over (refreshed). */
  private lookWaiters: (() => void)[] = [];
  /**
   * The batches flushes published that the outbox has not settled yet, by
   * seq: a flush waits for all of them, its own and those of an earlier
   * flush that took its lines along.
   */
  private readonly unsettled = new Map<number, { settled: Promise<void>; tell: () => void }>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private lost = 0;
  private closed = false;

  constructor(private readonly options: LogCollectorOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger;
    this.startNanos = BigInt(Math.floor(this.now())) * 1_000_000n;
    this.pipeline = new LogPipeline({ ...options, now: this.now });
    const saved = options.ledgerFile?.load();
    this.ledger = saved ? ShipLedger.fromJson(saved) : new ShipLedger();
    this.resumed = saved !== undefined;
    const plan = this.ledger.resumePlan();
    this.resumeAfter = plan.after;
    this.replays = plan.replays;
  }

  /** Lines dropped since the agent started, for every reason (the metrics sample's `agent.logLinesDropped`). */
  get droppedLines(): number {
    return this.pipeline.droppedLines + this.lost;
  }

  /** Containers whose logs are being followed now. */
  get following(): number {
    let n = 0;
    for (const f of this.follows.values()) if (f.stop) n++;
    return n;
  }

  /** The batch window now: the configured one, or a shorter one while the hub asks for live logs. */
  get batchMs(): number {
    return this.pipeline.batchMs;
  }

  /** From now on a batch is due once its oldest line is `ms` old; lines waiting longer than that go at once. */
  setBatchWindow(ms: number): void {
    if (ms === this.pipeline.batchMs) return;
    this.pipeline.batchMs = ms;
    this.rearm();
  }

  /**
   * Publishes every line waiting, due or not: a metrics sample is about to
   * go out, and lines that leave with it share its TCP segment and
   * acknowledgement instead of paying for their own later.
   */
  sendWaiting(): void {
    this.sendNow();
  }

  start(): void {
    if (this.replays.length === 0) {
      this.refresh();
      return;
    }
    // The recorded batches go first, so the outbox holds them ahead of the lines that came after them.
    this.refreshing = true;
    void this.replay(this.replays.splice(0)).finally(() => {
      this.refreshing = false;
      this.refresh();
    });
  }

  /**
   * The outbox no longer needs the engine's copy of these log batches
   * (acknowledged, written to its file, or dropped and reported): the payloads as queued.
   */
  settled(payloads: readonly Buffer[]): void {
    let changed = false;
    for (const payload of payloads) {
      const seq = batchSeqOf(payload);
      if (seq === undefined) continue;
      this.tellSettled(seq);
      if (this.ledger.settled(seq)) changed = true;
    }
    if (!changed || !this.options.ledgerFile) return;
    if (this.closed) {
      this.save('persist');
      return;
    }
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, SETTLED_SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  /** Re-observes the managed containers: follows new runs, stops following removed containers. */
  refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    const waiters = this.lookWaiters.splice(0);
    void this.sync().finally(() => {
      this.refreshing = false;
      for (const told of waiters) told();
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.refresh();
      }
    });
  }

  /**
   * Queues a `system` line of the agent's own in a job container's log, now:
   * ahead of every line the container writes after (the job runner says
   * where an attempt begins before it starts its containers).
   */
  jobSystemLine(job: string, container: string, text: string): void {
    if (this.closed) return;
    this.pipeline.pushSystem(job, container, new Date(this.now()).toISOString(), text, { job: true });
    this.schedule();
  }

  /**
   * Reads the logs of these stopped containers to their end, publishes every
   * line waiting, due or not, and resolves once the outbox has settled those
   * batches (acknowledged by the hub while the link is up; at once while it
   * is down, when no report could overtake them anyway). The job runner
   * waits for this before it reports an execution final (bounded on its side).
   */
  async flush(ids: readonly string[]): Promise<void> {
    let looked = false;
    for (let look = 0; look < FLUSH_LOOKS && !this.closed; look++) {
      await Promise.all(ids.map((id) => this.follows.get(id)?.ended));
      if (ids.every((id) => this.readToEnd(id, looked))) break;
      // The look follows a container not followed yet, and reads a stopped run's tail once more (sync).
      await this.refreshed();
      looked = true;
    }
    if (this.closed) return;
    if (!this.options.sink.connected) {
      this.sendNow();
      return;
    }
    // Listened for before each batch is handed over: the outbox may settle one at once (dropped when full).
    this.sendNow((seq) => {
      let tell: () => void = () => undefined;
      const settled = new Promise<void>((resolve) => {
        tell = resolve;
      });
      this.unsettled.set(seq, { settled, tell });
    });
    await Promise.all([...this.unsettled.values()].map((u) => u.settled));
  }

  /** Stops every follow and sends what the link takes now. */
  close(): void {
    this.closed = true;
    for (const told of this.lookWaiters.splice(0)) told();
    for (const seq of [...this.unsettled.keys()]) this.tellSettled(seq);
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const f of this.follows.values()) f.stop?.();
    this.follows.clear();
    this.send(true);
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    // For the agent after a reboot as well: a stop is the one time the ledger must reach the SD card.
    if (this.options.ledgerFile) this.save('persist');
  }

  private async sync(): Promise<void> {
    let containers: Followed[];
    try {
      containers = await this.list();
    } catch (err) {
      // The reconciler reports an unreachable engine; the next event or resync tries again.
      this.log.debug({ err: (err as Error).message }, 'cannot list containers to follow their logs');
      return;
    }
    if (this.closed) return;
    const present = new Set<string>();
    const apps = new Set<string>();
    for (const c of containers) {
      present.add(c.id);
      apps.add(ownerOf(c));
      let f = this.follows.get(c.id);
      if (!f) {
        f = { app: c.app, container: c.container, origin: c.job ? { job: true } : {}, atLast: 0 };
        const after = this.resumeAfter.get(c.id);
        if (after) {
          f.lastNanos = after.nanos;
          f.atLast = after.at;
          this.resumeAfter.delete(c.id);
        }
        this.follows.set(c.id, f);
      }
      if (f.stop || f.unreadable || c.startedAt === undefined) continue;
      if (f.run === c.startedAt && c.state !== 'running') {
        // A stopped run already followed to its end. Docker's follow can end
        // before the engine writes a last line that has no newline (measured:
        // 2 in 8 runs lose it), so read it once more from the last line seen;
        // after that nothing more comes until a restart.
        if (f.drained === c.startedAt) continue;
        f.drained = c.startedAt;
      }
      this.follow(c.id, f, c.startedAt);
    }
    this.ledger.retain(present);
    // Once at start even when nothing is printed: the next agent must know which containers this one covered.
    if (!this.saved && this.options.ledgerFile) this.save();
    for (const [id, f] of this.follows) {
      if (present.has(id)) continue;
      f.stop?.();
      this.follows.delete(id);
      if (!apps.has(ownerOf({ app: f.app, ...f.origin }))) this.pipeline.forgetApp(f.app, f.origin);
    }
  }

  /** The app containers, then the job containers (a runtime without jobs has none). */
  private async list(): Promise<Followed[]> {
    const { runtime } = this.options;
    const [apps, jobs] = await Promise.all([runtime.listManaged(), runtime.listJobContainers?.() ?? []]);
    const run = (c: { state: string; startedAt?: string }) => ({
      state: c.state,
      ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}),
    });
    return [
      ...apps.map((c) => ({ id: c.id, app: c.app, container: c.container, ...run(c) })),
      ...jobs.map((c) => ({ id: c.id, app: c.job, container: c.container, job: true as const, ...run(c) })),
    ];
  }

  /** Publishes every line waiting now (`handing`: told each batch's seq before it is handed to the sink). */
  private sendNow(handing?: (seq: number) => void): void {
    if (this.closed || this.pipeline.dueIn() === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.send(true, handing);
  }

  /** Resolves once a look (sync) that began after this call is over. */
  private refreshed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.lookWaiters.push(resolve);
      this.refresh();
    });
  }

  /**
   * Whether a container's log has been read to its end: no follow open, and
   * its last run read once more after it stopped (sync), or its log cannot be
   * read. One no look lists any more (`looked`) is gone, and so is its log.
   */
  private readToEnd(id: string, looked: boolean): boolean {
    const f = this.follows.get(id);
    if (!f) return looked;
    if (f.stop) return false;
    return f.unreadable === true || (f.run !== undefined && f.drained === f.run);
  }

  private tellSettled(seq: number): void {
    const waiting = this.unsettled.get(seq);
    if (!waiting) return;
    this.unsettled.delete(seq);
    waiting.tell();
  }

  private follow(id: string, f: Follow, startedAt: string): void {
    let since = f.lastNanos;
    if (since === undefined && !this.resumed) {
      const started = timestampNanos(startedAt);
      since = started === undefined ? this.startNanos : maxOf(started - START_MARGIN_NS, this.startNanos);
    }
    // A container the ledger has not seen yet starts there, so the next agent knows where this one began.
    this.ledger.begin(id, { nanos: since ?? 0n, at: f.atLast });
    f.run = startedAt;
    const log = this.log.child({ app: f.app, container: f.container, containerId: id.slice(0, 12) });
    log.debug({ since: since === undefined ? 'first line' : formatNanos(since) }, 'following container logs');
    // The engine's `since` is inclusive: a resumed follow first replays the
    // lines stamped with the last timestamp seen, which were sent already.
    const resumeAt = f.lastNanos;
    let replayed = f.atLast;
    // Rotation past the cursor shows as the cursor's own lines missing: the first line is already past it.
    const followedAt = BigInt(Math.floor(this.now())) * 1_000_000n;
    let sample: { entries: LogEntry[]; first: bigint; last: bigint; timer: NodeJS.Timeout } | undefined;
    const endSample = () => {
      if (!sample || resumeAt === undefined) return;
      const { entries, first, last, timer } = sample;
      sample = undefined;
      clearTimeout(timer);
      const lost = estimateLostToRotation(resumeAt, { count: entries.length, firstNanos: first, lastNanos: last });
      log.warn(
        { lost, shippedUpTo: formatNanos(resumeAt), oldestHeld: formatNanos(first) },
        "the engine rotated this container's log past the last line shipped",
      );
      this.pipeline.pushSystem(f.app, f.container, entries[0]?.ts ?? formatNanos(first), rotationMarkerText(lost), f.origin);
      for (const entry of entries) accept(entry);
    };
    const onLine = (entry: LogEntry) => {
      const ts = timestampNanos(entry.ts);
      if (sample) {
        if (ts !== undefined && ts < followedAt && sample.entries.length < ROTATION_SAMPLE_LINES) {
          sample.entries.push(entry);
          sample.last = ts;
          return;
        }
        endSample();
      } else if (ts !== undefined && resumeAt !== undefined && replayed > 0 && ts > resumeAt) {
        replayed = 0;
        sample = { entries: [entry], first: ts, last: ts, timer: setTimeout(endSample, ROTATION_SAMPLE_MS) };
        sample.timer.unref?.();
        return;
      }
      accept(entry);
    };
    const accept = (entry: LogEntry) => {
      const ts = timestampNanos(entry.ts);
      if (ts !== undefined) {
        if (resumeAt !== undefined && ts <= resumeAt && replayed > 0) {
          if (ts === resumeAt) replayed--;
          return;
        }
        replayed = 0;
        let inOrder = true;
        if (f.lastNanos === undefined || ts > f.lastNanos) {
          f.lastNanos = ts;
          f.atLast = 1;
        } else if (ts === f.lastNanos) {
          f.atLast++;
        } else {
          inOrder = false;
        }
        // A line stamped before the last one (stdout and stderr are stamped apart) has no position a follow could resume after.
        this.pipeline.push(f.app, f.container, entry, inOrder ? { id, position: { nanos: ts, at: f.atLast } } : undefined, f.origin);
      } else {
        this.pipeline.push(f.app, f.container, entry, undefined, f.origin);
      }
      this.schedule();
    };
    let ended: () => void = () => undefined;
    f.ended = new Promise((resolve) => {
      ended = resolve;
    });
    const onEnd = (err?: Error) => {
      endSample();
      delete f.stop;
      delete f.ended;
      ended();
      if (!err) {
        log.debug({}, 'container log stream ended');
        return;
      }
      if (/does not support reading|configured logging driver/i.test(err.message)) {
        f.unreadable = true;
        log.warn({ err: err.message }, "the container's logging driver cannot be read; its logs are not collected");
      } else {
        // Tried again on the next refresh (engine event or resync), from the last line seen.
        delete f.run;
        log.warn({ err: err.message }, 'following container logs failed');
      }
    };
    const options = { maxLineBytes: this.options.lineMaxBytes, ...(since !== undefined ? { since: formatNanos(since) } : {}) };
    const stop = this.options.runtime.followLogs(id, options, onLine, onEnd);
    f.stop = () => {
      if (sample) clearTimeout(sample.timer);
      sample = undefined;
      stop();
      ended();
    };
  }

  /** Drops the armed flush timer and arms it for the window as it is now. */
  private rearm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.schedule();
  }

  /** Arms the flush timer for when the next batch is due (called for every line, so the common case returns at once). */
  private schedule(): void {
    if (this.closed) return;
    if (this.timer && (this.timerAt <= this.now() || this.pipeline.bufferedBytes < this.options.batchBytes)) return;
    const due = this.pipeline.dueIn();
    if (due === undefined) return;
    const at = this.now() + due;
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.send(false);
    }, due);
  }

  /** Publishes every batch that is due (with `all`, everything) while the link takes them. */
  private send(all: boolean, handing?: (seq: number) => void): void {
    const { sink } = this.options;
    const batches: LogBatch[] = [];
    for (;;) {
      const due = this.pipeline.dueIn();
      if (due === undefined || (due > 0 && !all) || !sink.canSendLogs) break;
      const lines = this.pipeline.takeBatch();
      if (lines.length === 0) break;
      const batch = { seq: this.options.nextSeq(), lines };
      this.ledger.handed(batch.seq, rangesOf(this.pipeline.sourcesOf(lines)));
      batches.push(batch);
    }
    // The record first: a batch the hub may have must never be unknown to the next agent.
    if (batches.length > 0 && this.options.ledgerFile) this.save();
    for (const [i, batch] of batches.entries()) {
      handing?.(batch.seq);
      if (!sink.publishLogs(batch)) {
        // canSendLogs said yes a moment ago: only a link closing under us gets here.
        for (const lost of batches.slice(i)) {
          this.lost += lost.lines.length;
          this.ledger.settled(lost.seq);
          this.tellSettled(lost.seq);
        }
        break;
      }
    }
    if (this.closed) return;
    if (this.pipeline.dueIn() === 0) {
      // Due but the link is down or has too many batches in flight: look again
      // a batch interval later (the buffer bounds what piles up meanwhile).
      this.timerAt = this.now() + this.pipeline.batchMs;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.send(false);
      }, this.pipeline.batchMs);
      return;
    }
    this.schedule();
  }

  /** Sends the batches a previous agent recorded but did not see settled, read again from the engine, under their seqs. */
  private async replay(replays: Replay[]): Promise<void> {
    let containers: Followed[];
    try {
      containers = await this.list();
    } catch (err) {
      this.log.warn({ err: (err as Error).message, batches: replays.length }, 'cannot list containers to send recorded log batches again');
      return;
    }
    const byId = new Map(containers.map((c) => [c.id, c]));
    let sent = 0;
    let lines = 0;
    for (const replay of replays) {
      const batch = await readRecordedBatch(this.options.runtime, byId, replay, this.options.lineMaxBytes);
      if (this.closed) return;
      if (batch.length === 0 || !this.options.sink.canSendLogs || !this.options.sink.publishLogs({ seq: replay.seq, lines: batch })) {
        // Gone with its container (or the link is closing): nothing left to send.
        this.ledger.settled(replay.seq);
        continue;
      }
      sent++;
      lines += batch.length;
    }
    this.log.info(
      { batches: sent, lines, recorded: replays.length },
      'sent recorded log batches again (the hub keeps one copy of each seq)',
    );
  }

  /** `persist` at a clean stop (outlives a reboot); otherwise a save that outlives the agent process. */
  private save(how: 'save' | 'persist' = 'save'): void {
    try {
      const file = this.options.ledgerFile;
      if (how === 'persist') file?.persist(this.ledger.toJson());
      else file?.save(this.ledger.toJson());
      this.saveFailed = false;
      this.saved = true;
    } catch (err) {
      // Logs still flow; only the next agent's resume point is at risk.
      if (!this.saveFailed) this.log.warn({ err: (err as Error).message }, 'cannot save the log ledger');
      this.saveFailed = true;
    }
  }
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
