/**
 * One replica of the hub's clustered broker (Aedes on a Redis, broker/mqtt/cluster.ts) on
 * loopback ports chosen by the OS, for tests and benchmarks that look at the broker alone.
 */
import { type BrokerOptions, type EmbeddedBroker, startBroker } from '../../broker/mqtt/broker.js';
import { LogCapture } from './logs.js';

export function startReplicaBroker(
  redisUrl: string,
  options: Partial<Omit<BrokerOptions, 'cluster'>> & { cluster?: Partial<NonNullable<BrokerOptions['cluster']>> } = {},
): Promise<EmbeddedBroker> {
  const { cluster, ...rest } = options;
  return startBroker({
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: 0,
    logger: new LogCapture().logger,
    ...rest,
    cluster: { ...cluster, url: redisUrl },
  });
}
