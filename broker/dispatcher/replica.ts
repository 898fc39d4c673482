/**
 * What a hub replica does of the dispatcher's work, when several share one database and one
 * clustered broker (every replica's in-process subscriptions hear every replica's messages):
 *
 * - a device's state report is recorded by the replica the device is connected to, once;
 * - an API request over MQTT is answered by the replica its client is connected to, once;
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
  /** Whether `clientId` is connected to this replica's broker. */
  isLocal(clientId: string): boolean;
  /** Told each time leadership is gained (true) or lost (false). */
  onLeadership(listener: (leading: boolean) => void): void;
  /** True when other replicas exist: online flags are theirs too, so a start must not reset them. */
  readonly clustered: boolean;
}

/** Where replicas ask the leader to re-plan: `{}` for the whole fleet, `{ "device": id }` for one device. */
export const SYNC_TOPIC = '$SYS/flotilla/desired-sync';

export const SOLE_REPLICA: ReplicaRole = {
  leading: true,
  isLocal: () => true,
  onLeadership: () => undefined,
  clustered: false,
};
