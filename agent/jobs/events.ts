/**
 * The events of a job execution's transitions, on `…/events` with `app` = the
 * job's name. One type per transition, so the hub and the CLI can tell them
 * apart without reading messages:
 *
 * | type            | when                                                              |
 * |-----------------|-------------------------------------------------------------------|
 * | job-waiting     | queued outside its window (the message says when it opens)        |
 * | job-pull-failed | a pull failed for the link; tried again (at most one per 5 min)   |
 * | job-started     | an attempt's containers started                                   |
 * | job-retrying    | an attempt failed or timed out and another follows                |
 * | job-succeeded   | every container of an attempt exited 0                            |
 * | job-failed      | final: a container exited non-zero or could not start, or the     |
 * |                 | registry has no such image or denies it                           |
 * | job-timed-out   | final: the last attempt was killed at its timeout                 |
 * | job-canceled    | final: canceled at the hub, or no longer desired                  |
 * | job-expired     | final: the deadline passed before any attempt started (the pulls  |
 * |                 | kept failing, or its window did not open in time)                 |
 *
 * An event is stamped with when it happened: an attempt's end with the time
 * the engine says its containers finished (`ts`), which for a container that
 * ended while no agent ran is long before the next agent sends the event;
 * the others with the moment they are sent, which is when the agent did it.
 */
import type { AttemptEnding } from './record.js';

export const JOB_EVENT_TYPES = [
  'job-waiting',
  'job-started',
  'job-retrying',
  'job-succeeded',
  'job-failed',
  'job-timed-out',
  'job-canceled',
  'job-expired',
  'job-pull-failed',
] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

export interface JobEvent {
  type: JobEventType;
  /** The job's name. */
  app: string;
  container?: string;
  message: string;
  /** When it happened, if not the moment it is sent (the engine's time an attempt's containers finished). */
  ts?: string;
}

/** An execution's final state as its event. */
export function finalEvent(job: string, ending: AttemptEnding | { state: 'expired'; message: string }): JobEvent {
  const container = 'container' in ending && ending.container !== undefined ? { container: ending.container } : {};
  return { type: `job-${ending.state}`, app: job, ...container, message: ending.message };
}
