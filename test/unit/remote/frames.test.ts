import { describe, expect, it } from 'vitest';
import {
  decodeFrame,
  encodeFrame,
  FRAME,
  FRAME_HEADER_BYTES,
  FrameReceiver,
  FrameSender,
  MAX_DATA_BYTES,
  peekFrame,
} from '../../../shared/remote/frames.js';

describe('remote-access frames', () => {
  it('round-trips every frame type with its seq and channel', () => {
    const frames = [
      { type: FRAME.data, seq: 7, channel: 1, data: Buffer.from('hello') },
      { type: FRAME.eof, seq: 8, channel: 1 },
      { type: FRAME.window, seq: 9, channel: 3, bytes: 65536 },
      { type: FRAME.open, seq: 10, channel: 4 },
      { type: FRAME.opened, seq: 11, channel: 4 },
      { type: FRAME.close, seq: 12, channel: 4, reason: 'connection refused' },
      { type: FRAME.resize, seq: 13, channel: 0, rows: 40, cols: 132 },
      { type: FRAME.exit, seq: 0xffff_fffe, channel: 0, code: 3 },
    ] as const;
    for (const frame of frames) {
      // As a Node peer receives them: a Buffer off the socket.
      expect(decodeFrame(Buffer.from(encodeFrame(frame)))).toEqual({ ok: true, frame });
    }
  });

  it('reads a frame header alone for a relay: type, channel and DATA payload size', () => {
    expect(peekFrame(encodeFrame({ type: FRAME.data, seq: 3, channel: 2, data: Buffer.alloc(1000) }))).toEqual({
      type: FRAME.data,
      channel: 2,
      dataBytes: 1000,
    });
    expect(peekFrame(encodeFrame({ type: FRAME.close, seq: 4, channel: 0, reason: 'bye' }))).toEqual({
      type: FRAME.close,
      channel: 0,
      dataBytes: 0,
    });
    expect(peekFrame(Buffer.from([FRAME.data, 0, 0]))).toBeUndefined();
  });

  it('refuses bytes that are not a frame, with a reason', () => {
    expect(decodeFrame(Buffer.from([1, 0, 0]))).toMatchObject({ ok: false, reason: expect.stringContaining('shorter than its header') });
    expect(decodeFrame(Buffer.alloc(9, 0x63))).toMatchObject({ ok: false, reason: 'unknown frame type 99' });
    const tooBig = encodeFrame({ type: FRAME.data, seq: 0, channel: 1, data: Buffer.alloc(MAX_DATA_BYTES + 1) });
    expect(decodeFrame(tooBig)).toMatchObject({ ok: false, reason: expect.stringContaining('at most') });
    const badExit = Buffer.concat([encodeFrame({ type: FRAME.eof, seq: 0, channel: 0 }), Buffer.from('{"code":"x"}')]);
    badExit[0] = FRAME.exit;
    expect(decodeFrame(badExit)).toMatchObject({ ok: false, reason: 'exit frame without an integer code' });
  });

  it('numbers what it sends and sees a lost or repeated frame at once', () => {
    const wire: Uint8Array[] = [];
    const sender = new FrameSender((bytes) => wire.push(bytes));
    for (let i = 0; i < 4; i++) sender.send({ type: FRAME.data, channel: 1, data: Buffer.from([i]) });
    const inOrder = new FrameReceiver();
    expect(wire.map((bytes) => inOrder.receive(bytes).ok)).toEqual([true, true, true, true]);

    const lossy = new FrameReceiver();
    expect(lossy.receive(wire[0]!).ok).toBe(true);
    expect(lossy.receive(wire[2]!)).toEqual({ ok: false, reason: 'frames lost on the link: expected frame 1, got 2' });

    const replayed = new FrameReceiver();
    replayed.receive(wire[0]!);
    replayed.receive(wire[1]!);
    expect(replayed.receive(wire[1]!)).toMatchObject({ ok: false, reason: expect.stringContaining('arrived again') });
  });

  it('speaks the same bytes from plain Uint8Arrays, as the browser console uses it', () => {
    const resize = encodeFrame({ type: FRAME.resize, seq: 258, channel: 0, rows: 40, cols: 132 });
    // type, seq 258 and channel 0 big-endian, then rows and cols as uint16 BE: the wire format of docs/remote-protocol.md.
    expect([...resize]).toEqual([FRAME.resize, 0, 0, 1, 2, 0, 0, 0, 0, 0, 40, 0, 132]);
    const exit = encodeFrame({ type: FRAME.exit, seq: 1, channel: 0, code: 130 });
    expect(new TextDecoder().decode(exit.subarray(9))).toBe('{"code":130}');

    // A frame inside a larger buffer (an ArrayBuffer a WebSocket handed over at an offset) decodes from its own bytes.
    const data = encodeFrame({ type: FRAME.data, seq: 5, channel: 1, data: new TextEncoder().encode('héllo') });
    const padded = new Uint8Array(data.length + 7);
    padded.set(data, 3);
    const decoded = decodeFrame(padded.subarray(3, 3 + data.length));
    expect(decoded.ok && decoded.frame.type === FRAME.data && new TextDecoder().decode(decoded.frame.data)).toBe('héllo');
    expect(Buffer.isBuffer(decoded.ok && decoded.frame.type === FRAME.data && decoded.frame.data)).toBe(false);
  });

  it('hands a Buffer caller DATA payloads that are Buffers, sharing the received bytes', () => {
    const received = Buffer.from(encodeFrame({ type: FRAME.data, seq: 0, channel: 1, data: Buffer.from('abc') }));
    const decoded = decodeFrame(received);
    if (!decoded.ok || decoded.frame.type !== FRAME.data) throw new Error('expected a data frame');
    expect(Buffer.isBuffer(decoded.frame.data)).toBe(true);
    received[FRAME_HEADER_BYTES] = 0x78;
    expect(decoded.frame.data.toString()).toBe('xbc');
  });
});
