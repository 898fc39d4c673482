/**
 * The job store's shared suite (test/support/job-store-suite.ts) on SQLite: a fresh hub.db file per
 * test, a connection per handle. What was written is told by another connection's data_version,
 * which moves whenever a connection commits a change to the file.
 */
import { join } from 'node:path';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteJobStore } from '../../broker/store/sqlite/jobs.js';
import { jobStoreSuite } from '../support/job-store-suite.js';
import { scratchDir } from '../support/scratch.js';

jobStoreSuite('SQLite', {
  async create(cleanup) {
    const file = join(scratchDir('flotilla-jobs-'), 'hub.db');
    const connect = () => {
      const db = openDatabase(file);
      cleanup.add('hub.db connection', () => db.close());
      return db;
    };
    const watcher = connect();
    return {
      open: async () => new SqliteJobStore(connect()),
      stamp: async () => String(watcher.pragma('data_version', { simple: true })),
    };
  },
});
