/**
 * The hub's state: the signing key, the stores (hub.db, or the PostgreSQL
 * database replicas share), secrets sealed at rest, the audit trail, and the
 * first admin account.
 */
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AccountStore } from '../auth/accounts.js';
import { ensureAdmin } from '../auth/bootstrap.js';
import type { DeviceCredentialStore } from '../auth/device-credentials.js';
import type { TokenStore } from '../auth/tokens.js';
import type { HubConfig } from '../config.js';
import { Rollouts } from '../dispatcher/rollouts.js';
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from '../dispatcher/signing-key.js';
import type { AuditStore } from '../remote/audit-store.js';
import type { AgentTargetStore } from '../store/agent-targets.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { JobStore } from '../store/jobs.js';
import type { PgDatabase } from '../store/pg/database.js';
import type { SecretStore } from '../store/secrets.js';
import { SECRETS_KEY_ENV } from '../store/secrets-key.js';
import { SqliteAccountStore } from '../store/sqlite/accounts.js';
import { SqliteAgentTargetStore } from '../store/sqlite/agent-targets.js';
import { SqliteAppStore } from '../store/sqlite/apps.js';
import { SqliteAuditStore } from '../store/sqlite/audit.js';
import { openDatabase } from '../store/sqlite/db.js';
import { SqliteDeviceCredentialStore } from '../store/sqlite/device-credentials.js';
import { SqliteDeviceStore } from '../store/sqlite/devices.js';
import { SqliteJobStore } from '../store/sqlite/jobs.js';
import { SqliteRolloutStore } from '../store/sqlite/rollouts.js';
import { openSecretsAtRest } from '../store/sqlite/seal-at-rest.js';
import { SqliteSecretStore } from '../store/sqlite/secrets.js';
import { SqliteTokenStore } from '../store/sqlite/tokens.js';

export interface HubStores {
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  rollouts: Rollouts;
  /** Which agent release the devices of each selection must run (`flotilla agent upgrade`). */
  agentTargets: AgentTargetStore;
  /** Jobs and their executions per device (`flotilla run`, broker/store/jobs.ts). */
  jobs: JobStore;
  accounts: AccountStore;
  credentials: DeviceCredentialStore;
  tokens: TokenStore;
  /** Remote-access sessions and refused attempts (broker/remote/). */
  audit: AuditStore;
  signingKey: { privateKey: KeyObject; publicKeyPem: string };
  /** The shared database, when the hub is one replica of many (`--database postgres://…`). */
  postgres?: PgDatabase;
  /**
   * This hub's one name on the shared database (broker/store/pg/hub-presence.ts): its place there,
   * its broker's id, its leader lease's and remote-access sessions' replica, its ready line.
   */
  replicaName?: string;
}

export interface StoreDeps {
  logger: Logger;
  now: () => Date;
  /** The secrets key as FLOTILLA_SECRETS_KEY would give it; default: that variable, else the key file. */
  secretsKey?: string | undefined;
}

export async function openHubStores(config: HubConfig, deps: StoreDeps, closer: Closer): Promise<HubStores> {
  if (config.database === undefined) return openSqliteStores(config, deps, closer);
  // Loaded only here: a single hub does not carry the PostgreSQL client.
  const { openPostgresStores } = await import('./stores-postgres.js');
  return openPostgresStores(config.database, config, deps, closer);
}

async function openSqliteStores(config: HubConfig, { logger, now, secretsKey }: StoreDeps, closer: Closer): Promise<HubStores> {
  // Before anything is opened: a refused key file (readable by others) stops the start with nothing to close.
  const signingKey = loadOrCreateSigningKey(config.dataDir);
  if (signingKey.created) {
    logger.info({ component: 'hub', file: join(config.dataDir, SIGNING_KEY_FILE) }, 'created the desired-state signing key');
  }
  const db = openDatabase(join(config.dataDir, 'hub.db'));
  closer.add('hub.db', () => db.close());
  const cipher = openSecretsAtRest(db, {
    dataDir: config.dataDir,
    keyFile: config.secretsKeyFile,
    envValue: secretsKey ?? process.env[SECRETS_KEY_ENV],
    logger,
  });
  const apps = new SqliteAppStore(db, now);
  const devices = new SqliteDeviceStore(db, cipher, now);
  const accounts = new SqliteAccountStore(db, now);
  await ensureAdmin(accounts, config.dataDir, logger);
  return {
    apps,
    devices,
    secrets: new SqliteSecretStore(db, cipher, now),
    rollouts: new Rollouts({ apps, devices, rollouts: new SqliteRolloutStore(db), logger, now }),
    agentTargets: new SqliteAgentTargetStore(db, now),
    jobs: new SqliteJobStore(db),
    accounts,
    credentials: new SqliteDeviceCredentialStore(db, now),
    tokens: new SqliteTokenStore(db, now),
    audit: new SqliteAuditStore(db, now),
    signingKey: { privateKey: signingKey.privateKey, publicKeyPem: signingKey.publicKeyPem },
  };
}
