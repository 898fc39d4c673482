/**
 * The job store's shared suite (test/support/job-store-suite.ts) on PostgreSQL: a fresh database per
 * test on one private server, and a pool per handle, as each replica has its own. The databases sort
 * text by language rules (ICU en-US), so the suite's byte-order checks hold the store to SQLite's
 * order whatever the server's collation. What was written is told by each row's version and lock
 * (ctid, xmin, xmax): an UPDATE makes a new version, a row lock sets xmax.
 */
import { afterAll, beforeAll } from 'vitest';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { PgJobStore } from '../../broker/store/pg/jobs.js';
import { jobStoreSuite } from '../support/job-store-suite.js';
import { LogCapture } from '../support/logs.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

jobStoreSuite('PostgreSQL', {
  async create(cleanup) {
    const url = await server.createDatabase(undefined, { icuLocale: 'en-US' });
    const connect = async () => {
      const db = await openPostgres(url, { logger: new LogCapture().logger });
      cleanup.add('pool', () => db.close());
      return db;
    };
    const watcher = await connect();
    return {
      open: async () => new PgJobStore(await connect()),
      stamp: async () => {
        const versions = (table: string, key: string) =>
          `(SELECT coalesce(string_agg(ctid::text || xmin::text || ':' || xmax::text, ',' ORDER BY ${key}), '') FROM ${table})`;
        const [row] = await watcher.query<{ stamp: string }>(
          `SELECT ${versions('jobs', 'name')} || '|' || ${versions('job_executions', 'job, device')} || '|' || ${versions('job_uids', 'uid')} AS stamp`,
        );
        return row!.stamp;
      },
    };
  },
});
