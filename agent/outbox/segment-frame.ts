/**
 * The outbox's on-disk frame: what one write tick appends to a segment file
 * (outbox-file.ts). Pure: bytes in, bytes out.
 *
 * A frame starts on a page boundary and is padded with zeros to whole pages,
 * so a tick writes only pages no earlier tick touched (a partly filled last
 * page rewritten at every tick is what made the SQLite outbox write 12-16
 * times the size of its messages), and a reader that meets a damaged frame
 * finds the next one at the next page boundary.
 *
 *   header (16 bytes, little-endian): magic "FOB1", body length, CRC-32 of
 *   the body, encoding (0 plain, 1 raw deflate)
 *   body: u32 n, n × (f64 first id, u32 count)  ids removed (acknowledged,
 *           dropped or expired) from earlier frames
 *         u32 m, m × (u8 class, f64 id, f64 createdAt, u32 length, payload)
 *
 * A frame whose magic, length or checksum does not hold (a torn write at a
 * power cut, a flipped bit) is skipped whole: its records are lost, the
 * frames around it are not.
 */
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

export const PAGE_BYTES = 4096;
export const HEADER_BYTES = 16;
const MAGIC = 0x3142_4f46; // "FOB1" read as a little-endian u32
const PLAIN = 0;
const DEFLATED = 1;
/** A body larger than this is not ours: a torn header's length is not trusted. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface FrameRecord {
  cls: number;
  id: number;
  createdAt: number;
  payload: Buffer;
}

export interface Frame {
  removed: number[];
  records: FrameRecord[];
}

export interface ScannedFrame extends Frame {
  /** Where the frame starts in the segment (a page boundary). */
  offset: number;
  /** Header and body, without the padding. */
  length: number;
}

export function alignToPage(bytes: number): number {
  return Math.ceil(bytes / PAGE_BYTES) * PAGE_BYTES;
}

/** The frame's bytes, padded to whole pages. */
export function encodeFrame(frame: Frame): Buffer {
  const plain = encodeBody(frame);
  const deflated = deflateRawSync(plain);
  const [encoding, body] = deflated.length < plain.length ? [DEFLATED, deflated] : [PLAIN, plain];
  const out = Buffer.alloc(alignToPage(HEADER_BYTES + body.length));
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(body.length, 4);
  out.writeUInt32LE(crc32(body), 8);
  out.writeUInt32LE(encoding, 12);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** Every intact frame in a segment's bytes, in order; damaged stretches are skipped page by page. */
export function scanFrames(bytes: Buffer): ScannedFrame[] {
  const frames: ScannedFrame[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= bytes.length) {
    const frame = frameAt(bytes, offset);
    if (frame) {
      frames.push(frame);
      offset = alignToPage(offset + frame.length);
    } else {
      offset += PAGE_BYTES;
    }
  }
  return frames;
}

/** The frame at `offset` (header and body, as read back for its payloads), or undefined if it does not check out. */
export function frameAt(bytes: Buffer, offset: number): ScannedFrame | undefined {
  if (offset + HEADER_BYTES > bytes.length || bytes.readUInt32LE(offset) !== MAGIC) return undefined;
  const bodyLength = bytes.readUInt32LE(offset + 4);
  const end = offset + HEADER_BYTES + bodyLength;
  if (bodyLength > MAX_BODY_BYTES || end > bytes.length) return undefined;
  const body = bytes.subarray(offset + HEADER_BYTES, end);
  if (crc32(body) !== bytes.readUInt32LE(offset + 8)) return undefined;
  const encoding = bytes.readUInt32LE(offset + 12);
  try {
    if (encoding !== PLAIN && encoding !== DEFLATED) return undefined;
    const frame = decodeBody(encoding === DEFLATED ? inflateRawSync(body) : body);
    return frame && { ...frame, offset, length: HEADER_BYTES + bodyLength };
  } catch {
    return undefined;
  }
}

/** The length a header at the start of `header` announces, header included (undefined if it is not a header). */
export function frameLength(header: Buffer): number | undefined {
  if (header.length < HEADER_BYTES || header.readUInt32LE(0) !== MAGIC) return undefined;
  const bodyLength = header.readUInt32LE(4);
  return bodyLength > MAX_BODY_BYTES ? undefined : HEADER_BYTES + bodyLength;
}

function encodeBody({ removed, records }: Frame): Buffer {
  const ranges = toRanges(removed);
  let size = 4 + ranges.length * 12 + 4;
  for (const r of records) size += 21 + r.payload.length;
  const out = Buffer.alloc(size);
  let at = out.writeUInt32LE(ranges.length, 0);
  for (const [first, count] of ranges) {
    at = out.writeDoubleLE(first, at);
    at = out.writeUInt32LE(count, at);
  }
  at = out.writeUInt32LE(records.length, at);
  for (const r of records) {
    at = out.writeUInt8(r.cls, at);
    at = out.writeDoubleLE(r.id, at);
    at = out.writeDoubleLE(r.createdAt, at);
    at = out.writeUInt32LE(r.payload.length, at);
    at += r.payload.copy(out, at);
  }
  return out;
}

/** Undefined when the counts and lengths do not add up to the body. */
function decodeBody(body: Buffer): Frame | undefined {
  let at = 0;
  const need = (n: number) => at + n <= body.length;
  if (!need(4)) return undefined;
  const rangeCount = body.readUInt32LE(at);
  at += 4;
  if (!need(rangeCount * 12)) return undefined;
  const removed: number[] = [];
  for (let i = 0; i < rangeCount; i++) {
    const first = body.readDoubleLE(at);
    const count = body.readUInt32LE(at + 8);
    at += 12;
    if (!Number.isSafeInteger(first) || count > body.length * 1024) return undefined;
    for (let k = 0; k < count; k++) removed.push(first + k);
  }
  if (!need(4)) return undefined;
  const recordCount = body.readUInt32LE(at);
  at += 4;
  const records: FrameRecord[] = [];
  for (let i = 0; i < recordCount; i++) {
    if (!need(21)) return undefined;
    const cls = body.readUInt8(at);
    const id = body.readDoubleLE(at + 1);
    const createdAt = body.readDoubleLE(at + 9);
    const length = body.readUInt32LE(at + 17);
    at += 21;
    if (!need(length) || !Number.isSafeInteger(id)) return undefined;
    // A copy: the caller may keep a payload long after the segment's bytes are gone.
    records.push({ cls, id, createdAt, payload: Buffer.from(body.subarray(at, at + length)) });
    at += length;
  }
  return at === body.length ? { removed, records } : undefined;
}

/** Sorted ids as runs of consecutive ids. */
function toRanges(ids: readonly number[]): [number, number][] {
  const sorted = [...ids].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const id of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && id === last[0] + last[1]) last[1]++;
    else if (!last || id >= last[0] + last[1]) ranges.push([id, 1]);
  }
  return ranges;
}
