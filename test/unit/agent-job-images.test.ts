/**
 * The app reconciler's image collection and a job's image: an image the agent
 * pulled that no app needs is removed, unless a job still needs it
 * (ReconcilerOptions.imagesInUse, which the job runner answers). Over the
 * in-memory runtime: what stays on the device. With the real job runner, job
 * containers kept by a small in-memory engine beside it (created only from an
 * image present, as Docker's are): an image is in use from the moment the
 * desired state names a job that needs it until the execution is final,
 * also when it was on the device already and the runner pulled nothing; and
 * an image removed between the runner's look and its create is pulled again
 * rather than failing the attempt.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { JobEvent } from '../../agent/jobs/events.js';
import type { JobRecordStore } from '../../agent/jobs/job-store.js';
import type { JobRecord } from '../../agent/jobs/record.js';
import { JobRunner, type JobRuntime } from '../../agent/jobs/runner.js';
import { Reconciler } from '../../agent/reconcile/reconciler.js';
import { Records } from '../../agent/reconcile/records.js';
import { RuntimeError } from '../../agent/runtime/errors.js';
import type { JobContainer, JobContainerRequest } from '../../agent/runtime/runtime.js';
import type { DesiredJob, RegistryAuth } from '../../shared/index.js';
import { webAppDesired as desired } from '../support/fixtures.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

const APP = 'registry.local/web:1';
const TOOLS = 'registry.local/tools:1';
const silent = pino({ level: 'silent' });

async function converge(inUse: ReadonlySet<string>): Promise<string[]> {
  const runtime = new MemoryRuntime({ images: [APP, TOOLS] });
  const reconciler = new Reconciler({
    runtime,
    deviceId: 'dev-1',
    logger: silent,
    onState: () => undefined,
    // Both pulled by the agent: the app's by the reconciler, the tools by the job runner.
    records: new Records({ pulledImages: [APP, TOOLS] }),
    imagesInUse: () => inUse,
  });
  reconciler.setDesired(desired(1, APP));
  for (let i = 0; i < 20; i++) {
    reconciler.trigger();
    await reconciler.idle();
  }
  reconciler.close();
  return runtime.images();
}

describe("the app reconciler's image collection and jobs", () => {
  it('removes an image the agent pulled once no app and no job needs it', async () => {
    expect(await converge(new Set())).not.toContain(TOOLS);
  });

  it('keeps an image a queued or running job needs', async () => {
    const images = await converge(new Set([TOOLS]));
    expect(images).toContain(TOOLS);
    expect(images).toContain(APP);
  });
});

/** Job containers beside the in-memory engine, sharing its images; `exit` plays a container ending. */
class MemoryJobs implements JobRuntime {
  readonly containers = new Map<string, JobContainer>();
  created = 0;
  pulls = 0;
  /** Runs once, after the next look for an image finds it (a removal landing just then). */
  afterLook: ((image: string) => Promise<void>) | undefined;

  constructor(
    readonly engine: MemoryRuntime,
    private readonly now: () => number,
  ) {}

  async hasImage(image: string): Promise<boolean> {
    const present = await this.engine.hasImage(image);
    const after = this.afterLook;
    if (present && after) {
      this.afterLook = undefined;
      await after(image);
    }
    return present;
  }

  pull(image: string, auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void> {
    this.pulls++;
    return this.engine.pull(image, auth, signal);
  }

  async createJobContainer(request: JobContainerRequest): Promise<string> {
    const { image } = request.spec;
    if (!(await this.engine.hasImage(image))) {
      throw new RuntimeError('not_found', `create container job from ${image}: No such image: ${image}`, { statusCode: 404 });
    }
    const id = `job-${++this.created}`;
    this.containers.set(id, {
      id,
      dockerName: `job_${request.execution}_${request.attempt}_${request.spec.name}`,
      job: request.job,
      execution: request.execution,
      attempt: request.attempt,
      container: request.spec.name,
      image,
      state: 'created',
    });
    return id;
  }

  async start(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, state: 'running', startedAt: new Date(this.now()).toISOString() });
  }

  exit(id: string, code: number): void {
    const c = this.containers.get(id);
    if (c) this.containers.set(id, { ...c, state: 'exited', exitCode: code, finishedAt: new Date(this.now()).toISOString() });
  }

  async stop(id: string): Promise<void> {
    if (this.containers.get(id)?.state === 'running') this.exit(id, 143);
  }

  async remove(id: string): Promise<void> {
    this.containers.delete(id);
  }

  async listJobContainers(): Promise<JobContainer[]> {
    return [...this.containers.values()];
  }

  async tailLogs(): Promise<[]> {
    return [];
  }
}

class MemoryJobRecords implements JobRecordStore {
  private readonly records = new Map<string, JobRecord>();
  load(): JobRecord[] {
    return [...this.records.values()];
  }
  save(record: JobRecord): void {
    this.records.set(record.execution, record);
  }
  prune(): void {}
  close(): void {}
}

function device(over: { now?: () => number; images?: string[] } = {}) {
  const engine = new MemoryRuntime({ images: over.images ?? [APP, TOOLS] });
  const jobs = new MemoryJobs(engine, over.now ?? Date.now);
  const events: JobEvent[] = [];
  const runner = new JobRunner({
    runtime: jobs,
    store: new MemoryJobRecords(),
    deviceId: 'dev-1',
    stopTimeoutSeconds: 1,
    logger: silent,
    event: (event) => events.push(event),
    ...(over.now ? { now: over.now } : {}),
  });
  // The tools were pulled by the agent before (for an app since gone), so the collection may remove them.
  const reconciler = new Reconciler({
    runtime: engine,
    deviceId: 'dev-1',
    logger: silent,
    onState: () => undefined,
    records: new Records({ pulledImages: [APP, TOOLS] }),
    imagesInUse: () => runner.images(),
  });
  const settle = async () => {
    for (let i = 0; i < 10; i++) {
      runner.trigger();
      await runner.idle();
      reconciler.trigger();
      await reconciler.idle();
    }
  };
  const close = async () => {
    reconciler.close();
    await runner.close();
  };
  return { engine, jobs, events, runner, reconciler, settle, close };
}

function toolsJob(over: Partial<DesiredJob> = {}): DesiredJob {
  return {
    name: 'rotate-cert',
    execution: 'rotate-cert.1a2b3c',
    containers: [{ name: 'main', image: TOOLS }],
    deadline: new Date(Date.now() + 86_400_000).toISOString(),
    ...over,
  };
}

describe("a job's image and the app reconciler's image collection, with the job runner", () => {
  it('keeps an image that was on the device when the job came (nothing pulled), queued, running, until the execution is final', async () => {
    let now = Date.parse('2026-12-07T12:00:00Z');
    const d = device({ now: () => now });
    try {
      const job = toolsJob({
        window: { from: '13:00', to: '14:00', timezone: 'UTC' },
        deadline: new Date(now + 86_400_000).toISOString(),
      });
      // As the agent hands on an accepted document: the apps, then the jobs.
      d.reconciler.setDesired(desired(1, APP));
      d.runner.setDesired([job]);
      await d.settle();
      expect(d.runner.reports()).toMatchObject([
        { state: 'queued', attempt: 0, message: expect.stringMatching(/^waiting for its window/) },
      ]);
      expect(d.engine.images()).toContain(TOOLS);

      now = Date.parse('2026-12-07T13:00:00Z');
      await d.settle();
      expect(d.runner.reports()).toMatchObject([{ state: 'running', attempt: 1 }]);
      expect(d.jobs.pulls).toBe(0);
      expect(d.engine.images()).toContain(TOOLS);

      d.jobs.exit('job-1', 0);
      await d.settle();
      expect(d.runner.reports()).toMatchObject([{ state: 'succeeded', attempt: 1 }]);
      // Final, and its container kept for `docker logs` while the desired state names it: so is the image.
      expect(d.engine.images()).toContain(TOOLS);

      d.reconciler.setDesired(desired(2, APP));
      d.runner.setDesired([]);
      await d.settle();
      expect(d.jobs.containers.size).toBe(0);
      expect(d.engine.images()).not.toContain(TOOLS);
      expect(d.engine.images()).toContain(APP);
    } finally {
      await d.close();
    }
  });

  it('pulls again, using up no attempt, an image removed between the look that found it and the create', async () => {
    const d = device();
    try {
      // A removal already on its way to the engine when the job came lands just after the runner looked.
      d.jobs.afterLook = (image) => d.engine.removeImage(image);
      d.reconciler.setDesired(desired(1, APP));
      d.runner.setDesired([toolsJob()]);
      await d.settle();
      expect(d.jobs.pulls).toBe(1);
      expect(d.jobs.created).toBe(1);
      expect(d.runner.reports()).toMatchObject([{ state: 'running', attempt: 1 }]);

      d.jobs.exit('job-1', 0);
      await d.settle();
      expect(d.runner.reports()).toMatchObject([{ state: 'succeeded', attempt: 1 }]);
      expect(d.events.map((e) => e.type)).toEqual(['job-started', 'job-succeeded']);
    } finally {
      await d.close();
    }
  });
});
