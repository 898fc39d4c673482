/**
 * The per-line length cap, in bytes of UTF-8 (what the line costs on the link
 * and in the buffer), never splitting a character.
 */

/** `bytes` cut to at most `maxBytes`, backing off to the start of a character so the result stays valid UTF-8. */
export function cutUtf8(bytes: Buffer, maxBytes: number): Buffer {
  if (bytes.length <= maxBytes) return bytes;
  let end = Math.max(0, maxBytes);
  // A byte 10xxxxxx continues a character that began before it.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

export interface CappedLine {
  line: string;
  truncated: boolean;
}

/** The line, cut to `maxBytes` of UTF-8 and marked `truncated` when it was longer. */
export function capLine(line: string, maxBytes: number): CappedLine {
  // Cheap test first: a string of n UTF-16 units is at most 3n bytes.
  if (line.length * 3 <= maxBytes || Buffer.byteLength(line) <= maxBytes) return { line, truncated: false };
  return { line: cutUtf8(Buffer.from(line), maxBytes).toString('utf8'), truncated: true };
}
