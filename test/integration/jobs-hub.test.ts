/**
 * Jobs on a real hub (Aedes, dispatcher, HTTP API, MQTT request API, SQLite), with devices played
 * by plain MQTT clients (test/support/job-devices.ts) that receive the signed desired document and
 * report each execution as an agent would. What an operator sees is checked: each device's
 * document, the job's executions and phase over the API, the events on each device's timeline,
 * Prometheus, and the logs of a job apart from an app's of the same name.
 *
 * These devices send no events, so a device's timeline here holds the hub's alone: its own
 * decisions (job-queued, job-canceled for what a cancel or an abort dropped, job-expired), and
 * nothing for a transition a device reported, which is the device agent's to record.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type DesiredJob,
  type DesiredState,
  type EventRecord,
  type JobDetail,
  type JobExecutionReport,
  type JobSummary,
  type List,
  type LogRecord,
  parseHubKey,
  verifyDesired,
} from '../../shared/index.js';
import { readSse } from '../../shared/sse.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState, logLine } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { type JobDevice, jobDevice } from '../support/job-devices.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { sampleValue, scrape } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';

const SLOW = { timeout: 90_000 };
const REQUEST = 'flotilla/v1/api/svc-1/request';
const RESPONSE = 'flotilla/v1/api/svc-1/response';

interface ApiResponse {
  correlationId: string;
  ok: boolean;
  result?: any;
  error?: { code: string; message: string; details?: any };
}

function jobSpec(name: string, spec: Record<string, unknown> = {}, scheduling: Record<string, unknown> = { selectors: { site: 'lab' } }) {
  return {
    name,
    scheduling,
    spec: { containers: [{ name: 'task', image: 'busybox:1.36', command: ['sh', '-c', 'echo done'] }], ...spec },
  };
}

describe('jobs on one hub', SLOW, () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let service: MqttClient;
  let responses: Inbox;
  let seq = 0;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ deps: { jobTickMs: 200, rolloutTickMs: 200 } }));
    service = cleanup.add('service client', () => closeClient(service), await connectClient(hub.mqttUrl, { clientId: 'svc-1' }));
    responses = new Inbox(service);
    await service.subscribeAsync(RESPONSE, { qos: 1 });
  });

  afterEach(() => cleanup.run());

  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    http(hub.httpUrl, method, path, body, headers);
  const device = (id: string, labels: Record<string, string> = { site: 'lab' }) => jobDevice(cleanup, hub.mqttUrl, id, labels);

  async function call(method: string, params?: Record<string, unknown>): Promise<ApiResponse> {
    const correlationId = `req-${++seq}`;
    await service.publishAsync(REQUEST, JSON.stringify({ correlationId, method, ...(params ? { params } : {}) }), { qos: 1 });
    return responses.waitFor<ApiResponse>(RESPONSE, (r) => r.correlationId === correlationId);
  }

  async function create(spec: unknown): Promise<JobDetail> {
    const res = await api('POST', '/api/v1/jobs', spec);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as JobDetail;
  }

  const job = async (name: string) => (await api('GET', `/api/v1/jobs/${name}`)).body as JobDetail;
  const execution = async (name: string, id: string) => (await job(name)).executions.find((e) => e.device === id);
  const waitState = (name: string, id: string, state: string) =>
    waitFor(`${id}'s execution of ${name} ${state}`, async () => (await execution(name, id))?.state === state && execution(name, id));
  const waitPhase = (name: string, phase: string) =>
    waitFor(`job ${name} ${phase}`, async () => {
      const detail = await job(name);
      return detail.phase === phase && detail;
    });
  const events = async (id: string) =>
    ((await api('GET', `/api/v1/events?device=${id}&tail=200`)).body as { events: EventRecord[] }).events.filter((e) =>
      e.type.startsWith('job-'),
    );
  const waitEvent = (id: string, type: string) =>
    waitFor(`${id}'s ${type} event`, async () => (await events(id)).find((e) => e.type === type));
  let markers = 0;
  /**
   * The hub's job events on a device's timeline, each as `type app`, once every event the hub
   * recorded so far is stored: a job made for that device alone adds a job-queued after them (the
   * hub stores its events in the order it records them), and the marker's is left out.
   */
  async function hubEvents(id: string): Promise<string[]> {
    const marker = `marker-${++markers}`;
    await create(jobSpec(marker, {}, { devices: [id] }));
    await waitFor(`${id}'s job-queued of ${marker}`, async () => (await events(id)).some((e) => e.app === marker));
    return (await events(id)).filter((e) => e.app !== marker).map((e) => `${e.type} ${e.app}`);
  }

  const report = (
    name: string,
    uid: string,
    rest: Partial<JobExecutionReport> & Pick<JobExecutionReport, 'state'>,
  ): JobExecutionReport => ({
    name,
    execution: uid,
    attempt: rest.state === 'queued' ? 0 : 1,
    ...rest,
  });
  const named = (jobs: DesiredJob[], name: string) => jobs.find((j) => j.name === name);

  /** A fleet-wide pass the test can see end: an app for `id` alone, which it receives once that pass has run. */
  async function fleetPassSeenBy(id: JobDevice, app: string): Promise<void> {
    const before = id.sent().length;
    expect((await api('POST', '/api/v1/apps', appSpec(app, { only: id.id }))).status).toBe(200);
    await waitFor(`${id.id} receives app ${app}`, () =>
      id
        .sent()
        .slice(before)
        .some((d) => d.apps.some((a) => a.name === app)),
    );
  }

  it('delivers a job in each selected device’s signed document; running then succeeded completes it; events and Prometheus count it', async () => {
    const gw1 = await device('gw-1');
    const gw2 = await device('gw-2');
    const other = await device('gw-3', { site: 'roof', only: 'gw-3' });

    const made = await create(
      jobSpec('rotate-cert', {
        timeout: '5m',
        retries: { limit: 1, backoff: '30s' },
        window: { from: '02:00', to: '04:00', timezone: 'UTC' },
      }),
    );
    expect(made).toMatchObject({ name: 'rotate-cert', phase: 'active', counts: { queued: 2, total: 2 } });
    expect(made.executions.map((e) => [e.device, e.state, e.attempt])).toEqual([
      ['gw-1', 'queued', 0],
      ['gw-2', 'queued', 0],
    ]);

    const hubKey = parseHubKey(hub.hub.hubKey);
    for (const d of [gw1, gw2]) {
      const doc = await d.waitJobs('rotate-cert in its document', (jobs) => named(jobs, 'rotate-cert') !== undefined);
      expect(verifyDesired(doc, hubKey)).toBeUndefined();
      const desired = named(doc.jobs!, 'rotate-cert')!;
      expect(desired).toEqual({
        name: 'rotate-cert',
        execution: expect.stringMatching(/^rotate-cert\.[0-9a-f]{16}$/),
        containers: [{ name: 'task', image: 'busybox:1.36', command: ['sh', '-c', 'echo done'], restartPolicy: { name: 'no' } }],
        timeout: '5m',
        retries: { limit: 1, backoff: '30s' },
        deadline: made.deadline,
        window: { from: '02:00', to: '04:00', timezone: 'UTC' },
      });
      // The signature covers the jobs: a document with another command no longer verifies.
      const tampered = { ...doc, jobs: [{ ...desired, containers: [{ ...desired.containers[0]!, command: ['rm', '-rf', '/'] }] }] };
      expect(verifyDesired(tampered, hubKey)).toBe('bad signature');
    }
    expect(other.jobs()).toEqual([]);
    const uid = named(gw1.jobs(), 'rotate-cert')!.execution;
    // One execution id per job, the same on every device.
    expect(named(gw2.jobs(), 'rotate-cert')!.execution).toBe(uid);
    expect((await waitEvent('gw-1', 'job-queued')).message).toBe(
      `job rotate-cert queued (execution ${uid}): runs once the device has it, inside its window; expires if not started by ${made.deadline}`,
    );
    expect((await waitEvent('gw-1', 'job-queued')).app).toBe('rotate-cert');

    const startedAt = new Date().toISOString();
    await gw1.report([report('rotate-cert', uid, { state: 'running', startedAt })]);
    expect(await waitState('rotate-cert', 'gw-1', 'running')).toMatchObject({ attempt: 1, startedAt });

    // The same report again changes nothing: the unchanged set of jobs republishes nothing.
    const documents = { 'gw-1': gw1.sent().length, 'gw-2': gw2.sent().length };
    await gw1.report([report('rotate-cert', uid, { state: 'running', startedAt })]);
    await fleetPassSeenBy(other, 'probe');
    expect({ 'gw-1': gw1.sent().length, 'gw-2': gw2.sent().length }).toEqual(documents);

    await gw1.report([
      report('rotate-cert', uid, { state: 'succeeded', startedAt, finishedAt: new Date().toISOString(), output: ['renewed', 'done'] }),
    ]);
    // Final at the hub: it leaves gw-1's document.
    await gw1.waitJobs('rotate-cert gone from its document', (jobs) => named(jobs, 'rotate-cert') === undefined);
    expect(await waitState('rotate-cert', 'gw-1', 'succeeded')).toMatchObject({ attempt: 1, startedAt, output: ['renewed', 'done'] });
    expect((await job('rotate-cert')).phase).toBe('active');

    // Over the MQTT request API, as a backend service would.
    const listed = await call('jobs.list');
    expect(listed.ok).toBe(true);
    expect((listed.result as List<JobSummary>).items).toEqual([
      expect.objectContaining({
        name: 'rotate-cert',
        phase: 'active',
        counts: expect.objectContaining({ succeeded: 1, queued: 1, total: 2 }),
      }),
    ]);

    await gw2.report([report('rotate-cert', uid, { state: 'succeeded', finishedAt: new Date().toISOString() })]);
    const done = await waitPhase('rotate-cert', 'complete');
    expect(done.counts).toMatchObject({ succeeded: 2, total: 2 });
    await gw2.waitJobs('rotate-cert gone from its document', (jobs) => jobs.length === 0);

    await waitFor('Prometheus counts the executions and the job', async () => {
      const { families } = await scrape(hub.httpUrl);
      return (
        sampleValue(families, 'flotilla_job_executions', { state: 'succeeded' }) === 2 &&
        sampleValue(families, 'flotilla_job_executions', { state: 'failed' }) === 0 &&
        sampleValue(families, 'flotilla_jobs', { phase: 'complete' }) === 1 &&
        sampleValue(families, 'flotilla_jobs', { phase: 'active' }) === 0
      );
    });
    // What the devices reported (running, succeeded) is theirs to record: the hub's own event is the job made.
    expect(await hubEvents('gw-1')).toEqual(['job-queued rotate-cert']);

    // A name in use is a conflict that names the fix.
    const again = await api('POST', '/api/v1/jobs', jobSpec('rotate-cert'));
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({
      code: 'conflict',
      message: 'job "rotate-cert" exists: delete it (flotilla job delete rotate-cert) or choose another name',
    });
  });

  it('records a failed execution with its exit code and container, and the job completes', async () => {
    const gw1 = await device('gw-1');
    await create(jobSpec('migrate'));
    const uid = named((await gw1.waitJobs('migrate', (jobs) => jobs.length === 1)).jobs!, 'migrate')!.execution;
    await gw1.report([
      report('migrate', uid, {
        state: 'failed',
        exitCode: 3,
        container: 'task',
        message: 'schema locked',
        output: ['connecting', 'error: schema locked'],
        finishedAt: new Date().toISOString(),
      }),
    ]);
    expect(await waitState('migrate', 'gw-1', 'failed')).toMatchObject({
      exitCode: 3,
      container: 'task',
      message: 'schema locked',
      output: ['connecting', 'error: schema locked'],
    });
    expect((await waitPhase('migrate', 'complete')).counts).toMatchObject({ failed: 1, total: 1 });
    await gw1.waitJobs('migrate gone from its document', (jobs) => jobs.length === 0);
    expect(await hubEvents('gw-1')).toEqual(['job-queued migrate']);
  });

  it('maxConcurrent 1 admits one device at a time, skips one that is offline, and admits it once it is back', async () => {
    const gw1 = await device('gw-1');
    const gw2 = await device('gw-2');
    const gw3 = await device('gw-3', { site: 'lab', only: 'gw-3' });
    await gw2.goAway();
    await waitFor('gw-2 offline', async () => (await api('GET', '/api/v1/devices/gw-2')).body.online === false);

    await create(jobSpec('flash', { rollout: { maxConcurrent: 1 } }));
    const uid = named((await gw1.waitJobs('flash', (jobs) => jobs.length === 1)).jobs!, 'flash')!.execution;
    expect((await waitEvent('gw-2', 'job-queued')).message).toContain('runs once the device has it, at most 1 device at a time; expires');
    await gw1.report([report('flash', uid, { state: 'running' })]);
    await waitState('flash', 'gw-1', 'running');
    // A fleet pass has run since: gw-3 still waits for the one slot.
    await fleetPassSeenBy(gw3, 'probe');
    expect(gw3.jobs()).toEqual([]);

    await gw1.report([report('flash', uid, { state: 'succeeded' })]);
    // The slot goes to gw-3, online, and not to gw-2, which is first by id but offline.
    await gw3.waitJobs('flash admitted', (jobs) => named(jobs, 'flash') !== undefined);
    await gw1.waitJobs('flash gone', (jobs) => jobs.length === 0);
    expect((await execution('flash', 'gw-2'))?.state).toBe('queued');
    await gw3.report([report('flash', uid, { state: 'succeeded' })]);
    await waitState('flash', 'gw-3', 'succeeded');

    await gw2.comeBack();
    await gw2.waitJobs('flash admitted once back online', (jobs) => named(jobs, 'flash') !== undefined);
    await gw2.report([report('flash', uid, { state: 'succeeded' })]);
    expect((await waitPhase('flash', 'complete')).counts).toMatchObject({ succeeded: 3, total: 3 });
  });

  it('says why a queued execution waits while its device has said nothing: no slot, offline, or sent; a device’s own message stands', async () => {
    const gw1 = await device('gw-1');
    const gw2 = await device('gw-2');
    const gw3 = await device('gw-3');
    await gw2.goAway();
    await waitFor('gw-2 offline', async () => (await api('GET', '/api/v1/devices/gw-2')).body.online === false);
    /** Each device's message, with gw-2's time last seen written as LAST (read in the same pass, as it may still move). */
    const messages = async (name: string) => {
      const lastSeen = (await api('GET', '/api/v1/devices/gw-2')).body.lastSeen as string;
      expect(lastSeen).toEqual(expect.any(String));
      return Object.fromEntries((await job(name)).executions.map((e) => [e.device, e.message?.replace(lastSeen, 'LAST')]));
    };
    const waitMessages = (name: string, expected: Record<string, string | undefined>) =>
      waitFor(`${name}'s messages ${JSON.stringify(expected)}`, async () => {
        const seen = await messages(name);
        return JSON.stringify(seen) === JSON.stringify(expected) && seen;
      }).catch(async (err) => {
        expect(await messages(name)).toEqual(expected);
        throw err;
      });

    // Without maxConcurrent every device has it at once: sent to those online, waiting for the one offline.
    const made = await create(jobSpec('patch'));
    expect(made.executions.find((e) => e.device === 'gw-1')?.message).toBe('sent to the device');
    await gw1.waitJobs('patch', (jobs) => named(jobs, 'patch') !== undefined);
    await gw3.waitJobs('patch', (jobs) => named(jobs, 'patch') !== undefined);
    await waitMessages('patch', {
      'gw-1': 'sent to the device',
      'gw-2': 'waiting for the device to come back online (offline since LAST)',
      'gw-3': 'sent to the device',
    });
    // What the device says of it replaces the hub's words.
    const uid = named(gw1.jobs(), 'patch')!.execution;
    const window = 'waiting for its window 02:00-04:00 UTC, opens 2026-03-03T02:00:00.000Z';
    await gw1.report([report('patch', uid, { state: 'queued', message: window })]);
    await waitMessages('patch', {
      'gw-1': window,
      'gw-2': 'waiting for the device to come back online (offline since LAST)',
      'gw-3': 'sent to the device',
    });

    // With maxConcurrent 1, gw-1 holds the slot; gw-3 waits for it, and gw-2 for it and to be back.
    await create(jobSpec('flash', { rollout: { maxConcurrent: 1 } }));
    await gw1.waitJobs('flash', (jobs) => named(jobs, 'flash') !== undefined);
    await waitMessages('flash', {
      'gw-1': 'sent to the device',
      'gw-2': 'waiting for a slot: at most 1 device at a time, and for the device to come back online (offline since LAST)',
      'gw-3': 'waiting for a slot: at most 1 device at a time',
    });

    // A cancel reaches a device through its document: an offline one hears of it once back.
    await api('POST', '/api/v1/jobs/patch/cancel');
    await waitMessages('patch', {
      'gw-1': window,
      'gw-2': 'cancel waits for the device to come back online (offline since LAST)',
      'gw-3': 'cancel sent to the device',
    });
    // jobs.list stays counts only.
    expect(((await api('GET', '/api/v1/jobs')).body as List<JobSummary>).items.map((j) => Object.keys(j).sort())).toEqual([
      ['counts', 'createdAt', 'deadline', 'name', 'phase'],
      ['counts', 'createdAt', 'deadline', 'name', 'phase', 'reason'],
    ]);
  });

  it('abortAfterFailures 1 aborts the job: queued ones are canceled at once, running ones told to cancel', async () => {
    const gw1 = await device('gw-1');
    const gw2 = await device('gw-2');
    await device('gw-3');
    await create(jobSpec('firmware', { rollout: { maxConcurrent: 2, abortAfterFailures: 1 } }));
    const uid = named((await gw1.waitJobs('firmware', (jobs) => jobs.length === 1)).jobs!, 'firmware')!.execution;
    await gw2.waitJobs('firmware', (jobs) => jobs.length === 1);
    await gw1.report([report('firmware', uid, { state: 'running' })]);
    await waitState('firmware', 'gw-1', 'running');

    await gw2.report([report('firmware', uid, { state: 'failed', exitCode: 1, container: 'task' })]);
    const aborted = await waitPhase('firmware', 'aborted');
    expect(aborted.reason).toBe('1 device failed: gw-2 (exit code 1) (the job stops at 1)');
    // gw-3 never had it: canceled at once, with why.
    expect(aborted.executions.find((e) => e.device === 'gw-3')?.state).toBe('canceled');
    expect((await waitEvent('gw-3', 'job-canceled')).message).toBe(
      'job firmware canceled before it started: 1 device failed: gw-2 (exit code 1) (the job stops at 1)',
    );
    // gw-1 runs it: its document says cancel until it reports the execution canceled.
    const told = await gw1.waitJobs('firmware canceled', (jobs) => named(jobs, 'firmware')?.cancel === true);
    expect(named(told.jobs!, 'firmware')!.execution).toBe(uid);
    expect((await execution('firmware', 'gw-1'))?.state).toBe('running');
    await gw1.report([report('firmware', uid, { state: 'canceled', message: 'stopped by the hub' })]);
    await waitState('firmware', 'gw-1', 'canceled');
    await gw1.waitJobs('firmware gone', (jobs) => jobs.length === 0);
    expect((await job('firmware')).phase).toBe('aborted');
    // The hub's events are its own decisions: the job made on each, and gw-3's execution it dropped;
    // gw-2's failure and gw-1's cancel on the device are theirs to record.
    expect(await hubEvents('gw-1')).toEqual(['job-queued firmware']);
    expect(await hubEvents('gw-2')).toEqual(['job-queued firmware']);
    expect(await hubEvents('gw-3')).toEqual(['job-queued firmware', 'job-canceled firmware']);
  });

  it('cancel drops what has not started and stops what runs; delete removes the job and its executions', async () => {
    const gw1 = await device('gw-1');
    await device('gw-2');
    await create(jobSpec('collect', { rollout: { maxConcurrent: 1 } }));
    const uid = named((await gw1.waitJobs('collect', (jobs) => jobs.length === 1)).jobs!, 'collect')!.execution;
    await gw1.report([report('collect', uid, { state: 'running' })]);
    await waitState('collect', 'gw-1', 'running');

    const canceled = await call('jobs.cancel', { name: 'collect' });
    expect(canceled.ok).toBe(true);
    expect(canceled.result).toMatchObject({ name: 'collect', phase: 'canceled', reason: 'canceled by MQTT client svc-1' });
    expect((canceled.result as JobDetail).executions.map((e) => [e.device, e.state])).toEqual([
      ['gw-1', 'running'],
      ['gw-2', 'canceled'],
    ]);
    await gw1.waitJobs('collect canceled', (jobs) => named(jobs, 'collect')?.cancel === true);
    // Canceling again changes nothing.
    expect((await call('jobs.cancel', { name: 'collect' })).result).toMatchObject({
      phase: 'canceled',
      reason: 'canceled by MQTT client svc-1',
    });

    await gw1.report([report('collect', uid, { state: 'canceled' })]);
    await waitState('collect', 'gw-1', 'canceled');
    await gw1.waitJobs('collect gone', (jobs) => jobs.length === 0);

    const deleted = await api('DELETE', '/api/v1/jobs/collect');
    expect(deleted.body).toEqual({ name: 'collect', deleted: true });
    expect((await api('GET', '/api/v1/jobs/collect')).status).toBe(404);
    expect((await api('GET', '/api/v1/jobs')).body).toEqual({ items: [] });
    expect((await api('POST', '/api/v1/jobs/collect/cancel')).body.error).toEqual({
      code: 'not_found',
      message: 'job "collect" not found',
    });
  });

  it('delete cancels a running job first: its devices’ documents drop it', async () => {
    const gw1 = await device('gw-1');
    await create(jobSpec('sweep'));
    await gw1.waitJobs('sweep', (jobs) => jobs.length === 1);
    expect((await api('DELETE', '/api/v1/jobs/sweep')).body).toEqual({ name: 'sweep', deleted: true });
    await gw1.waitJobs('sweep gone', (jobs) => jobs.length === 0);
    expect((await api('GET', '/api/v1/jobs/sweep')).status).toBe(404);
  });

  it('expires executions not started by the deadline; a late final report replaces expired', async () => {
    const gw1 = await device('gw-1');
    const gw2 = await device('gw-2');
    await gw2.goAway();
    await create(jobSpec('short', { deadline: '3s' }));
    const uid = named((await gw1.waitJobs('short', (jobs) => jobs.length === 1)).jobs!, 'short')!.execution;

    const expired = await waitPhase('short', 'complete');
    expect(expired.executions.map((e) => [e.device, e.state])).toEqual([
      ['gw-1', 'expired'],
      ['gw-2', 'expired'],
    ]);
    expect((await waitEvent('gw-2', 'job-expired')).message).toBe(
      `job short expired: the device had not started it by its deadline ${expired.deadline}`,
    );
    await gw1.waitJobs('short gone at its deadline', (jobs) => jobs.length === 0);

    // gw-1 had started it before the deadline and reports how it ended.
    await gw1.report([report('short', uid, { state: 'succeeded', finishedAt: new Date().toISOString() })]);
    await waitState('short', 'gw-1', 'succeeded');
    expect((await job('short')).counts).toMatchObject({ succeeded: 1, expired: 1, total: 2 });
    // The hub's expiry is its own event on each; the late success is gw-1's to record.
    expect(await hubEvents('gw-1')).toEqual(['job-queued short', 'job-expired short']);
  });

  it('takes the spec itself as the body, in YAML as a file sends it (curl --data-binary @job.yaml), and refuses a bad one naming each field', async () => {
    const gw1 = await device('gw-1');
    const yaml = { 'content-type': 'application/yaml' };
    const made = await api(
      'POST',
      '/api/v1/jobs',
      `# diagnostics for the lab
name: collect-logs
scheduling:
  selectors: { site: lab }
spec:
  containers:
    - name: task
      image: busybox:1.36
      command: [sh, -c, "uname -a"]
  timeout: 5m
  retries: { limit: 1, backoff: 30s }
`,
      yaml,
    );
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(made.body).toMatchObject({ name: 'collect-logs', phase: 'active', counts: { queued: 1, total: 1 } });
    const doc = await gw1.waitJobs('collect-logs in its document', (jobs) => named(jobs, 'collect-logs') !== undefined);
    expect(named(doc.jobs!, 'collect-logs')).toMatchObject({
      containers: [{ name: 'task', image: 'busybox:1.36', command: ['sh', '-c', 'uname -a'], restartPolicy: { name: 'no' } }],
      timeout: '5m',
      retries: { limit: 1, backoff: '30s' },
    });

    const bad = await api(
      'POST',
      '/api/v1/jobs',
      `name: broken
spec:
  containers: [{ name: task, image: "busybox:1.36" }]
  timeout: -5s
  colour: red
`,
      yaml,
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect((bad.body.error.details.issues as { path: string }[]).map((i) => i.path).sort()).toEqual([
      'scheduling',
      'spec.colour',
      'spec.timeout',
    ]);
    const notYaml = await api('POST', '/api/v1/jobs', 'name: [unclosed', yaml);
    expect(notYaml.status).toBe(400);
    expect(notYaml.body.error.message).toMatch(/^request body is not valid YAML/);
    expect((await api('GET', '/api/v1/jobs')).body.items.map((j: JobSummary) => j.name)).toEqual(['collect-logs']);
  });

  it('refuses a bad spec with one error naming every field, and stores nothing', async () => {
    await device('gw-1');
    const bad = await api('POST', '/api/v1/jobs', {
      name: 'bad',
      spec: { containers: [{ name: 'task', image: 'busybox:1.36' }], timeout: '-5s', colour: 'red' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    const paths = (bad.body.error.details.issues as { path: string }[]).map((i) => i.path).sort();
    expect(paths).toEqual(['scheduling', 'spec.colour', 'spec.timeout']);
    expect(bad.body.error.message).toMatch(/^invalid job spec \(.*, and 2 more\)$/);

    const zero = await api('POST', '/api/v1/jobs', jobSpec('zero', { timeout: '0s' }));
    expect(zero.body.error).toEqual({
      code: 'invalid_request',
      message: 'invalid job spec (spec.timeout: must be longer than 0)',
      details: { issues: [{ path: 'spec.timeout', message: 'must be longer than 0' }] },
    });

    const nobody = await api('POST', '/api/v1/jobs', jobSpec('nobody', {}, { selectors: { site: 'moon' } }));
    expect(nobody.status).toBe(400);
    expect(nobody.body.error.details.issues).toEqual([
      {
        path: 'scheduling',
        message:
          'selects no device: selector site=moon does not match the one device the hub knows (flotilla get devices shows their labels)',
      },
    ]);

    // A job's devices are fixed when it is made: an id the hub does not know could never run it,
    // so the job is refused, naming every such id, rather than made for the rest.
    const strangers = await api('POST', '/api/v1/jobs', jobSpec('strangers', {}, { devices: ['gw-1', 'nosuch', 'other'] }));
    expect(strangers.status).toBe(400);
    expect(strangers.body.error).toEqual({
      code: 'invalid_request',
      message:
        'invalid job spec (scheduling.devices: unknown devices nosuch, other: register them first (flotilla token create) or leave them out)',
      details: {
        issues: [
          {
            path: 'scheduling.devices',
            message: 'unknown devices nosuch, other: register them first (flotilla token create) or leave them out',
          },
        ],
      },
    });
    const stranger = await api('POST', '/api/v1/jobs', jobSpec('stranger', {}, { devices: ['nosuch'], selectors: { site: 'lab' } }));
    expect(stranger.body.error.details.issues).toEqual([
      { path: 'scheduling.devices', message: 'unknown device nosuch: register it first (flotilla token create) or leave it out' },
    ]);
    // Known devices the selectors rule out: the sentence names both.
    const ruledOut = await api('POST', '/api/v1/jobs', jobSpec('ruled-out', {}, { devices: ['gw-1'], selectors: { site: 'moon' } }));
    expect(ruledOut.body.error.details.issues).toEqual([
      {
        path: 'scheduling',
        message:
          'selects no device: device gw-1 and selector site=moon do not match the one device the hub knows (flotilla get devices shows their labels)',
      },
    ]);

    const secretless = await api(
      'POST',
      '/api/v1/jobs',
      jobSpec('secretless', {
        containers: [{ name: 'task', image: 'busybox:1.36', env: [{ name: 'TOKEN', fromSecret: 'api-token' }] }],
      }),
    );
    expect(secretless.body.error.details.issues).toEqual([
      {
        path: 'spec.containers[0].env[0].fromSecret',
        message: 'secret "api-token" does not exist: create it first (flotilla secret set api-token …)',
      },
    ]);

    expect((await api('GET', '/api/v1/jobs')).body).toEqual({ items: [] });
    await waitFor('Prometheus counts no job', async () => {
      const { families } = await scrape(hub.httpUrl);
      return sampleValue(families, 'flotilla_jobs', { phase: 'active' }) === 0;
    });
  });

  it('a job over 40 devices reaches every document and completes once each reports (the fleet-wide reads)', async () => {
    // One client plays the fleet: it publishes each device's state and hears every device's document.
    const fleet = await connectClient(hub.mqttUrl, { clientId: 'fleet-sim' });
    cleanup.add('fleet', () => closeClient(fleet));
    const inbox = new Inbox(fleet);
    await fleet.subscribeAsync('flotilla/v1/devices/+/desired', { qos: 1 });
    const ids = Array.from({ length: 40 }, (_, i) => `sim-${String(i).padStart(2, '0')}`);
    const newest = (id: string) => inbox.on(`flotilla/v1/devices/${id}/desired`).at(-1)?.json as DesiredState | undefined;
    const publishState = (id: string, jobs: JobExecutionReport[] = []) =>
      fleet.publishAsync(
        `flotilla/v1/devices/${id}/state`,
        JSON.stringify({ ...deviceState(id, { labels: { fleet: 'big' } }), observedRevision: newest(id)?.revision ?? 0, jobs }),
        { qos: 1 },
      );
    for (const id of ids) await publishState(id);
    await waitFor('every device has its first document', () => ids.every((id) => newest(id) !== undefined));

    await create(jobSpec('census', {}, { selectors: { fleet: 'big' } }));
    await waitFor('every device has census in its document', () => ids.every((id) => newest(id)?.jobs?.[0]?.name === 'census'));
    const uid = newest('sim-00')!.jobs![0]!.execution;
    for (const id of ids) await publishState(id, [report('census', uid, { state: 'succeeded' })]);
    expect((await waitPhase('census', 'complete')).counts).toMatchObject({ succeeded: 40, total: 40 });
    await waitFor('census gone from every document', () => ids.every((id) => (newest(id)?.jobs ?? []).length === 0));
  });

  it('events.query, over HTTP and MQTT, and its follow stream keep a job’s events apart from an app’s of the same name', async () => {
    const gw1 = await device('gw-1');
    const sender = await connectClient(hub.mqttUrl, { clientId: 'gw-9' });
    cleanup.add('gw-9', () => closeClient(sender));
    let seqNo = 0;
    const send = (type: string, app: string, message: string) =>
      sender.publishAsync(
        'flotilla/v1/devices/gw-9/events',
        JSON.stringify({ seq: ++seqNo, ts: new Date().toISOString(), type, app, message }),
        { qos: 1 },
      );
    await sender.publishAsync('flotilla/v1/devices/gw-9/state', JSON.stringify({ ...gw1.state, deviceId: 'gw-9' }), { qos: 1 });
    await waitFor('gw-9 known', async () => (await api('GET', '/api/v1/devices/gw-9')).status === 200);
    await send('started', 'backup', 'app started');
    await send('job-started', 'backup', 'job attempt 1 started');
    await send('job-succeeded', 'thermo', 'another job');
    await send('health-failed', 'backup', 'app unhealthy');
    const messages = async (query: string) =>
      ((await api('GET', `/api/v1/events?device=gw-9&${query}`)).body as { events: EventRecord[] }).events.map((e) => e.message);
    await waitFor('events stored', async () => (await messages('')).length === 4);
    expect(await messages('job=backup')).toEqual(['job attempt 1 started']);
    expect(await messages('app=backup')).toEqual(['app started', 'app unhealthy']);
    const both = await api('GET', '/api/v1/events?app=backup&job=backup');
    expect(both.status).toBe(400);
    expect(both.body.error.message).toBe('give app or job, not both: app "backup" selects an app\'s events, job "backup" a job\'s');
    // The MQTT request API reads the same.
    const overMqtt = await call('events.query', { device: 'gw-9', job: 'backup' });
    expect((overMqtt.result as { events: EventRecord[] }).events.map((e) => e.message)).toEqual(['job attempt 1 started']);

    const abort = new AbortController();
    cleanup.add('follower', () => abort.abort());
    const res = await fetch(`${hub.httpUrl}/api/v1/events?follow=true&job=backup`, { signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const followed: string[] = [];
    const reading = (async () => {
      for await (const { data } of readSse(res.body!)) followed.push((JSON.parse(data) as EventRecord).message);
    })().catch(() => undefined);
    void reading;
    await waitFor('the backlog followed', () => followed.length === 1);
    await send('started', 'backup', 'app again');
    await send('job-failed', 'backup', 'job failed');
    await waitFor('the new job event followed', () => followed.includes('job failed'));
    expect(followed).toEqual(['job attempt 1 started', 'job failed']);
  });

  it('logs.query and its follow stream keep a job’s lines apart from an app’s of the same name', async () => {
    const gw1 = await device('gw-1');
    void gw1;
    const sender = await connectClient(hub.mqttUrl, { clientId: 'gw-9' });
    cleanup.add('gw-9', () => closeClient(sender));
    const logs = (seqNo: number, lines: ReturnType<typeof logLine>[]) =>
      sender.publishAsync('flotilla/v1/devices/gw-9/logs', JSON.stringify({ seq: seqNo, lines }), { qos: 1 });
    await sender.publishAsync('flotilla/v1/devices/gw-9/state', JSON.stringify({ ...gw1.state, deviceId: 'gw-9' }), { qos: 1 });
    await waitFor('gw-9 known', async () => (await api('GET', '/api/v1/devices/gw-9')).status === 200);
    await logs(1, [
      logLine('app line', { app: 'backup', container: 'server' }),
      logLine('job line', { app: 'backup', container: 'task', job: true }),
      logLine('other app', { app: 'thermo' }),
    ]);
    const lines = async (query: string) =>
      ((await api('GET', `/api/v1/devices/gw-9/logs?${query}`)).body as { lines: LogRecord[] }).lines.map((l) => l.line);
    await waitFor('lines stored', async () => (await lines('')).length === 3);
    expect(await lines('job=backup')).toEqual(['job line']);
    expect(await lines('app=backup')).toEqual(['app line']);
    const both = await api('GET', '/api/v1/devices/gw-9/logs?app=backup&job=backup');
    expect(both.status).toBe(400);
    expect(both.body.error.message).toBe('give app or job, not both: app "backup" selects an app\'s lines, job "backup" a job\'s');

    const abort = new AbortController();
    cleanup.add('follower', () => abort.abort());
    const res = await fetch(`${hub.httpUrl}/api/v1/devices/gw-9/logs?follow=true&job=backup`, { signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const followed: string[] = [];
    const reading = (async () => {
      for await (const { data } of readSse(res.body!)) followed.push((JSON.parse(data) as LogRecord).line);
    })().catch(() => undefined);
    void reading;
    await waitFor('the backlog followed', () => followed.length === 1);
    await logs(2, [
      logLine('app again', { app: 'backup', container: 'server' }),
      logLine('job again', { app: 'backup', container: 'task', job: true }),
    ]);
    await waitFor('the new job line followed', () => followed.includes('job again'));
    expect(followed).toEqual(['job line', 'job again']);
  });
});
