/**
 * Jobs on two hub replicas (`flotilla server --redis … --database …`, real processes on a private
 * Redis and PostgreSQL): a job made through the replica that does not lead is admitted and put
 * in documents by the leader, reaches a device connected to each replica, and a report that comes
 * through the follower is recorded there once and drops the job from that device's document, with
 * no hub event of it (the device's agent records its own); both replicas answer jobs.get alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventRecord, JobDetail } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { jobDevice } from '../support/job-devices.js';
import type { HubProcess } from '../support/processes.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { waitFor } from '../support/wait.js';

/** The one running replica whose log says it leads (the dispatcher's line on gaining the lease) and not since that it stopped. */
function leaderOf(replicas: readonly HubProcess[]): number | undefined {
  const leading = replicas
    .map((r, i) => ({ i, output: r.proc.output, running: r.proc.running }))
    .filter((r) => r.running && r.output.lastIndexOf('leading: running rollouts') > r.output.lastIndexOf('no longer leading'));
  return leading.length === 1 ? leading[0]!.i : undefined;
}

describe('jobs on hub replicas', () => {
  const cleanup = new Cleanup();
  let replicas: HubProcess[];

  beforeAll(async () => {
    ({ replicas } = await startReplicaHubs(cleanup, { count: 2, name: 'jobs-hub' }));
  }, 90_000);
  afterAll(() => cleanup.run());

  const api = (replica: number, method: string, path: string, body?: unknown) => http(replicas[replica]!.url, method, path, body);

  it('a job made through the follower reaches devices on both replicas, and a report through the follower is recorded', {
    timeout: 120_000,
  }, async () => {
    await waitFor('one replica leading', async () => leaderOf(replicas) !== undefined, { timeoutMs: 30_000 });
    const leader = leaderOf(replicas)!;
    const follower = 1 - leader;
    const onLeader = await jobDevice(cleanup, replicas[leader]!.mqttUrl, 'gw-1', { site: 'lab' });
    const onFollower = await jobDevice(cleanup, replicas[follower]!.mqttUrl, 'gw-2', { site: 'lab' });

    const made = await api(follower, 'POST', '/api/v1/jobs', {
      name: 'rotate',
      scheduling: { selectors: { site: 'lab' } },
      spec: { containers: [{ name: 'task', image: 'busybox:1.36' }] },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect((made.body as JobDetail).counts).toMatchObject({ queued: 2, total: 2 });

    const docs = await Promise.all(
      [onLeader, onFollower].map((d) => d.waitJobs('rotate in its document', (jobs) => jobs.some((j) => j.name === 'rotate'))),
    );
    const uid = docs[0]!.jobs![0]!.execution;
    expect(docs[1]!.jobs![0]!.execution).toBe(uid);

    await onFollower.report([{ name: 'rotate', execution: uid, state: 'succeeded', attempt: 1, finishedAt: new Date().toISOString() }]);
    const state = async (replica: number, device: string) =>
      ((await api(replica, 'GET', '/api/v1/jobs/rotate')).body as JobDetail).executions.find((e) => e.device === device)?.state;
    await waitFor('gw-2 succeeded, as the leader reads it', async () => (await state(leader, 'gw-2')) === 'succeeded', {
      timeoutMs: 30_000,
    });
    // Recorded by the replica gw-2 reports through, once.
    const recorded = (replica: number) =>
      replicas[replica]!.proc.output.split('\n').filter((line) => line.includes('job execution changed state') && line.includes('"gw-2"'));
    await waitFor("the follower's log of it", () => recorded(follower).length === 1);
    expect(recorded(leader)).toEqual([]);
    // The leader planned gw-2's next document without the finished job.
    await onFollower.waitJobs('rotate gone', (jobs) => jobs.length === 0);
    expect(onLeader.jobs().map((j) => j.name)).toEqual(['rotate']);
    // The hub's events on gw-2's timeline are its own decisions, the job made; the success is the
    // device's to record. A job made through the follower for gw-2 alone is stored after any event
    // the follower recorded of the report.
    const events = async () =>
      ((await api(leader, 'GET', '/api/v1/events?device=gw-2&tail=50')).body as { events: EventRecord[] }).events.map(
        (e) => `${e.type} ${e.app}`,
      );
    const marker = await api(follower, 'POST', '/api/v1/jobs', {
      name: 'marker',
      scheduling: { devices: ['gw-2'] },
      spec: { containers: [{ name: 'task', image: 'busybox:1.36' }] },
    });
    expect(marker.status, JSON.stringify(marker.body)).toBe(200);
    await waitFor("gw-2's job-queued of marker", async () => (await events()).includes('job-queued marker'), { timeoutMs: 30_000 });
    expect(await events()).toEqual(['job-queued rotate', 'job-queued marker']);

    await onLeader.report([{ name: 'rotate', execution: uid, state: 'succeeded', attempt: 1 }]);
    await waitFor('the job complete on both replicas', async () => {
      const [a, b] = await Promise.all([api(0, 'GET', '/api/v1/jobs/rotate'), api(1, 'GET', '/api/v1/jobs/rotate')]);
      return a.body.phase === 'complete' && JSON.stringify(a.body) === JSON.stringify(b.body);
    });
    await onLeader.waitJobs('rotate gone', (jobs) => jobs.length === 0);
  });
});
