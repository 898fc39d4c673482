/**
 * The telemetry engine on the replicas' shared PostgreSQL database: its tables
 * brought up to date (by the same advisory-locked migrator as the control
 * data, under a version of their own), then the writer, the reads and the
 * retention over the hub's pool.
 */
import type { PgDatabase } from '../../store/pg/database.js';
import { migratePostgres } from '../../store/pg/migrate.js';
import { TELEMETRY_PG_MIGRATIONS, TELEMETRY_SCHEMA } from './migrations.js';
import { PgTelemetryReads } from './reads.js';
import { PgRetention, type PgRetentionOptions } from './retention.js';
import { PgTelemetryWriter } from './writer.js';

export interface PgTelemetry {
  writer: PgTelemetryWriter;
  reads: PgTelemetryReads;
  retention: PgRetention;
}

export async function openPgTelemetry(db: PgDatabase, retention: Omit<PgRetentionOptions, 'db'>): Promise<PgTelemetry> {
  await migratePostgres(db, TELEMETRY_PG_MIGRATIONS, TELEMETRY_SCHEMA);
  return { writer: new PgTelemetryWriter(db), reads: new PgTelemetryReads(db), retention: new PgRetention({ db, ...retention }) };
}
