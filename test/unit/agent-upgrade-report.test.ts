/**
 * The agent upgrade's report (agent/upgrade/report.ts): always valid for the
 * state report's schema, `since` kept while the phase stays, and told only
 * when asked.
 */
import { describe, expect, it } from 'vitest';
import { UpgradeReport, upgradeEvents } from '../../agent/upgrade/report.js';
import { AgentUpgradeReport, validate } from '../../shared/index.js';

describe('UpgradeReport', () => {
  it('cuts a long message to what the schema allows, so the state report stays valid', () => {
    const report = new UpgradeReport(
      () => 0,
      () => {},
    );
    report.set({ version: '0.3.0', revision: 4, phase: 'failed', message: `cannot download https://hub/${'x'.repeat(3000)}` });
    expect(report.current?.message?.length).toBe(1024);
    expect(validate(AgentUpgradeReport, report.current).ok).toBe(true);
    const event = upgradeEvents.failed({ version: '0.3.0', revision: 4 }, 'y'.repeat(5000));
    expect(event.message.length).toBe(1024);
  });

  it('keeps since while phase and version stay, and tells only when asked', () => {
    let now = Date.parse('2026-12-05T12:00:00Z');
    let told = 0;
    const report = new UpgradeReport(
      () => now,
      () => {},
    );
    report.changed.on(() => told++);
    report.set({ version: '0.3.0', revision: 4, phase: 'downloading', bytes: 0, total: 10 });
    now += 5000;
    report.set({ version: '0.3.0', revision: 4, phase: 'downloading', bytes: 5, total: 10 }, { tell: false });
    expect(report.current).toEqual({
      version: '0.3.0',
      revision: 4,
      phase: 'downloading',
      bytes: 5,
      total: 10,
      since: '2026-12-05T12:00:00.000Z',
    });
    expect(told).toBe(1);
    report.set({ version: '0.3.0', revision: 4, phase: 'verifying' });
    expect(report.current?.since).toBe('2026-12-05T12:00:05.000Z');
    report.set(undefined);
    expect(report.current).toBeUndefined();
    expect(told).toBe(3);
  });
});
