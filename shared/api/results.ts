/**
 * What the hub's API methods return — the same bodies over HTTP and over the
 * MQTT request API. The hub builds them (broker/dispatcher/views.ts) and the
 * CLI reads them; both use these types, so the two cannot drift.
 */
import type { DownloadTotals, ImageDownload, ImageDownloadState } from '../schemas/images.js';
import type { JobExecutionReport, JobExecutionState, JobSpec } from '../schemas/job.js';
import type { AgentUpgradeReport, AppPhase, AppState, HostFacts } from '../schemas/messages.js';
import type { AppSpec, Labels, RolloutPolicy, Scheduling } from '../schemas/spec.js';

export interface ApplyResult {
  name: string;
  revision: number;
  changed: boolean;
}

/** What `apps.applyAll` does (or, on a dry run, would do) to one app of the set. */
export type ApplyAction = 'created' | 'configured' | 'unchanged';

/** One app of an `apps.applyAll` set, in the order of the request's specs. */
export interface AppliedApp {
  name: string;
  action: ApplyAction;
  /** The app's current revision after the apply: a new one when created or configured. */
  revision: number;
  /** The revision it replaces; null for a new app. */
  previousRevision: number | null;
  /** The devices the app's scheduling selects now: how many, and the first 100 ids in sorted order. */
  devices: { count: number; ids: string[] };
  /** The secrets the spec refers to, sorted (an apply whose secrets are missing is refused). */
  secrets: string[];
  /** The prune scope recorded on the app after the apply; null for none. */
  scope: string | null;
  /** The scope it had before: null and `scope` set means this apply adopted the app into the scope. */
  previousScope: string | null;
  /** Dry runs only, for a configured app: its current spec, so a client can show a diff. */
  current?: AppSpec;
}

/** An app `apps.applyAll` deleted with `prune` (or, on a dry run, would delete). */
export interface PrunedApp {
  name: string;
  /** Its current revision when it was deleted. */
  revision: number;
  scope: string;
  /** Dry runs only: its current spec. */
  current?: AppSpec;
}

export interface ApplyAllResult {
  dryRun: boolean;
  /** The source reference recorded on every new revision; null when none was given. */
  source: string | null;
  items: AppliedApp[];
  pruned: PrunedApp[];
}

/** One app as `apps.export` gives it back: the spec exactly as applied, no hub-made fields. */
export interface ExportedApp {
  name: string;
  revision: number;
  scope: string | null;
  spec: AppSpec;
}

/** One entry of `apps.history`. */
export interface RevisionSummary {
  revision: number;
  createdAt: string;
  specHash: string;
  /** The image of each container, in spec order. */
  images: string[];
  /** Whether this is the app's current revision (the one devices are told to run). */
  current: boolean;
  /** How the revision was made: `apply` or `rollback to N`; absent for revisions stored before causes were recorded. */
  cause?: string;
  /** Where its spec came from, as the `apps.applyAll` that made it said (`git:<commit>`); absent when none was given. */
  source?: string;
}

/** `apps.force`: the revision now current even where the app held its update lock. */
export interface ForceResult {
  name: string;
  revision: number;
  forced: true;
}

/** `apps.retry`: the same spec as a new revision. */
export interface RetryResult {
  name: string;
  revision: number;
  /** The revision it repeats. */
  retryOf: number;
}

/** `apps.delete`, `secrets.delete`, `serviceaccounts.delete`. */
export interface Deleted {
  name: string;
  deleted: true;
}

/** What the hub shows of a secret: never its value (`secrets.list`; `secrets.set` answers the name alone). */
export interface SecretInfo {
  name: string;
  updatedAt: string;
}

/** `apps.history`: every revision of an app, newest first. */
export interface AppHistory {
  name: string;
  /** The current revision (always the newest: a rollback is a new revision). */
  current: number;
  items: RevisionSummary[];
}

/** `apps.revision`: one stored revision with its whole spec, so two can be compared. */
export interface AppRevision {
  name: string;
  revision: number;
  spec: AppSpec;
  createdAt: string;
  /** Whether this is the app's current revision. */
  current: boolean;
  /** How the revision was made, as `apps.history` says it. */
  cause?: string;
  /** Where its spec came from, as `apps.history` says it. */
  source?: string;
}

/** `apps.rollback`: the new revision, or the current one when the target's spec is already current (`changed: false`). */
export interface RollbackResult {
  name: string;
  revision: number;
  changed: boolean;
  /** The revision whose spec was restored. */
  rolledBackTo: number;
}

export interface AppOnDevice {
  id: string;
  online: boolean;
  phase: AppPhase | null;
  message?: string;
  revision: number | null;
}

export interface DeviceCounts {
  matched: number;
  /** Devices running the app's current revision. */
  running: number;
}

export interface AppSummary {
  name: string;
  revision: number;
  scheduling: Scheduling;
  containers: number;
  devices: DeviceCounts;
  createdAt: string;
  updatedAt: string;
  /** The prune scope the app was applied under (`apps.applyAll`); absent for none. */
  scope?: string;
}

export interface AppDetail {
  name: string;
  revision: number;
  spec: AppSpec;
  createdAt: string;
  updatedAt: string;
  devices: AppOnDevice[];
  /** The prune scope the app was applied under (`apps.applyAll`); absent for none. */
  scope?: string;
}

/** Set by operators; `null` is a tombstone that removes a label the agent reports. */
export type OperatorLabels = Record<string, string | null>;

export interface DeviceView {
  id: string;
  online: boolean;
  lastSeen: string | null;
  /** What scheduling matches: reported labels, overridden by the operator's. */
  labels: Labels;
  operatorLabels: OperatorLabels;
  reportedLabels: Labels;
  desiredRevision: number;
  observedRevision: number | null;
  host: HostFacts | null;
  apps: AppState[];
  runtimeError?: string;
  /** When its credentials were revoked (ISO 8601); absent for a device that is not revoked. */
  revokedAt?: string;
  /** Set while two connections keep taking this device's id from each other (broker/mqtt/id-clash.ts). */
  idClash?: IdClash;
  /** The agent's own upgrade, as the device last reported it: under way, failed or rolled back (absent: none). */
  agentUpgrade?: AgentUpgradeReport;
  /** The agent release the hub tells this device to run (absent: none; it keeps what it runs). */
  desiredAgentVersion?: string;
  /**
   * What the rollout of the agent target this device follows says of it: waiting, updating, healthy, failed, or sent back
   * (`reverted`) to its previous revision after failures or an abort. Absent when that target has no rollout at its revision
   * holding the device, or the rollout is complete and the device healthy in it.
   */
  agentRollout?: DeviceAgentRollout;
  /**
   * The job executions the device last reported (its state report's `jobs`), without their
   * `output`, which `jobs.get` carries. Absent when it reported none.
   */
  jobs?: JobExecutionReport[];
  /**
   * The images the device last reported downloading, or downloaded and still wanted (its state
   * report's `images`, docs/image-downloads.md). Absent when it reported none.
   */
  images?: ImageDownload[];
  /**
   * What downloading images cost and saved on the device since its agent's data dir was made,
   * with its rate limit and daily budget. Absent for an agent that does not download images itself.
   */
  downloads?: DownloadTotals;
}

/** One device in an agent target's rollout (`rollout status agent/<target>` shows them all). */
export interface DeviceAgentRollout {
  target: string;
  revision: number;
  /** The rollout's phase (`paused` after failures, `aborted`). */
  phase: RolloutPhase;
  state: RolloutDeviceState;
  /** Why it failed or was sent back. */
  message?: string;
}

/** Two devices use one id: their connections keep taking it from each other. */
export interface IdClash {
  deviceId: string;
  /** When the clash was first seen (ISO 8601). */
  since: string;
  /** Takeovers within the last 10 minutes. */
  takeovers: number;
  /** The remote addresses the competing connections came from, newest last. */
  addresses: string[];
}

export interface List<T> {
  items: T[];
}

/** One app's device counts, as `get apps` shows them (DEVICES running/matched). */
export function deviceCounts(revision: number, devices: readonly AppOnDevice[]): DeviceCounts {
  return {
    matched: devices.length,
    running: devices.filter((d) => d.phase === 'running' && d.revision === revision).length,
  };
}

/** The list row of one app, from its detail body. */
export function summarizeApp(app: AppDetail): AppSummary {
  return {
    name: app.name,
    revision: app.revision,
    scheduling: app.spec.scheduling,
    containers: app.spec.spec.containers.length,
    devices: deviceCounts(app.revision, app.devices),
    createdAt: app.createdAt,
    updatedAt: app.updatedAt,
    ...(app.scope !== undefined ? { scope: app.scope } : {}),
  };
}

export const ROLLOUT_PHASES = ['progressing', 'paused', 'complete', 'aborted'] as const;
export type RolloutPhase = (typeof ROLLOUT_PHASES)[number];

/**
 * A device's place in a rollout. `pending`: not its turn yet (runs its previous
 * revision); `updating`: told to run the new revision, not yet healthy;
 * `healthy`: runs the new revision; `failed`: failed at the new revision or
 * timed out (still told to run it, converges if it recovers); `reverted`: sent
 * back to its previous revision (by the failure threshold or an abort).
 */
export const ROLLOUT_DEVICE_STATES = ['pending', 'updating', 'healthy', 'failed', 'reverted'] as const;
export type RolloutDeviceState = (typeof ROLLOUT_DEVICE_STATES)[number];

export interface RolloutDeviceView {
  id: string;
  /** The revision this device is told to run now. */
  revision: number;
  state: RolloutDeviceState;
  /** When it entered `state`. */
  since: string;
  /** Whether it belongs to the canary stage. */
  canary: boolean;
  /** Why it failed (a timeout, or the phase it reported). */
  message?: string;
  /** Whether it holds the rollout revision's images, and how their download goes (app rollouts, once the device has reported). */
  images?: RolloutDeviceImages;
}

/**
 * A device's hold of the images of the revision being rolled out, from its last state report: an
 * image is held when the device reports it `present` or runs a container of it. What is not held
 * yet is summed from the device's `images` entries for it (prefetched or not).
 */
export interface RolloutDeviceImages {
  /** Images of the revision the device holds. */
  present: number;
  /** Distinct images the revision names. */
  count: number;
  /** Of the images not held yet that the device reports: the state most worth a look (failed, waiting, downloading, loading, queued). */
  state?: ImageDownloadState;
  /** Bytes received of those images. */
  bytes?: number;
  /** Bytes they need, when every one of them is reported with its size. */
  total?: number;
  /** Bytes per second, summed, while they download. */
  rate?: number;
  /** The device's word on the image in `state`: a fallback's reason, a failure, a wait for the daily budget. */
  message?: string;
  /** With `waiting`: when it goes on. */
  resumesAt?: string;
}

/** What the devices of a rollout downloaded of its revision's images, and what layer reuse and resumes saved them. */
export interface RolloutDownloads {
  /** Bytes received, resent ones included. */
  bytes: number;
  /** Compressed layer bytes not downloaded because the engine already had the layers. */
  reusedBytes: number;
  /** Bytes received more than once (a break that could not resume, a corrupted blob). */
  resentBytes: number;
  /** Devices that hold every image of the revision. */
  ready: number;
}

export type RolloutCounts = Record<RolloutDeviceState, number> & { total: number };

/** `rollouts.status`: the newest rollout of an app. */
export interface RolloutStatus {
  app: string;
  /** The revision being rolled out (the app's current revision, also after an abort). */
  revision: number;
  /** The revision before it in the app's history. */
  previousRevision: number;
  phase: RolloutPhase;
  reason?: string;
  /** Canary stage size (the first `canary` devices). */
  canary: number;
  devices: RolloutDeviceView[];
  counts: RolloutCounts;
  /** The revision's images across its devices (app rollouts; absent for an agent target's). */
  downloads?: RolloutDownloads;
  startedAt: string;
  updatedAt: string;
}

/**
 * One agent target (`flotilla agent upgrade`): the agent release the devices it selects must
 * run. Where several targets select a device, the one set last (the highest revision) wins.
 */
export interface AgentTargetView {
  name: string;
  /** Its newest revision: one sequence across all targets, so "set last" is the higher number. */
  revision: number;
  version: string;
  scheduling: Scheduling;
  /** The architectures the hub has a release tarball of this version for (`amd64`, `arm64`). */
  arches: string[];
  /** The agent image by digest, for devices whose agent runs as a container. */
  image?: string;
  rollout?: RolloutPolicy;
  healthTimeout?: string;
  /**
   * Devices that follow it (it selects them, and no target set later does; reported ones only), and of those: running `version`,
   * upgrading now, failed, rolled back. Failed and rolled back are as the device reports them at this revision or, when it reports
   * nothing of it, as the target's rollout says: `rolledBack` then also counts a device the rollout sent back to its previous
   * revision (after failures, or an abort), which reports no upgrade once it runs that again.
   */
  devices: { matched: number; running: number; upgrading: number; failed: number; rolledBack: number };
  createdAt: string;
  updatedAt: string;
}

/** `agent.upgrade`: the target as stored, and whether this call made a new revision. */
export interface AgentUpgradeResult {
  name: string;
  revision: number;
  version: string;
  changed: boolean;
  /** With a rollout policy: the rollout's name for `flotilla rollout status` (`agent/<name>`). */
  rollout?: string;
}

/** `hub.version`: which Flotilla the hub runs, and the protocol versions its agents may speak. */
export interface HubVersion {
  version: string;
  protocolVersions: number[];
}

/**
 * One remote-access session, or one refused attempt (`outcome: denied`), as
 * the hub audits it (`audit.list`, `flotilla audit`).
 */
export interface AuditRecord {
  id: number;
  /** The service account (or `admin`) that opened it, or the MQTT client that tried a session's topics. */
  actor: string;
  device: string;
  kind: 'exec' | 'shell' | 'forward' | 'topic';
  /** What was asked: the command, the target, the topic. */
  what: string;
  /**
   * `open` while it runs; then `exited` (a command ended with exitCode), `closed`, `failed`, `link_lost`, `idle`,
   * `hub_lost` (the hub, or the replica that relayed it, stopped while it ran); or `denied`.
   */
  outcome: 'open' | 'exited' | 'closed' | 'failed' | 'link_lost' | 'idle' | 'hub_lost' | 'denied';
  startedAt: string;
  endedAt?: string;
  /** Bytes of session data from the device to the opener, and to the device. */
  bytesUp: number;
  bytesDown: number;
  exitCode?: number;
  reason?: string;
}

/**
 * A job's phase: `active` while any execution is not final; `complete` once all
 * are; `canceled` (`flotilla job cancel`); `aborted` (its failures reached the
 * rollout's abort threshold, and the rest were canceled).
 */
export const JOB_PHASES = ['active', 'complete', 'canceled', 'aborted'] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

export type JobCounts = Record<JobExecutionState, number> & { total: number };

/** One device's execution of a job, as the hub knows it. */
export interface JobExecutionView {
  device: string;
  state: JobExecutionState;
  /** The attempt running or last run (0: none started). */
  attempt: number;
  /** When the hub last heard of it changing. */
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The container whose exit decided it. */
  container?: string;
  message?: string;
  nextAttemptAt?: string;
  /** The last lines of output the device reported. */
  output?: string[];
}

/** `jobs.list`: one row per job. */
export interface JobSummary {
  name: string;
  phase: JobPhase;
  counts: JobCounts;
  createdAt: string;
  /** When devices that have not started it count as `expired`. */
  deadline: string;
  /** Why it was canceled or aborted. */
  reason?: string;
}

/** `jobs.get` and friends: the job with its spec and every execution, by device id. */
export interface JobDetail extends JobSummary {
  spec: JobSpec;
  executions: JobExecutionView[];
}
