/**
 * The engine's multiplexed exec stream split into stdout and stderr: frames
 * cut anywhere by the socket arrive whole and in order, and an output nobody
 * reads stops the socket instead of filling memory.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DockerStreamDemuxer } from '../../../agent/runtime/docker-stream-demuxer.js';

/** One frame as the engine writes it: type, three zero bytes, length, payload. */
function frame(type: number, payload: string | Buffer): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(8);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

function collect(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.on('error', reject);
    // Closed without its end: what it still held is gone (after 'end' this rejects nothing).
    stream.on('close', () => reject(new Error('the output closed before its end')));
  });
}

describe('DockerStreamDemuxer', () => {
  it('keeps what its outputs still hold when the stream ends before their reader caught up', async () => {
    // The engine closes the exec's stream right after the last output; a reader
    // waiting for flow-control credit reads the tail only afterwards.
    const demuxer = new DockerStreamDemuxer();
    const tail = 'x'.repeat(10_000);
    demuxer.end(Buffer.concat([frame(1, 'head '), frame(1, tail), frame(2, 'last words')]));
    await new Promise((resolve) => demuxer.once('finish', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(await collect(demuxer.stdout)).toBe(`head ${tail}`);
    expect(await collect(demuxer.stderr)).toBe('last words');
  });

  it('splits frames cut at every byte boundary into stdout and stderr, in order', async () => {
    const wire = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err one\n'), frame(1, ''), frame(1, 'out two\n'), frame(2, 'err two\n')]);
    // Every split of the wire into two chunks, headers cut included.
    for (let cut = 0; cut <= wire.length; cut++) {
      const demuxer = new DockerStreamDemuxer();
      const stdout = collect(demuxer.stdout);
      const stderr = collect(demuxer.stderr);
      Readable.from([wire.subarray(0, cut), wire.subarray(cut)].filter((b) => b.length > 0)).pipe(demuxer);
      expect(await stdout).toBe('out one\nout two\n');
      expect(await stderr).toBe('err one\nerr two\n');
    }
  });

  it('stops taking input while an output is not read, and takes it all once it is', async () => {
    const payload = Buffer.alloc(16 * 1024, 'x');
    const frames = 256; // 4 MiB on stdout
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 1;
        this.push(produced <= frames ? frame(1, payload) : null);
      },
    });
    const demuxer = new DockerStreamDemuxer();
    const stderr = collect(demuxer.stderr);
    source.pipe(demuxer);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Nothing reads stdout: the source was asked for a few frames (the buffers' high-water marks), not 4 MiB.
    expect(produced).toBeLessThan(16);
    const stdout = collect(demuxer.stdout);
    expect((await stdout).length).toBe(frames * payload.length);
    expect(await stderr).toBe('');
    expect(produced).toBe(frames + 1);
  });
});
