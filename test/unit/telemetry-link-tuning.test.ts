/**
 * The agent's reading of the hub's `telemetry.link` command and the lease of
 * a live log window (agent/telemetry/link-tuning.ts), on fake timers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chooseEncoding, LiveLogWindow, readTelemetryLinkCommand } from '../../agent/telemetry/link-tuning.js';
import { type Command, TELEMETRY_LINK_COMMAND } from '../../shared/index.js';

const NOW = Date.parse('2026-12-05T06:00:00Z');

function command(args: Record<string, unknown>, overrides: Partial<Command> = {}): Command {
  return { id: 'c-1', type: TELEMETRY_LINK_COMMAND, args, expiresAt: new Date(NOW + 30_000).toISOString(), ...overrides };
}

describe('readTelemetryLinkCommand', () => {
  it('reads the encodings and the live window, and leaves other commands to others', () => {
    expect(readTelemetryLinkCommand(command({ encodings: ['deflate-dict-1'], liveLogBatchMs: 250, liveForMs: 60_000 }), NOW)).toEqual({
      kind: 'tune',
      args: { encodings: ['deflate-dict-1'], liveLogBatchMs: 250, liveForMs: 60_000 },
    });
    expect(readTelemetryLinkCommand(command({}, { type: 'session.open' }), NOW)).toEqual({ kind: 'other' });
  });

  it('ignores an expired copy and refuses bad args with the reason', () => {
    expect(readTelemetryLinkCommand(command({ encodings: [] }, { expiresAt: new Date(NOW - 1).toISOString() }), NOW)).toEqual({
      kind: 'expired',
    });
    const bad = readTelemetryLinkCommand(command({ liveLogBatchMs: 1 }), NOW);
    expect(bad.kind).toBe('invalid');
    expect(bad.kind === 'invalid' && bad.reason).toContain('liveLogBatchMs');
    expect(readTelemetryLinkCommand(command({ turbo: true }), NOW).kind).toBe('invalid');
  });
});

describe('chooseEncoding', () => {
  it("takes the hub's first encoding this agent speaks, and none from a hub that lists none it knows", () => {
    expect(chooseEncoding(['zstd-9', 'deflate-dict-1'])).toBe('deflate-dict-1');
    expect(chooseEncoding(['zstd-9'])).toBeUndefined();
    expect(chooseEncoding([])).toBeUndefined();
    expect(chooseEncoding(undefined)).toBeUndefined();
  });
});

describe('LiveLogWindow', () => {
  afterEach(() => vi.useRealTimers());

  function window() {
    const applied: number[] = [];
    const live = new LiveLogWindow({ defaultMs: 10_000, apply: (ms) => applied.push(ms) });
    return { live, applied };
  }

  it('holds the short window for its lease, renewed by each command, then returns to the default by itself', () => {
    vi.useFakeTimers();
    const { live, applied } = window();
    live.tune({ liveLogBatchMs: 250, liveForMs: 60_000 });
    expect(applied).toEqual([250]);
    vi.advanceTimersByTime(30_000);
    live.tune({ liveLogBatchMs: 250, liveForMs: 60_000 });
    vi.advanceTimersByTime(59_000);
    expect(applied).toEqual([250, 250]);
    vi.advanceTimersByTime(1_000);
    expect(applied).toEqual([250, 250, 10_000]);
    live.stop();
  });

  it('ends at once on liveForMs 0, never goes longer than the agent’s own window, and ignores a command without a lease', () => {
    vi.useFakeTimers();
    const { live, applied } = window();
    live.tune({ encodings: ['deflate-dict-1'] } as never);
    expect(applied).toEqual([]);
    live.tune({ liveLogBatchMs: 60_000, liveForMs: 60_000 });
    expect(applied).toEqual([10_000]);
    live.tune({ liveLogBatchMs: 250, liveForMs: 60_000 });
    live.tune({ liveForMs: 0 });
    expect(applied).toEqual([10_000, 250, 10_000]);
    // The ended lease's timer is gone: nothing more happens.
    vi.advanceTimersByTime(120_000);
    expect(applied).toEqual([10_000, 250, 10_000]);
  });
});
