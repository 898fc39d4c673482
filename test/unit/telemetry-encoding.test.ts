/**
 * The compact telemetry payload form (shared/telemetry-encoding.ts): what an
 * agent encodes, the hub decodes to the very bytes the agent started from;
 * plain JSON passes untouched; and anything else is refused with a reason,
 * never decoded into something the hub would store or relay.
 */
import { createHash } from 'node:crypto';
import { crc32, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type LogBatch, LogBatch as LogBatchSchema, Metrics, validate } from '../../shared/index.js';
import {
  DEFLATE_BASE_1_TAG,
  DEFLATE_DICT_1_TAG,
  decodeTelemetryPayload,
  deltaBaseSeq,
  encodeTelemetryPayload,
  isEncodedTelemetry,
  MAX_DECODED_BYTES,
  TELEMETRY_DICTIONARY_V1,
  TelemetryBaseMissingError,
} from '../../shared/telemetry-encoding.js';
import { logLine, metricsSample } from '../support/fixtures.js';

function batch(lines: number, seq = 41): LogBatch {
  return {
    seq,
    lines: Array.from({ length: lines }, (_, i) =>
      logLine(`tick-2s boot=1764914453 n=${100 + i} level=info msg="sensor reading ok" value=${((100 + i) * 47) % 100}`, {
        app: 'tick-2s',
        ts: `2026-12-05T06:${String(10 + Math.floor(i / 60)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.${String(123456789 + i * 7919).padStart(9, '0')}Z`,
      }),
    ),
  };
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('encodeTelemetryPayload / decodeTelemetryPayload', () => {
  it('gives back the exact bytes of a log batch, from one line to hundreds, each encoded far smaller than its JSON', () => {
    for (const lines of [1, 2, 8, 300]) {
      const plain = json(batch(lines));
      const encoded = encodeTelemetryPayload(plain);
      expect(encoded[0]).toBe(DEFLATE_DICT_1_TAG);
      // One line is mostly its own text and timestamp; from a few lines on the repeats compress too.
      expect(encoded.length).toBeLessThan(plain.length * (lines === 1 ? 0.6 : 0.4));
      const decoded = decodeTelemetryPayload(encoded);
      expect(decoded.equals(plain)).toBe(true);
      expect(validate(LogBatchSchema, JSON.parse(decoded.toString('utf8'))).ok).toBe(true);
    }
  });

  it('compresses a single metrics sample against the dictionary to well under half its JSON', () => {
    const plain = json(metricsSample(7));
    const encoded = encodeTelemetryPayload(plain);
    const withoutDictionary = deflateRawSync(plain, { level: 9 }).length + 1;
    expect(encoded.length).toBeLessThan(withoutDictionary);
    expect(encoded.length).toBeLessThan(plain.length / 2);
    expect(validate(Metrics, JSON.parse(decodeTelemetryPayload(encoded).toString('utf8'))).ok).toBe(true);
  });

  it('leaves a payload that would not shrink as it is, which the hub takes as plain', () => {
    const plain = Buffer.from('{"a":1}');
    const encoded = encodeTelemetryPayload(plain);
    expect(encoded).toBe(plain);
    expect(isEncodedTelemetry(encoded)).toBe(false);
  });

  it('passes plain JSON through untouched, leading whitespace and all (only tag bytes below tab are encodings)', () => {
    for (const text of ['{"seq":1,"lines":[]}', ' {"seq":1}', '\n{"seq":1}', '[1]', 'not json']) {
      const payload = Buffer.from(text);
      expect(isEncodedTelemetry(payload)).toBe(false);
      expect(decodeTelemetryPayload(payload)).toBe(payload);
    }
  });

  it('refuses a corrupted payload with a reason: flipped bytes, truncated, an unknown tag, a bomb, or not JSON inside', () => {
    const encoded = encodeTelemetryPayload(json(batch(8)));
    const truncated = encoded.subarray(0, encoded.length - 10);
    expect(() => decodeTelemetryPayload(truncated)).toThrow(/corrupt deflate-dict-1 telemetry payload \(\d+ bytes\): /);

    const garbage = Buffer.concat([
      Buffer.from([DEFLATE_DICT_1_TAG, 1, 2, 3, 4]),
      Buffer.from('this is not deflate data at all, just text'),
    ]);
    expect(() => decodeTelemetryPayload(garbage)).toThrow(/corrupt deflate-dict-1/);

    const unknownTag = Buffer.from(encoded);
    unknownTag[0] = 0x03;
    expect(() => decodeTelemetryPayload(unknownTag)).toThrow('unknown telemetry encoding tag 0x03 (this hub decodes deflate-dict-1)');

    const bomb = Buffer.concat([
      Buffer.from([DEFLATE_DICT_1_TAG, 0, 0, 0, 0]),
      deflateRawSync(Buffer.alloc(MAX_DECODED_BYTES + 1, 0x7b), { dictionary: TELEMETRY_DICTIONARY_V1 }),
    ]);
    expect(bomb.length).toBeLessThan(4096);
    expect(() => decodeTelemetryPayload(bomb)).toThrow(`inflates to more than ${MAX_DECODED_BYTES} bytes`);

    const array = Buffer.from('[{"seq":1}]');
    const notJson = Buffer.concat([
      Buffer.from([DEFLATE_DICT_1_TAG]),
      Buffer.alloc(4),
      deflateRawSync(array, { dictionary: TELEMETRY_DICTIONARY_V1 }),
    ]);
    notJson.writeUInt32BE(crc32(array), 1);
    expect(() => decodeTelemetryPayload(notJson)).toThrow('not a JSON object');
  });

  it('refuses a flipped bit anywhere in an encoded batch, unless it decodes to exactly the original: never to other lines', () => {
    const plain = json(batch(3));
    const encoded = encodeTelemetryPayload(plain);
    let refused = 0;
    for (let i = 1; i < encoded.length; i++) {
      for (const bit of [0x01, 0x10, 0x80]) {
        const corrupt = Buffer.from(encoded);
        corrupt[i]! ^= bit;
        try {
          // Only the padding bits after deflate's end-of-block code can change and still decode.
          expect(decodeTelemetryPayload(corrupt).equals(plain), `byte ${i}, bit ${bit}`).toBe(true);
        } catch (err) {
          expect((err as Error).message).toMatch(/^corrupt deflate-dict-1 telemetry payload/);
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(3 * (encoded.length - 2));
  });

  it('sends a sample as a delta against an earlier full one, far smaller, restored exactly only against that very base', () => {
    const base = metricsSample(4_294_967_296 * 3 + 10, { ts: '2026-12-05T06:00:00.000Z' });
    const next = metricsSample(4_294_967_296 * 3 + 11, {
      ts: '2026-12-05T06:00:10.000Z',
      host: { ...base.host, cpuPercent: 12.34, memUsedBytes: base.host.memUsedBytes + 4096, uptimeSeconds: base.host.uptimeSeconds + 10 },
    });
    const basePlain = json(base);
    const plain = json(next);
    const whole = encodeTelemetryPayload(plain);
    const delta = encodeTelemetryPayload(plain, 'deflate-dict-1', { seq: base.seq, plain: basePlain });
    expect(delta[0]).toBe(DEFLATE_BASE_1_TAG);
    expect(deltaBaseSeq(delta)).toBe(base.seq);
    expect(delta.length).toBeLessThan(whole.length * 0.75);

    const held = new Map([[base.seq, basePlain]]);
    expect(decodeTelemetryPayload(delta, (seq) => held.get(seq)).equals(plain)).toBe(true);
    // Without the base (it was lost, or the hub restarted): a named refusal, not a corruption.
    expect(() => decodeTelemetryPayload(delta)).toThrow(TelemetryBaseMissingError);
    expect(() => decodeTelemetryPayload(delta)).toThrow(`metrics delta against sample seq ${base.seq}, which this hub does not hold`);
    // Against another sample under the same seq: refused by the CRC, never restored to something else.
    // It differs from the base where the delta must refer to it (the container, unchanged since the base).
    const [container] = base.containers;
    const other = json({ ...base, containers: [{ ...container!, app: 'boiler', container: 'valve', id: 'deadbeef' }] });
    expect(() => decodeTelemetryPayload(delta, () => other)).toThrow(/corrupt deflate-dict-1 telemetry payload .*: /);
  });

  it('keeps the dictionary, part of the wire format, byte for byte (a new dictionary needs a new tag)', () => {
    expect(createHash('sha256').update(TELEMETRY_DICTIONARY_V1).digest('hex')).toBe(
      '9cedf72f6fa1abc89748764c6c6f24d32a2de010ebe4860f0cef726469c22c37',
    );
  });
});
