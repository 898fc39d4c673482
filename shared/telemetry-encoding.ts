/**
 * The compact form of a telemetry payload (logs, metrics, events) on a
 * metered link: one tag byte, the CRC-32 of the plain JSON (4 bytes, big
 * endian), then the plain JSON compressed with raw deflate (RFC 1951)
 * against a preset dictionary of the schemas' keys and common values, so
 * even a one-line log batch or a single metrics sample compresses (a
 * sample's 1.3 KB of JSON to about a quarter). Raw deflate has no check of
 * its own, and a flipped bit can inflate to other, well-formed lines: the
 * CRC makes every such payload a refusal instead.
 *
 * A payload is either plain JSON, whose first byte is `{`, or this form,
 * whose tag byte is a control character that can never start JSON text. The hub
 * turns every encoded payload back into its plain JSON before anything else
 * reads it (broker/telemetry/ingest-before-ack.ts), so what it stores and
 * what dashboards and other MQTT subscribers receive is plain JSON, byte for
 * byte what the agent encoded.
 *
 * An agent sends this form only to a hub that said it decodes it (the
 * `telemetry.link` command, schemas/telemetry.ts): an older hub keeps getting
 * plain JSON.
 *
 * Invariant: what a tag means never changes. TELEMETRY_DICTIONARY_V1 is part
 * of the wire format (a hub inflating with another dictionary reads garbage);
 * a better dictionary is a new tag and a new encoding name, with the old one
 * still decoded. test/unit/telemetry-encoding.test.ts pins its hash.
 */
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

/** The encodings a hub may list in `telemetry.link`; an agent uses the first it knows. */
export const TELEMETRY_ENCODINGS = ['deflate-dict-1'] as const;
export type TelemetryEncoding = (typeof TELEMETRY_ENCODINGS)[number];

/** The first byte of a `deflate-dict-1` payload: never `{`, nor whitespace that could precede JSON. */
export const DEFLATE_DICT_1_TAG = 0x01;

/** `{`: the first byte of the plain JSON every encoded payload inflates to. */
const PLAIN_JSON_FIRST_BYTE = 0x7b;

/**
 * Tag bytes are control characters below tab: JSON text can start with none
 * of them (RFC 8259 allows only space, tab, CR and LF before the value), so
 * every payload that was valid plain JSON stays plain, and a payload with an
 * unknown tag is named as such rather than as bad JSON.
 */
const MAX_TAG = 0x08;

/**
 * The most a payload may inflate to: the hub's default packet cap
 * (broker/mqtt/broker.ts), so decoded JSON is never larger than a plain
 * payload could be, and a deflate bomb costs the hub at most this much
 * memory before it is refused. The agent's batches stay far below it.
 */
export const MAX_DECODED_BYTES = 1024 * 1024;

/**
 * What deflate can point back into before the payload's first byte: the
 * schemas' keys in the order the agent writes them, and values every device
 * repeats. Deflate finds matches at short distances cheaper, so the most
 * frequent strings (a log line's keys) come last.
 */
const DICTIONARY_TEXT = [
  // events (schemas/messages.ts DeviceEvent) and rarer values
  '{"seq":1,"ts":"2026-01-01T00:00:00.000Z","type":"started","app":"","container":"","message":"',
  'pulled","health failed","rolled back","outbox-dropped","created","stopped","removed","restarted"}',
  '"truncated":true,"suppressed":',
  // a metrics sample (schemas/telemetry.ts Metrics), keys in the collector's order
  '{"seq":1,"ts":"2026-01-01T00:00:00.000Z","host":{"cpuPercent":0,"cpuCount":4,"load1":0,"load5":0,"load15":0,',
  '"memTotalBytes":0,"memAvailableBytes":0,"memUsedBytes":0,"disks":[{"name":"root","path":"/","usedBytes":0,"freeBytes":0,"totalBytes":0},',
  '{"name":"docker","path":"/var/lib/docker","usedBytes":0,"freeBytes":0,"totalBytes":0}],"temperatureC":0,',
  '"netRxBytes":0,"netTxBytes":0,"uptimeSeconds":0},"containers":[{"app":"","container":"main","id":"","cpuPercent":0,',
  '"memBytes":0,"memLimitBytes":0,"netRxBytes":0,"netTxBytes":0,"blkReadBytes":0,"blkWriteBytes":0,"pids":1,"restartCount":0}',
  '],"agent":{"rssBytes":0,"cpuPercent":0,"logLinesDropped":0,"outbox":{"messages":0,"bytes":0,"dropped":0}}}',
  // a log batch (schemas/telemetry.ts LogBatch): the most frequent, last
  '{"seq":1,"lines":[{"app":"","container":"main","stream":"stderr","ts":"2026-01-01T00:00:00.000000000Z","line":""},',
  '{"app":"","container":"main","stream":"stdout","ts":"2026-01-01T00:00:00.000000000Z","line":" level=info msg=\\""},',
  '{"app":"","container":"main","stream":"stdout","ts":"2026-',
].join('');

export const TELEMETRY_DICTIONARY_V1: Buffer = Buffer.from(DICTIONARY_TEXT, 'utf8');

/** Deflate's best: the agent compresses a few messages a minute, and every byte saved is on the link. */
const LEVEL = 9;
/** The tag byte and the CRC-32 before the deflate data. */
const HEADER_BYTES = 5;

/**
 * The encoded form of plain JSON bytes, or the plain bytes themselves when
 * encoding would not make them smaller (a tiny event).
 */
export function encodeTelemetryPayload(plain: Buffer, encoding: TelemetryEncoding = 'deflate-dict-1'): Buffer {
  if (encoding !== 'deflate-dict-1') throw new Error(`unknown telemetry encoding "${encoding as string}"`);
  const deflated = deflateRawSync(plain, { level: LEVEL, dictionary: TELEMETRY_DICTIONARY_V1 });
  if (deflated.length + HEADER_BYTES >= plain.length) return plain;
  const out = Buffer.allocUnsafe(deflated.length + HEADER_BYTES);
  out[0] = DEFLATE_DICT_1_TAG;
  out.writeUInt32BE(crc32(plain), 1);
  deflated.copy(out, HEADER_BYTES);
  return out;
}

/** Whether a payload is in an encoded form: its first byte is a tag, which no JSON text starts with. */
export function isEncodedTelemetry(payload: Uint8Array): boolean {
  return payload.length > 0 && payload[0]! <= MAX_TAG;
}

/**
 * The plain JSON bytes of a telemetry payload: the payload itself when it is
 * plain already. Throws an Error saying what is wrong with an encoded payload
 * it cannot read (unknown tag, corrupt or truncated deflate data, larger than
 * MAX_DECODED_BYTES, or not JSON once inflated).
 */
export function decodeTelemetryPayload(payload: Buffer): Buffer {
  if (!isEncodedTelemetry(payload)) return payload;
  const tag = payload[0]!;
  if (tag !== DEFLATE_DICT_1_TAG) {
    throw new Error(
      `unknown telemetry encoding tag 0x${tag.toString(16).padStart(2, '0')} (this hub decodes ${TELEMETRY_ENCODINGS.join(', ')})`,
    );
  }
  const corrupt = (reason: string) => new Error(`corrupt deflate-dict-1 telemetry payload (${payload.length} bytes): ${reason}`);
  if (payload.length <= HEADER_BYTES) throw corrupt('shorter than its header');
  let plain: Buffer;
  try {
    plain = inflateRawSync(payload.subarray(HEADER_BYTES), { dictionary: TELEMETRY_DICTIONARY_V1, maxOutputLength: MAX_DECODED_BYTES });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw corrupt(code === 'ERR_BUFFER_TOO_LARGE' ? `inflates to more than ${MAX_DECODED_BYTES} bytes` : (err as Error).message);
  }
  if (crc32(plain) !== payload.readUInt32BE(1)) throw corrupt('CRC-32 mismatch');
  if (plain[0] !== PLAIN_JSON_FIRST_BYTE) throw corrupt('it inflates to something that is not a JSON object');
  return plain;
}
