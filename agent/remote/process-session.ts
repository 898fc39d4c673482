/**
 * An exec or host-shell session: a process whose stdout (1) and stderr (2)
 * go up as DATA, whose stdin (1) comes down, and whose exit code is the
 * session's last frame, sent once all its output was.
 *
 * Stdin is written out before its bytes are granted back (the write
 * callback), so a process that does not read its stdin stops the opener.
 * A resize takes effect before the stdin that came after it is written, as
 * on a local terminal (there the resize is one synchronous ioctl; here it is
 * a request to the engine or a `stty` run): `stty size` typed right after a
 * resize shows the new size.
 */
import type { Readable, Writable } from 'node:stream';
import { CHANNEL, FRAME, type Frame } from '../../shared/remote/index.js';
import { OutboundChannel } from '../../shared/remote/outbound-channel.js';
import type { RemoteProcess } from '../runtime/runtime.js';
import { Session, type SessionContext, type SessionEnding } from './session.js';

export class ProcessSession extends Session {
  private readonly outputs: OutboundChannel[] = [];
  private exited = false;
  /** Resizes in flight and the stdin that came after them, in arrival order; undefined when nothing waits. */
  private ordered: Promise<void> | undefined;

  constructor(
    context: SessionContext,
    private readonly process: RemoteProcess,
    /** Whether the opener keeps stdin open (`-i`); otherwise it is closed at once. */
    private readonly stdinOpen: boolean,
  ) {
    super(context);
    process.stdin.on('error', () => {});
  }

  start(): void {
    const { process } = this;
    if (this.stdinOpen) this.window.open(CHANNEL.stdio);
    else process.stdin.end();
    const streams: { channel: number; source: Readable }[] = [{ channel: CHANNEL.stdio, source: process.stdout }];
    if (process.stderr) streams.push({ channel: CHANNEL.stderr, source: process.stderr });
    let open = streams.length;
    for (const { channel, source } of streams) {
      this.credit.open(channel);
      const output = new OutboundChannel({
        source,
        channel,
        credit: this.credit,
        sendData: (ch, data) => this.sendData(ch, data),
        onEnd: () => {
          open -= 1;
          if (open === 0) this.outputEnded();
        },
      });
      this.outputs.push(output);
    }
  }

  private outputEnded(): void {
    if (this.ended) return;
    this.process.exited().then(
      (code) => {
        this.exited = true;
        this.end({ outcome: 'exited', code });
      },
      (err: Error) => this.end({ outcome: 'failed', reason: err.message }),
    );
  }

  protected onData(channel: number, data: Buffer): void {
    if (channel !== CHANNEL.stdio) {
      this.end({ outcome: 'failed', reason: `data on channel ${channel}, which takes none` });
      return;
    }
    // Without -i the command's stdin is closed: what an opener sends anyway goes nowhere, as with docker exec.
    if (!this.stdinOpen) return;
    this.inOrder(() => writeOut(this.process.stdin, data, () => this.window.consumed(channel, data.length)));
  }

  /** Runs `step` now, or after the resizes (and steps) queued before it. */
  private inOrder(step: () => unknown): void {
    if (this.ordered === undefined) {
      step();
      return;
    }
    this.chain(async () => {
      await step();
    });
  }

  private chain(step: () => Promise<void>): void {
    const tail = (this.ordered ?? Promise.resolve()).then(step);
    this.ordered = tail;
    void tail.then(() => {
      if (this.ordered === tail) this.ordered = undefined;
    });
  }

  protected onFrame(frame: Frame): void {
    switch (frame.type) {
      case FRAME.eof:
        if (frame.channel === CHANNEL.stdio) this.inOrder(() => this.process.stdin.end());
        return;
      case FRAME.resize:
        this.chain(() =>
          this.process.resize(frame.rows, frame.cols).catch((err: Error) => this.log.debug({ err: err.message }, 'resize failed')),
        );
        return;
      default:
        this.log.debug({ frameType: frame.type, channel: frame.channel }, 'frame an exec session does not take; ignored');
    }
  }

  protected release(_ending: SessionEnding): void {
    for (const output of this.outputs) output.stop();
    if (!this.exited) this.process.kill();
  }
}

/** Writes `data` and calls `written` once it has gone out; nothing after the sink ended. */
function writeOut(sink: Writable, data: Buffer, written: () => void): void {
  if (sink.destroyed || sink.writableEnded) return;
  sink.write(data, (err) => {
    if (!err) written();
  });
}
