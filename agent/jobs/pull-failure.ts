/**
 * What a failed pull of a job's image does to its execution. Devices are on
 * bad links, where a registry out of reach for a while is normal: a pull that
 * fails for the link (refused, timed out, cut off, a 5xx, a rate limit) uses
 * up no attempt. The execution stays `queued`, saying why and when the pull
 * is tried again, after a backoff that doubles from `firstDelayMs` up to
 * `maxDelayMs`, until its deadline. What no later try mends
 * (isPermanentPullError: the image or tag does not exist, the registry
 * denies it) fails the execution at once with the engine's words, whatever
 * `retries` says: every attempt would fail alike.
 *
 * One `job-pull-failed` event at the first failure of a run of them, then at
 * most one per `eventIntervalMs`: a registry out of reach for a day must not
 * fill the device's timeline, and its outbox, with one per try.
 *
 * Pure: runner.ts pulls, then saves the record this returns and sends its event.
 */
import type { DesiredJob } from '../../shared/index.js';
import { isPermanentPullError } from '../runtime/errors.js';
import { outcomeFields, withoutAttemptPlan } from './decide.js';
import { finalEvent, type JobEvent } from './events.js';
import type { FailedPull, JobRecord } from './record.js';

export interface PullRetryPolicy {
  firstDelayMs: number;
  maxDelayMs: number;
  /** While pulls keep failing, at most one event per this long. */
  eventIntervalMs: number;
}

export const PULL_RETRY: PullRetryPolicy = { firstDelayMs: 10_000, maxDelayMs: 5 * 60_000, eventIntervalMs: 5 * 60_000 };

export interface FailedPullSituation {
  desired: DesiredJob;
  /** The execution's record before the launch whose pull failed (undefined: none yet). */
  record: JobRecord | undefined;
  /** The attempt the image was pulled for. */
  attempt: number;
  /** The container whose image it is. */
  container: string;
  image: string;
  error: unknown;
  now: number;
  policy?: PullRetryPolicy;
}

export interface FailedPullOutcome {
  record: JobRecord;
  event?: JobEvent;
  /** Logged: why the record is what it is. */
  reason: string;
}

export function afterFailedPull(s: FailedPullSituation): FailedPullOutcome {
  const { desired, attempt, image, now } = s;
  const policy = s.policy ?? PULL_RETRY;
  const before: JobRecord = s.record ?? { execution: desired.execution, job: desired.name, attempt: attempt - 1, state: 'queued' };
  const reason = reasonOf(s.error, image);
  const failed = `pulling ${image} failed: ${reason}`;
  const finishedAt = new Date(now).toISOString();

  if (isPermanentPullError(s.error)) {
    // The engine's own message, as for any container the engine refuses.
    const said = s.error instanceof Error ? s.error.message : failed;
    const message = attempt > 1 ? `${said} (attempt ${attempt})` : said;
    const record: JobRecord = { ...withoutAttemptPlan(before), attempt, state: 'failed', container: s.container, finishedAt, message };
    return {
      record,
      event: finalEvent(desired.name, { state: 'failed', container: s.container, message }),
      reason: `the image cannot be had, no retry mends that: ${said}`,
    };
  }

  const previous = before.failedPull;
  const count = (previous?.count ?? 0) + 1;
  const retryAt = now + Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (count - 1));
  if (retryAt >= Date.parse(desired.deadline)) {
    const last = before.lastEnding;
    const tooLate = `its deadline ${desired.deadline} comes before another try`;
    if (before.attempt === 0 || !last) {
      const message = `${failed}; ${tooLate}`;
      const record: JobRecord = { ...withoutAttemptPlan(before), state: 'expired', finishedAt, message };
      return { record, event: finalEvent(desired.name, { state: 'expired', message }), reason: message };
    }
    // Ends as its last attempt did, as when a retry's backoff would end after the deadline (decide.ts endAttempt).
    const message = `${last.message}; no attempt ${attempt}: ${failed}, and ${tooLate}`;
    const record: JobRecord = { ...withoutAttemptPlan(before), state: last.state, ...outcomeFields(last), finishedAt, message };
    return { record, event: finalEvent(desired.name, { ...last, message }), reason: message };
  }

  const nextAttemptAt = new Date(retryAt).toISOString();
  const message = `${failed}; trying again at ${nextAttemptAt}`;
  const due = previous === undefined || now - Date.parse(previous.eventAt) >= policy.eventIntervalMs;
  const since = previous?.since ?? finishedAt;
  const failedPull: FailedPull = { image, reason, count, since, eventAt: due ? finishedAt : (previous?.eventAt ?? finishedAt) };
  const record: JobRecord = { ...before, state: 'queued', message, nextAttemptAt, failedPull };
  if (!due) return { record, reason: message };
  return {
    record,
    event: {
      type: 'job-pull-failed',
      app: desired.name,
      container: s.container,
      message: count > 1 ? `${message} (${count} failed pulls since ${since})` : message,
    },
    reason: message,
  };
}

/** The engine's reason, without the runtime's `pull IMAGE: ` in front of it. */
function reasonOf(error: unknown, image: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const prefix = `pull ${image}: `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}
