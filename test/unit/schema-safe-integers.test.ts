/**
 * Revisions and sequence numbers are exact integers: 1e308 and 2^64 pass
 * Number.isInteger, and the fuzz test found an agent without a pinned key
 * that, handed revision 1e308, took every later document for stale.
 */
import { describe, expect, it } from 'vitest';
import { DesiredState, DeviceEvent, DeviceState, LogBatch, validate } from '../../shared/index.js';

const desired = (revision: number) => ({ deviceId: 'dev-1', revision, issuedAt: '2026-01-01T00:00:00Z', apps: [] });

describe('revisions and sequence numbers', () => {
  it('accept up to 2^53 - 1 and refuse above, where JSON numbers stop being exact', () => {
    expect(validate(DesiredState, desired(Number.MAX_SAFE_INTEGER)).ok).toBe(true);
    for (const revision of [Number.MAX_SAFE_INTEGER + 1, 2 ** 64, 1e308]) {
      expect(validate(DesiredState, desired(revision)).ok, String(revision)).toBe(false);
    }
    const app = { name: 'web', revision: 1e308, phase: 'running', containers: [] };
    const host = { hostname: 'h', os: 'linux', arch: 'x64', agentVersion: '1' };
    const state = { deviceId: 'dev-1', observedRevision: 1, reportedAt: '2026-01-01T00:00:00Z', host, labels: {}, apps: [app] };
    expect(validate(DeviceState, state).ok).toBe(false);
    expect(validate(DeviceState, { ...state, apps: [{ ...app, revision: 3 }], observedRevision: 2 ** 64 }).ok).toBe(false);
    expect(validate(DeviceState, { ...state, apps: [{ ...app, revision: 3 }] }).ok).toBe(true);
    const line = { app: 'web', container: 'server', stream: 'stdout', ts: '2026-01-01T00:00:00Z', line: 'x' };
    expect(validate(LogBatch, { seq: 2 ** 64, lines: [line] }).ok).toBe(false);
    expect(validate(LogBatch, { seq: 7, lines: [line] }).ok).toBe(true);
    expect(validate(DeviceEvent, { seq: 1e308, ts: '2026-01-01T00:00:00Z', type: 't', message: 'm' }).ok).toBe(false);
  });
});
