/**
 * The agent-target store's shared suite (test/support/agent-target-store-suite.ts) on PostgreSQL: a
 * fresh database per test on one private server, and a pool per handle, as each replica has its own.
 * The databases sort text by language rules (ICU en-US), so the suite's byte-order check holds the
 * store to SQLite's order whatever the server's collation.
 */
import { afterAll, beforeAll } from 'vitest';
import { PgAgentTargetStore } from '../../broker/store/pg/agent-targets.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { agentTargetSuite } from '../support/agent-target-store-suite.js';
import { LogCapture } from '../support/logs.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

agentTargetSuite('PostgreSQL', {
  async create(cleanup) {
    const url = await server.createDatabase(undefined, { icuLocale: 'en-US' });
    return async (now) => {
      const db = await openPostgres(url, { logger: new LogCapture().logger });
      cleanup.add('pool', () => db.close());
      return new PgAgentTargetStore(db, now);
    };
  },
});
