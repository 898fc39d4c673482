/**
 * Runs the jobs of the desired state on the device: observe (the job
 * containers, by their labels) → decide per execution (decide.ts) → act, and
 * look again. The state report shows each execution (report.ts); every
 * transition is an event (events.ts).
 *
 * Invariants:
 * - One look at a time: `trigger()` while a look runs marks it dirty, so one
 *   more follows. A look never waits for a move: each move (a launch with its
 *   pull, a stop, reading the output) runs on its own, at most one per
 *   execution, and ends in another look; so a long pull never delays another
 *   execution's timeout, and a cancel can abort the pull.
 * - An attempt is recorded as started, durably, before its first container
 *   is created (job-store.ts): after a crash the agent finds that attempt's
 *   containers by their labels, or reports them gone; it never creates them
 *   again. A launch aborted before that record leaves nothing behind; one
 *   taken back because its image went away before the create removes the
 *   containers it created (never started) before the record goes back.
 * - An attempt's end is recorded, and so reported, only after its
 *   containers' lines were sent (JobLogs.flush, for at most FLUSH_WAIT_MS):
 *   whoever sees the execution final can read its whole output.
 * - Each attempt of a job with retries begins its containers' logs with a
 *   `system` line, `--- attempt 2 of 3 (container task) ---`, queued before
 *   they start and so ahead of their lines: `flotilla logs --job` shows
 *   which attempt wrote what.
 * - A pull that fails for the link uses up no attempt (pull-failure.ts).
 * - An image counts as in use (images(), the app reconciler's image
 *   collection asks) from the moment the desired state names an execution
 *   that needs it, queued, pulling or running, whether or not this agent
 *   pulled it, until the execution is final and its containers are gone.
 * - The agent stopping leaves job containers running, as it leaves apps
 *   running: the next agent adopts them, their timeout counted from their
 *   StartedAt.
 * - Nothing is stopped or canceled for not being named before a desired
 *   state is known.
 */
import type { Logger } from 'pino';
import { type DesiredJob, type JobExecutionReport, MAX_REPORTED_OUTPUT_LINE, MAX_REPORTED_OUTPUT_LINES } from '../../shared/index.js';
import { Signal } from '../../shared/signal.js';
import { enginePulls, type ImageSource } from '../images/image-source.js';
import { isNotFound, RuntimeError } from '../runtime/errors.js';
import type { ContainerRuntime, JobContainer } from '../runtime/runtime.js';
import { decideExecution, type JobDecision } from './decide.js';
import type { JobEvent } from './events.js';
import type { JobRecordStore } from './job-store.js';
import { type ContainerOutput, reportedOutput } from './output.js';
import { afterFailedPull, type PullRetryPolicy } from './pull-failure.js';
import type { AttemptEnding, JobRecord } from './record.js';
import { executionReports } from './report.js';

/** What the runner needs of the container runtime. */
export type JobRuntime = Pick<ContainerRuntime, 'hasImage' | 'pull' | 'start' | 'stop' | 'remove'> &
  Required<Pick<ContainerRuntime, 'listJobContainers' | 'createJobContainer' | 'tailLogs'>>;

/** What the runner asks of the log pipeline (telemetry/logs/log-collector.ts). */
export interface JobLogs {
  /** Queues a `system` line of a job's container now, ahead of anything it writes after. */
  jobSystemLine(job: string, container: string, text: string): void;
  /** Reads these stopped containers' logs to their end and sends every line waiting; resolves once they left. */
  flush(ids: readonly string[]): Promise<void>;
}

export interface JobRunnerOptions {
  runtime: JobRuntime;
  store: JobRecordStore;
  deviceId: string;
  /** See CreateRequest.namePrefix. */
  namePrefix?: string;
  /** Seconds a container gets between SIGTERM and SIGKILL when a job is canceled. */
  stopTimeoutSeconds: number;
  logger: Logger;
  event: (event: JobEvent) => void;
  /** An image the runner pulled (the app reconciler's image collection removes it once nothing needs it). */
  onPulled?: (image: string) => void;
  /** Where images come from (image-puller.ts); default the engine's pull. */
  images?: ImageSource;
  /** How a pull that failed for the link is tried again (pull-failure.ts PULL_RETRY). */
  pullRetry?: PullRetryPolicy;
  /** The log pipeline: an attempt's lines leave before its end is reported. */
  logs?: JobLogs;
  now?: () => number;
}

/** How soon the runner looks again after the engine could not be reached, or a record could not be written. */
const RETRY_MS = 5_000;
/**
 * The longest wait for a timer (a window, a retry, a timeout): a timer runs
 * on the monotonic clock, so a wall clock set meanwhile (by NTP after a boot)
 * is caught up with at the next look rather than missed by hours.
 */
const MAX_WAKE_MS = 15 * 60_000;
/**
 * The longest an attempt's end waits for its lines to leave: a link that
 * takes longer (a hub slow to acknowledge) delays the output, never the
 * report, and the lines follow.
 */
const FLUSH_WAIT_MS = 5_000;

/** What a decision's handler knows of the execution. */
interface ActContext {
  execution: string;
  desired: DesiredJob | undefined;
  now: number;
  log: Logger;
}

type Handlers = { [A in JobDecision['action']]: (decision: Extract<JobDecision, { action: A }>, ctx: ActContext) => number | undefined };

interface Move {
  kind: JobDecision['action'];
  controller: AbortController;
  done: Promise<void>;
}

export class JobRunner {
  /** An execution's report may have changed (the state report goes out again). */
  readonly changed: Signal<void>;
  private desired: Map<string, DesiredJob> | undefined;
  private readonly records = new Map<string, JobRecord>();
  private readonly moves = new Map<string, Move>();
  private readonly preparing = new Map<string, string>();
  /** Executions whose record could not be written: not launched before this time. */
  private readonly holds = new Map<string, number>();
  /**
   * Executions whose move ended since the current look listed the containers:
   * that list may predate what the move did (a launch's containers), so they
   * are left to the look that follows.
   */
  private readonly movedDuringLook = new Set<string>();
  /** The attempt whose launch was taken back (retract), by execution; forgotten with its record. */
  private readonly retracted = new Map<string, number>();
  /** Containers seen in the last look, by id (their names, for the output). */
  private observed = new Map<string, JobContainer>();
  private looking = false;
  private dirty = false;
  private closed = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: JobRunnerOptions) {
    this.log = options.logger.child({ component: 'jobs' });
    this.now = options.now ?? Date.now;
    this.changed = new Signal((err) => this.log.error({ err }, 'reporting a job change failed'));
    for (const record of options.store.load()) this.records.set(record.execution, record);
  }

  /** The jobs of the accepted desired document (none: an empty list). */
  setDesired(jobs: readonly DesiredJob[]): void {
    this.desired = new Map(jobs.map((job) => [job.execution, job]));
    this.prune();
    this.changed.emit();
    this.trigger();
  }

  trigger(): void {
    if (this.closed) return;
    this.dirty = true;
    if (!this.looking) void this.loop();
  }

  /** The state report's `jobs`: empty until a desired state is known. */
  reports(): JobExecutionReport[] {
    if (!this.desired) return [];
    return executionReports({ desired: [...this.desired.values()], records: this.records, preparing: this.preparing });
  }

  /** Images a job still needs: of executions not final, and of job containers that exist. */
  images(): ReadonlySet<string> {
    const images = new Set<string>();
    for (const job of this.desired?.values() ?? []) {
      if (this.isFinal(job.execution)) continue;
      for (const spec of job.containers) images.add(spec.image);
    }
    for (const c of this.observed.values()) images.add(c.image);
    return images;
  }

  /** Resolves once no look and no move runs (tests, an orderly stop). */
  async idle(): Promise<void> {
    while (this.looking || this.dirty || this.moves.size > 0) {
      await Promise.all([...this.moves.values()].map((m) => m.done));
      if (this.looking || this.dirty) await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Aborts pulls in progress and stops looking; job containers keep running (see the header). */
  async close(waitMs = 5_000): Promise<void> {
    this.closed = true;
    clearTimeout(this.wakeTimer);
    for (const move of this.moves.values()) move.controller.abort(new Error('agent stopping'));
    const moves = Promise.all([...this.moves.values()].map((m) => m.done));
    await Promise.race([moves, new Promise((resolve) => setTimeout(resolve, waitMs).unref())]);
  }

  private async loop(): Promise<void> {
    this.looking = true;
    try {
      while (this.dirty && !this.closed) {
        this.dirty = false;
        await this.look();
      }
    } catch (err) {
      this.log.error({ err }, 'looking at jobs failed unexpectedly');
      this.wakeIn(RETRY_MS);
    } finally {
      this.looking = false;
    }
  }

  private async look(): Promise<void> {
    this.movedDuringLook.clear();
    let containers: JobContainer[];
    try {
      containers = await this.options.runtime.listJobContainers();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot list job containers; will look again');
      this.wakeIn(RETRY_MS);
      return;
    }
    if (this.closed) return;
    this.observed = new Map(containers.map((c) => [c.id, c]));
    const byExecution = new Map<string, JobContainer[]>();
    for (const c of containers) byExecution.set(c.execution, [...(byExecution.get(c.execution) ?? []), c]);
    const executions = new Set([...(this.desired?.keys() ?? []), ...byExecution.keys()]);
    for (const record of this.records.values()) if (!this.isFinal(record.execution)) executions.add(record.execution);

    const now = this.now();
    let wakeAt: number | undefined;
    for (const execution of executions) {
      const desired = this.desired?.get(execution);
      if (this.movedDuringLook.has(execution)) continue;
      const move = this.moves.get(execution);
      if (move) {
        // A launch still pulling stops for a cancel, or for a job deleted at the hub: nothing of it runs yet.
        if (move.kind === 'launch' && (desired?.cancel || (this.desired && !desired))) move.controller.abort(new Error('canceled'));
        continue;
      }
      const decision = decideExecution({
        execution,
        desired,
        desiredKnown: this.desired !== undefined,
        record: this.records.get(execution),
        containers: byExecution.get(execution) ?? [],
        now,
      });
      const at = this.act(execution, desired, decision, now);
      if (at !== undefined) wakeAt = Math.min(wakeAt ?? at, at);
    }
    if (wakeAt !== undefined) this.wakeIn(Math.max(0, wakeAt - this.now()));
  }

  /** Carries out one decision; returns when to look again, if a time matters. */
  private act(execution: string, desired: DesiredJob | undefined, decision: JobDecision, now: number): number | undefined {
    const log = this.log.child({ job: desired?.name ?? this.records.get(execution)?.job, execution });
    const handle = this.handlers[decision.action] as (decision: JobDecision, ctx: ActContext) => number | undefined;
    return handle(decision, { execution, desired, now, log });
  }

  /** One handler per decision (a decision without one does not compile); each returns when to look again, if a time matters. */
  private readonly handlers: Handlers = {
    none: (decision) => decision.wakeAt,
    record: (decision, { log }) => {
      log.info({ state: decision.record.state }, decision.reason);
      if (this.save(decision.record)) {
        if (decision.event) this.options.event(decision.event);
        // Looked at again at once: what follows an adoption or a wait depends on the new record.
        this.dirty = true;
      }
      return decision.wakeAt;
    },
    launch: (decision, { execution, desired, now, log }) => {
      if (!desired) return undefined;
      const hold = this.holds.get(execution);
      if (hold !== undefined && hold > now) return hold;
      log.info({ attempt: decision.attempt }, `launching attempt ${decision.attempt}: ${decision.reason}`);
      this.begin(execution, 'launch', (signal) => this.launch(desired, decision.attempt, signal, log));
      return undefined;
    },
    start: (decision, { execution, log }) => {
      log.info({ containers: decision.ids.length }, decision.reason);
      this.begin(execution, 'start', () => this.startAll(decision.ids, log));
      return undefined;
    },
    stop: (decision, { execution, log }) => {
      log.info({ kill: decision.kill }, `stopping: ${decision.reason}`);
      this.begin(execution, 'stop', async () => {
        // The ending first: an agent stopped during the stop still knows what the attempt ends as.
        if (decision.record && !this.save(decision.record)) return;
        await this.stopAll(decision.ids, decision.kill, log);
      });
      return undefined;
    },
    finish: (decision, { execution, log }) => {
      this.begin(execution, 'finish', () => this.finish(decision, log));
      return undefined;
    },
    remove: (decision, { execution, log }) => {
      log.info({ containers: decision.ids.length }, `removing its containers: ${decision.reason}`);
      this.begin(execution, 'remove', () => this.removeAll(decision.ids, log));
      return undefined;
    },
  };

  private begin(execution: string, kind: JobDecision['action'], run: (signal: AbortSignal) => Promise<void>): void {
    const controller = new AbortController();
    const done = run(controller.signal)
      .catch((err: unknown) => this.log.error({ execution, move: kind, err }, 'a job move failed unexpectedly'))
      .finally(() => {
        this.moves.delete(execution);
        this.movedDuringLook.add(execution);
        this.trigger();
      });
    this.moves.set(execution, { kind, controller, done });
  }

  /**
   * Pulls what is missing, records the attempt as started, then creates and
   * starts its containers. A pull that fails uses up no attempt unless no
   * retry can mend it (pull-failure.ts). A container the engine will not
   * create ends the attempt as `failed` with the engine's words (and a retry
   * may follow), except for an image removed since it was looked at, which
   * is pulled again (retract). A start the engine refuses leaves the
   * container created with the reason, which the next look reads.
   */
  private async launch(desired: DesiredJob, attempt: number, signal: AbortSignal, log: Logger): Promise<void> {
    const { runtime } = this.options;
    const execution = desired.execution;
    const before = this.records.get(execution);
    const record: JobRecord = {
      execution,
      job: desired.name,
      attempt,
      state: 'running',
      startedAt: new Date(this.now()).toISOString(),
    };
    for (const spec of desired.containers) {
      let present: boolean;
      try {
        present = await runtime.hasImage(spec.image);
      } catch (err) {
        // The engine out of reach is no fault of the job's: nothing is recorded, and it is looked at again.
        log.warn({ attempt, image: spec.image, err: (err as Error).message }, 'cannot ask the engine for the image; will look again');
        this.holds.set(execution, this.now() + RETRY_MS);
        return;
      }
      if (present) continue;
      try {
        this.prepare(execution, `pulling ${spec.image} for attempt ${attempt}`);
        const images = this.options.images ?? enginePulls(runtime);
        await images.pull({ image: spec.image, ...(spec.auth ? { auth: spec.auth } : {}), owner: { job: desired.name }, signal });
        this.options.onPulled?.(spec.image);
      } catch (err) {
        if (signal.aborted) {
          log.info({ attempt }, 'launch aborted before any container was created');
          return;
        }
        const outcome = afterFailedPull({
          desired,
          record: before,
          attempt,
          container: spec.name,
          image: spec.image,
          error: err,
          now: this.now(),
          ...(this.options.pullRetry ? { policy: this.options.pullRetry } : {}),
        });
        log.warn({ attempt, image: spec.image, state: outcome.record.state, nextAttemptAt: outcome.record.nextAttemptAt }, outcome.reason);
        if (this.save(outcome.record) && outcome.event) this.options.event(outcome.event);
        return;
      } finally {
        this.prepare(execution, undefined);
      }
    }
    if (signal.aborted) return;
    // A pull that outlasted the deadline: the next look ends the execution as the deadline says, not as earlier failed pulls did.
    if (this.now() >= Date.parse(desired.deadline)) {
      if (before?.failedPull) {
        const { failedPull: _pull, ...pulled } = before;
        this.save(pulled);
      }
      return;
    }
    if (!this.save(record)) {
      // Without the record a crash could start this attempt twice: not before it can be written.
      this.holds.set(execution, this.now() + RETRY_MS);
      return;
    }
    this.holds.delete(execution);
    const ids: string[] = [];
    for (const spec of desired.containers) {
      try {
        ids.push(
          await runtime.createJobContainer({
            deviceId: this.options.deviceId,
            namePrefix: this.options.namePrefix ?? '',
            job: desired.name,
            execution,
            attempt,
            spec,
          }),
        );
      } catch (err) {
        if (isNotFound(err) && (await this.retract(desired, attempt, before, ids, spec.image, log))) return;
        const ending: AttemptEnding = { state: 'failed', container: spec.name, message: (err as Error).message };
        log.warn({ attempt, container: spec.name, err: ending.message }, 'the engine refused a job container');
        // Those created already are left as they are: the next look finishes the attempt with this ending.
        this.save({ ...record, ending });
        return;
      }
    }
    const total = (desired.retries?.limit ?? 0) + 1;
    if (total > 1) {
      for (const spec of desired.containers) {
        this.options.logs?.jobSystemLine(desired.name, spec.name, `--- attempt ${attempt} of ${total} (container ${spec.name}) ---`);
      }
    }
    let started = true;
    for (const id of ids) {
      try {
        await runtime.start(id);
      } catch (err) {
        started = false;
        log.warn({ attempt, containerId: id.slice(0, 12), err: (err as Error).message }, 'a job container did not start');
      }
    }
    if (!started) return;
    const containers = desired.containers.map((c) => c.name).join(', ');
    this.options.event({
      type: 'job-started',
      app: desired.name,
      message: `attempt ${attempt}${total > 1 ? ` of ${total}` : ''} started (${containers})`,
    });
  }

  /**
   * Takes back a launch whose image went away between the look that found it
   * and the create (removed by something that did not know this job needs
   * it): the containers created so far, never started, are removed and the
   * record is put back as it was, so the next look pulls the image and
   * launches the same attempt; the attempt was never under way. False (the
   * attempt then fails as for any refused create) when a removal fails.
   */
  private async retract(
    desired: DesiredJob,
    attempt: number,
    before: JobRecord | undefined,
    ids: readonly string[],
    image: string,
    log: Logger,
  ): Promise<boolean> {
    // Once per attempt: an image that looks absent again after its pull is not why the engine refuses.
    if (this.retracted.get(desired.execution) === attempt || (await this.options.runtime.hasImage(image).catch(() => true))) return false;
    this.retracted.set(desired.execution, attempt);
    for (const id of ids) {
      try {
        await this.options.runtime.remove(id);
      } catch (err) {
        log.warn(
          { attempt, containerId: id.slice(0, 12), err: (err as Error).message },
          'cannot remove a container of a launch taken back',
        );
        return false;
      }
    }
    const message = `${image} was removed before attempt ${attempt}'s containers were created; pulling it again`;
    log.warn({ attempt, image }, message);
    const queued: JobRecord = before ?? { execution: desired.execution, job: desired.name, attempt: attempt - 1, state: 'queued' };
    this.save({ ...queued, message });
    return true;
  }

  private async startAll(ids: readonly string[], log: Logger): Promise<void> {
    for (const id of ids) {
      await this.options.runtime
        .start(id)
        .catch((err: Error) => log.warn({ containerId: id.slice(0, 12), err: err.message }, 'start failed'));
    }
  }

  private async stopAll(ids: readonly string[], kill: boolean, log: Logger): Promise<void> {
    const timeout = kill ? 0 : this.options.stopTimeoutSeconds;
    await Promise.all(
      ids.map((id) =>
        // Tried again by the next look while the container still runs.
        this.options.runtime
          .stop(id, timeout)
          .catch((err: Error) => log.warn({ containerId: id.slice(0, 12), err: err.message }, 'stop failed')),
      ),
    );
  }

  private async finish(decision: Extract<JobDecision, { action: 'finish' }>, log: Logger): Promise<void> {
    const outputs: ContainerOutput[] = [];
    for (const id of decision.outputOf) {
      const container = this.observed.get(id)?.container ?? id.slice(0, 12);
      try {
        outputs.push({ container, entries: await this.options.runtime.tailLogs(id, MAX_REPORTED_OUTPUT_LINES, MAX_REPORTED_OUTPUT_LINE) });
      } catch (err) {
        log.warn({ container, err: (err as Error).message }, "cannot read a job container's last lines; reported without them");
      }
    }
    const output = reportedOutput(outputs);
    const record = { ...decision.record, ...(output.length > 0 ? { output } : {}) };
    await this.flushLogs(decision.outputOf, log);
    log.info({ state: record.state, attempt: record.attempt, exitCode: record.exitCode }, decision.reason);
    if (!this.save(record)) return;
    this.options.event(decision.event);
    this.prune();
  }

  /** Sends the lines of an attempt's containers before its end is recorded (and so reported); bounded by FLUSH_WAIT_MS. */
  private async flushLogs(ids: readonly string[], log: Logger): Promise<void> {
    const { logs } = this.options;
    if (!logs || ids.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const flushed = logs.flush(ids).then(
      () => true,
      (err: Error) => {
        log.warn({ err: err.message }, "cannot send a job's last lines before its end; reported without waiting for them");
        return true;
      },
    );
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), FLUSH_WAIT_MS);
    });
    const done = await Promise.race([flushed, late]);
    clearTimeout(timer);
    if (!done) log.warn({ waitedMs: FLUSH_WAIT_MS }, "a job's last lines have not left yet; its end is reported, and they follow");
  }

  private async removeAll(ids: readonly string[], log: Logger): Promise<void> {
    for (const id of ids) {
      await this.options.runtime
        .remove(id)
        .catch((err: Error) => log.warn({ containerId: id.slice(0, 12), err: err.message }, 'remove failed'));
    }
  }

  /** Writes a record through; false (logged) when the store refuses it. */
  private save(record: JobRecord): boolean {
    try {
      this.options.store.save(record);
    } catch (err) {
      this.log.error({ execution: record.execution, err: (err as Error).message }, 'cannot write the job record');
      this.wakeIn(RETRY_MS);
      return false;
    }
    this.records.set(record.execution, record);
    this.changed.emit();
    return true;
  }

  private prepare(execution: string, message: string | undefined): void {
    if (message === undefined) this.preparing.delete(execution);
    else this.preparing.set(execution, message);
    this.changed.emit();
  }

  private prune(): void {
    if (!this.desired) return;
    const named = new Set(this.desired.keys());
    try {
      this.options.store.prune(named, this.now());
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot prune the job records');
      return;
    }
    // The store's view is the truth for what is kept; the output of those no longer named goes with it.
    this.records.clear();
    for (const record of this.options.store.load()) this.records.set(record.execution, record);
    for (const execution of this.retracted.keys()) if (!named.has(execution)) this.retracted.delete(execution);
  }

  private isFinal(execution: string): boolean {
    const state = this.records.get(execution)?.state;
    return state !== undefined && state !== 'queued' && state !== 'running';
  }

  private wakeIn(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.trigger(), Math.min(ms, MAX_WAKE_MS));
    this.wakeTimer.unref();
  }
}

/** The runtime as the runner needs it; one without job support makes every attempt fail, saying why. */
export function jobRuntimeOf(runtime: ContainerRuntime): JobRuntime {
  const { listJobContainers, createJobContainer, tailLogs } = runtime;
  if (listJobContainers && createJobContainer && tailLogs) {
    return {
      hasImage: (image) => runtime.hasImage(image),
      pull: (image, auth, signal) => runtime.pull(image, auth, signal),
      start: (id) => runtime.start(id),
      stop: (id, timeout) => runtime.stop(id, timeout),
      remove: (id) => runtime.remove(id),
      listJobContainers: () => listJobContainers.call(runtime),
      createJobContainer: (request) => createJobContainer.call(runtime, request),
      tailLogs: (id, lines, max) => tailLogs.call(runtime, id, lines, max),
    };
  }
  const unsupported = new RuntimeError('engine', "this agent's container runtime does not run jobs");
  return {
    hasImage: async () => true,
    pull: async () => undefined,
    start: (id) => runtime.start(id),
    stop: (id, timeout) => runtime.stop(id, timeout),
    remove: (id) => runtime.remove(id),
    listJobContainers: async () => [],
    createJobContainer: async () => {
      throw unsupported;
    },
    tailLogs: async () => [],
  };
}
