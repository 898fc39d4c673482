/**
 * Follows the stdout and stderr of every managed container and publishes the
 * lines in batches on `…/logs`, through the pure `LogPipeline`.
 *
 * Invariants:
 * - Each run of each container (a container id and its StartedAt) is followed
 *   to its end, and read once more after it stopped: a new container or a
 *   restart starts a follow, a removed container stops it. `refresh` re-observes and is cheap to call
 *   on every engine event; calls coalesce.
 * - Nothing is sent twice within one agent's life: a follow resumes from the
 *   last timestamp seen for that container, skipping the lines it replays
 *   (the engine's `since` is inclusive; lines may share a timestamp).
 * - Memory does not grow with what containers write: per stream the engine's
 *   reader holds at most one partial line (capped), and everything else
 *   waits in the pipeline's buffer, bounded in bytes. When the link is down
 *   or slow (`canSendLogs` false) nothing is taken from the buffer, so the
 *   lines wait there and, once it is full, are dropped and counted.
 */
import type { Logger } from 'pino';
import type { LogBatch } from '../../../shared/index.js';
import { formatNanos, timestampNanos } from '../../runtime/log-time.js';
import type { ContainerRuntime, LogEntry, ManagedContainer } from '../../runtime/runtime.js';
import { LogPipeline, type LogPipelineOptions } from './log-pipeline.js';

/** Where batches go: the agent's MQTT link. */
export interface LogSink {
  readonly canSendLogs: boolean;
  publishLogs(batch: LogBatch): boolean;
}

export interface LogCollectorOptions extends Omit<LogPipelineOptions, 'now'> {
  runtime: ContainerRuntime;
  sink: LogSink;
  /** The device's telemetry seq (shared with metric samples), one per batch. */
  nextSeq: () => number;
  logger: Logger;
  now?: () => number;
}

/**
 * A process can write its first line a moment before the engine records
 * StartedAt; following a new run from a second earlier keeps that line.
 */
const START_MARGIN_NS = 1_000_000_000n;

interface Follow {
  app: string;
  container: string;
  /** StartedAt of the run followed last. */
  run?: string;
  /** StartedAt of the stopped run whose tail was read once more (see `sync`). */
  drained?: string;
  /** Set while a follow is open. */
  stop?: () => void;
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
   * Containers already running when the agent starts are followed from its
   * start, not from their beginning: the previous agent sent what they wrote
   * before (the hub has no way to tell a resent line from a new one), so the
   * only gap is the agent's own downtime, which is preferable to duplicating
   * every running app's log at every agent restart or upgrade.
   */
  private readonly startNanos: bigint;
  private refreshing = false;
  private refreshAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private lost = 0;
  private closed = false;

  constructor(private readonly options: LogCollectorOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger;
    this.startNanos = BigInt(Math.floor(this.now())) * 1_000_000n;
    this.pipeline = new LogPipeline({ ...options, now: this.now });
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

  start(): void {
    this.refresh();
  }

  /** Re-observes the managed containers: follows new runs, stops following removed containers. */
  refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    void this.sync().finally(() => {
      this.refreshing = false;
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.refresh();
      }
    });
  }

  /** Stops every follow and sends what the link takes now. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const f of this.follows.values()) f.stop?.();
    this.follows.clear();
    this.send(true);
  }

  private async sync(): Promise<void> {
    let containers: ManagedContainer[];
    try {
      containers = await this.options.runtime.listManaged();
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
      apps.add(c.app);
      let f = this.follows.get(c.id);
      if (!f) {
        f = { app: c.app, container: c.container, atLast: 0 };
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
    for (const [id, f] of this.follows) {
      if (present.has(id)) continue;
      f.stop?.();
      this.follows.delete(id);
      if (!apps.has(f.app)) this.pipeline.forgetApp(f.app);
    }
  }

  private follow(id: string, f: Follow, startedAt: string): void {
    let since = f.lastNanos;
    if (since === undefined) {
      const started = timestampNanos(startedAt);
      since = started === undefined ? this.startNanos : maxOf(started - START_MARGIN_NS, this.startNanos);
    }
    f.run = startedAt;
    const log = this.log.child({ app: f.app, container: f.container, containerId: id.slice(0, 12) });
    log.debug({ since: formatNanos(since) }, 'following container logs');
    // The engine's `since` is inclusive: a resumed follow first replays the
    // lines stamped with the last timestamp seen, which were sent already.
    const resumeAt = f.lastNanos;
    let replayed = f.atLast;
    const onLine = (entry: LogEntry) => {
      const ts = timestampNanos(entry.ts);
      if (ts !== undefined) {
        if (resumeAt !== undefined && ts <= resumeAt && replayed > 0) {
          if (ts === resumeAt) replayed--;
          return;
        }
        replayed = 0;
        if (f.lastNanos === undefined || ts > f.lastNanos) {
          f.lastNanos = ts;
          f.atLast = 1;
        } else if (ts === f.lastNanos) {
          f.atLast++;
        }
      }
      this.pipeline.push(f.app, f.container, entry);
      this.schedule();
    };
    const onEnd = (err?: Error) => {
      delete f.stop;
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
    f.stop = this.options.runtime.followLogs(id, { since: formatNanos(since), maxLineBytes: this.options.lineMaxBytes }, onLine, onEnd);
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
  private send(all: boolean): void {
    const { sink } = this.options;
    for (;;) {
      const due = this.pipeline.dueIn();
      if (due === undefined || (due > 0 && !all) || !sink.canSendLogs) break;
      const lines = this.pipeline.takeBatch();
      if (lines.length === 0) break;
      if (!sink.publishLogs({ seq: this.options.nextSeq(), lines })) {
        // canSendLogs said yes a moment ago: only a link closing under us gets here.
        this.lost += lines.length;
        break;
      }
    }
    if (this.closed) return;
    if (this.pipeline.dueIn() === 0) {
      // Due but the link is down or has too many batches in flight: look again
      // a batch interval later (the buffer bounds what piles up meanwhile).
      this.timerAt = this.now() + this.options.batchMs;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.send(false);
      }, this.options.batchMs);
      return;
    }
    this.schedule();
  }
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
