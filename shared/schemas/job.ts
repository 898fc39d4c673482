/**
 * Jobs: one-off work on many devices (rotate a certificate, run a migration,
 * collect a diagnostic bundle). A job spec is shaped like an app spec (name,
 * scheduling, spec.containers), so what people know of apps carries over; its
 * containers run to completion, once per device, instead of being kept running.
 *
 * A job reaches a device through the device's desired state (DesiredJob), so a
 * device offline when the job was made gets it when it reconnects, up to the
 * job's deadline. The device reports each execution in its state report
 * (JobExecutionReport); the hub keeps one execution per device (broker/jobs/).
 */
import { type Static, Type } from '@sinclair/typebox';
import { ContainerSpec, Duration, Name, Scheduling, UpdateWindow } from './spec.js';

const Timestamp = Type.String({ format: 'date-time' });

/**
 * What an execution is on one device. `queued`: not started (the device has not
 * had it yet, is waiting for its window or a concurrency slot, or backs off
 * before another attempt); `running`: its containers run; then one of the final
 * states: `succeeded` (every container exited 0), `failed` (a container exited
 * non-zero, or could not start: `exitCode` and the container say which),
 * `timed-out` (killed at the job's timeout), `canceled` (by `flotilla job cancel`
 * or an abort), `expired` (the deadline passed before it started).
 */
export const JOB_EXECUTION_STATES = ['queued', 'running', 'succeeded', 'failed', 'timed-out', 'canceled', 'expired'] as const;
export type JobExecutionState = (typeof JOB_EXECUTION_STATES)[number];
export const FINAL_JOB_EXECUTION_STATES: ReadonlySet<JobExecutionState> = new Set([
  'succeeded',
  'failed',
  'timed-out',
  'canceled',
  'expired',
]);
export const JobExecutionStateSchema = Type.Union(JOB_EXECUTION_STATES.map((state) => Type.Literal(state)));

/** The outcomes an attempt may end in that try again. */
export const RetryOn = Type.Union([Type.Literal('failed'), Type.Literal('timed-out')]);

export const JobRetries = Type.Object(
  {
    /** Attempts after the first (default 0: one attempt). */
    limit: Type.Integer({ minimum: 0, maximum: 100 }),
    /** The wait before the second attempt, doubled for each one after (default 10s, at most 1h between attempts). */
    backoff: Type.Optional(Duration),
    /** Which outcomes try again (default both). */
    on: Type.Optional(Type.Array(RetryOn, { minItems: 1, maxItems: 2, uniqueItems: true })),
  },
  { additionalProperties: false },
);
export type JobRetries = Static<typeof JobRetries>;

/** How many devices run at once, and when to give up on the rest. */
export const JobRollout = Type.Object(
  {
    /** At most this many devices have the job at once (queued ones wait; offline devices take no slot). */
    maxConcurrent: Type.Optional(Type.Integer({ minimum: 1 })),
    /** After this many failed or timed-out devices, the rest are canceled (running ones stopped). */
    abortAfterFailures: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The same as a share of the job's devices (`10%`, rounded up). */
    abortAfterFailurePercent: Type.Optional(Type.String({ pattern: '^(100|[1-9]?[0-9])%$' })),
  },
  { additionalProperties: false },
);
export type JobRollout = Static<typeof JobRollout>;

/** A duration from the job's creation (`7d`), or an RFC 3339 time. */
export const JobDeadline = Type.Union([Duration, Timestamp]);

export const JobSpec = Type.Object(
  {
    name: Name,
    scheduling: Scheduling,
    spec: Type.Object(
      {
        /** As an app's containers, run together; `restartPolicy` may only be `no`, and no healthcheck. */
        containers: Type.Array(ContainerSpec, { minItems: 1, maxItems: 8 }),
        /** One attempt is killed after this long and counts as `timed-out` (default 1h). */
        timeout: Type.Optional(Duration),
        retries: Type.Optional(JobRetries),
        /** Devices that have not started it by then count as `expired` (default 7d after the job is made). */
        deadline: Type.Optional(JobDeadline),
        /** Start only inside this window, on the device's own clock. */
        window: Type.Optional(UpdateWindow),
        rollout: Type.Optional(JobRollout),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type JobSpec = Static<typeof JobSpec>;

/** Unique per job on a hub (and so per device): what the agent records before it starts, so it never runs one twice. */
export const EXECUTION_ID_PATTERN = '^[a-z0-9][a-z0-9.-]{0,127}$';
export const ExecutionId = Type.String({ pattern: EXECUTION_ID_PATTERN });

/** One job as a device must run it, in its desired state; secrets resolved as for apps. */
export const DesiredJob = Type.Object(
  {
    name: Name,
    execution: ExecutionId,
    containers: Type.Array(ContainerSpec, { minItems: 1, maxItems: 8 }),
    /** Per attempt (absent: 1h). */
    timeout: Type.Optional(Duration),
    retries: Type.Optional(JobRetries),
    /** No attempt starts after this (the device's clock). */
    deadline: Timestamp,
    window: Type.Optional(UpdateWindow),
    /** Stop it if it runs, do not start it, and report it `canceled`. */
    cancel: Type.Optional(Type.Literal(true)),
  },
  { additionalProperties: false },
);
export type DesiredJob = Static<typeof DesiredJob>;

/** Lines of output a report carries (the whole log goes through the log pipeline). */
export const MAX_REPORTED_OUTPUT_LINES = 20;
export const MAX_REPORTED_OUTPUT_LINE = 512;

/** One execution as the device reports it, in its state report, until the desired state no longer names it. */
export const JobExecutionReport = Type.Object(
  {
    name: Name,
    execution: ExecutionId,
    state: JobExecutionStateSchema,
    /** The attempt running or last run (0: none started yet). */
    attempt: Type.Integer({ minimum: 0, maximum: 101 }),
    /** Why it waits, how it ended, what is next (`waiting for its window, opens 02:00 Europe/Berlin`). */
    message: Type.Optional(Type.String({ maxLength: 1024 })),
    /** The exit code that decided a `failed` (or last `timed-out`) attempt, and of which container. */
    exitCode: Type.Optional(Type.Integer()),
    container: Type.Optional(Name),
    /** When the attempt started and ended. */
    startedAt: Type.Optional(Timestamp),
    finishedAt: Type.Optional(Timestamp),
    /** With a retry pending: when the next attempt may start. */
    nextAttemptAt: Type.Optional(Timestamp),
    /** The last lines the containers wrote (stdout and stderr together, oldest first). */
    output: Type.Optional(Type.Array(Type.String({ maxLength: MAX_REPORTED_OUTPUT_LINE }), { maxItems: MAX_REPORTED_OUTPUT_LINES })),
  },
  { additionalProperties: false },
);
export type JobExecutionReport = Static<typeof JobExecutionReport>;

/** How many executions a device holds at once (desired and reported). */
export const MAX_JOBS_PER_DEVICE = 64;
