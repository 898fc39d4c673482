/**
 * The stores of a hub that is one replica of many: PostgreSQL's engines over one pool
 * (`--database postgres://…`). Every replica needs the same secrets key (FLOTILLA_SECRETS_KEY or
 * `--secrets-key-file`): it seals the secrets and desired documents, and the signing key all
 * replicas share (broker/store/pg/hub-keys.ts). The first admin's key is kept sealed there too,
 * and every replica writes it into its own data dir (broker/store/pg/admin-key.ts).
 *
 * Each hub on the database holds its place there (broker/store/pg/hub-presence.ts) under a name of
 * its own, which it writes into the remote-access sessions it opens; a replica ends the sessions of
 * replicas that are gone (broker/remote/replica-orphans.ts, started by broker/hub/remote.ts).
 */
import type { Closer } from '../../shared/closer.js';
import { ensureAdmin } from '../auth/bootstrap.js';
import type { HubConfig } from '../config.js';
import { Rollouts } from '../dispatcher/rollouts.js';
import { loadOrCreateSigningKey } from '../dispatcher/signing-key.js';
import { AUDIT_MAX_RECORDS } from '../remote/audit-store.js';
import { PgAccountStore } from '../store/pg/accounts.js';
import { shareAdminKey } from '../store/pg/admin-key.js';
import { PgAgentTargetStore } from '../store/pg/agent-targets.js';
import { PgAppStore } from '../store/pg/apps.js';
import { PgAuditStore } from '../store/pg/audit.js';
import { openPostgres } from '../store/pg/connect.js';
import { PgDeviceCredentialStore } from '../store/pg/device-credentials.js';
import { PgDeviceStore } from '../store/pg/devices.js';
import { sharedSigningKey } from '../store/pg/hub-keys.js';
import { HubPresence, hubProcessName } from '../store/pg/hub-presence.js';
import { PgJobStore } from '../store/pg/jobs.js';
import { PgRolloutStore } from '../store/pg/rollouts.js';
import { PgSecretStore } from '../store/pg/secrets.js';
import { PgTokenStore } from '../store/pg/tokens.js';
import { openSecretsKey, SECRETS_KEY_ENV } from '../store/secrets-key.js';
import type { HubStores, StoreDeps } from './stores.js';

export async function openPostgresStores(url: string, config: HubConfig, deps: StoreDeps, closer: Closer): Promise<HubStores> {
  const { logger, now } = deps;
  const db = await openPostgres(url, { logger });
  closer.add('PostgreSQL', () => db.close());
  const mode = config.redis !== undefined ? 'replica' : 'alone';
  const presence = await HubPresence.take({ target: db.target, logger, name: hubProcessName(), mode });
  closer.add('hub presence', () => presence.close());
  const { cipher, wrongKey } = openSecretsKey({
    dataDir: config.dataDir,
    keyFile: config.secretsKeyFile,
    envValue: deps.secretsKey ?? process.env[SECRETS_KEY_ENV],
    logger,
  });
  let signingKey: Awaited<ReturnType<typeof sharedSigningKey>>;
  try {
    signingKey = await sharedSigningKey(db, cipher, () => loadOrCreateSigningKey(config.dataDir), now);
  } catch (err) {
    throw wrongKey(err);
  }
  if (signingKey.created) logger.info({ component: 'hub' }, 'created the desired-state signing key, stored sealed in the database');
  const apps = new PgAppStore(db, now);
  const devices = new PgDeviceStore(db, cipher, now);
  const accounts = new PgAccountStore(db, now);
  const created = await ensureAdmin(accounts, config.dataDir, logger);
  await shareAdminKey({ db, cipher, accounts, dataDir: config.dataDir, created, logger, now });
  const audit = new PgAuditStore(db, now, AUDIT_MAX_RECORDS, presence.name);
  return {
    apps,
    devices,
    secrets: new PgSecretStore(db, cipher, now),
    rollouts: new Rollouts({ apps, devices, rollouts: new PgRolloutStore(db), logger, now }),
    agentTargets: new PgAgentTargetStore(db, now),
    jobs: new PgJobStore(db),
    accounts,
    credentials: new PgDeviceCredentialStore(db, now),
    tokens: new PgTokenStore(db, now),
    audit,
    signingKey: { privateKey: signingKey.privateKey, publicKeyPem: signingKey.publicKeyPem },
    postgres: db,
    replicaName: presence.name,
  };
}
