/**
 * Jobs as an operator drives and checks them in e2e tests: made, read and
 * canceled through the hub's HTTP API (jobs.create, jobs.get, jobs.cancel),
 * and what the Docker Engine saw of their containers.
 *
 * A finished execution's containers are removed once the hub stops naming it
 * in the device's desired state, so `docker ps -a` cannot tell how many
 * containers a job ever had: Docker's event log can. Every container event
 * carries the container's labels, so the events of one job (`flotilla.job`)
 * on one device (`flotilla.device`) are there even for a container long gone.
 */
import { expect } from 'vitest';
import type { JobDetail, JobExecutionView, JobSpec } from '../../../shared/index.js';
import { http } from '../../support/http.js';
import type { HubProcess } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker } from './docker-cli.js';

/** The labels the agent puts on a job's containers, as an operator filters `docker ps` by them. */
export const JOB_LABEL = 'flotilla.job';
export const DEVICE_LABEL = 'flotilla.device';

export class JobsApi {
  constructor(private readonly hub: () => HubProcess) {}

  /** jobs.create (the spec is the body); fails the test unless the hub made it, every execution queued. */
  async create(spec: JobSpec): Promise<JobDetail> {
    const res = await http<JobDetail>(this.hub().url, 'POST', '/api/v1/jobs', spec);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    expect(res.body.executions.map((e) => e.state)).toEqual(res.body.executions.map(() => 'queued'));
    return res.body;
  }

  async get(name: string): Promise<JobDetail> {
    const res = await http<JobDetail>(this.hub().url, 'GET', `/api/v1/jobs/${encodeURIComponent(name)}`);
    if (res.status !== 200) throw new Error(`GET /api/v1/jobs/${name}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** The job once `probe` holds for it (the job is passed as the hub shows it at that moment). */
  async until(name: string, what: string, probe: (job: JobDetail) => boolean, timeoutMs = 30_000): Promise<JobDetail> {
    let last: JobDetail | undefined;
    try {
      return await waitFor(
        `job ${name}: ${what}`,
        async () => {
          last = await this.get(name);
          return probe(last) && last;
        },
        { timeoutMs },
      );
    } catch (err) {
      // What the hub last said is what explains a timeout.
      throw new Error(`${(err as Error).message}; the job was last ${last ? seen(last) : 'never read'}`);
    }
  }

  /** The job once it is no longer active (complete, canceled or aborted). */
  settled(name: string, timeoutMs = 30_000): Promise<JobDetail> {
    return this.until(name, 'no longer active', (job) => job.phase !== 'active', timeoutMs);
  }
}

/** One device's execution of the job; fails the test when the job has none for it. */
export function executionOf(job: JobDetail, device: string): JobExecutionView {
  const execution = job.executions.find((e) => e.device === device);
  if (!execution) throw new Error(`job ${job.name} has no execution on ${device}: ${JSON.stringify(job.executions)}`);
  return execution;
}

/** The job's phase and executions as the hub showed them: the message of a failed assertion on it. */
export function seen(job: JobDetail): string {
  return JSON.stringify({ phase: job.phase, reason: job.reason, executions: job.executions });
}

/** `device → state` of every execution, for one readable comparison. */
export function statesOf(job: JobDetail): Record<string, string> {
  return Object.fromEntries(job.executions.map((e) => [e.device, e.state]));
}

/** One of Docker's container events (`docker events --format '{{json .}}'`). */
export interface ContainerEvent {
  action: string;
  id: string;
  /** When Docker says it happened (ms since the epoch, with Docker's sub-ms precision lost). */
  at: number;
  /** The container's labels, and Docker's own attributes (name, image, exitCode on `die`). */
  attributes: Record<string, string>;
}

/**
 * Docker's events for the containers of job `name` (on one device, if given)
 * from `sinceMs` until now, oldest first: `create`, `start`, `die`, `destroy`…
 */
export async function jobContainerEvents(name: string, sinceMs: number, device?: string): Promise<ContainerEvent[]> {
  const filters = ['--filter', 'type=container', '--filter', `label=${JOB_LABEL}=${name}`];
  if (device !== undefined) filters.push('--filter', `label=${DEVICE_LABEL}=${device}`);
  const out = await docker(
    'events',
    '--since',
    (sinceMs / 1000).toFixed(3),
    '--until',
    (Date.now() / 1000).toFixed(3),
    ...filters,
    '--format',
    '{{json .}}',
  );
  if (out === '') return [];
  return out.split('\n').map((line) => {
    const e = JSON.parse(line) as { Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number };
    return { action: e.Action, id: e.Actor.ID, at: Math.floor(e.timeNano / 1e6), attributes: e.Actor.Attributes };
  });
}

/** The containers Docker created for job `name` since `sinceMs` (on one device, if given), in order. */
export async function jobContainersCreated(name: string, sinceMs: number, device?: string): Promise<ContainerEvent[]> {
  return (await jobContainerEvents(name, sinceMs, device)).filter((e) => e.action === 'create');
}

/** One line of `docker ps -a` for a job's container. */
export interface JobContainerRow {
  id: string;
  name: string;
  /** created, running, exited… */
  state: string;
  device: string;
}

/** `docker ps -a` of the job's containers that still exist. */
export async function jobContainers(name: string): Promise<JobContainerRow[]> {
  const out = await docker(
    'ps',
    '-a',
    '--no-trunc',
    '--filter',
    `label=${JOB_LABEL}=${name}`,
    '--format',
    `{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label "${DEVICE_LABEL}"}}`,
  );
  if (out === '') return [];
  return out.split('\n').map((line) => {
    const [id = '', containerName = '', state = '', device = ''] = line.split('\t');
    return { id, name: containerName, state, device };
  });
}
