/**
 * What a hub replica does of the dispatcher's work, when several share one database and one
 * clustered broker (an in-process subscription hears every replica's messages, through Redis):
 *
 * - a device's state report is recorded by the replica it was published through, once;
 * - an API request over MQTT is answered by the replica it was published through, once
 *   (both are taken from that replica's own publish path, broker/mqtt/hub-bus.ts
 *   `subscribeHere`, so they never cross Redis to the others);
 * - online/offline status, desired documents (every device's next revision), rollouts and the
 *   fleet-wide sync are the leader's (broker/dispatcher/leader.ts), so one process computes each
 *   device's documents and no revision is issued twice; other replicas ask it to re-plan over
 *   SYNC_TOPIC, which no client may publish ($SYS is refused to all, broker/auth/acl.ts);
 * - jobs (broker/jobs/): a report's executions are recorded, with their events, the abort check
 *   and the job's completion, by the replica the report came through, and jobs.* by the one the
 *   caller reached; admitting executions to a job's concurrency slots and expiring them at the
 *   deadline are the leader's, since they decide documents. Other replicas hand the leader what
 *   changed (`{ "jobs": { "admit": [job…], "devices": [id…] } }`).
 *
 * A single hub is every one of these at once: SOLE_REPLICA.
 */
export interface ReplicaRole {
  /** True while this replica runs rollouts, the fleet-wide sync and every device's desired documents. */
  readonly leading: boolean;
  /** Told each time leadership is gained (true) or lost (false). */
  onLeadership(listener: (leading: boolean) => void): void;
  /** True when other replicas exist: online flags are theirs too, so a start must not reset them. */
  readonly clustered: boolean;
}

/** Where replicas ask the leader to re-plan: `{}` for the whole fleet, `{ "device": id }` for one device, `{ "jobs": … }` for a job change. */
export const SYNC_TOPIC = '$SYS/flotilla/desired-sync';

/** A re-plan request on SYNC_TOPIC. */
export interface SyncRequest {
  device?: string;
  /** Jobs whose waiting executions may be admitted, and devices whose jobs changed (broker/jobs/jobs.ts JobsChange). */
  jobs?: { admit: readonly string[]; devices: readonly string[] };
}

/** A request as another replica published it; undefined when it is not one. */
export function parseSyncRequest(payload: Buffer): SyncRequest | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { device, jobs } = value as { device?: unknown; jobs?: unknown };
  const request: SyncRequest = {};
  if (typeof device === 'string') request.device = device;
  if (jobs !== undefined) {
    const { admit, devices } = jobs as { admit?: unknown; devices?: unknown };
    if (!isStrings(admit) || !isStrings(devices)) return undefined;
    request.jobs = { admit, devices };
  }
  return request;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

export const SOLE_REPLICA: ReplicaRole = {
  leading: true,
  onLeadership: () => undefined,
  clustered: false,
};
