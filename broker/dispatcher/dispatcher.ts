/**
 * The dispatcher: the hub's side of the broker, in process (broker/mqtt/hub-bus.ts).
 * It routes every message it receives in one place:
 *
 *   devices/+/state   → record reported state (and labels, and job executions) → advance rollouts → maybe re-plan desired
 *   devices/+/status  → record online/offline (a device back online may take a job's free slot)
 *   api/+/request     → handed to the API request router (api-requests.ts)
 *
 * Device reports, fleet-wide syncs and rollout ticks run one at a time, in
 * the order they arrived (the stores answer asynchronously): two passes never
 * compute one device's next document at once, so no revision is issued twice.
 * and publishes each device's desired document, retained at QoS 1. A timer
 * advances rollouts too, so a device that never reports still times out, and
 * another expires jobs at their deadline (broker/jobs/).
 *
 * Invariants:
 * - A device's desired revision only grows, even across a lost hub database:
 *   a device that reports a higher observed revision pushes the counter past it.
 * - A desired document is republished only when its content hash changes, so
 *   re-applying an unchanged spec never wakes a device.
 * - A bad message is logged with its reason and dropped; nothing here throws
 *   out of the message handler.
 * - Every desired document is signed with the hub's key before it is stored
 *   or published, the republication after a restart too (re-signed then, so
 *   a document stored before signing or under an older key goes out signed).
 * - Desired documents reach the broker paced (at most `desiredChunk` it has
 *   not yet taken at once), never a whole fleet in one burst, and for each
 *   device only its newest document is ever waiting: an older one never goes
 *   out after a newer one.
 * - Job executions are admitted (broker/jobs/plan.ts) only here, on the
 *   leader, in the work chain and before the documents that carry them are
 *   computed: one process fills a job's concurrency slots.
 * - A desired app carries a `prefetch` (prefetch.ts) only for a device whose
 *   last state report has `downloads` (an agent that knows the field): a
 *   report that adds or drops `downloads` re-plans its device.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import {
  type DesiredJob,
  type DesiredState,
  DeviceState,
  DeviceStatus,
  decode,
  formatIssues,
  type ParsedTopic,
  signDesired,
  type Topics,
} from '../../shared/index.js';
import type { DispatcherJobs, JobPlanningPass, JobsChange } from '../jobs/jobs.js';
import { desiredJobsFor } from '../jobs/plan.js';
import type { HubBus, MessageOrigin } from '../mqtt/hub-bus.js';
import type { AppStore, StoredApp } from '../store/apps.js';
import type { DeviceStore, IssuedDesired, PlannedDevice } from '../store/devices.js';
import type { StoredExecution, StoredJob } from '../store/jobs.js';
import { isDatabaseUnavailable } from '../store/pg/errors.js';
import type { SecretStore } from '../store/secrets.js';
import { type AgentPass, agentFor, EMPTY_AGENT_PASS } from './agent-plan.js';
import type { AgentRollouts } from './agent-rollouts.js';
import type { ApiRequestHandler } from './api-requests.js';
import { PrefetchPass } from './prefetch.js';
import { parseSyncRequest, type ReplicaRole, SOLE_REPLICA, SYNC_TOPIC, type SyncRequest } from './replica.js';
import type { RolloutSnapshot, Rollouts } from './rollouts.js';
import { type ContainersSpec, desiredAppsFor, desiredHash, type SecretLookup, SecretRefError } from './scheduling.js';
import { secretValues } from './secret-values.js';

export interface DispatcherDeps {
  bus: HubBus;
  topics: Topics;
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  /** Answers what arrives on `api/+/request`. */
  apiRequests: ApiRequestHandler;
  rollouts: Rollouts;
  /** Agent targets and their rollouts (agent-rollouts.ts): each device's signed `agent` section. Without them, documents have none. */
  agentRollouts?: AgentRollouts;
  /** Jobs (broker/jobs/jobs.ts): each device's `jobs`, their reports, admission and expiry. Without them, documents have none. */
  jobs?: DispatcherJobs;
  logger: Logger;
  /** The hub's Ed25519 key (signing-key.ts): every desired document is signed with it before it is stored or published. */
  signingKey: KeyObject;
  now?: () => Date;
  /** How often rollouts are advanced without a device report (device timeouts); default 1 s. */
  rolloutTickMs?: number;
  /** How often jobs' deadlines are checked, and devices back online admitted to a job's free slots; default JOB_TICK_MS. */
  jobTickMs?: number;
  /** Desired documents handed to the broker at once, the next ones waiting until it has taken them (default 200). */
  desiredChunk?: number;
  /** This hub's share of the work when it is one replica of many (replica.ts); default: all of it. */
  replica?: ReplicaRole;
}

/**
 * After a restart the broker's retained store is empty (or may be) and every
 * device's desired document is published again: 10,000 devices would be
 * 10,000 retained QoS 1 publishes queued in the broker at once while devices
 * reconnect. They go out this many at a time.
 */
export const DESIRED_CHUNK = 200;

/** Up to this many devices are re-planned by reading each one; more, by one read of the fleet. */
const FEW_DEVICES = 32;

/** How often the leader expires jobs past their deadline and admits devices that came back online. */
export const JOB_TICK_MS = 2000;

/** The longest the work chain runs before it lets the event loop turn (connections, keepalives, the API). */
const MAX_STRETCH_MS = 20;

const LEADING = 'leading: running rollouts and desired state for the fleet';

export class Dispatcher {
  private readonly log: Logger;
  private readonly now: () => Date;
  private syncScheduled = false;
  private rolloutTimer: NodeJS.Timeout | undefined;
  private jobTimer: NodeJS.Timeout | undefined;
  private jobTickQueued = false;
  /** A device came online since the last job tick: a job's free slot may be its now. */
  private admissionDue = false;
  /** Job changes waiting for the one queued task that plans them (jobsChanged). */
  private readonly pendingJobs = { admit: new Set<string>(), devices: new Set<string>() };
  private jobChangeQueued = false;
  /**
   * Desired documents waiting to be published, newest per device. `fresh`
   * holds what a sync just computed and goes first: a new apply must not wait
   * behind a fleet's republication of documents its devices already hold
   * (they keep their last desired state locally). `restore` holds the
   * republication after a restart; a device with a fresh document leaves it.
   */
  private readonly fresh = new Map<string, DesiredState>();
  private readonly restore = new Map<string, DesiredState>();
  private pumping = false;
  private stopped = false;
  private restoreStartedAt: number | undefined;
  private restoreCount = 0;
  /** The tail of the work chain: reports, syncs and ticks, one at a time. */
  private work: Promise<void> = Promise.resolve();
  private tickQueued = false;
  /** When the chain's current run without a turn of the event loop began (undefined: the loop has turned since). */
  private stretchStart: number | undefined;
  private readonly replica: ReplicaRole;

  constructor(private readonly deps: DispatcherDeps) {
    this.log = deps.logger.child({ component: 'dispatcher' });
    this.now = deps.now ?? (() => new Date());
    this.replica = deps.replica ?? SOLE_REPLICA;
  }

  /** Subscribes, republishes every stored desired document (the broker's retained store may be empty after a restart), then syncs. */
  async start(): Promise<void> {
    const { bus, topics } = this.deps;
    // A state report or an API request is handled by the replica it came through (replica.ts), so
    // it is taken from that replica's own publish path; a status and a re-plan request are the
    // leader's, wherever they were published, so they cross between replicas.
    bus.subscribeHere([topics.allDevices('state'), topics.allApiRequests()], (topic, payload) =>
      this.route(topic, payload, { publishedHere: true }),
    );
    const filters = [topics.allDevices('status'), SYNC_TOPIC];
    this.replica.onLeadership((leading) => this.leadershipChanged(leading));
    if (this.replica.leading) {
      if (this.replica.clustered) this.log.info(LEADING);
      // First in the work chain: reports that arrive while it runs wait behind it. A failure fails the start.
      const restored = this.restoreStored();
      this.work = restored.catch(() => undefined);
      // The fleet's plan runs behind start(), a chunk per turn of the event loop, while the republication goes out.
      this.enqueue('planning desired state', () => this.syncAll());
      await bus.subscribe(filters, (topic, payload, origin) => this.route(topic, payload, origin));
      await restored;
      this.startTicking();
    } else {
      await bus.subscribe(filters, (topic, payload, origin) => this.route(topic, payload, origin));
    }
  }

  private startTicking(): void {
    if (this.rolloutTimer !== undefined || this.stopped) return;
    this.rolloutTimer = setInterval(() => this.advanceRollouts(), this.deps.rolloutTickMs ?? 1000);
    this.rolloutTimer.unref();
    if (this.deps.jobs) {
      this.jobTimer = setInterval(() => this.tickJobs(), this.deps.jobTickMs ?? JOB_TICK_MS);
      this.jobTimer.unref();
    }
  }

  private stopTicking(): void {
    clearInterval(this.rolloutTimer);
    this.rolloutTimer = undefined;
    clearInterval(this.jobTimer);
    this.jobTimer = undefined;
  }

  /** A replica that becomes the leader takes over the fleet as the database has it; one that stops leading stops planning. */
  private leadershipChanged(leading: boolean): void {
    if (leading) {
      this.log.info(LEADING);
      this.enqueue('taking over desired state', () => this.restoreStored());
      this.enqueue('planning desired state', () => this.syncAll());
      this.startTicking();
    } else {
      this.log.warn('no longer leading: rollouts and desired state are left to the leader');
      this.stopTicking();
    }
  }

  private async restoreStored(): Promise<void> {
    // Online flags from before a restart are stale: the broker's retained
    // status messages are gone with it. Devices say so again when they reconnect.
    // Not when other replicas run: the devices connected to them are online.
    if (!this.replica.clustered) await this.deps.devices.markAllOffline();
    // Queued, not published here: the pump sends them in chunks while start() returns.
    for (const device of await this.deps.devices.list()) {
      if (device.desired) this.restore.set(device.id, device.desired);
    }
    this.restoreCount = this.restore.size;
    if (this.restoreCount > 0) {
      this.restoreStartedAt = performance.now();
      this.log.info({ devices: this.restoreCount, chunk: this.chunk }, 'republishing stored desired state, paced');
    }
    this.pump();
  }

  /** Nothing new starts; resolves once what was running has finished. */
  stop(): Promise<void> {
    this.stopped = true;
    this.stopTicking();
    return this.work;
  }

  /** Desired documents computed but not yet handed to the broker (fresh and restored). */
  get desiredBacklog(): number {
    return this.fresh.size + this.restore.size;
  }

  private get chunk(): number {
    return Math.max(1, this.deps.desiredChunk ?? DESIRED_CHUNK);
  }

  /** Re-plans the whole fleet now, behind anything queued; resolves once that pass has run. */
  sync(): Promise<void> {
    this.enqueue('re-planning desired state', () => this.syncAll());
    return this.work;
  }

  /** Resolves once every report, sync and tick queued so far has run. */
  idle(): Promise<void> {
    return this.work;
  }

  /** Moves rollouts on (a tick waits if the previous one has not run yet); a rollout that changed may change what devices must run. */
  advanceRollouts(): void {
    if (this.tickQueued || !this.replica.leading) return;
    this.tickQueued = true;
    this.enqueue('advancing rollouts', async () => {
      this.tickQueued = false;
      // One read of the rollouts store for both: the app and agent rollouts are told apart by key, and neither writes the other's.
      const active = await this.deps.rollouts.store.active();
      const apps = await this.deps.rollouts.advanceAll(active);
      const agents = (await this.deps.agentRollouts?.advanceAll(active)) ?? false;
      if (apps || agents) this.scheduleSync();
    });
  }

  /**
   * Jobs changed what some devices must run (jobs.ts JobsChange): on the leader, the named jobs'
   * waiting executions are admitted, then those devices and the admitted ones planned; another
   * replica asks the leader.
   */
  jobsChanged(change: JobsChange): void {
    const jobs = this.deps.jobs;
    if (!jobs || (change.admit.length === 0 && change.devices.length === 0)) return;
    if (!this.replica.leading) {
      this.askLeader({ jobs: change });
      return;
    }
    // Changes that arrive while one waits in the chain join it: a burst of finished executions
    // (a fleet reporting) is one admission pass over their jobs, not one each.
    for (const name of change.admit) this.pendingJobs.admit.add(name);
    for (const device of change.devices) this.pendingJobs.devices.add(device);
    if (this.jobChangeQueued) return;
    this.jobChangeQueued = true;
    this.enqueue('planning job changes', async () => {
      this.jobChangeQueued = false;
      const admit = [...this.pendingJobs.admit];
      const devices = [...this.pendingJobs.devices];
      this.pendingJobs.admit.clear();
      this.pendingJobs.devices.clear();
      const admitted = admit.length > 0 ? await jobs.admit(admit) : [];
      await this.syncDevices([...devices, ...admitted]);
    });
  }

  /** Expires what passed its deadline and admits devices that came back online (a tick waits if the previous one has not run yet). */
  private tickJobs(): void {
    const jobs = this.deps.jobs;
    if (!jobs || this.jobTickQueued || !this.replica.leading) return;
    this.jobTickQueued = true;
    this.enqueue('expiring and admitting jobs', async () => {
      this.jobTickQueued = false;
      const expired = await jobs.expire();
      const admitDue = this.admissionDue;
      this.admissionDue = false;
      const admitted = admitDue ? await jobs.admit() : [];
      await this.syncDevices([...(expired?.devices ?? []), ...admitted]);
    });
  }

  /** Coalesces bursts of changes (an apply, a relabel) into one pass over the fleet. */
  scheduleSync(): void {
    if (!this.replica.leading) {
      this.askLeader({});
      return;
    }
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.enqueue('re-planning desired state', () => {
        this.syncScheduled = false;
        return this.syncAll();
      });
    });
  }

  /** Runs `task` after everything queued before it; a failure is logged with `what`, and the chain goes on. */
  private enqueue(what: string, task: () => Promise<void>): void {
    this.work = this.work
      .then(() => this.breathe())
      .then(() => (this.stopped ? undefined : task()))
      .catch((err: unknown) =>
        // The database being away is logged once by the database (store/pg/database.ts), not per task.
        isDatabaseUnavailable(err) ? this.log.debug({ err: err.message }, `${what} failed`) : this.log.error({ err }, `${what} failed`),
      );
  }

  /**
   * Lets the event loop turn when the chain has run for MAX_STRETCH_MS
   * without it. The stores answer in microtasks (SQLite is synchronous
   * underneath), so tasks queued back to back would otherwise run as one
   * piece: the reports that arrive during a fleet-wide pass, one per device,
   * queue behind it, and 10,000 of them hold the loop for a second or more
   * (bench/fanout.ts).
   */
  private async breathe(): Promise<void> {
    if (this.stretchStart === undefined) {
      this.stretchStart = performance.now();
      // Runs at the loop's next turn, whoever causes it: a new stretch starts there.
      setImmediate(() => {
        this.stretchStart = undefined;
      });
      return;
    }
    if (performance.now() - this.stretchStart < MAX_STRETCH_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Re-plans every device that has reported its state (see ingestStatus for
   * why not the others), a chunk of devices per turn of the event loop: each
   * chunk is handed to the pump as it is done, so the broker delivers the
   * first documents while the rest are signed, and nothing else on the hub
   * (connections, the API) waits for a whole fleet's pass: planning, signing
   * and storing a document take ~0.3 ms here, so 10,000 devices in one turn
   * would hold the event loop for 3–4 s (bench/fanout.ts).
   */
  private async syncAll(): Promise<void> {
    // What a lost request or a change of leader left waiting is admitted before the plan reads it.
    await this.deps.jobs?.admit();
    const pass = await this.fleetPass();
    const devices = (await this.deps.devices.listForPlanning()).filter((device) => device.state);
    for (let first = 0; first < devices.length; first += this.chunk) {
      if (first > 0) await new Promise((resolve) => setImmediate(resolve));
      await this.planChunk(devices.slice(first, first + this.chunk), pass);
    }
    // With no device to plan, still what a restart queued for republication.
    this.pump();
  }

  /** A whole chunk is stored in one write, then queued before the pump looks, so the first chunk is a full one rather than the first device alone. */
  private async planChunk(devices: readonly PlannedDevice[], pass: FleetPass): Promise<void> {
    const jobs = await pass.jobs?.desiredFor(devices.map((device) => device.id));
    const issued: IssuedDesired[] = [];
    for (const device of devices) {
      const planned = this.planDevice(device, pass, jobs?.get(device.id) ?? []);
      if (planned) issued.push(planned);
    }
    await this.issue(issued);
  }

  /** What every device's plan is computed from, read once per pass: apps, their rollouts, the secrets they name, agent targets, jobs. */
  private async fleetPass(): Promise<FleetPass> {
    const apps = await this.deps.apps.list();
    const rollouts = await this.deps.rollouts.snapshot(apps);
    const specs: ContainersSpec[] = [...apps.map((app) => app.spec)];
    for (const { revisions } of rollouts.values()) for (const stored of revisions.values()) specs.push(stored.spec);
    const agents = (await this.deps.agentRollouts?.pass()) ?? EMPTY_AGENT_PASS;
    const jobs = await this.deps.jobs?.planningPass();
    if (jobs) specs.push(...jobs.specs);
    const secret = await secretValues(this.deps.secrets, specs);
    const prefetch = new PrefetchPass(apps, rollouts, secret, (app, revision, err) =>
      this.log.error(
        { app, revision, secret: err.secret, path: err.path, reason: err.message },
        'prefetch left out: unusable secret; pending devices download the images at their turn',
      ),
    );
    return { apps, rollouts, secret, agents, prefetch, ...(jobs ? { jobs } : {}) };
  }

  /** `device` as just read from the store: a fleet-wide pass reads every device once, not once more each. */
  private async syncDevice(device: PlannedDevice): Promise<void> {
    await this.planChunk([device], await this.fleetPass());
  }

  /** Plans these devices (each once, those that have reported) over one pass; the others get theirs at their first report. */
  private async syncDevices(ids: readonly string[]): Promise<void> {
    const wanted = new Set(ids);
    if (wanted.size === 0) return;
    const pass = await this.fleetPass();
    // A job over the fleet re-plans thousands at once: one read of the fleet, not a round trip per device.
    const devices: PlannedDevice[] = [];
    if (wanted.size > FEW_DEVICES) {
      for (const device of await this.deps.devices.listForPlanning()) if (wanted.has(device.id) && device.state) devices.push(device);
    } else {
      for (const id of wanted) {
        const device = await this.deps.devices.get(id);
        if (device?.state) devices.push(device);
      }
    }
    for (let first = 0; first < devices.length; first += this.chunk) {
      if (first > 0) await new Promise((resolve) => setImmediate(resolve));
      await this.planChunk(devices.slice(first, first + this.chunk), pass);
    }
  }

  /** The device's next document, signed, or undefined when it already holds what it must run (or it cannot be computed). */
  private planDevice(
    device: PlannedDevice,
    { apps, rollouts, secret, agents, prefetch }: FleetPass,
    jobEntries: ReadonlyArray<{ job: StoredJob; execution: StoredExecution }>,
  ): IssuedDesired | undefined {
    const deviceId = device.id;
    let desiredApps: DesiredState['apps'];
    try {
      desiredApps = desiredAppsFor(device.id, device.labels, apps, secret, (app) =>
        this.deps.rollouts.versionFor(app, device.id, rollouts),
      );
      // Only an agent that reports `downloads` knows `prefetch`; an older one would refuse the document.
      if (device.state?.downloads) desiredApps = prefetch.apply(device.id, desiredApps);
    } catch (err) {
      if (!(err instanceof SecretRefError)) throw err;
      this.log.error(
        { deviceId, secret: err.secret, path: err.path, reason: err.message },
        'cannot compute desired state: unusable secret; device keeps its last desired state',
      );
      return undefined;
    }
    const agent = agentFor(agents, device);
    const jobs = this.jobsFor(deviceId, jobEntries, secret);
    const hash = desiredHash(desiredApps, agent, jobs);
    const behind = (device.observedRevision ?? 0) > device.desiredRevision;
    if (hash === device.desiredHash && !behind) return undefined;
    const desired = signDesired(
      {
        deviceId: device.id,
        revision: Math.max(device.desiredRevision, device.observedRevision ?? 0) + 1,
        issuedAt: this.now().toISOString(),
        apps: desiredApps,
        ...(agent ? { agent } : {}),
        ...(jobs.length > 0 ? { jobs } : {}),
      },
      this.deps.signingKey,
    );
    return { desired, hash };
  }

  /** A device's desired jobs; one that cannot be put in its document is logged and left out, the rest go on. */
  private jobsFor(
    deviceId: string,
    entries: ReadonlyArray<{ job: StoredJob; execution: StoredExecution }>,
    secret: SecretLookup,
  ): DesiredJob[] {
    if (entries.length === 0) return [];
    const { jobs, leftOut } = desiredJobsFor(entries, secret);
    for (const { job, reason, ...secretRef } of leftOut) {
      this.log.error({ deviceId, job, reason, ...secretRef }, 'job left out of desired state; the device gets it once this is fixed');
    }
    return jobs;
  }

  /** Stores the documents (one write), then queues them for the broker: a document is never published before it is stored. */
  private async issue(issued: readonly IssuedDesired[]): Promise<void> {
    if (issued.length === 0) return;
    await this.deps.devices.recordDesiredMany(issued);
    for (const { desired } of issued) {
      this.queueDesired(desired);
      const agent = desired.agent ? { agent: `${desired.agent.version}@${desired.agent.revision}` } : {};
      const jobs = desired.jobs ? { jobs: desired.jobs.map((j) => (j.cancel ? `${j.name} (cancel)` : j.name)) } : {};
      this.log.info(
        {
          deviceId: desired.deviceId,
          revision: desired.revision,
          apps: desired.apps.map((a) => `${a.name}@${a.revision}`),
          ...agent,
          ...jobs,
        },
        'desired state published',
      );
    }
    this.pump();
  }

  /** Queues a freshly computed document; it replaces anything still waiting for that device. */
  private queueDesired(desired: DesiredState): void {
    this.restore.delete(desired.deviceId);
    // A waiting older document is replaced in place (Map.set keeps its position).
    this.fresh.set(desired.deviceId, desired);
  }

  /**
   * Hands the next chunk to the broker and waits until it has taken every
   * one (or failed) before the next: flow control by the broker's own pace,
   * not a guessed timer. Documents queued meanwhile wait,
   * one per device. Idle, a single document goes out at once.
   */
  private pump(): void {
    if (this.pumping || this.stopped) return;
    const batch: DesiredState[] = [];
    for (const queue of [this.fresh, this.restore]) {
      for (const [deviceId, desired] of queue) {
        if (batch.length >= this.chunk) break;
        queue.delete(deviceId);
        // Fresh documents were signed as they were computed; stored ones are signed here, a chunk at a time, not all at start.
        batch.push(queue === this.restore ? signDesired(desired, this.deps.signingKey) : desired);
      }
    }
    if (batch.length === 0) return;
    this.pumping = true;
    let outstanding = batch.length;
    const settled = () => {
      if (--outstanding > 0) return;
      this.pumping = false;
      if (this.restoreStartedAt !== undefined && this.restore.size === 0) {
        this.log.info(
          { devices: this.restoreCount, ms: Math.round(performance.now() - this.restoreStartedAt) },
          'stored desired state republished',
        );
        this.restoreStartedAt = undefined;
      }
      // Not recursively from inside the broker's callback: a fresh turn of the event loop.
      setImmediate(() => this.pump());
    };
    for (const desired of batch) {
      const topic = this.deps.topics.device(desired.deviceId, 'desired');
      this.deps.bus.publish(topic, JSON.stringify(desired), { qos: 1, retain: true }).then(settled, (err: Error) => {
        this.log.warn({ deviceId: desired.deviceId, err: err.message }, 'publishing desired state failed');
        settled();
      });
    }
  }

  private route(topic: string, payload: Buffer, origin: MessageOrigin): void {
    if (topic === SYNC_TOPIC) {
      this.syncAsked(payload);
      return;
    }
    const parsed = this.deps.topics.parse(topic);
    try {
      if (!parsed) {
        this.log.debug({ topic }, 'ignoring message on unknown topic');
        return;
      }
      if (parsed.kind === 'api') {
        if (parsed.channel === 'request' && origin.publishedHere) this.deps.apiRequests(parsed.clientId, payload);
        return;
      }
      // Session data is the session relay's (broker/remote/), never the dispatcher's.
      if (parsed.kind === 'session') return;
      // A cleared retained message is not a report.
      if (payload.length === 0) return;
      // Another replica's: the one it came through records a state, the leader a status.
      if (parsed.channel === 'state' && !origin.publishedHere) return;
      if (parsed.channel === 'status' && !this.replica.leading) return;
      this.enqueue(`handling ${parsed.channel} of device ${parsed.deviceId}`, () => this.handle(parsed, payload));
    } catch (err) {
      this.log.error({ topic, err }, 'message handler failed; message dropped');
    }
  }

  private async handle(parsed: Extract<ParsedTopic, { kind: 'device' }>, payload: Buffer): Promise<void> {
    if (parsed.channel === 'state') await this.ingestState(parsed.deviceId, payload);
    else if (parsed.channel === 'status') await this.ingestStatus(parsed.deviceId, payload);
  }

  private async ingestState(deviceId: string, payload: Buffer): Promise<void> {
    const result = decode(DeviceState, payload);
    if (!result.ok) {
      this.drop('state', deviceId, formatIssues(result.issues));
      return;
    }
    const state = result.value;
    if (state.deviceId !== deviceId) {
      this.drop('state', deviceId, `deviceId "${state.deviceId}" does not match the topic`);
      return;
    }
    const { devices, jobs } = this.deps;
    // One round trip for the common case, an acknowledgement that changes nothing to plan.
    const before = await devices.recordStateReport(state);
    if (before.isNew) this.log.info({ deviceId, labels: state.labels }, 'device registered');
    // Recorded here, by the replica the device reports through; what it changes is planned by the leader.
    if (jobs && state.jobs && state.jobs.length > 0) {
      const change = await jobs.recordReports(deviceId, state.jobs);
      if (change) this.jobsChanged(change);
    }
    const labelsChanged = JSON.stringify(before.previousLabels) !== JSON.stringify(state.labels);
    // An agent that starts (or stops) reporting `downloads` can (or no longer can) be sent a prefetch.
    const prefetchChanged = before.reportedDownloads !== (state.downloads !== undefined);
    if (!before.desiredIssued || labelsChanged || prefetchChanged || state.observedRevision > before.desiredRevision) {
      if (!this.replica.leading) this.askLeader({ device: deviceId });
      else {
        const after = await devices.get(deviceId);
        if (after) await this.syncDevice(after);
      }
    }
    this.advanceRollouts();
  }

  /** Another replica asks for a re-plan: one device's, a job change's, or (`{}`) the whole fleet's. Only the leader plans. */
  private syncAsked(payload: Buffer): void {
    if (!this.replica.leading) return;
    const request = parseSyncRequest(payload);
    if (!request) {
      this.log.warn('malformed re-plan request from a replica dropped');
      return;
    }
    if (request.jobs) {
      this.jobsChanged(request.jobs);
      return;
    }
    const device = request.device;
    if (device === undefined) {
      this.scheduleSync();
      return;
    }
    this.enqueue(`re-planning device ${device}`, async () => {
      const stored = await this.deps.devices.get(device);
      if (stored?.state) await this.syncDevice(stored);
    });
  }

  private askLeader(request: SyncRequest): void {
    this.deps.bus.publish(SYNC_TOPIC, JSON.stringify(request), { qos: 1 }).catch((err: Error) => {
      this.log.warn({ ...request, err: err.message }, 'asking the leader to re-plan desired state failed');
    });
  }

  private async ingestStatus(deviceId: string, payload: Buffer): Promise<void> {
    const result = decode(DeviceStatus, payload);
    if (!result.ok) {
      this.drop('status', deviceId, formatIssues(result.issues));
      return;
    }
    // A new device gets its first desired state only once its state report
    // arrives: that report carries the revision it already holds (from a hub
    // that lost its database, say), which the first revision must exceed.
    await this.deps.devices.ensure(deviceId);
    await this.deps.devices.recordOnline(deviceId, result.value.online);
    // Devices back online are admitted at the next job tick, one pass for a reconnecting fleet.
    if (result.value.online) this.admissionDue = true;
    this.log.info({ deviceId, online: result.value.online }, result.value.online ? 'device online' : 'device offline');
  }

  private drop(channel: string, deviceId: string, reason: string): void {
    this.log.warn({ deviceId, channel, reason }, 'invalid message dropped');
  }
}

/** What one pass over the fleet computes every device's plan from. */
interface FleetPass {
  apps: readonly StoredApp[];
  rollouts: RolloutSnapshot;
  secret: SecretLookup;
  agents: AgentPass;
  /** What each app's rollout prefetches on its pending devices. */
  prefetch: PrefetchPass;
  jobs?: JobPlanningPass;
}
