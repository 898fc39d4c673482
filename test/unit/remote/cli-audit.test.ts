/**
 * The cells `flotilla audit` prints for one record: the refusal's reason
 * beside what was asked, bytes each way, and how long the session ran (or
 * has run so far).
 */
import { describe, expect, it } from 'vitest';
import { auditCells, formatDuration } from '../../../cli/commands/audit.js';
import type { AuditRecord } from '../../../shared/api/results.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');

function record(overrides: Partial<AuditRecord>): AuditRecord {
  return {
    id: 1,
    actor: 'ci-operator',
    device: 'pi-1',
    kind: 'exec',
    what: 'exec in web: ls',
    outcome: 'exited',
    startedAt: '2026-03-01T11:58:55.250Z',
    endedAt: '2026-03-01T12:00:00.000Z',
    bytesUp: 1536,
    bytesDown: 12,
    exitCode: 0,
    ...overrides,
  };
}

describe('auditCells', () => {
  it('shows an ended session with its exit code, bytes up/down and duration', () => {
    expect(auditCells(record({}), NOW)).toEqual([
      '2026-03-01T11:58:55Z',
      'ci-operator',
      'pi-1',
      'exec',
      'exec in web: ls',
      'exited',
      '0',
      '1.5 KiB/12 B',
      '1m5s',
    ]);
  });

  it('shows a refusal with its reason and no bytes or duration', () => {
    const denied = record({
      outcome: 'denied',
      reason: 'needs role operator',
      exitCode: undefined,
      endedAt: undefined,
      bytesUp: 0,
      bytesDown: 0,
    });
    expect(auditCells(denied, NOW).slice(4)).toEqual(['exec in web: ls (needs role operator)', 'denied', '-', '-', '-']);
  });
});

describe('formatDuration', () => {
  it('reads seconds with a decimal under 10 s, then m/s and h/m', () => {
    expect(formatDuration(record({ startedAt: '2026-03-01T11:59:59.600Z' }), NOW)).toBe('0.4s');
    expect(formatDuration(record({ startedAt: '2026-03-01T11:59:48Z' }), NOW)).toBe('12s');
    expect(formatDuration(record({ startedAt: '2026-03-01T09:30:00Z' }), NOW)).toBe('2h30m');
  });

  it('says how long a running session has run so far', () => {
    expect(formatDuration(record({ outcome: 'open', endedAt: undefined, startedAt: '2026-03-01T11:57:00Z' }), NOW)).toBe('3m0s so far');
  });
});
