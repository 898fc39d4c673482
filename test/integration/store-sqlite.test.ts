/** The control stores' shared suite (test/support/store-suite.ts) on SQLite: a fresh hub.db file per test. */
import { join } from 'node:path';
import { SqliteAccountStore } from '../../broker/store/sqlite/accounts.js';
import { SqliteAppStore } from '../../broker/store/sqlite/apps.js';
import { SqliteAuditStore } from '../../broker/store/sqlite/audit.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceCredentialStore } from '../../broker/store/sqlite/device-credentials.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import { SqliteRolloutStore } from '../../broker/store/sqlite/rollouts.js';
import { SqliteSecretStore } from '../../broker/store/sqlite/secrets.js';
import { SqliteTokenStore } from '../../broker/store/sqlite/tokens.js';
import { scratchDir } from '../support/scratch.js';
import { storeSuite } from '../support/store-suite.js';

storeSuite('SQLite', {
  async create(cleanup) {
    const file = join(scratchDir('flotilla-store-suite-'), 'hub.db');
    return async ({ now, cipher, auditMaxRecords }) => {
      const db = openDatabase(file);
      cleanup.add('hub.db connection', () => db.close());
      return {
        apps: new SqliteAppStore(db, now),
        devices: new SqliteDeviceStore(db, cipher, now),
        rollouts: new SqliteRolloutStore(db),
        secrets: new SqliteSecretStore(db, cipher, now),
        accounts: new SqliteAccountStore(db, now),
        credentials: new SqliteDeviceCredentialStore(db, now),
        tokens: new SqliteTokenStore(db, now),
        audit: new SqliteAuditStore(db, now, auditMaxRecords),
      };
    };
  },
});
