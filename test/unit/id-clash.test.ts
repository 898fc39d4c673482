import { describe, expect, it } from 'vitest';
import { TakeoverLedger } from '../../broker/mqtt/id-clash.js';

const MIN = 60_000;

describe('TakeoverLedger', () => {
  it('calls the third takeover within ten minutes a clash, once, and reports it until half an hour is quiet', () => {
    const ledger = new TakeoverLedger();
    expect(ledger.record('gw-1', '10.0.0.7', 0)).toBeUndefined();
    expect(ledger.record('gw-1', '10.0.0.9', 2 * MIN)).toBeUndefined();
    const clash = ledger.record('gw-1', '10.0.0.7', 4 * MIN);
    expect(clash).toEqual({ deviceId: 'gw-1', since: new Date(4 * MIN).toISOString(), takeovers: 3, addresses: ['10.0.0.9', '10.0.0.7'] });
    // Said once: later takeovers keep it up to date without a new report.
    expect(ledger.record('gw-1', '10.0.0.9', 5 * MIN)).toBeUndefined();
    expect(ledger.get('gw-1', 6 * MIN)).toMatchObject({ takeovers: 4, since: clash!.since });
    expect(ledger.get('gw-1', 5 * MIN + 29 * MIN)).toMatchObject({ takeovers: 0 });
    expect(ledger.get('gw-1', 5 * MIN + 30 * MIN)).toBeUndefined();
    expect(ledger.get('gw-2', 0)).toBeUndefined();
  });

  it('does not call takeovers spread over more than ten minutes a clash (a device on a flaky link)', () => {
    const ledger = new TakeoverLedger();
    for (let i = 0; i < 10; i++) expect(ledger.record('gw-1', '10.0.0.7', i * 6 * MIN)).toBeUndefined();
    expect(ledger.get('gw-1', 60 * MIN)).toBeUndefined();
  });

  it('reports a clash again after it has been quiet for half an hour', () => {
    const ledger = new TakeoverLedger();
    for (const at of [0, 1, 2]) ledger.record('gw-1', 'a', at * MIN);
    const later = 2 * MIN + 31 * MIN;
    expect(ledger.record('gw-1', 'a', later)).toBeUndefined();
    expect(ledger.record('gw-1', 'a', later + MIN)).toBeUndefined();
    expect(ledger.record('gw-1', 'a', later + 2 * MIN)).toMatchObject({ takeovers: 3 });
  });
});
