/** Append-only list of schema migrations; index + 1 is the schema version. */
export const MIGRATIONS: readonly string[] = [
  // 1: apps with immutable revisions, devices with labels and reported state.
  `
  CREATE TABLE apps (
    name        TEXT PRIMARY KEY,
    revision    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE app_revisions (
    app         TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (app, revision)
  );
  CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    operator_labels   TEXT NOT NULL DEFAULT '{}',
    reported_labels   TEXT NOT NULL DEFAULT '{}',
    online            INTEGER NOT NULL DEFAULT 0,
    last_seen         TEXT,
    state             TEXT,
    observed_revision INTEGER,
    desired_revision  INTEGER NOT NULL DEFAULT 0,
    desired_hash      TEXT,
    desired_doc       TEXT,
    created_at        TEXT NOT NULL
  );
  CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  `,
  // 2: how each revision was made, kubectl's CHANGE-CAUSE: 'apply' or 'rollback to N'.
  // Revisions written before this migration keep NULL: their cause was never recorded.
  `
  ALTER TABLE app_revisions ADD COLUMN cause TEXT;
  `,
  // 3: the revision an operator forced past the app's update lock (\`flotilla rollout force\`).
  `
  ALTER TABLE apps ADD COLUMN force_revision INTEGER;
  `,
  // 4: the newest rollout of each app (spec.rollout): its phase and every device's
  // place in it, as one JSON document (broker/dispatcher/rollout-plan.ts), written whole.
  `
  CREATE TABLE rollouts (
    app         TEXT PRIMARY KEY,
    revision    INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    doc         TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  `,
  // 5: who may connect and call (broker/auth/): service accounts with an API key,
  // devices with a secret, registration tokens. Only hashes of keys, secrets and
  // tokens are stored; a revoked device keeps its row, so its id stays refused.
  `
  CREATE TABLE service_accounts (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    created_at  TEXT NOT NULL
  );
  CREATE TABLE device_credentials (
    device_id   TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
  );
  CREATE TABLE registration_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    labels      TEXT NOT NULL DEFAULT '{}',
    max_uses    INTEGER NOT NULL,
    uses        INTEGER NOT NULL DEFAULT 0,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT,
    created_at  TEXT NOT NULL
  );
  `,
  // 6: remote-access sessions and refused attempts (broker/remote/audit-store.ts), one row each;
  // bounded to the newest AUDIT_MAX_RECORDS by id, pruned as rows are added.
  `
  CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor       TEXT NOT NULL,
    device      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    what        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    bytes_up    INTEGER NOT NULL DEFAULT 0,
    bytes_down  INTEGER NOT NULL DEFAULT 0,
    exit_code   INTEGER,
    reason      TEXT
  );
  CREATE INDEX audit_device ON audit (device, id);
  CREATE INDEX audit_started ON audit (started_at);
  `,
  // 7: keys every replica of a hub on PostgreSQL shares, sealed with the secrets key (the desired-state
  // signing key: agents pin one key, whichever replica signs). A single hub keeps its signing key in
  // <dataDir>/signing-key.pem and leaves this table empty; it exists here so a schema version means
  // the same tables on both engines and `flotilla migrate` copies them whole.
  `
  CREATE TABLE hub_keys (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  TEXT NOT NULL
  );
  `,
  // 8: the replica that relays each remote-access session (a hub on PostgreSQL names itself; a
  // single hub on this file leaves it NULL), so a replica's sessions can be closed once it is gone.
  `
  ALTER TABLE audit ADD COLUMN replica TEXT;
  CREATE INDEX audit_open ON audit (replica) WHERE outcome = 'open';
  `,
  // 9: agent targets (broker/store/agent-targets.ts): each target's newest settings, every revision
  // ever stored (kept when its target is deleted), and the one counter that numbers revisions across
  // all targets. The counter has one row (id 1), made by the first put; it only grows, so a revision
  // number is never given out twice, whatever was deleted. JSON columns hold canonical JSON.
  `
  CREATE TABLE agent_targets (
    name        TEXT PRIMARY KEY,
    revision    INTEGER NOT NULL,
    scheduling  TEXT NOT NULL,
    release     TEXT NOT NULL,
    rollout     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE agent_target_revisions (
    revision    INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    release     TEXT NOT NULL,
    created_at  TEXT NOT NULL
  );
  CREATE INDEX agent_target_revisions_name ON agent_target_revisions (name, revision);
  CREATE TABLE agent_revision_counter (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_revision INTEGER NOT NULL
  );
  `,
  // 10: jobs (broker/store/jobs.ts): each job with its spec (JSON) and phase, one execution per device
  // it selected, and every uid a job was ever made with. A device records executions by uid, so a uid
  // must never come back: job_uids keeps it after its job is deleted. The partial indexes find what a
  // device's desired document names, the queued executions the deadline may expire, and whether a job
  // has an unfinished execution left (checked at each execution's end: without it, a scan of the job's
  // finished ones, which grows with the fleet).
  `
  CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    uid         TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    phase       TEXT NOT NULL,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    deadline    TEXT NOT NULL,
    updated_at  TEXT NOT NULL
  );
  CREATE TABLE job_executions (
    job              TEXT NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    device           TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    admitted         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    exit_code        INTEGER,
    container        TEXT,
    message          TEXT,
    next_attempt_at  TEXT,
    output           TEXT,
    PRIMARY KEY (job, device)
  );
  CREATE INDEX job_executions_desired ON job_executions (device) WHERE admitted = 1 AND state IN ('queued', 'running');
  CREATE INDEX job_executions_unstarted ON job_executions (job) WHERE state = 'queued' AND attempt = 0;
  CREATE INDEX job_executions_unfinished ON job_executions (job) WHERE state IN ('queued', 'running');
  CREATE TABLE job_uids (
    uid         TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    created_at  TEXT NOT NULL
  );
  `,
  // 11: sets of specs applied from a folder (broker/store/app-sets.ts): the prune scope an app was
  // applied under (NULL: none, so no prune deletes it) and where each revision's spec came from
  // (\`git:<commit>\`; NULL when the apply did not say). A prune reads one scope's apps by index.
  `
  ALTER TABLE apps ADD COLUMN scope TEXT;
  ALTER TABLE app_revisions ADD COLUMN source TEXT;
  CREATE INDEX apps_scope ON apps (scope) WHERE scope IS NOT NULL;
  `,
];
