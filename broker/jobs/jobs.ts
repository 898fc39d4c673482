/**
 * The hub's jobs (docs/jobs.md): making one, steering it (cancel, delete),
 * recording what devices report of their executions, letting waiting
 * executions start (admission) and expiring those the deadline passed. This
 * class decides and records; what it decided reaches devices through their
 * desired documents, which the dispatcher computes: every change that alters
 * a document is handed on as a JobsChange (`changed`).
 *
 * Who does what when the hub runs as replicas (broker/dispatcher/replica.ts):
 * - the jobs.* methods run on the replica the caller reached;
 * - a device's report is recorded by the replica it is connected to, with its
 *   events, the abort check and the job's completion there;
 * - admission and expiry are the leader's, run in the dispatcher's work chain
 *   before it plans: one process fills a job's concurrency slots, and a slot
 *   is filled before the documents are computed from it.
 *
 * Invariants:
 * - Nothing is stored for a spec that fails validation, selects no device,
 *   names a device the hub does not know or a secret that cannot be used;
 *   every issue names its field.
 * - The hub records events only of its own decisions (events.ts): a job made,
 *   an execution dropped by a cancel or an abort, one expired at the deadline.
 *   What a device reports is on its timeline already, from its own events.
 *   Every change of state is logged, by the replica that made it.
 * - A stop (cancel, abort) is the store's one conditional write: two replicas
 *   stopping one job at once make its transitions once.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  abortThreshold,
  type JobDetail,
  type JobExecutionReport,
  type JobSpec,
  type JobSummary,
  jobDeadline,
  type List,
  validateJobSpec,
} from '../../shared/index.js';
import { ApiError } from '../dispatcher/errors.js';
import { MissingSecretError, matches, secretProblems } from '../dispatcher/scheduling.js';
import { secretValues } from '../dispatcher/secret-values.js';
import type { DeviceStore } from '../store/devices.js';
import {
  type ExecutionTransition,
  JobExistsError,
  type JobStore,
  JobUidUsedError,
  type StoredExecution,
  type StoredJob,
} from '../store/jobs.js';
import type { SecretStore } from '../store/secrets.js';
import { droppedEvent, expiredEvent, type JobEvent, queuedEvent } from './events.js';
import { abortVerdict, admissions, isFinal } from './plan.js';
import { describeNoMatch, describeUnknown, unknownDevices } from './selection.js';
import { jobDetail, jobSummary, needsPresence } from './views.js';

/** What changed for desired documents: jobs whose waiting executions may now be admitted, devices to plan again. */
export interface JobsChange {
  admit: readonly string[];
  devices: readonly string[];
}

/** One execution a device's document names, with its job. */
export interface DesiredEntry {
  job: StoredJob;
  execution: StoredExecution;
}

/** What a pass over the fleet plans jobs from (the dispatcher's fleet pass). */
export interface JobPlanningPass {
  /** The specs of jobs that may still be in a document, for the secrets they name. */
  specs: readonly JobSpec[];
  /** Each device's admitted, unfinished executions (and those asked to stop), with their jobs. */
  desiredFor(devices: readonly string[]): Promise<Map<string, DesiredEntry[]>>;
}

/** What the dispatcher asks of jobs (this class, or nothing on a hub without them). */
export interface DispatcherJobs {
  planningPass(): Promise<JobPlanningPass>;
  /** A state report's executions; what changed for desired documents, if anything. */
  recordReports(device: string, reports: readonly JobExecutionReport[]): Promise<JobsChange | undefined>;
  /** Admits what may start now of `jobs` (all active jobs when absent); the devices whose desired jobs grew. */
  admit(jobs?: readonly string[]): Promise<string[]>;
  /** Expires what the deadline passed; what changed for desired documents, if anything. */
  expire(): Promise<JobsChange | undefined>;
}

export interface JobsDeps {
  store: JobStore;
  devices: Pick<DeviceStore, 'listForPlanning' | 'presence'>;
  secrets: Pick<SecretStore, 'get'>;
  /** Records an event on a device's timeline (telemetry ingest's hubEvent). */
  event: (device: string, event: JobEvent) => void;
  /** Told every change that alters desired documents; the dispatcher plans them (on the leader). */
  changed: (change: JobsChange) => void;
  logger: Logger;
  now?: () => Date;
}

/** The random part of a job's uid: 8 bytes, so drawing one an earlier job had is all but impossible. */
const UID_RANDOM_BYTES = 8;
/** Above this many devices at once, a pass reads the open jobs' executions rather than each device's. */
const PER_DEVICE_READS = 32;
/** How many uids a create draws before it gives up: the store refuses one an earlier job had (JobUidUsedError). */
const UID_DRAWS = 3;

export class Jobs implements DispatcherJobs {
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly deps: JobsDeps) {
    this.log = deps.logger.child({ component: 'jobs' });
    this.now = deps.now ?? (() => new Date());
  }

  /** jobs.create: the job stored with a queued execution per device its scheduling selects now, online or not. */
  async create(spec: unknown): Promise<JobDetail> {
    const { store } = this.deps;
    const now = this.now();
    const checked = validateJobSpec(spec, now);
    if (!checked.ok) throw ApiError.invalid('invalid_request', 'job spec', checked.issues);
    const job = checked.value;
    if (await store.get(job.name)) throw taken(job.name);
    await this.checkSecrets(job);
    const devices = await this.select(job);
    const at = now.toISOString();
    const made = {
      name: job.name,
      spec: job,
      phase: 'active' as const,
      createdAt: at,
      deadline: jobDeadline(job.spec.deadline, now).toISOString(),
      updatedAt: at,
    };
    const stored = await this.insert(made, devices);
    const queued = queuedEvent(stored);
    for (const device of devices) this.deps.event(device, queued);
    this.log.info({ job: stored.name, uid: stored.uid, devices: devices.length, deadline: stored.deadline }, 'job created');
    this.deps.changed({ admit: [stored.name], devices: [] });
    return this.detail(stored);
  }

  /** Stores the job under a uid never given before: one an earlier job had is drawn again (the store keeps every uid given). */
  private async insert(job: Omit<StoredJob, 'uid'>, devices: readonly string[]): Promise<StoredJob> {
    for (let draw = 1; ; draw++) {
      const stored: StoredJob = { ...job, uid: `${job.name}.${randomBytes(UID_RANDOM_BYTES).toString('hex')}` };
      try {
        await this.deps.store.create(stored, devices);
        return stored;
      } catch (err) {
        if (err instanceof JobExistsError) throw taken(job.name);
        if (!(err instanceof JobUidUsedError) || draw >= UID_DRAWS) throw err;
      }
    }
  }

  async list(): Promise<List<JobSummary>> {
    const items: JobSummary[] = [];
    // One job after another: a PostgreSQL pool is not flooded by a long list.
    for (const job of await this.deps.store.list()) items.push(jobSummary(job, await this.deps.store.executions(job.name)));
    return { items };
  }

  async get(name: string): Promise<JobDetail> {
    const job = await this.deps.store.get(name);
    if (!job) throw ApiError.notFound('job', name);
    return this.detail(job);
  }

  /** The job's view; its devices' presence is read only when a queued execution needs it to say why it waits. */
  private async detail(job: StoredJob): Promise<JobDetail> {
    const executions = await this.deps.store.executions(job.name);
    if (!needsPresence(executions)) return jobDetail(job, executions, () => undefined);
    const presence = new Map((await this.deps.devices.presence()).map((device) => [device.id, device]));
    return jobDetail(job, executions, (id) => presence.get(id));
  }

  /** jobs.cancel: queued executions dropped at once, running ones told to stop (`cancel` in their documents). A job already over is left as it is. */
  async cancel(name: string, caller: string): Promise<JobDetail> {
    const job = await this.deps.store.get(name);
    if (!job) throw ApiError.notFound('job', name);
    const running = await this.stop(job, 'canceled', `canceled by ${caller}`);
    if (running.length > 0) this.deps.changed({ admit: [], devices: running });
    return this.get(name);
  }

  /** jobs.delete: canceled first (its devices stop it), then its records go; its uid is never given again. */
  async delete(name: string, caller: string): Promise<{ name: string; deleted: true }> {
    const { store } = this.deps;
    const job = await store.get(name);
    if (!job) throw ApiError.notFound('job', name);
    const executions = await store.executions(name);
    if (job.phase === 'active') await this.stop(job, 'canceled', `deleted by ${caller}`);
    if (!(await store.delete(name))) throw ApiError.notFound('job', name);
    this.log.info({ job: name, caller }, 'job deleted');
    // Its executions leave the documents that still named them.
    this.deps.changed({ admit: [], devices: holding(executions) });
    return { name, deleted: true };
  }

  async recordReports(device: string, reports: readonly JobExecutionReport[]): Promise<JobsChange | undefined> {
    if (reports.length === 0) return undefined;
    const transitions = await this.deps.store.recordReports(device, reports, this.now().toISOString());
    if (transitions.length === 0) return undefined;
    for (const transition of transitions) this.logTransition(transition);
    const ended = transitions.filter((t) => isFinal(t.to));
    if (ended.length === 0) return undefined;
    const jobs = await this.jobsOf(ended);
    const finished = [...jobs.keys()];
    // The device's document drops what finished; the slot it held goes to the next device (a job
    // without maxConcurrent admitted them all at once: nothing waits for a slot).
    const devices = [device];
    const failed = new Set(transitions.filter((t) => t.to === 'failed' || t.to === 'timed-out').map((t) => t.job));
    for (const name of finished) {
      // Only a failure can reach the threshold: a success reads nothing more of a large job.
      if (failed.has(name)) devices.push(...(await this.abortIfDue(name)));
      await this.completeIfDone(name);
    }
    const limited = finished.filter((name) => jobs.get(name)?.spec.spec.rollout?.maxConcurrent !== undefined);
    return { admit: limited, devices };
  }

  async admit(names?: readonly string[]): Promise<string[]> {
    const { store } = this.deps;
    const jobs = names === undefined ? await store.list() : await Promise.all(names.map((name) => store.get(name)));
    const active = jobs.filter((job): job is StoredJob => job?.phase === 'active');
    if (active.length === 0) return [];
    const now = this.now();
    let online: Set<string> | undefined;
    const admitted: string[] = [];
    for (const job of active) {
      if (job.spec.spec.rollout?.maxConcurrent !== undefined && online === undefined) {
        online = new Set((await this.deps.devices.presence()).filter((d) => d.online).map((d) => d.id));
      }
      const devices = admissions(job, await store.executions(job.name), (id) => online?.has(id) ?? false, now);
      if (devices.length === 0) continue;
      await store.admit(job.name, devices, now.toISOString());
      this.log.info({ job: job.name, devices: devices.length }, 'job executions admitted');
      admitted.push(...devices);
    }
    return admitted;
  }

  async expire(): Promise<JobsChange | undefined> {
    const transitions = await this.deps.store.expire(this.now().toISOString());
    if (transitions.length === 0) return undefined;
    const jobs = await this.jobsOf(transitions);
    for (const transition of transitions) {
      this.logTransition(transition);
      const job = jobs.get(transition.job);
      if (job) this.deps.event(transition.device, expiredEvent(job));
    }
    for (const name of jobs.keys()) {
      this.log.info({ job: name, devices: transitions.filter((t) => t.job === name).length }, 'job executions expired at the deadline');
      await this.completeIfDone(name);
    }
    // Admitted ones were in their devices' documents; they leave them.
    return { admit: [], devices: transitions.filter((t) => t.execution.admitted).map((t) => t.device) };
  }

  /**
   * A few devices' jobs are read per device (the store's index of what a document names); a
   * fleet-wide pass reads each open job's executions once instead, since a query per device costs
   * a round trip each on PostgreSQL (10,000 devices: 3.2 s that way, 26 ms reading the job's).
   */
  async planningPass(): Promise<JobPlanningPass> {
    const { store } = this.deps;
    // A complete job has no unfinished execution left in any document.
    const open = (await store.list()).filter((job) => job.phase !== 'complete');
    let fleet: Promise<Map<string, DesiredEntry[]>> | undefined;
    const everyDevice = async () => {
      const byDevice = new Map<string, DesiredEntry[]>();
      for (const job of open) {
        for (const execution of await store.executions(job.name)) {
          if (!execution.admitted || isFinal(execution.state)) continue;
          const entries = byDevice.get(execution.device) ?? [];
          entries.push({ job, execution });
          byDevice.set(execution.device, entries);
        }
      }
      return byDevice;
    };
    return {
      specs: open.map((job) => job.spec),
      desiredFor: async (devices) => {
        const byDevice = new Map<string, DesiredEntry[]>();
        if (open.length === 0) return byDevice;
        if (devices.length > PER_DEVICE_READS) {
          fleet ??= everyDevice();
          const all = await fleet;
          for (const device of devices) {
            const entries = all.get(device);
            if (entries) byDevice.set(device, entries);
          }
          return byDevice;
        }
        for (const device of devices) {
          const entries = await store.desiredFor(device);
          if (entries.length > 0) byDevice.set(device, entries);
        }
        return byDevice;
      },
    };
  }

  /** Ends an active job (canceled or aborted) with its events; the devices whose documents must now carry `cancel`. */
  private async stop(job: StoredJob, phase: 'canceled' | 'aborted', reason: string, known?: readonly StoredExecution[]): Promise<string[]> {
    const { store } = this.deps;
    const executions = known ?? (await store.executions(job.name));
    const transitions = await store.stop(job.name, phase, reason, this.now().toISOString());
    // Not active any more: finished, or stopped meanwhile (another replica, a cancel and an abort at once).
    if (transitions === false) return [];
    const stopped: StoredJob = { ...job, phase, reason };
    for (const transition of transitions) {
      this.logTransition(transition);
      this.deps.event(transition.device, droppedEvent(stopped, transition.execution));
    }
    const running = holding(executions);
    this.log.info({ job: job.name, phase, reason, dropped: transitions.length, stopping: running.length }, 'job stopped');
    return running;
  }

  /** Aborts the job once its failures reach the rollout's threshold; the devices told to stop. */
  private async abortIfDue(name: string): Promise<string[]> {
    const { store } = this.deps;
    const job = await store.get(name);
    if (!job || abortThreshold(job.spec.spec.rollout, 1) === undefined) return [];
    const executions = await store.executions(name);
    const verdict = abortVerdict(job, executions);
    if (!verdict) return [];
    this.log.warn({ job: name, failures: verdict.failures, threshold: verdict.threshold }, 'job failures reached its abort threshold');
    return this.stop(job, 'aborted', verdict.reason, executions);
  }

  private async completeIfDone(name: string): Promise<void> {
    if (await this.deps.store.completeIfDone(name, this.now().toISOString())) this.log.info({ job: name }, 'job complete');
  }

  private logTransition(transition: ExecutionTransition): void {
    this.log.info(
      { job: transition.job, deviceId: transition.device, from: transition.from, to: transition.to, attempt: transition.execution.attempt },
      'job execution changed state',
    );
  }

  private async jobsOf(transitions: readonly ExecutionTransition[]): Promise<Map<string, StoredJob>> {
    const jobs = new Map<string, StoredJob>();
    for (const name of new Set(transitions.map((t) => t.job))) {
      const job = await this.deps.store.get(name);
      if (job) jobs.set(name, job);
    }
    return jobs;
  }

  /** A secret the containers name must exist and suit its use, as for an app: checked now, not when devices are planned. */
  private async checkSecrets(job: JobSpec): Promise<void> {
    const problems = secretProblems(job, await secretValues(this.deps.secrets, [job]));
    if (problems.length === 0) return;
    throw ApiError.invalid(
      'invalid_request',
      'job spec',
      problems.map((err) => ({
        path: err.path,
        message: err instanceof MissingSecretError ? `${err.message}: create it first (flotilla secret set ${err.secret} …)` : err.message,
      })),
    );
  }

  /** The devices the job's scheduling selects now, registered ones that never connected included; it names no id the hub does not know. */
  private async select(job: JobSpec): Promise<string[]> {
    const fleet = await this.deps.devices.listForPlanning();
    const unknown = unknownDevices(job.scheduling, new Set(fleet.map((device) => device.id)));
    if (unknown.length > 0) {
      throw ApiError.invalid('invalid_request', 'job spec', [{ path: 'scheduling.devices', message: describeUnknown(unknown) }]);
    }
    const selected = fleet
      .filter((device) => matches(job.scheduling, device.id, device.labels))
      .map((device) => device.id)
      .sort();
    if (selected.length > 0) return selected;
    throw ApiError.invalid('invalid_request', 'job spec', [
      { path: 'scheduling', message: `selects no device: ${describeNoMatch(job.scheduling, fleet.length)}` },
    ]);
  }
}

/** The devices whose documents name the job now: admitted, not final. */
function holding(executions: readonly StoredExecution[]): string[] {
  return executions.filter((e) => e.admitted && !isFinal(e.state)).map((e) => e.device);
}

function taken(name: string): ApiError {
  return new ApiError('conflict', `job "${name}" exists: delete it (flotilla job delete ${name}) or choose another name`);
}
