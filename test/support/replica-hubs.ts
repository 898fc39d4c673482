/**
 * Hub replicas as an operator runs them: `flotilla server --redis … --database …` processes on a
 * private Redis and PostgreSQL, sharing one secrets key file, each with its own data dir. Every
 * server, process and dir goes with the Cleanup it was given.
 */
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { type PostgresServer, startPostgres } from './postgres.js';
import { type HubProcess, removeDir, scratchDir, startHubProcess } from './processes.js';
import { type RedisServer, type StartRedisOptions, startRedis } from './redis.js';

export interface ReplicaHubs {
  redis: RedisServer;
  postgres: PostgresServer;
  /** The hubs' database URL. */
  database: string;
  /** The server flags every replica starts with. */
  args: string[];
  /** The replicas started so far, in order. */
  replicas: HubProcess[];
  /** Starts one more replica (its data dir a fresh one unless given) and adds it to `replicas`. */
  start(dataDir?: string): Promise<HubProcess>;
}

export interface ReplicaHubsOptions {
  /** Replicas started now, one after another: the first makes the secrets key file and the hub keys the others use. */
  count: number;
  /** Names the database and the temp dirs. */
  name: string;
  redis?: StartRedisOptions;
  /** More server flags for every replica. */
  extraArgs?: string[];
}

export async function startReplicaHubs(cleanup: Cleanup, options: ReplicaHubsOptions): Promise<ReplicaHubs> {
  const redis = await startRedis(options.redis);
  cleanup.add('redis', () => redis.close());
  const postgres = await startPostgres();
  cleanup.add('postgres', () => postgres.close());
  const database = await postgres.createDatabase(options.name.replaceAll('-', '_'));
  const keys = scratchDir(`flotilla-${options.name}-keys-`);
  cleanup.add('keys', () => removeDir(keys));
  const args = [
    '--redis',
    redis.url,
    '--database',
    database,
    '--secrets-key-file',
    join(keys, 'secrets.key'),
    ...(options.extraArgs ?? []),
  ];
  const replicas: HubProcess[] = [];
  const start = async (dataDir = scratchDir(`flotilla-${options.name}-${replicas.length}-`)) => {
    const i = replicas.length;
    const hub = await startHubProcess(dataDir, args);
    cleanup.add(`replica ${i}`, () => hub.proc.stop());
    cleanup.add(`replica ${i} data`, () => removeDir(hub.dataDir));
    replicas.push(hub);
    return hub;
  };
  for (let i = 0; i < options.count; i++) await start();
  return { redis, postgres, database, args, replicas, start };
}
