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
 * A live metrics sample may also go as a delta (tag DEFLATE_BASE_1_TAG):
 * after the CRC, the seq of an earlier full sample of the same device (8
 * bytes, big endian), then the sample deflated against the dictionary *and*
 * that base sample's JSON, so what repeats (container ids, disk sizes,
 * names) costs a few bytes: ~120 bytes instead of ~330 for three
 * containers. The hub keeps each device's newest full sample that arrived
 * encoded (broker/telemetry/ingest-before-ack.ts) and restores the delta to
 * the whole sample; a delta whose base it does not hold (the base was lost:
 * samples are QoS 0; or the hub restarted) is dropped, until the agent's
 * next full sample, which it sends every METRIC_BASE_EVERY samples and first
 * on every connection. So a lost sample costs at most itself, a lost full
 * sample at most the deltas until the next one.
 *
 * An agent sends these forms only to a hub that said it decodes them (the
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
/** The first byte of a `deflate-dict-1` metrics sample sent as a delta against an earlier full one. */
export const DEFLATE_BASE_1_TAG = 0x02;

/** A live metrics sample goes whole once in this many (and first on a connection), as a delta against the last whole one otherwise. */
export const METRIC_BASE_EVERY = 6;

/** An earlier full sample a delta is made against: its seq and its plain JSON. */
export interface TelemetryBase {
  seq: number;
  plain: Buffer;
}

/** A delta whose base sample the decoder does not hold: expected after a lost base or a hub restart, not a corruption. */
export class TelemetryBaseMissingError extends Error {
  constructor(readonly baseSeq: number) {
    super(
      `metrics delta against sample seq ${baseSeq}, which this hub does not hold (lost, or the hub restarted): dropped until the next full sample`,
    );
    this.name = 'TelemetryBaseMissingError';
  }
}

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
/** The tag byte and the CRC-32 before the deflate data… */
const HEADER_BYTES = 5;
/** …and a delta's base seq after them. */
const BASE_HEADER_BYTES = HEADER_BYTES + 8;
/**
 * Deflate looks back 32 KiB: a base beyond what fits beside the dictionary
 * would be cut from the front, so a sample that large (hundreds of
 * containers) goes whole instead.
 */
export const MAX_BASE_BYTES = 32 * 1024 - 4 * 1024;

/**
 * The encoded form of plain JSON bytes, or the plain bytes themselves when
 * encoding would not make them smaller (a tiny event). With a `base` (an
 * earlier full metrics sample the hub has), a delta against it.
 */
export function encodeTelemetryPayload(plain: Buffer, encoding: TelemetryEncoding = 'deflate-dict-1', base?: TelemetryBase): Buffer {
  if (encoding !== 'deflate-dict-1') throw new Error(`unknown telemetry encoding "${encoding as string}"`);
  const delta = base !== undefined && base.plain.length <= MAX_BASE_BYTES;
  const dictionary = delta ? Buffer.concat([TELEMETRY_DICTIONARY_V1, base.plain]) : TELEMETRY_DICTIONARY_V1;
  const deflated = deflateRawSync(plain, { level: LEVEL, dictionary });
  const header = delta ? BASE_HEADER_BYTES : HEADER_BYTES;
  if (deflated.length + header >= plain.length) return plain;
  const out = Buffer.allocUnsafe(deflated.length + header);
  out[0] = delta ? DEFLATE_BASE_1_TAG : DEFLATE_DICT_1_TAG;
  out.writeUInt32BE(crc32(plain), 1);
  if (delta) out.writeBigUInt64BE(BigInt(base.seq), HEADER_BYTES);
  deflated.copy(out, header);
  return out;
}

/** The seq of the base sample a delta payload was made against; undefined for any other payload. */
export function deltaBaseSeq(payload: Buffer): number | undefined {
  if (payload[0] !== DEFLATE_BASE_1_TAG || payload.length < BASE_HEADER_BYTES) return undefined;
  return Number(payload.readBigUInt64BE(HEADER_BYTES));
}

/** Whether a payload is in an encoded form: its first byte is a tag, which no JSON text starts with. */
export function isEncodedTelemetry(payload: Uint8Array): boolean {
  return payload.length > 0 && payload[0]! <= MAX_TAG;
}

/**
 * The plain JSON bytes of a telemetry payload: the payload itself when it is
 * plain already. Throws an Error saying what is wrong with an encoded payload
 * it cannot read (unknown tag, corrupt or truncated deflate data, larger than
 * MAX_DECODED_BYTES, or not JSON once inflated), and a
 * TelemetryBaseMissingError for a delta whose base `baseOf` does not give.
 */
export function decodeTelemetryPayload(payload: Buffer, baseOf: (seq: number) => Buffer | undefined = () => undefined): Buffer {
  if (!isEncodedTelemetry(payload)) return payload;
  const tag = payload[0]!;
  if (tag !== DEFLATE_DICT_1_TAG && tag !== DEFLATE_BASE_1_TAG) {
    throw new Error(
      `unknown telemetry encoding tag 0x${tag.toString(16).padStart(2, '0')} (this hub decodes ${TELEMETRY_ENCODINGS.join(', ')})`,
    );
  }
  const corrupt = (reason: string) => new Error(`corrupt deflate-dict-1 telemetry payload (${payload.length} bytes): ${reason}`);
  const header = tag === DEFLATE_BASE_1_TAG ? BASE_HEADER_BYTES : HEADER_BYTES;
  if (payload.length <= header) throw corrupt('shorter than its header');
  let dictionary = TELEMETRY_DICTIONARY_V1;
  if (tag === DEFLATE_BASE_1_TAG) {
    const seq = deltaBaseSeq(payload)!;
    const base = baseOf(seq);
    if (base === undefined) throw new TelemetryBaseMissingError(seq);
    dictionary = Buffer.concat([TELEMETRY_DICTIONARY_V1, base]);
  }
  let plain: Buffer;
  try {
    plain = inflateRawSync(payload.subarray(header), { dictionary, maxOutputLength: MAX_DECODED_BYTES });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw corrupt(code === 'ERR_BUFFER_TOO_LARGE' ? `inflates to more than ${MAX_DECODED_BYTES} bytes` : (err as Error).message);
  }
  if (crc32(plain) !== payload.readUInt32BE(1)) throw corrupt('CRC-32 mismatch');
  if (plain[0] !== PLAIN_JSON_FIRST_BYTE) throw corrupt('it inflates to something that is not a JSON object');
  return plain;
}
