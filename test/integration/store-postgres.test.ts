/**
 * The control stores' shared suite (test/support/store-suite.ts) on PostgreSQL: a fresh database
 * per test on one private server, and a pool per handle, as each replica has its own. The databases
 * sort text by language rules (ICU en-US), as most production servers' do, so the suite's byte-order
 * checks hold the stores to SQLite's order whatever the server's collation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgAccountStore } from '../../broker/store/pg/accounts.js';
import { PgAppStore } from '../../broker/store/pg/apps.js';
import { PgAuditStore } from '../../broker/store/pg/audit.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { PgDeviceCredentialStore } from '../../broker/store/pg/device-credentials.js';
import { PgDeviceStore } from '../../broker/store/pg/devices.js';
import { PG_MIGRATIONS } from '../../broker/store/pg/migrations.js';
import { PgRolloutStore } from '../../broker/store/pg/rollouts.js';
import { PgSecretStore } from '../../broker/store/pg/secrets.js';
import { PgTokenStore } from '../../broker/store/pg/tokens.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { MIGRATIONS } from '../../broker/store/sqlite/migrations.js';
import { LogCapture } from '../support/logs.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { storeSuite } from '../support/store-suite.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

storeSuite('PostgreSQL', {
  async create(cleanup) {
    const url = await server.createDatabase(undefined, { icuLocale: 'en-US' });
    return async ({ now, cipher, auditMaxRecords }) => {
      const db = await openPostgres(url, { logger: new LogCapture().logger });
      cleanup.add('pool', () => db.close());
      return {
        apps: new PgAppStore(db, now),
        devices: new PgDeviceStore(db, cipher, now),
        rollouts: new PgRolloutStore(db),
        secrets: new PgSecretStore(db, cipher, now),
        accounts: new PgAccountStore(db, now),
        credentials: new PgDeviceCredentialStore(db, now),
        tokens: new PgTokenStore(db, now),
        audit: new PgAuditStore(db, now, auditMaxRecords),
      };
    };
  },
});

describe('PostgreSQL schema beside SQLite', () => {
  /** Each table's columns in order, as the SQLite file has them after its first `version` migrations. */
  function sqliteColumns(version: number): Record<string, string[]> {
    const db = openDatabase(':memory:', MIGRATIONS.slice(0, version));
    try {
      const tables = db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .all();
      return Object.fromEntries(
        tables.map(({ name }) => [
          name,
          db
            .prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${name}')`)
            .all()
            .map((c) => c.name),
        ]),
      );
    } finally {
      db.close();
    }
  }

  async function postgresColumns(version: number): Promise<Record<string, string[]>> {
    const db = await openPostgres(await server.createDatabase(), {
      logger: new LogCapture().logger,
      migrations: PG_MIGRATIONS.slice(0, version),
    });
    try {
      const rows = await db.query<{ table_name: string; column_name: string }>(
        `SELECT table_name, column_name FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> 'schema_version' ORDER BY table_name, ordinal_position`,
      );
      const columns: Record<string, string[]> = {};
      for (const row of rows) columns[row.table_name] = [...(columns[row.table_name] ?? []), row.column_name];
      return columns;
    } finally {
      await db.close();
    }
  }

  it('has the same tables and columns, in the same order, at every schema version', async () => {
    expect(PG_MIGRATIONS).toHaveLength(MIGRATIONS.length);
    for (let version = 1; version <= MIGRATIONS.length; version++) {
      expect({ version, columns: await postgresColumns(version) }).toEqual({ version, columns: sqliteColumns(version) });
    }
  });
});
