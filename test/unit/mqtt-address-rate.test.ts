/** Per-address connection rate: buckets per address on an injected clock, their expiry, and the preConnect refusal (no broker, no sleeping). */
import type { Client, ConnectPacket } from 'aedes';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HUB_DEFAULTS, resolveHubConfig } from '../../broker/config.js';
import { AddressRate, addressKey } from '../../broker/mqtt/address-rate.js';
import { createConnectionAdmission } from '../../broker/mqtt/admission.js';
import { LogCapture } from '../support/logs.js';

function clock(start = 1_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

describe('addressKey', () => {
  it('counts IPv4 as is, IPv4-mapped IPv6 as its IPv4, IPv6 by its /64', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002::')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});

describe('AddressRate', () => {
  it('gives each address its own burst and rate', () => {
    const c = clock();
    const rate = new AddressRate({ rate: 10, burst: 20, now: c.now });
    for (let i = 0; i < 20; i++) expect(rate.take('198.51.100.1')).toBe(true);
    expect(rate.take('198.51.100.1')).toBe(false);
    // Another address is not affected; nor is another /64, while the same /64 is.
    expect(rate.take('198.51.100.2')).toBe(true);
    for (let i = 0; i < 20; i++) expect(rate.take(`2001:db8:0:1::${i.toString(16)}`)).toBe(true);
    expect(rate.take('2001:db8:0:1::ffff')).toBe(false);
    expect(rate.take('2001:db8:0:2::1')).toBe(true);
    c.advance(100);
    expect(rate.take('198.51.100.1')).toBe(true);
    expect(rate.take('198.51.100.1')).toBe(false);
  });

  it('forgets buckets that have refilled, so memory follows recent connections only', () => {
    const c = clock();
    const rate = new AddressRate({ rate: 100, burst: 200, now: c.now });
    for (let i = 0; i < 1000; i++) rate.take(`10.0.${i >> 8}.${i & 255}`);
    expect(rate.size).toBe(1000);
    c.advance(2_000); // burst / rate: every bucket is full again
    rate.take('10.9.9.9');
    expect(rate.size).toBe(1);
  });

  it('tracks at most maxAddresses, dropping the oldest (which only lets that address in sooner)', () => {
    const c = clock();
    const rate = new AddressRate({ rate: 1, burst: 1, maxAddresses: 3, now: c.now });
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) expect(rate.take(a)).toBe(true);
    expect(rate.size).toBe(3);
    expect(rate.take('10.0.0.1')).toBe(true); // forgotten: a fresh bucket
    expect(rate.take('10.0.0.4')).toBe(false);
  });
});

function fakeClient(remoteAddress: string | undefined, clientId = 'dev-1') {
  const written: Buffer[] = [];
  const conn = {
    destroyed: false,
    writable: true,
    remoteAddress,
    write(chunk: Buffer, cb: () => void) {
      written.push(chunk);
      queueMicrotask(cb);
      return true;
    },
  };
  const client = { id: clientId, closed: false, conn } as unknown as Client;
  return { client, packet: { cmd: 'connect', clientId } as ConnectPacket, written };
}

describe('createConnectionAdmission with ratePerAddress', () => {
  let logs: LogCapture;
  beforeEach(() => {
    vi.useFakeTimers();
    logs = new LogCapture('info');
  });
  afterEach(() => vi.useRealTimers());

  const attempt = (admission: ReturnType<typeof createConnectionAdmission>, address: string | undefined, clientId?: string) => {
    const fake = fakeClient(address, clientId);
    let ok: boolean | undefined;
    admission.preConnect(fake.client, fake.packet, (_err, result) => {
      ok = result;
    });
    return { ...fake, ok: () => ok };
  };

  it('refuses one address over its rate with CONNACK 3 while others still get in, without spending the global tokens', async () => {
    const admission = createConnectionAdmission({
      rate: 1000,
      ratePerAddress: 5,
      maxWaitMs: 0,
      logger: logs.logger,
      now: () => Date.now(),
    });
    // Burst: twice the rate.
    for (let i = 0; i < 10; i++) expect(attempt(admission, '192.0.2.1').ok()).toBe(true);
    const refused = attempt(admission, '192.0.2.1');
    await vi.advanceTimersByTimeAsync(0);
    expect(refused.ok()).toBe(false);
    expect(refused.written).toEqual([Buffer.from([0x20, 0x02, 0x00, 0x03])]);
    expect(attempt(admission, '192.0.2.2').ok()).toBe(true);
    const mapped = attempt(admission, '::ffff:192.0.2.1');
    // Unknown address (a test stream): not limited per address.
    expect(attempt(admission, undefined).ok()).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(mapped.ok()).toBe(false);
    expect(admission.counters()).toMatchObject({ admitted: 12, refused: 0, refusedPerAddress: 2 });
    admission.close();
  });

  it('logs refused addresses once per interval, naming them', async () => {
    const admission = createConnectionAdmission({ rate: 0, ratePerAddress: 1, logger: logs.logger, now: () => Date.now() });
    for (let i = 0; i < 50; i++) attempt(admission, '192.0.2.9');
    await vi.advanceTimersByTimeAsync(1_000);
    const line = 'refusing connections over the per-address rate (--max-connect-rate-per-address)';
    expect(logs.matching(line)).toEqual([expect.objectContaining({ addresses: { '192.0.2.9': 48 }, ratePerAddress: 1 })]);
    expect(admission.counters()).toMatchObject({ admitted: 2, refusedPerAddress: 48 });
    admission.close();
  });

  it('is on by default at 100/s (burst 200) and 0 turns it off', () => {
    expect(HUB_DEFAULTS.maxConnectRatePerAddress).toBe(100);
    expect(resolveHubConfig({ maxConnectRatePerAddress: 0 }).maxConnectRatePerAddress).toBe(0);
    expect(() => resolveHubConfig({ maxConnectRatePerAddress: -1 })).toThrow(/maxConnectRatePerAddress/);
    const admission = createConnectionAdmission({ rate: 0, ratePerAddress: 0, logger: logs.logger });
    for (let i = 0; i < 1000; i++) expect(attempt(admission, '127.0.0.1').ok()).toBe(true);
    admission.close();
  });
});
