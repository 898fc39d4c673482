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
 *   SYNC_TOPIC, which no client may publish ($SYS is refused to all, broker/auth/acl.ts).
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

/** Where replicas ask the leader to re-plan: `{}` for the whole fleet, `{ "device": id }` for one device. */
export const SYNC_TOPIC = '$SYS/flotilla/desired-sync';

export const SOLE_REPLICA: ReplicaRole = {
  leading: true,
  onLeadership: () => undefined,
  clustered: false,
};
