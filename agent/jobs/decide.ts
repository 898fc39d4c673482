/**
 * The next move for one job execution, decided from what is observed, with
 * the reason an operator sees. Pure: the desired job, the agent's record of
 * the execution, its containers (found by their labels) and the time come in
 * as arguments (runner.ts observes them and acts), so every branch is a unit
 * test. One move per look: the runner looks again once it is done.
 *
 * The order of the checks is the order of precedence:
 * 1. A final execution never runs again: a container of it that still runs
 *    is stopped, and its containers are removed once the desired state no
 *    longer names it (until then they stay, for `docker logs`).
 * 2. Containers of an attempt the record does not know (a record lost with
 *    its file) are adopted: that attempt ran, and is watched, not repeated.
 * 3. A container of an attempt that is over and still runs is stopped.
 * 4. An execution the desired state cancels, or no longer names (the job was
 *    deleted at the hub), is stopped if it runs, then `canceled`. Before any
 *    desired state is known, nothing is stopped for not being named.
 * 5. A running attempt: an outcome decided already (a timeout, a cancel,
 *    another container's failure) waits for the containers to stop; a
 *    container gone fails the attempt (it is never started twice); one the
 *    engine could not start fails it with the engine's reason; created ones
 *    are started; the first non-zero exit fails it (the others are stopped);
 *    all exited 0 succeed it; past its timeout, counted from the containers'
 *    start, it is killed and `timed-out`. An attempt that failed or timed out
 *    is tried again as `retries` says, if the next one starts before the
 *    deadline.
 * 6. A queued one: past its deadline it expires, or ends as its last attempt
 *    did (naming the pull that kept failing, if one did); a retry, or a pull
 *    tried again (pull-failure.ts), waits for its time; outside its window it
 *    waits for the window; else the next attempt is launched.
 */
import {
  DEFAULT_JOB_TIMEOUT,
  type DesiredJob,
  describeWindow,
  FINAL_JOB_EXECUTION_STATES,
  parseDuration,
  retryDelayMs,
  windowState,
} from '../../shared/index.js';
import type { JobContainer } from '../runtime/runtime.js';
import { finalEvent, type JobEvent } from './events.js';
import type { AttemptEnding, JobRecord } from './record.js';

export interface ExecutionSituation {
  execution: string;
  /** The execution as the desired state names it; undefined when it does not (any more). */
  desired: DesiredJob | undefined;
  /** Whether a desired state is known at all (received or restored). */
  desiredKnown: boolean;
  record: JobRecord | undefined;
  /** The execution's containers, of every attempt. */
  containers: readonly JobContainer[];
  now: number;
}

export type JobDecision =
  /** Nothing to do; look again at `wakeAt` (a timeout, a retry, a window, a deadline) if nothing else happens first. */
  | { action: 'none'; reason: string; wakeAt?: number }
  /** Only the record changes (waiting for a window, expired, canceled before it started, adopted). */
  | { action: 'record'; reason: string; record: JobRecord; event?: JobEvent; wakeAt?: number }
  /** Pull what is missing, record the attempt as started, then create and start its containers. */
  | { action: 'launch'; reason: string; attempt: number }
  /** Containers of the running attempt that were created and never started. */
  | { action: 'start'; reason: string; ids: string[] }
  /** `record` (the attempt's ending) is written first, so a restart during the stop still knows why. */
  | { action: 'stop'; reason: string; ids: string[]; kill: boolean; record?: JobRecord }
  /** The attempt is over: the last lines of `outputOf` go into `record` (final, or queued for a retry). */
  | { action: 'finish'; reason: string; record: JobRecord; event: JobEvent; outputOf: string[] }
  | { action: 'remove'; reason: string; ids: string[] };

const RUNNING = new Set(['running', 'restarting', 'paused']);
const EXITED = new Set(['exited', 'dead']);

export function decideExecution(s: ExecutionSituation): JobDecision {
  const { desired, record, containers } = s;
  const running = containers.filter(isRunning);
  if (record && FINAL_JOB_EXECUTION_STATES.has(record.state)) {
    if (running.length > 0) return stop(running, false, `it is ${record.state}, yet a container of it runs`);
    if (!desired && s.desiredKnown && containers.length > 0) {
      return { action: 'remove', ids: idsOf(containers), reason: `${record.state} and no longer in the desired state` };
    }
    return { action: 'none', reason: `${record.state}` };
  }
  const latest = Math.max(0, ...containers.map((c) => c.attempt));
  if (latest > (record?.attempt ?? 0)) return adopt(s, latest);
  const over = running.filter((c) => record?.state !== 'running' || c.attempt !== record.attempt);
  if (over.length > 0) return stop(over, false, `attempt ${over[0]?.attempt} is over, yet a container of it runs`);
  if (!desired || desired.cancel) return cancel(s);
  if (record?.state === 'running') return decideAttempt(s, desired, record);
  return decideQueued(s, desired);
}

/** Attempt `attempt`'s containers exist but the record does not say it started: it did. */
function adopt(s: ExecutionSituation, attempt: number): JobDecision {
  const mine = s.containers.filter((c) => c.attempt === attempt);
  const job = s.desired?.name ?? s.record?.job ?? mine[0]?.job ?? s.execution;
  const started = earliestStart(mine);
  const record: JobRecord = {
    execution: s.execution,
    job,
    attempt,
    state: 'running',
    startedAt: new Date(started ?? s.now).toISOString(),
  };
  return {
    action: 'record',
    record,
    reason: `attempt ${attempt} found by its containers' labels: it ran, and is watched, not started again`,
  };
}

function cancel(s: ExecutionSituation): JobDecision {
  const { desired, record } = s;
  if (!desired && !s.desiredKnown) return { action: 'none', reason: 'no desired state is known yet' };
  const why = desired ? 'canceled at the hub' : 'no longer in the desired state (the job was deleted or canceled at the hub)';
  if (record?.state === 'running') {
    const mine = s.containers.filter((c) => c.attempt === record.attempt);
    const ending = record.ending ?? { state: 'canceled', message: `attempt ${record.attempt} stopped: ${why}` };
    const running = mine.filter(isRunning);
    if (running.length > 0) return stop(running, ending.state === 'timed-out', why, record.ending ? undefined : { ...record, ending });
    return finish(s, record, ending, mine);
  }
  const attempt = record?.attempt ?? 0;
  const ended: JobRecord = {
    execution: s.execution,
    job: desired?.name ?? record?.job ?? s.execution,
    attempt,
    state: 'canceled',
    ...(record?.startedAt ? { startedAt: record.startedAt } : {}),
    finishedAt: new Date(s.now).toISOString(),
    message: attempt === 0 ? `${why}, before it started` : `${why}, before attempt ${attempt + 1}`,
  };
  return { action: 'record', record: ended, event: finalEvent(ended.job, ending(ended)), reason: ended.message as string };
}

function decideAttempt(s: ExecutionSituation, desired: DesiredJob, record: JobRecord): JobDecision {
  const n = record.attempt;
  const mine = s.containers.filter((c) => c.attempt === n);
  const running = mine.filter(isRunning);
  const endWith = (ending: AttemptEnding, kill = false): JobDecision =>
    running.length > 0 ? stop(running, kill, ending.message, { ...record, ending }) : finish(s, record, ending, mine);
  if (record.ending) {
    if (running.length > 0) return stop(running, record.ending.state === 'timed-out', record.ending.message);
    return finish(s, record, record.ending, mine);
  }
  const present = new Set(mine.map((c) => c.container));
  const missing = desired.containers.find((spec) => !present.has(spec.name));
  if (missing) {
    return endWith({
      state: 'failed',
      container: missing.name,
      message: `container ${missing.name} of attempt ${n} is gone (removed, or the agent stopped before creating it): the attempt is not run again`,
    });
  }
  const refused = mine.find((c) => c.startedAt === undefined && c.startError);
  if (refused) {
    return endWith({
      state: 'failed',
      container: refused.container,
      message: `container ${refused.container} could not start: ${refused.startError}`,
    });
  }
  const created = mine.filter((c) => c.state === 'created' && c.startedAt === undefined);
  if (created.length > 0) {
    return { action: 'start', ids: idsOf(created), reason: `attempt ${n}: ${names(created)} created, not started yet` };
  }
  const failed = mine.filter((c) => EXITED.has(c.state) && c.exitCode !== 0).sort(byFinish)[0];
  if (failed) {
    return endWith({
      state: 'failed',
      container: failed.container,
      ...(failed.exitCode !== undefined ? { exitCode: failed.exitCode } : {}),
      message: `container ${failed.container} exited with code ${failed.exitCode}`,
    });
  }
  if (running.length === 0 && mine.every((c) => EXITED.has(c.state))) {
    return finish(
      s,
      record,
      { state: 'succeeded', exitCode: 0, message: mine.length > 1 ? `all ${mine.length} containers exited 0` : 'exited 0' },
      mine,
    );
  }
  const timeout = desired.timeout ?? DEFAULT_JOB_TIMEOUT;
  const killAt = (earliestStart(mine) ?? timeOf(record.startedAt) ?? s.now) + parseDuration(timeout);
  if (s.now >= killAt) return endWith({ state: 'timed-out', message: `killed at its timeout of ${timeout}` }, true);
  return { action: 'none', reason: `attempt ${n} runs (killed at ${new Date(killAt).toISOString()} if still running)`, wakeAt: killAt };
}

function decideQueued(s: ExecutionSituation, desired: DesiredJob): JobDecision {
  const { record, now } = s;
  const done = record?.attempt ?? 0;
  const deadline = Date.parse(desired.deadline);
  const base: JobRecord = record ?? { execution: s.execution, job: desired.name, attempt: 0, state: 'queued' };
  if (now >= deadline) {
    const last = record?.lastEnding;
    // The pulls that kept failing are why it never started: the operator reads that, not only the deadline.
    const pull = record?.failedPull ? `; pulling ${record.failedPull.image} failed: ${record.failedPull.reason}` : '';
    const ended: JobRecord =
      done === 0 || !last
        ? {
            ...withoutAttemptPlan(base),
            state: 'expired',
            finishedAt: new Date(now).toISOString(),
            message: `its deadline ${desired.deadline} passed before it started${pull}`,
          }
        : {
            ...withoutAttemptPlan(base),
            state: last.state,
            ...outcomeFields(last),
            message: `${last.message}; no attempt ${done + 1}: its deadline ${desired.deadline} passed first${pull}`,
          };
    return { action: 'record', record: ended, event: finalEvent(ended.job, ending(ended)), reason: ended.message as string };
  }
  const retryAt = record?.nextAttemptAt === undefined ? undefined : Date.parse(record.nextAttemptAt);
  if (retryAt !== undefined && retryAt > now) {
    const reason = record?.failedPull && record.message ? record.message : `attempt ${done + 1} starts at ${record?.nextAttemptAt}`;
    return { action: 'none', reason, wakeAt: Math.min(retryAt, deadline) };
  }
  if (desired.window) {
    const window = windowState(desired.window, new Date(now));
    if (!window.open) {
      const opensAt = window.opensAt?.getTime();
      const message = `waiting for its window ${describeWindow(desired.window)}${opensAt !== undefined ? `, opens ${new Date(opensAt).toISOString()}` : ''}`;
      const wakeAt = Math.min(opensAt ?? deadline, deadline);
      if (record?.state === 'queued' && record.message === message) return { action: 'none', reason: message, wakeAt };
      // The time of the next try has passed, and a pull's troubles are the next opening's to find again: the window is the news.
      const { nextAttemptAt: _next, failedPull: _pull, ...waitingBase } = base;
      const waiting: JobRecord = { ...waitingBase, state: 'queued', message };
      return { action: 'record', record: waiting, event: { type: 'job-waiting', app: desired.name, message }, reason: message, wakeAt };
    }
  }
  return {
    action: 'launch',
    attempt: done + 1,
    reason: done === 0 ? 'not started yet' : `attempt ${done + 1}: ${record?.message ?? 'retrying'}`,
  };
}

/** The attempt is over: final, or queued for another attempt as the job's retries say. */
function finish(s: ExecutionSituation, record: JobRecord, ending: AttemptEnding, mine: readonly JobContainer[]): JobDecision {
  const { record: next, event } = endAttempt(s.desired, record, ending, s.now, latestFinish(mine));
  return { action: 'finish', record: next, event, outputOf: idsOf(mine), reason: ending.message };
}

/**
 * How an attempt that ended leaves the execution: queued for the next one
 * when `retries` has one left for this outcome and it can start before the
 * deadline, else final. A canceled one, or one no longer desired, is final.
 * `finishedAt`, when the engine says when the containers finished, is the
 * record's `finishedAt` and the event's time (else `now`, and the event is
 * stamped when it is sent).
 */
export function endAttempt(
  desired: DesiredJob | undefined,
  record: JobRecord,
  ending: AttemptEnding,
  now: number,
  finishedAt?: number,
): { record: JobRecord; event: JobEvent } {
  const { record: next, event } = endedAttempt(desired, record, ending, now, new Date(finishedAt ?? now).toISOString());
  return { record: next, event: finishedAt === undefined ? event : { ...event, ts: next.finishedAt as string } };
}

function endedAttempt(
  desired: DesiredJob | undefined,
  record: JobRecord,
  ending: AttemptEnding,
  now: number,
  finishedAt: string,
): { record: JobRecord; event: JobEvent } {
  const n = record.attempt;
  const base: JobRecord = { ...withoutAttemptPlan(record), finishedAt, ...outcomeFields(ending) };
  const retries = desired?.retries;
  const outcome = ending.state === 'failed' || ending.state === 'timed-out' ? ending.state : undefined;
  if (outcome && desired && !desired.cancel && retries && n <= retries.limit && (retries.on ?? ['failed', 'timed-out']).includes(outcome)) {
    const at = now + retryDelayMs(retries.backoff, n + 1);
    const total = retries.limit + 1;
    if (at < Date.parse(desired.deadline)) {
      const nextAttemptAt = new Date(at).toISOString();
      const message = `attempt ${n} of ${total} ${ending.state}: ${ending.message}; attempt ${n + 1} at ${nextAttemptAt}`;
      return {
        record: { ...base, state: 'queued', message, nextAttemptAt, lastEnding: ending },
        event: { type: 'job-retrying', app: record.job, ...containerOf(ending), message },
      };
    }
    const message = `${ending.message}; no attempt ${n + 1}: its deadline ${desired.deadline} comes first`;
    const final: JobRecord = { ...base, state: ending.state, message };
    return { record: final, event: finalEvent(record.job, { ...ending, message }) };
  }
  const message = n > 1 ? `${ending.message} (attempt ${n})` : ending.message;
  const final: JobRecord = { ...base, state: ending.state, message };
  return { record: final, event: finalEvent(record.job, { ...ending, message }) };
}

function stop(containers: readonly JobContainer[], kill: boolean, reason: string, record?: JobRecord): JobDecision {
  return { action: 'stop', ids: idsOf(containers), kill, reason, ...(record ? { record } : {}) };
}

/** The record without what belongs to the attempt in progress or the one planned. */
export function withoutAttemptPlan(record: JobRecord): JobRecord {
  const {
    ending: _ending,
    nextAttemptAt: _next,
    lastEnding: _last,
    failedPull: _pull,
    exitCode: _code,
    container: _container,
    output: _output,
    ...rest
  } = record;
  return rest;
}

export function outcomeFields(ending: AttemptEnding): Pick<JobRecord, 'exitCode' | 'container'> {
  return { ...(ending.exitCode !== undefined ? { exitCode: ending.exitCode } : {}), ...containerOf(ending) };
}

function containerOf(ending: AttemptEnding): { container?: string } {
  return ending.container !== undefined ? { container: ending.container } : {};
}

/** A final record as the ending its event tells. */
function ending(record: JobRecord): AttemptEnding | { state: 'expired'; message: string } {
  const message = record.message ?? record.state;
  if (record.state === 'expired') return { state: 'expired', message };
  return {
    state: record.state as AttemptEnding['state'],
    message,
    ...(record.exitCode !== undefined ? { exitCode: record.exitCode } : {}),
    ...(record.container !== undefined ? { container: record.container } : {}),
  };
}

function isRunning(c: JobContainer): boolean {
  return RUNNING.has(c.state);
}

function idsOf(containers: readonly JobContainer[]): string[] {
  return containers.map((c) => c.id);
}

function names(containers: readonly JobContainer[]): string {
  return containers.map((c) => c.container).join(', ');
}

function timeOf(iso: string | undefined): number | undefined {
  const t = Date.parse(iso ?? '');
  return Number.isNaN(t) ? undefined : t;
}

function earliestStart(containers: readonly JobContainer[]): number | undefined {
  const times = containers.map((c) => Date.parse(c.startedAt ?? '')).filter((t) => !Number.isNaN(t));
  return times.length > 0 ? Math.min(...times) : undefined;
}

function latestFinish(containers: readonly JobContainer[]): number | undefined {
  const times = containers.map((c) => Date.parse(c.finishedAt ?? '')).filter((t) => !Number.isNaN(t));
  return times.length > 0 ? Math.max(...times) : undefined;
}

function byFinish(a: JobContainer, b: JobContainer): number {
  return (Date.parse(a.finishedAt ?? '') || 0) - (Date.parse(b.finishedAt ?? '') || 0);
}
