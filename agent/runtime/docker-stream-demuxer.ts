/**
 * Splits the engine's multiplexed attach stream (a non-TTY exec's output)
 * into stdout and stderr: each frame is an 8-byte header (stream type,
 * three zero bytes, payload length uint32 BE) and its payload.
 *
 * Written here rather than docker-modem's demuxStream because that one writes
 * into its targets whatever their buffers hold: a remote reader that stops
 * reading must stop the process's output at the engine's socket. Here a
 * write into the demuxer completes only once both outputs have room again,
 * so `socket.pipe(demuxer)` pauses the socket; at most one incoming chunk
 * sits in the outputs beyond their high-water marks.
 */
import { PassThrough, Writable } from 'node:stream';

const HEADER_BYTES = 8;
const STDERR = 2;

export class DockerStreamDemuxer extends Writable {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** Bytes of an unfinished header. */
  private header = Buffer.alloc(0);
  /** Where the payload in progress goes, and how much of it is still to come. */
  private target: PassThrough = this.stdout;
  private remaining = 0;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const full = new Set<PassThrough>();
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const need = HEADER_BYTES - this.header.length;
        const taken = chunk.subarray(offset, offset + need);
        this.header = this.header.length === 0 ? Buffer.from(taken) : Buffer.concat([this.header, taken]);
        offset += taken.length;
        if (this.header.length < HEADER_BYTES) break;
        // Type 0 (stdin, echoed back) and 1 are stdout; 2 is stderr.
        this.target = this.header.readUInt8(0) === STDERR ? this.stderr : this.stdout;
        this.remaining = this.header.readUInt32BE(4);
        this.header = Buffer.alloc(0);
        continue;
      }
      const piece = chunk.subarray(offset, offset + this.remaining);
      offset += piece.length;
      this.remaining -= piece.length;
      if (!this.target.write(piece)) full.add(this.target);
    }
    if (full.size === 0) {
      callback();
      return;
    }
    let waiting = full.size;
    const drained = () => {
      waiting -= 1;
      if (waiting === 0) callback();
    };
    // A destroyed output never drains: whoever destroyed it tears the demuxer down too.
    for (const output of full) output.once('drain', drained);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.stdout.end();
    this.stderr.end();
    callback();
  }

  /**
   * After a normal finish (the engine's stream ended) the outputs were ended
   * in _final and may still hold the last output for a reader that waits for
   * flow-control credit: they are left to drain. Only a demuxer torn down
   * before its end takes its outputs with it.
   */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error !== null || !this.writableFinished) {
      this.stdout.destroy();
      this.stderr.destroy();
    }
    callback(error);
  }
}
