/**
 * The agent's log batches fit the hub's cap on a logs message
 * (broker/mqtt/payload-limits.ts): the hub acknowledges and drops a bigger
 * one, so the agent's settings cannot ask for batches that would be lost.
 */
import { describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../agent/config.js';
import { LINE_OVERHEAD_BYTES } from '../../agent/telemetry/logs/log-buffer.js';
import { PAYLOAD_LIMITS } from '../../broker/mqtt/payload-limits.js';

describe('agent log batch size', () => {
  it('is at most 256 KiB (lines up to 64 KiB), refused above with the setting named', () => {
    expect(resolveAgentConfig({ logBatchBytes: 256 * 1024, logLineMaxBytes: 64 * 1024 })).toMatchObject({ logBatchBytes: 262_144 });
    expect(() => resolveAgentConfig({ logBatchBytes: 256 * 1024 + 1 })).toThrow(/logBatchBytes/);
    expect(() => resolveAgentConfig({ logLineMaxBytes: 64 * 1024 + 1 })).toThrow(/logLineMaxBytes/);
  });

  it('a largest batch of ordinary text, as JSON, is under the hub’s logs cap', () => {
    // A batch is taken while it holds under logBatchBytes of line cost, plus one more line.
    const line = {
      app: 'web',
      container: 'server',
      stream: 'stdout',
      ts: '2026-01-01T00:00:00.000000000Z',
      line: 'é"\\ plain text\t'.repeat(4000),
    };
    const cost = Buffer.byteLength(line.line) + 3 + 6 + line.ts.length + LINE_OVERHEAD_BYTES;
    const lines = Array.from({ length: Math.floor((256 * 1024) / cost) + 1 }, () => line);
    const bytes = Buffer.byteLength(JSON.stringify({ seq: Number.MAX_SAFE_INTEGER, lines }));
    expect(bytes).toBeLessThan(PAYLOAD_LIMITS.logs);
  });
});
