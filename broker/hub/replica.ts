/**
 * This hub's share of the fleet's work (broker/dispatcher/replica.ts): all of it for a single
 * hub, or a replica's when it shares a broker on Redis and a database on PostgreSQL with others,
 * leading while its session holds the leader lease (broker/dispatcher/leader.ts).
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import { type ReplicaRole, SOLE_REPLICA } from '../dispatcher/replica.js';
import type { HubMqtt } from './mqtt.js';
import type { HubStores } from './stores.js';

export async function replicaRole(
  stores: HubStores,
  mqtt: HubMqtt,
  clustered: boolean,
  logger: Logger,
  closer: Closer,
): Promise<ReplicaRole> {
  if (!clustered || !stores.postgres) return SOLE_REPLICA;
  const { LeaderLease } = await import('../dispatcher/leader.js');
  const lease = new LeaderLease({ target: stores.postgres.target, logger, replica: mqtt.broker.aedes.id });
  const listeners: ((leading: boolean) => void)[] = [];
  lease.on('gained', () => {
    for (const listener of listeners) listener(true);
  });
  lease.on('lost', () => {
    for (const listener of listeners) listener(false);
  });
  lease.start();
  closer.add('leader lease', () => lease.stop());
  return {
    get leading() {
      return lease.isLeader;
    },
    onLeadership: (listener) => listeners.push(listener),
    clustered: true,
  };
}
