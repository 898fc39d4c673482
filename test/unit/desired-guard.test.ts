import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkDesired, checkRestored } from '../../agent/desired-guard.js';
import { RejectionEvents } from '../../agent/rejection-events.js';
import { type DesiredState, signDesired } from '../../shared/index.js';
import { LogCapture } from '../support/logs.js';

const hub = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

const doc = (revision: number, deviceId = 'dev-a', image = 'registry.local/web:1'): DesiredState => ({
  deviceId,
  revision,
  issuedAt: '2026-11-28T12:00:00.000Z',
  apps: [{ name: 'web', revision: 1, containers: [{ name: 'web', image }] }],
});
const signed = (revision: number, deviceId = 'dev-a', image?: string) => signDesired(doc(revision, deviceId, image), hub.privateKey);

describe('checkDesired with a pinned hub key', () => {
  const check = (desired: DesiredState, current?: DesiredState) => checkDesired(desired, current, hub.publicKey, 'dev-a');

  it('accepts the first signed document and any newer one', () => {
    expect(check(signed(1))).toEqual({ action: 'accept' });
    expect(check(signed(6), signed(5))).toEqual({ action: 'accept' });
  });

  it('refuses unsigned, other-key and tampered documents, saying why', () => {
    expect(check(doc(6), signed(5))).toEqual({
      action: 'refuse',
      reason: 'unsigned',
      message: 'desired state revision 6 refused: unsigned',
    });
    expect(check(signDesired(doc(6), other.privateKey), signed(5))).toMatchObject({ reason: 'bad signature' });
    const tampered = { ...signed(6), apps: [] };
    expect(check(tampered, signed(5))).toEqual({
      action: 'refuse',
      reason: 'bad signature',
      message: 'desired state revision 6 refused: bad signature',
    });
  });

  it('refuses a validly signed older revision (a replay) and a document for another device', () => {
    expect(check(signed(3), signed(5))).toEqual({
      action: 'refuse',
      reason: 'older revision',
      message: 'desired state revision 3 refused: revision 3 is older than the current 5',
    });
    expect(check(signed(9, 'dev-b'), signed(5))).toEqual({
      action: 'refuse',
      reason: 'other device',
      message: 'desired state revision 9 refused: issued for device dev-b, not this one',
    });
  });

  it('ignores the same document again (the retained copy after a reconnect) but refuses another one under the same revision', () => {
    expect(check(signed(5), signed(5))).toEqual({ action: 'ignore' });
    expect(check(signed(5, 'dev-a', 'registry.local/web:2'), signed(5))).toMatchObject({
      action: 'refuse',
      reason: 'not newer',
      message: 'desired state revision 5 refused: revision 5 is the current one, with different content',
    });
  });

  it('checks the signature before the revision, so a forged old document is called forged', () => {
    expect(check(doc(3), signed(5))).toMatchObject({ reason: 'unsigned' });
  });
});

describe('checkDesired without a pinned key', () => {
  const check = (desired: DesiredState, current?: DesiredState) => checkDesired(desired, current, undefined, 'dev-a');

  it('accepts unsigned newer documents as before signing, ignores stale ones silently, still refuses another device’s', () => {
    expect(check(doc(1))).toEqual({ action: 'accept' });
    expect(check(doc(6), doc(5))).toEqual({ action: 'accept' });
    expect(check(doc(5), doc(5))).toEqual({ action: 'ignore' });
    expect(check(doc(3), doc(5))).toEqual({ action: 'ignore' });
    expect(check(doc(9, 'dev-b'), doc(5))).toMatchObject({ action: 'refuse', reason: 'other device' });
  });
});

describe('checkRestored', () => {
  it('with a pinned key, a persisted document must verify; without one anything readable goes', () => {
    expect(checkRestored(signed(4), hub.publicKey)).toBeUndefined();
    expect(checkRestored({ ...signed(4), revision: 40 }, hub.publicKey)).toBe('bad signature');
    expect(checkRestored(doc(4), hub.publicKey)).toBe('unsigned');
    expect(checkRestored(doc(4), undefined)).toBeUndefined();
  });
});

describe('RejectionEvents', () => {
  let now = 0;
  let emitted: string[];
  let logs: LogCapture;
  let events: RejectionEvents;

  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_000_000;
    emitted = [];
    logs = new LogCapture('debug');
    events = new RejectionEvents({ emit: (m) => emitted.push(m), logger: logs.logger, intervalMs: 60_000, now: () => now });
  });
  afterEach(() => {
    events.close();
    vi.useRealTimers();
  });

  const advance = (ms: number) => {
    now += ms;
    vi.advanceTimersByTime(ms);
  };

  it('reports the first refusal of each reason at once, holds back the rest of the minute, then sums them up in one event', () => {
    events.refused('unsigned', 'desired state revision 6 refused: unsigned');
    events.refused('bad signature', 'desired state revision 7 refused: bad signature');
    for (let i = 0; i < 1000; i += 1) events.refused('unsigned', `desired state revision ${100 + i} refused: unsigned`);
    expect(emitted).toEqual(['desired state revision 6 refused: unsigned', 'desired state revision 7 refused: bad signature']);
    // Only the reported ones are warnings: a flood does not flood the log either.
    expect(logs.records.filter((r) => r.level === 40)).toHaveLength(2);

    advance(59_999);
    expect(emitted).toHaveLength(2);
    advance(1);
    expect(emitted).toEqual([
      'desired state revision 6 refused: unsigned',
      'desired state revision 7 refused: bad signature',
      'desired state revision 1099 refused: unsigned (and 999 more refused as unsigned since the last report)',
    ]);

    // The summary opened a new window: the next refusal waits for its end.
    advance(1_000);
    events.refused('unsigned', 'desired state revision 2000 refused: unsigned');
    expect(emitted).toHaveLength(3);
    advance(59_000);
    expect(emitted.at(-1)).toBe('desired state revision 2000 refused: unsigned');
  });

  it('a refusal after a quiet minute is reported at once, and nothing is emitted when nothing was held back', () => {
    events.refused('older revision', 'desired state revision 3 refused: revision 3 is older than the current 5');
    advance(120_000);
    expect(emitted).toHaveLength(1);
    events.refused('older revision', 'desired state revision 4 refused: revision 4 is older than the current 5');
    expect(emitted).toHaveLength(2);
  });

  it('close() cancels a pending summary', () => {
    events.refused('unsigned', 'a');
    events.refused('unsigned', 'b');
    events.close();
    advance(120_000);
    expect(emitted).toEqual(['a']);
  });
});
