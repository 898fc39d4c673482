/**
 * The frames of a remote-access session (exec, shell, port-forward), as they
 * travel in MQTT payloads on the session's topics and, unchanged, in the
 * binary WebSocket messages between the hub and the CLI or console.
 *
 *   byte 0      frame type (FRAME)
 *   bytes 1–4   seq, uint32 BE: 0, 1, 2, … per direction per session, so a
 *               lost or reordered frame is seen at once (MQTT QoS 0 loses
 *               frames when a link drops; a session does not survive that)
 *   bytes 5–8   channel, uint32 BE (CHANNEL, or a forwarded connection's id)
 *   bytes 9–    body: bytes for data, a uint32 for window, two uint16 for
 *               resize, UTF-8 JSON for exit and close
 *
 * Channels: 0 is the session itself (resize, exit, close). In exec and shell
 * sessions 1 carries stdin down and stdout up, 2 stderr up. In a port-forward
 * session each TCP connection is a channel the opener numbers from 1.
 *
 * The codec works on Uint8Array, DataView and TextEncoder only, so the web
 * console's terminal runs this very code: a Buffer is a Uint8Array, decoding
 * one yields DATA payloads that are Buffers still (views into it), and a Node
 * caller that must hand a Buffer on wraps an encoded frame without copying
 * (`Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)`).
 */

export const FRAME = {
  /** Bytes on a channel, within the credit the receiver granted. */
  data: 1,
  /** The sender will write no more on this channel (stdin closed, TCP half-close). */
  eof: 2,
  /** The receiver has consumed bytes: the sender may send that many more on the channel. */
  window: 3,
  /** Port-forward: the opener asks for a new connection to the session's target on this channel. */
  open: 4,
  /** Port-forward: the device connected the channel to the target. */
  opened: 5,
  /** The channel (or, on channel 0, the session) is closed, with a reason; no more frames on it. */
  close: 6,
  /** Terminal size (channel 0). */
  resize: 7,
  /** The command ended (channel 0): `{code}`; the session is over. */
  exit: 8,
} as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

export const CHANNEL = { session: 0, stdio: 1, stderr: 2 } as const;

export const FRAME_HEADER_BYTES = 9;
/** Data bytes in one frame at most: well under the hub's packet limit, big enough that headers cost < 0.1 %. */
export const MAX_DATA_BYTES = 32 * 1024;
const MAX_UINT32 = 0xffff_ffff;
const FRAME_TYPES: ReadonlySet<number> = new Set(Object.values(FRAME));

export type Frame =
  | { type: typeof FRAME.data; seq: number; channel: number; data: Uint8Array }
  | { type: typeof FRAME.eof | typeof FRAME.open | typeof FRAME.opened; seq: number; channel: number }
  | { type: typeof FRAME.window; seq: number; channel: number; bytes: number }
  | { type: typeof FRAME.resize; seq: number; channel: number; rows: number; cols: number }
  | { type: typeof FRAME.exit; seq: number; channel: number; code: number }
  | { type: typeof FRAME.close; seq: number; channel: number; reason: string };

/** A frame without its seq: what a sender hands to FrameSender, which numbers it. */
export type FrameBody = Frame extends infer F ? (F extends Frame ? Omit<F, 'seq'> : never) : never;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function encodeFrame(frame: Frame): Uint8Array {
  const body = frameBody(frame);
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, frame.type);
  view.setUint32(1, frame.seq >>> 0);
  view.setUint32(5, frame.channel >>> 0);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

function frameBody(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FRAME.data:
      return frame.data;
    case FRAME.window: {
      const body = new Uint8Array(4);
      new DataView(body.buffer).setUint32(0, Math.min(frame.bytes, MAX_UINT32));
      return body;
    }
    case FRAME.resize: {
      const body = new Uint8Array(4);
      const view = new DataView(body.buffer);
      view.setUint16(0, clampSize(frame.rows));
      view.setUint16(2, clampSize(frame.cols));
      return body;
    }
    case FRAME.exit:
      return utf8.encode(JSON.stringify({ code: frame.code }));
    case FRAME.close:
      return utf8.encode(JSON.stringify({ reason: frame.reason }));
    default:
      return new Uint8Array(0);
  }
}

function clampSize(n: number): number {
  return Math.max(1, Math.min(0xffff, Math.trunc(n)));
}

/**
 * A frame's type, channel and DATA payload size from its header alone, for
 * the hub, which relays frames unchanged and only counts and watches them;
 * undefined for bytes shorter than a header.
 */
export function peekFrame(bytes: Uint8Array): { type: number; channel: number; dataBytes: number } | undefined {
  if (bytes.length < FRAME_HEADER_BYTES) return undefined;
  const view = viewOf(bytes);
  const type = view.getUint8(0);
  return { type, channel: view.getUint32(5), dataBytes: type === FRAME.data ? bytes.length - FRAME_HEADER_BYTES : 0 };
}

/** A frame, or why the bytes are not one (the receiver then ends the session with that reason). */
export type Decoded = { ok: true; frame: Frame } | { ok: false; reason: string };

export function decodeFrame(bytes: Uint8Array): Decoded {
  if (bytes.length < FRAME_HEADER_BYTES) return { ok: false, reason: `frame of ${bytes.length} bytes is shorter than its header` };
  const view = viewOf(bytes);
  const type = view.getUint8(0);
  if (!FRAME_TYPES.has(type)) return { ok: false, reason: `unknown frame type ${type}` };
  const seq = view.getUint32(1);
  const channel = view.getUint32(5);
  // A view, not a copy: a Buffer's subarray is a Buffer.
  const body = bytes.subarray(FRAME_HEADER_BYTES);
  const bodyView = viewOf(body);
  switch (type) {
    case FRAME.data:
      if (body.length > MAX_DATA_BYTES) return { ok: false, reason: `data frame of ${body.length} bytes (at most ${MAX_DATA_BYTES})` };
      return { ok: true, frame: { type, seq, channel, data: body } };
    case FRAME.window:
      if (body.length !== 4) return { ok: false, reason: 'window frame without its 4-byte count' };
      return { ok: true, frame: { type, seq, channel, bytes: bodyView.getUint32(0) } };
    case FRAME.resize:
      if (body.length !== 4) return { ok: false, reason: 'resize frame without rows and columns' };
      return { ok: true, frame: { type, seq, channel, rows: bodyView.getUint16(0), cols: bodyView.getUint16(2) } };
    case FRAME.exit: {
      const json = parseJson(body);
      if (typeof json?.code !== 'number' || !Number.isInteger(json.code))
        return { ok: false, reason: 'exit frame without an integer code' };
      return { ok: true, frame: { type, seq, channel, code: json.code } };
    }
    case FRAME.close: {
      const json = parseJson(body);
      return { ok: true, frame: { type, seq, channel, reason: typeof json?.reason === 'string' ? json.reason.slice(0, 1024) : 'closed' } };
    }
    default:
      return { ok: true, frame: { type: type as typeof FRAME.eof, seq, channel } };
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parseJson(body: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8Decoder.decode(body));
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Numbers outgoing frames; one per direction per session. */
export class FrameSender {
  private seq = 0;
  constructor(private readonly write: (bytes: Uint8Array) => void) {}

  send(body: FrameBody): void {
    const frame = { ...body, seq: this.seq } as Frame;
    this.seq = (this.seq + 1) >>> 0;
    this.write(encodeFrame(frame));
  }

  /** Frames sent so far. */
  get sent(): number {
    return this.seq;
  }
}

/** Checks incoming frames' order: the first gap or repeat is the end of the session. */
export class FrameReceiver {
  private expected = 0;

  receive(bytes: Uint8Array): Decoded {
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) return decoded;
    const { seq } = decoded.frame;
    if (seq !== this.expected) {
      return {
        ok: false,
        reason:
          seq > this.expected
            ? `frames lost on the link: expected frame ${this.expected}, got ${seq}`
            : `frame ${seq} arrived again or out of order (expected ${this.expected})`,
      };
    }
    this.expected = (this.expected + 1) >>> 0;
    return decoded;
  }
}
