/**
 * The hub's state on disk: the signing key, hub.db with its stores, secrets
 * sealed at rest, the audit trail, and the first admin account.
 */
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import { AccountStore } from '../auth/accounts.js';
import { ensureAdmin } from '../auth/bootstrap.js';
import { DeviceCredentialStore } from '../auth/device-credentials.js';
import { TokenStore } from '../auth/tokens.js';
import type { HubConfig } from '../config.js';
import { Rollouts } from '../dispatcher/rollouts.js';
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from '../dispatcher/signing-key.js';
import { AuditStore } from '../remote/audit-store.js';
import { AppStore } from '../store/apps.js';
import { type Db, openDatabase } from '../store/db.js';
import { DeviceStore } from '../store/devices.js';
import { RolloutStore } from '../store/rollouts.js';
import { openSecretsAtRest } from '../store/seal-at-rest.js';
import { SecretStore } from '../store/secrets.js';
import { SECRETS_KEY_ENV } from '../store/secrets-key.js';

export interface HubStores {
  db: Db;
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  rollouts: Rollouts;
  accounts: AccountStore;
  credentials: DeviceCredentialStore;
  tokens: TokenStore;
  /** Remote-access sessions and refused attempts (broker/remote/). */
  audit: AuditStore;
  signingKey: { privateKey: KeyObject; publicKeyPem: string };
}

export interface StoreDeps {
  logger: Logger;
  now: () => Date;
  /** The secrets key as FLOTILLA_SECRETS_KEY would give it; default: that variable, else the key file. */
  secretsKey?: string | undefined;
}

export function openHubStores(config: HubConfig, { logger, now, secretsKey }: StoreDeps, closer: Closer): HubStores {
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
  const apps = new AppStore(db, now);
  const devices = new DeviceStore(db, cipher, now);
  const accounts = new AccountStore(db, now);
  ensureAdmin(accounts, config.dataDir, logger);
  return {
    db,
    apps,
    devices,
    secrets: new SecretStore(db, cipher, now),
    rollouts: new Rollouts({ apps, devices, rollouts: new RolloutStore(db), logger, now }),
    accounts,
    credentials: new DeviceCredentialStore(db, now),
    tokens: new TokenStore(db, now),
    audit: new AuditStore(db, now),
    signingKey: { privateKey: signingKey.privateKey, publicKeyPem: signingKey.publicKeyPem },
  };
}
