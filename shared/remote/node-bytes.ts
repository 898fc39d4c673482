/**
 * The frame codec (frames.ts) speaks Uint8Array so the browser runs it too;
 * Node APIs typed for Buffer only (MQTT.js `publish`, stream writes that a
 * caller treats as Buffers) take its output through this view, which shares
 * the bytes instead of copying them.
 */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
