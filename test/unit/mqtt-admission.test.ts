/** Connection admission: the token bucket on an injected clock, and the preConnect hook around it (no broker, no sleeping). */
import type { Client, ConnectPacket } from 'aedes';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HUB_DEFAULTS, resolveHubConfig } from '../../broker/config.js';
import { createConnectionAdmission } from '../../broker/mqtt/admission.js';
import { TokenBucket } from '../../broker/mqtt/token-bucket.js';
import { parseConnectRate } from '../../cli/commands/server.js';
import { LogCapture } from '../support/logs.js';

function clock(start = 1_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}

describe('TokenBucket', () => {
  it('starts full: a burst goes through at once, the next is refused without waiting', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 5, c.now);
    for (let i = 0; i < 5; i++) expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBeUndefined();
    expect(bucket.take(0)).toBeUndefined();
  });

  it('refills at the rate, never above the burst', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 5, c.now);
    for (let i = 0; i < 5; i++) bucket.take();
    c.advance(99);
    expect(bucket.take()).toBeUndefined();
    c.advance(1); // 100 ms at 10/s: one token
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBeUndefined();
    c.advance(60_000); // idle for a minute: still only the burst
    expect(bucket.available()).toBe(5);
    for (let i = 0; i < 5; i++) expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBeUndefined();
  });

  it('reserves the next tokens for a caller willing to wait, up to the longest wait', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 2, c.now);
    expect([bucket.take(1000), bucket.take(1000)]).toEqual([0, 0]);
    // Each reservation waits 100 ms longer than the previous, in arrival order.
    const waits = Array.from({ length: 10 }, () => bucket.take(1000));
    expect(waits.map((w) => Math.round(w!))).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    expect(bucket.take(1000)).toBeUndefined();
    // A refusal reserves nothing: 100 ms later exactly one more reservation fits.
    c.advance(100);
    expect(Math.round(bucket.take(1000)!)).toBe(1000);
    expect(bucket.take(1000)).toBeUndefined();
    expect(bucket.available()).toBeCloseTo(-10, 9);
  });

  it('gives a reserved token back, never above the burst', () => {
    const c = clock();
    const bucket = new TokenBucket(1, 1, c.now);
    expect(bucket.take()).toBe(0);
    expect(bucket.take(2000)).toBe(1000);
    bucket.giveBack();
    expect(bucket.take(2000)).toBe(1000);
    bucket.giveBack();
    bucket.giveBack();
    bucket.giveBack();
    expect(bucket.available()).toBe(1);
  });

  it('survives a clock that steps back', () => {
    const c = clock(10_000);
    const bucket = new TokenBucket(10, 1, c.now);
    expect(bucket.take()).toBe(0);
    c.set(5_000);
    expect(bucket.take()).toBeUndefined();
    c.advance(100);
    expect(bucket.take()).toBe(0);
  });

  it('rejects a rate or burst that cannot work', () => {
    expect(() => new TokenBucket(0, 1, Date.now)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0, Date.now)).toThrow(RangeError);
  });
});

/** Enough of an Aedes client for preConnect: its socket records what is written. */
function fakeClient(clientId = 'dev-1') {
  const written: Buffer[] = [];
  const conn = {
    destroyed: false,
    writable: true,
    write(chunk: Buffer, cb: () => void) {
      written.push(chunk);
      queueMicrotask(cb);
      return true;
    },
  };
  const client = { id: clientId, closed: false, conn } as unknown as Client & { closed: boolean; conn: typeof conn };
  const packet = { cmd: 'connect', clientId } as ConnectPacket;
  return { client, packet, written };
}

type Outcome = { err: (Error & { returnCode?: number }) | null; ok: boolean };

function connect(preConnect: ReturnType<typeof createConnectionAdmission>['preConnect'], clientId = 'dev-1') {
  const fake = fakeClient(clientId);
  let outcome: Outcome | undefined;
  preConnect(fake.client, fake.packet, (err, ok) => {
    outcome = { err, ok };
  });
  return { ...fake, outcome: () => outcome };
}

describe('createConnectionAdmission', () => {
  let logs: LogCapture;
  beforeEach(() => {
    vi.useFakeTimers();
    logs = new LogCapture('info');
  });
  afterEach(() => vi.useRealTimers());

  it('admits the burst, then refuses with CONNACK "server unavailable" before closing, and counts both', async () => {
    const admission = createConnectionAdmission({ rate: 2, maxWaitMs: 0, logger: logs.logger, now: () => Date.now() });
    const first = connect(admission.preConnect);
    const second = connect(admission.preConnect);
    expect(first.outcome()).toEqual({ err: null, ok: true });
    expect(second.outcome()).toEqual({ err: null, ok: true });

    const third = connect(admission.preConnect);
    // Aedes closes the socket on the callback's error: only once the CONNACK is handed over.
    expect(third.outcome()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(0);
    expect(third.written).toEqual([Buffer.from([0x20, 0x02, 0x00, 0x03])]);
    expect(third.outcome()?.ok).toBe(false);
    expect(third.outcome()?.err).toMatchObject({ returnCode: 3 });
    expect(admission.counters()).toEqual({ admitted: 2, delayed: 0, refused: 1, refusedPerAddress: 0, waiting: 0 });

    await vi.advanceTimersByTimeAsync(500); // one token
    expect(connect(admission.preConnect).outcome()).toEqual({ err: null, ok: true });
    expect(admission.counters()).toMatchObject({ admitted: 3, refused: 1 });
    admission.close();
  });

  it('refuses without writing to a socket that is already gone', async () => {
    const admission = createConnectionAdmission({ rate: 1, maxWaitMs: 0, logger: logs.logger, now: () => Date.now() });
    connect(admission.preConnect);
    const gone = fakeClient();
    gone.client.conn.destroyed = true;
    let outcome: Outcome | undefined;
    admission.preConnect(gone.client, gone.packet, (err, ok) => {
      outcome = { err, ok };
    });
    expect(outcome?.ok).toBe(false);
    expect(gone.written).toEqual([]);
    admission.close();
  });

  it('holds a connection for a token that comes within the wait, in arrival order', async () => {
    const admission = createConnectionAdmission({ rate: 10, burst: 1, maxWaitMs: 250, logger: logs.logger, now: () => Date.now() });
    expect(connect(admission.preConnect).outcome()?.ok).toBe(true);
    const held = [connect(admission.preConnect), connect(admission.preConnect)];
    expect(held.map((h) => h.outcome())).toEqual([undefined, undefined]);
    expect(admission.counters()).toEqual({ admitted: 1, delayed: 0, refused: 0, refusedPerAddress: 0, waiting: 2 });
    await vi.advanceTimersByTimeAsync(100);
    expect(held.map((h) => h.outcome()?.ok)).toEqual([true, undefined]);
    await vi.advanceTimersByTimeAsync(100);
    expect(held.map((h) => h.outcome()?.ok)).toEqual([true, true]);
    expect(held.every((h) => h.written.length === 0)).toBe(true);
    expect(admission.counters()).toEqual({ admitted: 3, delayed: 2, refused: 0, refusedPerAddress: 0, waiting: 0 });
    admission.close();
  });

  it('refuses at once what would wait longer than the wait, so no more than rate·wait are ever held', async () => {
    const admission = createConnectionAdmission({ rate: 10, burst: 1, maxWaitMs: 250, logger: logs.logger, now: () => Date.now() });
    const attempts = Array.from({ length: 6 }, () => connect(admission.preConnect));
    // 1 at once, 2 held (100 and 200 ms), 3 refused (they would need 300 ms or more).
    expect(admission.counters()).toEqual({ admitted: 1, delayed: 0, refused: 3, refusedPerAddress: 0, waiting: 2 });
    await vi.advanceTimersByTimeAsync(200);
    expect(attempts.map((a) => a.outcome()?.ok)).toEqual([true, true, true, false, false, false]);
    admission.close();
  });

  it('gives the token of a client that left while held to the next one', async () => {
    const admission = createConnectionAdmission({ rate: 10, burst: 1, maxWaitMs: 200, logger: logs.logger, now: () => Date.now() });
    connect(admission.preConnect);
    const leaver = connect(admission.preConnect); // reserved for t=100
    const stayer = connect(admission.preConnect); // reserved for t=200
    leaver.client.closed = true;
    await vi.advanceTimersByTimeAsync(100);
    expect(leaver.outcome()).toMatchObject({ ok: false });
    expect(admission.counters()).toEqual({ admitted: 1, delayed: 0, refused: 0, refusedPerAddress: 0, waiting: 1 });
    // With the leaver's token back, a newcomer gets in with the stayer at t=200, not at t=300.
    const newcomer = connect(admission.preConnect);
    await vi.advanceTimersByTimeAsync(100);
    expect([stayer.outcome()?.ok, newcomer.outcome()?.ok]).toEqual([true, true]);
    expect(admission.counters()).toEqual({ admitted: 3, delayed: 2, refused: 0, refusedPerAddress: 0, waiting: 0 });
    admission.close();
  });

  it('lets everyone through without a bucket (rate 0)', async () => {
    const unlimited = createConnectionAdmission({ rate: 0, logger: logs.logger });
    for (let i = 0; i < 1000; i++) expect(connect(unlimited.preConnect).outcome()?.ok).toBe(true);
    expect(unlimited.counters()).toEqual({ admitted: 1000, delayed: 0, refused: 0, refusedPerAddress: 0, waiting: 0 });
    unlimited.close();
  });

  it('logs one summary line per interval while refusing, not one per connection', async () => {
    const admission = createConnectionAdmission({ rate: 1, maxWaitMs: 0, logger: logs.logger, now: () => Date.now() });
    for (let i = 0; i < 50; i++) connect(admission.preConnect);
    expect(logs.records).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    const summary = 'connection storm: refusing connections over the admission rate (--max-connect-rate); devices retry with backoff';
    // The first connection took the only token before the window opened.
    expect(logs.matching(summary)).toEqual([expect.objectContaining({ refused: 49, admitted: 0, rate: 1, totalRefused: 49 })]);
    // Quiet: no more lines. Refusing again: one more line for the new window.
    await vi.advanceTimersByTimeAsync(5000);
    expect(logs.matching(summary)).toHaveLength(1);
    for (let i = 0; i < 10; i++) connect(admission.preConnect);
    await vi.advanceTimersByTimeAsync(500);
    connect(admission.preConnect); // half a token: refused, same window
    await vi.advanceTimersByTimeAsync(500);
    expect(logs.matching(summary)).toHaveLength(2);
    expect(logs.matching(summary)[1]).toMatchObject({ refused: 10, admitted: 0, totalRefused: 59 });
    admission.close();
  });

  it('on close refuses whoever is held and logs what the last window refused', async () => {
    const admission = createConnectionAdmission({ rate: 1, maxWaitMs: 5000, logger: logs.logger, now: () => Date.now() });
    connect(admission.preConnect);
    const attempts = Array.from({ length: 11 }, () => connect(admission.preConnect));
    await vi.advanceTimersByTimeAsync(0);
    // Tokens at 1 s, 2 s, … 5 s are reserved; the other six are refused.
    expect(admission.counters()).toEqual({ admitted: 1, delayed: 0, refused: 6, refusedPerAddress: 0, waiting: 5 });
    admission.close();
    expect(attempts.map((a) => a.outcome()?.ok)).toEqual(Array(11).fill(false));
    expect(logs.records).toEqual([expect.objectContaining({ refused: 6 })]);
    expect(vi.getTimerCount()).toBe(0);
    expect(connect(admission.preConnect).outcome()).toMatchObject({ ok: false });
  });
});

describe('--max-connect-rate', () => {
  it('defaults to 500 a second and takes 0 for no limit', () => {
    expect(HUB_DEFAULTS.maxConnectRate).toBe(500);
    expect(resolveHubConfig({ maxConnectRate: 0 }).maxConnectRate).toBe(0);
    expect(() => resolveHubConfig({ maxConnectRate: -1 })).toThrow(/maxConnectRate/);
    expect(parseConnectRate('20')).toBe(20);
    expect(parseConnectRate('0')).toBe(0);
    for (const bad of ['', '-1', '1.5', 'fast', '1e3'])
      expect(() => parseConnectRate(bad)).toThrow(/whole number of connections per second/);
  });
});
