/**
 * A hub without `--redis` loads no Redis code: broker/mqtt/cluster.ts and the
 * Redis clients behind it are imported only when a broker is clustered. A
 * file of its own, so no other test has loaded them into this process first.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../broker/mqtt/broker.js';
import { Cleanup } from '../support/cleanup.js';
import { LogCapture } from '../support/logs.js';
import { startRedis } from '../support/redis.js';
import { startReplicaBroker } from '../support/replica-broker.js';

const REDIS_PACKAGES = ['/node_modules/ioredis/', '/node_modules/mqemitter-redis/', '/node_modules/aedes-persistence-redis/'];

/** The Redis packages among the CommonJS modules this process has loaded. */
function loadedRedisPackages(): string[] {
  const loaded = Object.keys(createRequire(import.meta.url).cache);
  return REDIS_PACKAGES.filter((pkg) => loaded.some((file) => file.includes(pkg)));
}

describe('the clustered broker, loaded on demand', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('loads no Redis client for a broker without a cluster, and all of them for one with', async () => {
    const single = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger: new LogCapture().logger });
    cleanup.add('single broker', () => single.close());
    expect(loadedRedisPackages()).toEqual([]);

    const redis = await startRedis();
    cleanup.add('redis', () => redis.close());
    const clustered = await startReplicaBroker(redis.url);
    cleanup.add('clustered broker', () => clustered.close());
    expect(loadedRedisPackages()).toEqual(REDIS_PACKAGES);
  });
});
