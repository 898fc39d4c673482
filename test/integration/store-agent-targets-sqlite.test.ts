/** The agent-target store's shared suite (test/support/agent-target-store-suite.ts) on SQLite: a fresh hub.db file per test. */
import { join } from 'node:path';
import { SqliteAgentTargetStore } from '../../broker/store/sqlite/agent-targets.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { agentTargetSuite } from '../support/agent-target-store-suite.js';
import { scratchDir } from '../support/scratch.js';

agentTargetSuite('SQLite', {
  async create(cleanup) {
    const file = join(scratchDir('flotilla-agent-targets-'), 'hub.db');
    return async (now) => {
      const db = openDatabase(file);
      cleanup.add('hub.db connection', () => db.close());
      return new SqliteAgentTargetStore(db, now);
    };
  },
});
