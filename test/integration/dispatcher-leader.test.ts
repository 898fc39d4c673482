import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaderLease, type LeaderLeaseOptions } from '../../broker/dispatcher/leader.js';
import { ADVISORY_LOCKS, LOCK_CLASS } from '../../broker/store/pg/advisory-locks.js';
import { parsePostgresUrl } from '../../broker/store/pg/url.js';
import { Cleanup } from '../support/cleanup.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { LogCapture } from '../support/logs.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { waitFor } from '../support/wait.js';

/**
 * Replicas contending for leadership, watched the whole time: every 50 ms, and at every 'gained',
 * no two may lead. The cases about timing use the lease's defaults (a check every 1 s, 2 s for an
 * answer, 3 s before taking over); the others run four times faster.
 */
const FAST: Partial<LeaderLeaseOptions> = { checkIntervalMs: 250, checkTimeoutMs: 500 };

class Contenders {
  readonly leases: LeaderLease[] = [];
  readonly overlaps: string[] = [];
  readonly logs = new LogCapture('info');
  private readonly sampler: NodeJS.Timeout;
  samples = 0;

  constructor() {
    this.sampler = setInterval(() => this.sample('sample'), 50);
  }

  add(url: string, name: string, options: Partial<LeaderLeaseOptions> = {}): LeaderLease {
    const lease = new LeaderLease({ target: parsePostgresUrl(url), logger: this.logs.logger, replica: name, ...options });
    lease.on('gained', () => this.sample(`${name} gained`));
    this.leases.push(lease);
    lease.start();
    return lease;
  }

  leaders(): LeaderLease[] {
    return this.leases.filter((l) => l.isLeader);
  }

  /** Waits until exactly one leads, and returns it. */
  async oneLeader(timeoutMs = 10_000): Promise<LeaderLease> {
    return waitFor('exactly one leader', () => (this.leaders().length === 1 ? this.leaders()[0] : undefined), {
      timeoutMs,
      intervalMs: 50,
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    await Promise.all(this.leases.map((l) => l.stop()));
  }

  private sample(when: string): void {
    this.samples++;
    const leading = this.leases.filter((l) => l.isLeader).length;
    if (leading > 1) this.overlaps.push(`${leading} leaders at ${when}`);
  }
}

/** The pid of the backend holding the leader lock, if any. */
async function lockHolder(server: PostgresServer): Promise<number | undefined> {
  const rows = await server.adminQuery<{ pid: number }>(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2 AND granted",
    [LOCK_CLASS, ADVISORY_LOCKS.dispatcherLeader],
  );
  return rows[0]?.pid;
}

describe('dispatcher leader lease on PostgreSQL', () => {
  let server: PostgresServer;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.close());
  afterEach(() => cleanup.run());

  function contenders(): Contenders {
    const c = new Contenders();
    cleanup.add('contenders', async () => {
      await c.stop();
      expect(c.overlaps).toEqual([]);
    });
    return c;
  }

  it('lets exactly one of three replicas lead, and keeps it leading', async () => {
    const url = await server.createDatabase();
    const c = contenders();
    const started = Date.now();
    for (const name of ['a', 'b', 'c']) c.add(url, name);
    const leader = await c.oneLeader();
    // It took the lock within a check, then waited out the takeover delay (1 s + 2 s).
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(c.leaders()).toEqual([leader]);
    expect(c.logs.matching('leading the dispatcher')).toHaveLength(1);
    expect(await lockHolder(server)).toBeDefined();
    expect(c.samples).toBeGreaterThan(80);
  });

  it("moves leadership within seconds when the leader's session is terminated, and the old leader stops at once", async () => {
    const url = await server.createDatabase();
    const c = contenders();
    for (const name of ['a', 'b', 'c']) c.add(url, name);
    const first = await c.oneLeader();
    const lost = new Promise<string>((resolve) => first.once('lost', resolve));
    const killedAt = Date.now();
    const [terminated] = await server.adminQuery<{ done: boolean }>('SELECT pg_terminate_backend($1) AS done', [await lockHolder(server)]);
    expect(terminated?.done).toBe(true);
    // From its socket (the reason says so), not from a check that failed a second later.
    expect(await lost).toMatch(/^connection lost: /);
    expect(first.isLeader).toBe(false);
    const second = await c.oneLeader();
    expect(second).not.toBe(first);
    const movedMs = Date.now() - killedAt;
    expect(movedMs).toBeLessThan(6_000);
    // The old leader contends again on a new session, without taking over.
    const database = new URL(url).pathname.slice(1);
    await waitFor('three leader sessions again', async () => {
      const rows = await server.adminQuery(
        "SELECT pid FROM pg_stat_activity WHERE starts_with(application_name, 'flotilla-leader') AND datname = $1",
        [database],
      );
      return rows.length === 3;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(c.leaders()).toEqual([second]);
  });

  it('hands leadership over when the leader stops, which frees the lock at once', async () => {
    const url = await server.createDatabase();
    const c = contenders();
    for (const name of ['a', 'b', 'c']) c.add(url, name, FAST);
    const first = await c.oneLeader();
    const reasons: string[] = [];
    first.on('lost', (reason) => reasons.push(reason));
    await first.stop();
    expect(reasons).toEqual(['stopped']);
    expect(first.isLeader).toBe(false);
    const second = await c.oneLeader();
    expect(second).not.toBe(first);
  });

  it('stops leading on a stalled link before anyone else can lead, and another leads once the stalled session is gone', async () => {
    const url = await server.createDatabase();
    const proxy = await startFaultProxy({ targetPort: server.port });
    cleanup.add('proxy', () => proxy.close());
    const behindProxy = new URL(url);
    behindProxy.port = String(proxy.port);
    const c = contenders();
    const partitioned = c.add(behindProxy.href, 'a');
    await c.oneLeader();
    expect(partitioned.isLeader).toBe(true);
    for (const name of ['b', 'c']) c.add(url, name);
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const stalledAt = Date.now();
    proxy.stall();
    await waitFor('the partitioned leader to step down', () => !partitioned.isLeader, { timeoutMs: 10_000, intervalMs: 20 });
    // A check every 1 s that gets no answer within 2 s: about 3 s, with room for a loaded machine.
    expect(Date.now() - stalledAt).toBeLessThan(6_000);
    // Its session is still open on the server (the proxy holds it), so the lock is not free yet.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(c.leaders()).toEqual([]);
    expect(await lockHolder(server)).toBeDefined();

    proxy.cut();
    proxy.resume();
    const next = await c.oneLeader();
    expect(next).not.toBe(partitioned);
  });

  it('has exactly one leader again after PostgreSQL restarts, and none while it is down', async () => {
    const url = await server.createDatabase();
    const c = contenders();
    cleanup.add('the server up again for the next test', () => server.start());
    for (const name of ['a', 'b', 'c']) c.add(url, name, FAST);
    await c.oneLeader();

    await server.kill();
    await waitFor('no leader while PostgreSQL is down', () => c.leaders().length === 0, { timeoutMs: 5_000, intervalMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(c.leaders()).toEqual([]);
    expect(c.logs.matching('cannot reach PostgreSQL to contend for leadership; retrying every check').length).toBeGreaterThanOrEqual(1);

    await server.start();
    await c.oneLeader(15_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(c.leaders()).toHaveLength(1);
    // Each replica said once that it was back, with how long it waited.
    const back = c.logs.matching('PostgreSQL reachable again; contending for leadership');
    expect(back.length).toBe(3);
    for (const record of back) expect(record.waitedMs).toBeGreaterThanOrEqual(800);
  });
});
